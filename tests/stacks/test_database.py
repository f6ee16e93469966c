"""Database construct: RDS MySQL 8.0, private, encrypted, no password in code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from environments import ENVIRONMENTS
from tests.support import Synth, one, resources


def test_prod_database_is_multi_az_and_protected(synth: Synth) -> None:
    db = one(synth.stack("prod"), "aws_db_instance")
    assert db["multi_az"] is True
    assert db["deletion_protection"] is True
    assert db["backup_retention_period"] >= 7
    assert db["skip_final_snapshot"] is False
    assert db["final_snapshot_identifier"] == "pcp-prod-mysql-final"
    assert db["performance_insights_enabled"] is True


@pytest.mark.parametrize("name", ["dev", "test", "stage"])
def test_non_prod_database_is_single_az_and_disposable(synth: Synth, name: str) -> None:
    db = one(synth.stack(name), "aws_db_instance")
    assert db["multi_az"] is False
    assert db["deletion_protection"] is False
    assert db["skip_final_snapshot"] is True
    assert "final_snapshot_identifier" not in db


def test_database_is_private_encrypted_and_rds_managed(
    env_stack: tuple[str, dict[str, Any]],
) -> None:
    name, stack = env_stack
    db = one(stack, "aws_db_instance")
    assert db["engine"] == "mysql"
    assert db["engine_version"] == "8.4"
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"].startswith("${aws_kms_key.")
    assert db["manage_master_user_password"] is True
    assert db["master_user_secret_kms_key_id"].startswith("${aws_kms_key.")
    assert "password" not in db
    assert db["backup_retention_period"] == ENVIRONMENTS[name].database.backup_retention_days
    assert sorted(db["enabled_cloudwatch_logs_exports"]) == ["error", "slowquery"]
    subnet_group = one(stack, "aws_db_subnet_group")
    assert len(subnet_group["subnet_ids"]) == len(ENVIRONMENTS[name].network.availability_zones)
    assert all("private" in s for s in subnet_group["subnet_ids"])


def test_parameter_group_forces_utf8mb4_and_tls(env_stack: tuple[str, dict[str, Any]]) -> None:
    _, stack = env_stack
    group = one(stack, "aws_db_parameter_group")
    assert group["family"] == "mysql8.4"
    params = {p["name"]: p["value"] for p in group["parameter"]}
    assert params["character_set_server"] == "utf8mb4"
    assert params["require_secure_transport"] == "1"


def test_exported_logs_have_encrypted_groups_with_retention(
    env_stack: tuple[str, dict[str, Any]],
) -> None:
    name, stack = env_stack
    groups = {g["name"]: g for g in resources(stack, "aws_cloudwatch_log_group").values()}
    for kind in ("error", "slowquery"):
        group = groups[f"/aws/rds/instance/pcp-{name}-mysql/{kind}"]
        assert group["retention_in_days"] == ENVIRONMENTS[name].database.log_retention_days
        assert group["kms_key_id"].startswith("${aws_kms_key.")


def test_database_security_group_is_closed_until_granted(
    env_stack: tuple[str, dict[str, Any]],
) -> None:
    _, stack = env_stack
    groups = {g["name"]: g for g in resources(stack, "aws_security_group").values()}
    sg = groups[f"pcp-{env_stack[0]}-mysql"]
    assert "ingress" not in sg or sg["ingress"] == []
    rules = resources(stack, "aws_vpc_security_group_ingress_rule").values()
    cidr_rules = [r for r in rules if "cidr_ipv4" in r or "cidr_ipv6" in r]
    # No rule anywhere in the stack opens the database or queue to an address range.
    assert all(r.get("from_port") not in (3306, 6379) for r in cidr_rules)


def test_allow_from_adds_the_matching_ingress_and_egress_pair() -> None:
    from cdktf import TerraformStack, Testing
    from cdktf_cdktf_provider_aws.provider import AwsProvider
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    from constructs_lib.database import Database, DatabaseProps
    from constructs_lib.naming import Naming

    stack = TerraformStack(Testing.app(), "unit")
    AwsProvider(stack, "aws", region="eu-central-1")
    db = Database(
        stack,
        "db",
        props=DatabaseProps(
            naming=Naming("unit"),
            account_id="123456789012",
            vpc_id="vpc-1",
            subnet_ids=["subnet-a", "subnet-b"],
            kms_key_arn="arn:aws:kms:eu-central-1:123456789012:key/k",
        ),
    )
    peer = SecurityGroup(stack, "peer", vpc_id="vpc-1", description="peer")
    db.allow_from(peer, description="peer to MySQL")
    doc = json.loads(Testing.synth(stack))
    (ingress,) = doc["resource"]["aws_vpc_security_group_ingress_rule"].values()
    (egress,) = doc["resource"]["aws_vpc_security_group_egress_rule"].values()
    assert ingress["security_group_id"].startswith("${aws_security_group.db_security-group")
    assert ingress["referenced_security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["referenced_security_group_id"] == ingress["security_group_id"]
    assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (3306, 3306, "tcp")
    assert (egress["from_port"], egress["to_port"]) == (3306, 3306)


def test_database_construct_needs_two_subnets() -> None:
    from cdktf import TerraformStack, Testing

    from constructs_lib.database import Database, DatabaseProps
    from constructs_lib.errors import ConfigError
    from constructs_lib.naming import Naming

    stack = TerraformStack(Testing.app(), "unit")
    props = DatabaseProps(
        naming=Naming("unit"),
        account_id="123456789012",
        vpc_id="vpc-1",
        subnet_ids=["subnet-a"],
        kms_key_arn="arn:aws:kms:eu-central-1:123456789012:key/k",
    )
    with pytest.raises(
        ConfigError, match=r"^unit/db\.subnet_ids: got 1, give subnets in 2 or more AZs$"
    ):
        Database(stack, "db", props=props)
