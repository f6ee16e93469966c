"""Database construct: its engines (MySQL, PostgreSQL), security-group grants and subnet
rule, on a unit stack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.support import NAMING, ONE_AZ_NETWORK, UnitStack, new_unit_stack, one, resources

if TYPE_CHECKING:
    from constructs_lib.database import Database


def test_allow_from_adds_the_matching_ingress_and_egress_pair(unit_stack: UnitStack) -> None:
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    stack = unit_stack.stack
    db = unit_stack.database()
    peer = SecurityGroup(stack, "peer", vpc_id="vpc-1", description="peer")
    db.allow_from(peer, description="peer to MySQL")
    doc = unit_stack.synth()
    (ingress,) = doc["resource"]["aws_vpc_security_group_ingress_rule"].values()
    (egress,) = [
        r
        for r in doc["resource"]["aws_vpc_security_group_egress_rule"].values()
        if r["security_group_id"] == "${aws_security_group.peer.id}"
    ]
    assert ingress["security_group_id"].startswith("${aws_security_group.db_security-group")
    assert ingress["referenced_security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["referenced_security_group_id"] == ingress["security_group_id"]
    assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (3306, 3306, "tcp")
    assert (egress["from_port"], egress["to_port"]) == (3306, 3306)


def test_database_construct_needs_a_network_of_two_azs(unit_stack: UnitStack) -> None:
    from constructs_lib.database import Database, DatabaseProps
    from constructs_lib.errors import ConfigError

    network = unit_stack.network(ONE_AZ_NETWORK)
    props = DatabaseProps(naming=NAMING, network=network, key=unit_stack.key())
    with pytest.raises(
        ConfigError, match=r"^unit/db\.network: got 1, give a network of 2 or more AZs$"
    ):
        Database(unit_stack.stack, "db", props=props)


# --- the engines ------------------------------------------------------------------------------


def _database(unit_stack: UnitStack, **settings: Any) -> Database:
    from constructs_lib.database import Database, DatabaseProps, DatabaseSettings

    props = DatabaseProps(
        naming=NAMING,
        network=unit_stack.network(),
        key=unit_stack.key(),
        settings=DatabaseSettings(**settings),
    )
    return Database(unit_stack.stack, "db", props=props)


def _postgres(unit_stack: UnitStack, **settings: Any) -> Database:
    from constructs_lib.options import DatabaseEngine

    return _database(unit_stack, engine=DatabaseEngine.POSTGRES, **settings)


def test_postgres_instance_parameters_and_names(unit_stack: UnitStack) -> None:
    db = _postgres(unit_stack)
    doc = unit_stack.synth()
    instance = one(doc, "aws_db_instance")
    assert (instance["engine"], instance["engine_version"]) == ("postgres", "17")
    assert instance["identifier"] == db.identifier == "pcp-unit-postgres"
    assert instance["final_snapshot_identifier"] == "pcp-unit-postgres-final"
    assert instance["manage_master_user_password"] is True
    assert instance["publicly_accessible"] is False
    assert instance["storage_encrypted"] is True
    group = one(doc, "aws_db_parameter_group")
    assert group["family"] == "postgres17"
    assert group["name_prefix"] == "pcp-unit-postgres-postgres17-"
    assert "PostgreSQL" in group["description"]
    assert {p["name"]: p["value"] for p in group["parameter"]} == {
        "rds.force_ssl": "1",
        "password_encryption": "scram-sha-256",
        "log_min_duration_statement": "1000",
        "log_connections": "1",
        "log_disconnections": "1",
    }
    sg = one(doc, "aws_security_group")
    assert sg["name"] == "pcp-unit-postgres"
    assert sg["description"] == "RDS PostgreSQL: 5432 from granted security groups only"
    subnets = one(doc, "aws_db_subnet_group")
    assert subnets["name"] == "pcp-unit-postgres"
    assert "PostgreSQL" in subnets["description"]


def test_postgres_log_exports_each_have_a_retained_encrypted_log_group(
    unit_stack: UnitStack,
) -> None:
    _postgres(unit_stack, log_retention_days=14)
    doc = unit_stack.synth()
    instance = one(doc, "aws_db_instance")
    assert instance["enabled_cloudwatch_logs_exports"] == ["postgresql", "upgrade"]
    groups = {g["name"]: (k, g) for k, g in resources(doc, "aws_cloudwatch_log_group").items()}
    (key_id,) = resources(doc, "aws_kms_key")
    for kind in ("postgresql", "upgrade"):
        logical, group = groups[f"/aws/rds/instance/pcp-unit-postgres/{kind}"]
        assert group["retention_in_days"] == 14
        assert group["kms_key_id"] == f"${{aws_kms_key.{key_id}.arn}}"
        assert f"aws_cloudwatch_log_group.{logical}" in instance["depends_on"]


def test_postgres_major_version_sets_the_family(unit_stack: UnitStack) -> None:
    _postgres(unit_stack, engine_version="16")
    doc = unit_stack.synth()
    assert one(doc, "aws_db_instance")["engine_version"] == "16"
    group = one(doc, "aws_db_parameter_group")
    assert (group["family"], group["name_prefix"]) == (
        "postgres16",
        "pcp-unit-postgres-postgres16-",
    )


def test_postgres_exposes_where_and_how_to_connect(unit_stack: UnitStack) -> None:
    from constructs_lib.options import DatabaseEngine

    db = _postgres(unit_stack, database_name="metabase")
    assert db.engine is DatabaseEngine.POSTGRES
    assert db.port == 5432
    assert db.database_name == "metabase"
    from cdktf import TerraformOutput

    TerraformOutput(unit_stack.stack, "endpoint", value=db.endpoint_address)
    TerraformOutput(unit_stack.stack, "master", value=db.master_secret_arn)
    doc = unit_stack.synth()
    (instance_id,) = resources(doc, "aws_db_instance")
    assert doc["output"]["endpoint"]["value"] == f"${{aws_db_instance.{instance_id}.address}}"
    assert doc["output"]["master"]["value"] == (
        f"${{aws_db_instance.{instance_id}.master_user_secret[0].secret_arn}}"
    )


def test_postgres_admits_granted_peers_on_5432(unit_stack: UnitStack) -> None:
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    db = _postgres(unit_stack)
    peer = SecurityGroup(unit_stack.stack, "peer", vpc_id="vpc-1", description="peer")
    db.allow_from(peer, description="peer to PostgreSQL")
    doc = unit_stack.synth()
    (ingress,) = resources(doc, "aws_vpc_security_group_ingress_rule").values()
    (egress,) = [
        r
        for r in resources(doc, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == "${aws_security_group.peer.id}"
    ]
    assert (ingress["from_port"], ingress["to_port"]) == (5432, 5432)
    assert (egress["from_port"], egress["to_port"]) == (5432, 5432)


def test_postgres_max_connections_follows_the_rds_default(
    unit_stack: UnitStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from constructs_lib import database

    micro = _postgres(unit_stack)
    assert micro.max_connections == 1024**3 // 9_531_392 == 112
    (connections, _memory) = micro.alarms()
    assert connections.metric[2] == {"DBInstanceIdentifier": "pcp-unit-postgres"}
    assert connections.watch.threshold == int(112 * 0.8)
    assert "postgresql" in _memory.description
    monkeypatch.setitem(database.MEMORY_GIB, "db.x.huge", 256)
    huge = _postgres(new_unit_stack(), instance_class="db.x.huge")
    assert huge.max_connections == 5000  # LEAST(..., 5000)


def test_mysql_only_helpers_refuse_postgres(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError

    db = _postgres(unit_stack)
    with pytest.raises(ConfigError, match=r"^unit/db\.settings\.engine: got postgres, "):
        db.connection_environment(ca_bundle="/ca.pem")
    with pytest.raises(ConfigError, match=r"rotation_target is MySQL's; PostgreSQL logins"):
        db.rotation_target(ca_bundle="/ca.pem")


def test_mysql_stays_mysql(unit_stack: UnitStack) -> None:
    from constructs_lib.options import DatabaseEngine

    db = unit_stack.database()
    assert (db.engine, db.port, db.identifier) == (DatabaseEngine.MYSQL, 3306, "pcp-unit-mysql")
    assert db.max_connections == 1024**3 // 12_582_880
    assert set(db.connection_environment(ca_bundle="/ca.pem")) == {
        "DB_HOST", "DB_PORT", "DB_NAME", "DB_TLS", "DB_TLS_CA",
    }  # fmt: skip
    assert db.rotation_target(ca_bundle="/ca.pem").kind == "mysql"
    doc = unit_stack.synth()
    instance = one(doc, "aws_db_instance")
    assert (instance["engine"], instance["engine_version"]) == ("mysql", "8.4")
    assert instance["enabled_cloudwatch_logs_exports"] == ["error", "slowquery"]
    group = one(doc, "aws_db_parameter_group")
    assert (group["family"], group["name_prefix"]) == ("mysql8.4", "pcp-unit-mysql-mysql8-4-")
    assert group["description"] == "utf8mb4, TLS-only connections, slow query log"
    assert {p["name"]: p["value"] for p in group["parameter"]}["require_secure_transport"] == "1"
    assert one(doc, "aws_security_group")["description"] == (
        "RDS MySQL: 3306 from granted security groups only"
    )
    assert one(doc, "aws_db_subnet_group")["description"] == (
        "Private subnets of the platform database"
    )
    groups = resources(doc, "aws_cloudwatch_log_group").values()
    assert sorted(g["name"] for g in groups if g["name"].startswith("/aws/rds/")) == [
        "/aws/rds/instance/pcp-unit-mysql/error",
        "/aws/rds/instance/pcp-unit-mysql/slowquery",
    ]


def _mariadb(unit_stack: UnitStack, **settings: Any) -> Database:
    from constructs_lib.options import DatabaseEngine

    return _database(unit_stack, engine=DatabaseEngine.MARIADB, **settings)


def test_mariadb_instance_parameters_and_names(unit_stack: UnitStack) -> None:
    from constructs_lib.options import DatabaseEngine

    db = _mariadb(unit_stack)
    assert (db.engine, db.port) == (DatabaseEngine.MARIADB, 3306)
    doc = unit_stack.synth()
    instance = one(doc, "aws_db_instance")
    assert (instance["engine"], instance["engine_version"]) == ("mariadb", "11.4")
    assert instance["identifier"] == db.identifier == "pcp-unit-mariadb"
    assert instance["final_snapshot_identifier"] == "pcp-unit-mariadb-final"
    assert instance["manage_master_user_password"] is True
    assert instance["publicly_accessible"] is False
    assert instance["storage_encrypted"] is True
    group = one(doc, "aws_db_parameter_group")
    assert group["family"] == "mariadb11.4"
    assert group["name_prefix"] == "pcp-unit-mariadb-mariadb11-4-"
    assert group["description"] == "MariaDB: utf8mb4, TLS-only connections, slow query log"
    assert {p["name"]: p["value"] for p in group["parameter"]} == {
        "character_set_server": "utf8mb4",
        "collation_server": "utf8mb4_unicode_ci",
        "require_secure_transport": "1",
        "slow_query_log": "1",
        "long_query_time": "1",
        "log_output": "FILE",
    }
    sg = one(doc, "aws_security_group")
    assert sg["name"] == "pcp-unit-mariadb"
    assert sg["description"] == "RDS MariaDB: 3306 from granted security groups only"
    subnets = one(doc, "aws_db_subnet_group")
    assert subnets["name"] == "pcp-unit-mariadb"
    assert subnets["description"] == "Private subnets of the MariaDB database"


def test_mariadb_log_exports_each_have_a_retained_encrypted_log_group(
    unit_stack: UnitStack,
) -> None:
    _mariadb(unit_stack, log_retention_days=14)
    doc = unit_stack.synth()
    instance = one(doc, "aws_db_instance")
    assert instance["enabled_cloudwatch_logs_exports"] == ["error", "slowquery"]
    groups = {g["name"]: (k, g) for k, g in resources(doc, "aws_cloudwatch_log_group").items()}
    assert sorted(n for n in groups if n.startswith("/aws/rds/")) == [
        "/aws/rds/instance/pcp-unit-mariadb/error",
        "/aws/rds/instance/pcp-unit-mariadb/slowquery",
    ]
    (key_id,) = resources(doc, "aws_kms_key")
    for kind in ("error", "slowquery"):
        logical, group = groups[f"/aws/rds/instance/pcp-unit-mariadb/{kind}"]
        assert group["retention_in_days"] == 14
        assert group["kms_key_id"] == f"${{aws_kms_key.{key_id}.arn}}"
        assert f"aws_cloudwatch_log_group.{logical}" in instance["depends_on"]


def test_mariadb_major_version_sets_the_family(unit_stack: UnitStack) -> None:
    _mariadb(unit_stack, engine_version="10.11")
    doc = unit_stack.synth()
    assert one(doc, "aws_db_instance")["engine_version"] == "10.11"
    group = one(doc, "aws_db_parameter_group")
    assert (group["family"], group["name_prefix"]) == (
        "mariadb10.11",
        "pcp-unit-mariadb-mariadb10-11-",
    )


def test_mariadb_admits_granted_peers_on_3306(unit_stack: UnitStack) -> None:
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    db = _mariadb(unit_stack)
    peer = SecurityGroup(unit_stack.stack, "peer", vpc_id="vpc-1", description="peer")
    db.allow_from(peer, description="peer to MariaDB")
    doc = unit_stack.synth()
    (ingress,) = resources(doc, "aws_vpc_security_group_ingress_rule").values()
    assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (3306, 3306, "tcp")


def test_mariadb_max_connections_follows_the_rds_default(unit_stack: UnitStack) -> None:
    db = _mariadb(unit_stack, instance_class="db.t4g.small")
    assert db.max_connections == 2 * 1024**3 // 12_582_880 == 170
    (connections, memory) = db.alarms()
    assert connections.metric[2] == {"DBInstanceIdentifier": "pcp-unit-mariadb"}
    assert connections.watch.threshold == int(170 * 0.8)
    assert "slow query log" in memory.description


def test_mariadb_clients_get_the_connection_environment_but_no_rotation(
    unit_stack: UnitStack,
) -> None:
    from constructs_lib.errors import ConfigError

    db = _mariadb(unit_stack, database_name="pi_repo")
    env = db.connection_environment(ca_bundle="/ca.pem")
    assert {k: v for k, v in env.items() if k != "DB_HOST"} == {
        "DB_PORT": "3306", "DB_NAME": "pi_repo", "DB_TLS": "verify", "DB_TLS_CA": "/ca.pem",
    }  # fmt: skip
    with pytest.raises(
        ConfigError,
        match=r"^unit/db\.settings\.engine: got mariadb, rotation_target is MySQL's; MariaDB "
        r"logins are not rotated",
    ):
        db.rotation_target(ca_bundle="/ca.pem")


def test_the_default_versions_of_the_engines() -> None:
    from constructs_lib.options import DatabaseEngine

    assert {e: e.default_version for e in DatabaseEngine} == {
        DatabaseEngine.MYSQL: "8.4",
        DatabaseEngine.POSTGRES: "17",
        DatabaseEngine.MARIADB: "11.4",
    }
    assert [e for e in DatabaseEngine if e.speaks_mysql] == [
        DatabaseEngine.MYSQL,
        DatabaseEngine.MARIADB,
    ]


def test_an_applications_parameters_are_added_for_the_next_reboot(unit_stack: UnitStack) -> None:
    from constructs_lib.options import DatabaseEngine

    _database(
        unit_stack,
        engine=DatabaseEngine.MARIADB,
        parameters={"lower_case_table_names": "1", "sql_mode": "NO_AUTO_VALUE_ON_ZERO"},
    )
    group = one(unit_stack.synth(), "aws_db_parameter_group")
    added = {p["name"]: p for p in group["parameter"] if p.get("apply_method")}
    assert added == {
        "lower_case_table_names": {
            "name": "lower_case_table_names",
            "value": "1",
            "apply_method": "pending-reboot",
        },
        "sql_mode": {
            "name": "sql_mode",
            "value": "NO_AUTO_VALUE_ON_ZERO",
            "apply_method": "pending-reboot",
        },
    }
    names = [p["name"] for p in group["parameter"]]
    assert "require_secure_transport" in names  # the construct's own stay


def test_an_application_may_not_override_the_constructs_parameters(
    unit_stack: UnitStack,
) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.options import DatabaseEngine

    with pytest.raises(
        ConfigError,
        match=r"\.settings\.parameters: got require_secure_transport, leave the construct's own",
    ):
        _database(
            unit_stack,
            engine=DatabaseEngine.MARIADB,
            parameters={"require_secure_transport": "0"},
        )


@pytest.mark.parametrize(
    ("engine", "parameter"),
    [
        ("MARIADB", "require_secure_transport"),
        ("POSTGRES", "rds.force_ssl"),
        ("MYSQL", "require_secure_transport"),
    ],
)
def test_a_database_that_only_offers_tls_admits_plaintext_explicitly(
    unit_stack: UnitStack, engine: str, parameter: str
) -> None:
    from constructs_lib.options import DatabaseEngine, DatabaseTransport

    db = _database(
        unit_stack, engine=DatabaseEngine[engine], transport=DatabaseTransport.TLS_OFFERED
    )
    assert db.transport is DatabaseTransport.TLS_OFFERED
    group = one(unit_stack.synth(), "aws_db_parameter_group")
    params = {p["name"]: p["value"] for p in group["parameter"]}
    assert params[parameter] == "0"
    # Switching transport updates the group in place (a dynamic parameter, applied at once):
    # a new description would replace the group, and a new group waits for a reboot.
    required = _database(new_unit_stack(), engine=DatabaseEngine[engine])
    assert group["description"] == required.parameter_group.description_input


def test_tls_is_required_unless_asked_otherwise(unit_stack: UnitStack) -> None:
    from constructs_lib.options import DatabaseTransport

    db = _database(unit_stack)
    assert db.transport is DatabaseTransport.TLS_REQUIRED
    group = one(unit_stack.synth(), "aws_db_parameter_group")
    params = {p["name"]: p["value"] for p in group["parameter"]}
    assert params["require_secure_transport"] == "1"
