"""DatabaseOwner construct: the PostgreSQL and MariaDB owner functions, their access and their
invocation, on unit stacks (one synthesis per engine shared by the module)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import NAMING, ROOT, UnitStack, new_unit_stack, one, resources

if TYPE_CHECKING:
    from constructs_lib.database import Database
    from constructs_lib.database_owner import DatabaseOwner
    from constructs_lib.secrets import GeneratedCredentials


@dataclass(frozen=True)
class Built:
    unit: UnitStack
    database: Database
    credentials: GeneratedCredentials
    owner: DatabaseOwner
    doc: dict[str, Any]

    def ref(self, resource: Any, attr: str) -> str:
        type_ = resource.terraform_resource_type
        return f"${{{type_}.{self.unit.stack.get_logical_id(resource)}.{attr}}}"


def _postgres(unit: UnitStack, database_name: str = "metabase") -> Database:
    from constructs_lib.database import Database, DatabaseProps, DatabaseSettings
    from constructs_lib.options import DatabaseEngine

    settings = DatabaseSettings(engine=DatabaseEngine.POSTGRES, database_name=database_name)
    props = DatabaseProps(naming=NAMING, network=unit.network(), key=unit.key(), settings=settings)
    return Database(unit.stack, "db", props=props)


def _credentials(unit: UnitStack, username: str = "metabase") -> GeneratedCredentials:
    from constructs_lib.secrets import GeneratedCredentials, GeneratedCredentialsProps

    props = GeneratedCredentialsProps(
        name="/pcp/unit/postgres/metabase",
        username=username,
        key=unit.key(),
        description="Metabase's own PostgreSQL login",
    )
    return GeneratedCredentials(unit.stack, "metabase-credentials", props=props)


@pytest.fixture(scope="module")
def built() -> Built:
    from constructs_lib.database_owner import DatabaseOwner, DatabaseOwnerProps

    unit = new_unit_stack()
    database = _postgres(unit)
    credentials = _credentials(unit)
    props = DatabaseOwnerProps(
        naming=NAMING,
        project_root=ROOT,
        database=database,
        credentials=credentials,
        log_retention_days=7,
    )
    owner = DatabaseOwner(unit.stack, "owner", props=props)
    return Built(unit, database, credentials, owner, unit.synth())


def test_function_runs_the_owner_handler_in_the_private_subnets(built: Built) -> None:
    function = one(built.doc, "aws_lambda_function")
    assert function["function_name"] == "pcp-unit-pg-owner"
    assert function["handler"] == "apps.pgowner.handler.handler"
    private = sorted(k for k in resources(built.doc, "aws_subnet") if "private" in k)
    assert sorted(function["vpc_config"]["subnet_ids"]) == [
        f"${{aws_subnet.{k}.id}}" for k in private
    ]
    assert function["vpc_config"]["security_group_ids"] == [
        built.ref(built.owner.security_group, "id")
    ]
    assert function["kms_key_arn"] == built.ref(built.database.key.key, "arn")
    assert function["logging_config"]["log_group"] == built.ref(built.owner.log_group, "name")
    assert (
        built.doc["resource"]["aws_cloudwatch_log_group"][
            built.unit.stack.get_logical_id(built.owner.log_group)
        ]["retention_in_days"]
        == 7
    )


def test_function_environment_names_the_database_and_both_secrets(built: Built) -> None:
    variables = one(built.doc, "aws_lambda_function")["environment"]["variables"]
    instance = built.database.instance
    assert variables == {
        "MASTER_SECRET_ARN": built.ref(instance, "master_user_secret[0].secret_arn"),
        "APP_SECRET_ARN": built.ref(built.credentials.secret, "arn"),
        "DB_HOST": built.ref(instance, "address"),
        "DB_PORT": "5432",
        "DB_NAME": "metabase",
        "DB_TLS_CA": "/var/task/apps/common/certs/rds-ca-bundle.pem",
    }


def test_policy_reads_exactly_the_two_secrets_and_decrypts_only_through_secrets_manager(
    built: Built,
) -> None:
    (policy,) = [
        p
        for p in resources(built.doc, "aws_iam_role_policy").values()
        if p["role"] == built.ref(built.owner.role, "id")
    ]
    assert policy["name"] == "owner"
    statements = json.loads(policy["policy"])["Statement"]
    secrets = [s for s in statements if any(a.startswith("secretsmanager:") for a in s["Action"])]
    assert secrets == [
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [
                built.ref(built.database.instance, "master_user_secret[0].secret_arn"),
                built.ref(built.credentials.secret, "arn"),
            ],
        }
    ]
    kms = [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]
    assert kms == [
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [built.ref(built.database.key.key, "arn")],
            "Condition": {
                "StringEquals": {"kms:ViaService": "secretsmanager.eu-central-1.amazonaws.com"}
            },
        }
    ]
    for statement in statements:
        assert not [a for a in statement["Action"] if "*" in a]


def test_function_is_admitted_to_the_database_on_5432_only(built: Built) -> None:
    function_sg = built.ref(built.owner.security_group, "id")
    database_sg = built.ref(built.database.security_group, "id")
    (ingress,) = resources(built.doc, "aws_vpc_security_group_ingress_rule").values()
    assert ingress["security_group_id"] == database_sg
    assert ingress["referenced_security_group_id"] == function_sg
    assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (5432, 5432, "tcp")
    egress = {
        (r["from_port"], r.get("referenced_security_group_id"), r.get("cidr_ipv4"))
        for r in resources(built.doc, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == function_sg
    }
    assert egress == {(5432, database_sg, None), (443, None, "0.0.0.0/0")}


def test_invocation_reruns_on_new_code_or_a_new_secret_value_and_waits_for_its_paths(
    built: Built,
) -> None:
    invocation = one(built.doc, "aws_lambda_invocation")
    assert built.owner.ready is built.owner.invocation
    assert invocation["function_name"] == built.ref(built.owner.function, "function_name")
    assert json.loads(invocation["input"]) == {"action": "own"}
    (state_id,) = built.doc["data"]["aws_secretsmanager_secret"]
    state = built.doc["data"]["aws_secretsmanager_secret"][state_id]
    assert state["arn"] == built.ref(built.credentials.secret, "arn")
    assert invocation["triggers"] == {
        "bundle": built.owner.bundle_sha256,
        "function": built.ref(built.owner.function, "version"),
        "secret": f"${{data.aws_secretsmanager_secret.{state_id}.last_changed_date}}",
    }
    assert one(built.doc, "aws_lambda_function")["source_code_hash"] == built.owner.bundle_sha256
    needs = set(invocation["depends_on"])
    stack = built.unit.stack
    for resource in (
        built.database.instance,
        built.credentials.version,
        *built.database.network.private_default_routes,
    ):
        assert f"{resource.terraform_resource_type}.{stack.get_logical_id(resource)}" in needs
    rules = [
        f"{type_}.{k}"
        for type_ in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")
        for k in resources(built.doc, type_)
    ]
    assert set(rules) <= needs  # the 5432 pair and the egress to AWS APIs


@pytest.fixture(scope="module")
def bundle() -> Path:
    from constructs_lib.database_owner import BUNDLE
    from constructs_lib.migration import build_bundle

    return build_bundle(ROOT, BUNDLE)


def test_bundle_holds_pg8000_and_its_pure_python_dependencies_not_the_mysql_apps(
    bundle: Path,
) -> None:
    names = zipfile.ZipFile(bundle).namelist()
    for needed in (
        "apps/pgowner/handler.py",
        "apps/common/config.py",
        "apps/common/certs/rds-ca-bundle.pem",
        "pg8000/native.py",
        "scramp/core.py",
        "asn1crypto/x509.py",
        "dateutil/parser/__init__.py",
        "six.py",
    ):
        assert needed in names
    assert [n for n in names if n.endswith(".dist-info/METADATA")] == [
        "pg8000-1.31.6.dist-info/METADATA",
        "scramp-1.5.0.dist-info/METADATA",
    ]
    assert not [n for n in names if n.startswith(("pymysql", "redis", "apps/migrate", "tests"))]
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))]


def test_bundle_imports_in_isolation(bundle: Path, tmp_path: Path) -> None:
    """The handler and pg8000 import with nothing but the bundle on the path (as in Lambda,
    whose runtime adds boto3 only)."""
    zipfile.ZipFile(bundle).extractall(tmp_path)
    probe = (
        "import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p];"
        f"sys.path.insert(0, {str(tmp_path)!r});"
        "import apps.pgowner.handler as h, pg8000, scramp, dateutil;"
        "mods = (h, pg8000, scramp, dateutil);"
        f"assert all(m.__file__.startswith({str(tmp_path)!r}) for m in mods), mods;"
        "print(h.handler.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "handler"


def test_owner_needs_a_postgres_database(unit_stack: UnitStack) -> None:
    from constructs_lib.database_owner import DatabaseOwner, DatabaseOwnerProps
    from constructs_lib.errors import ConfigError

    props = DatabaseOwnerProps(
        naming=NAMING,
        project_root=ROOT,
        database=unit_stack.database(),
        credentials=_credentials(unit_stack),
    )
    with pytest.raises(
        ConfigError, match=r"^unit/owner\.database: got a mysql database, give a PostgreSQL"
    ):
        DatabaseOwner(unit_stack.stack, "owner", props=props)


@pytest.mark.parametrize(
    ("username", "database_name", "field"),
    [
        ("Metabase", "metabase", "credentials.username"),
        ("rdsadmin", "metabase", "credentials.username"),
        ("metabase", "postgres", "database.database_name"),
        ("metabase", "meta-base", "database.database_name"),
    ],
)
def test_owner_refuses_a_role_or_database_name_the_function_would_refuse(
    unit_stack: UnitStack, username: str, database_name: str, field: str
) -> None:
    from constructs_lib.database_owner import DatabaseOwner, DatabaseOwnerProps
    from constructs_lib.errors import ConfigError

    props = DatabaseOwnerProps(
        naming=NAMING,
        project_root=ROOT,
        database=_postgres(unit_stack, database_name),
        credentials=_credentials(unit_stack, username),
    )
    with pytest.raises(ConfigError, match=rf"^unit/owner\.{field}: got '.*', use 1-63 lowercase"):
        DatabaseOwner(unit_stack.stack, "owner", props=props)


# --- MariaDB ----------------------------------------------------------------------------------


def _mariadb(unit: UnitStack, database_name: str = "pi_repo") -> Database:
    from constructs_lib.database import Database, DatabaseProps, DatabaseSettings
    from constructs_lib.options import DatabaseEngine

    settings = DatabaseSettings(engine=DatabaseEngine.MARIADB, database_name=database_name)
    props = DatabaseProps(naming=NAMING, network=unit.network(), key=unit.key(), settings=settings)
    return Database(unit.stack, "db", props=props)


@pytest.fixture(scope="module")
def built_mariadb() -> Built:
    from constructs_lib.database_owner import DatabaseOwner, DatabaseOwnerProps

    unit = new_unit_stack()
    database = _mariadb(unit)
    credentials = _credentials(unit, "pi_app")
    props = DatabaseOwnerProps(
        naming=NAMING, project_root=ROOT, database=database, credentials=credentials
    )
    owner = DatabaseOwner(unit.stack, "owner", props=props)
    return Built(unit, database, credentials, owner, unit.synth())


def test_mariadb_owner_function_runs_the_mariadb_handler_with_its_variables(
    built_mariadb: Built,
) -> None:
    built = built_mariadb
    function = one(built.doc, "aws_lambda_function")
    assert function["function_name"] == "pcp-unit-mariadb-owner"
    assert function["handler"] == "apps.mariadbowner.handler.handler"
    assert function["description"] == (
        "Creates the application's MariaDB user and database, granted to it alone"
    )
    assert function["source_code_hash"] == built.owner.bundle_sha256
    instance = built.database.instance
    assert function["environment"]["variables"] == {
        "MASTER_SECRET_ARN": built.ref(instance, "master_user_secret[0].secret_arn"),
        "APP_SECRET_ARN": built.ref(built.credentials.secret, "arn"),
        "DB_HOST": built.ref(instance, "address"),
        "DB_PORT": "3306",
        "DB_NAME": "pi_repo",
        "DB_TLS_CA": "/var/task/apps/common/certs/rds-ca-bundle.pem",
    }
    groups = {g["name"]: g for g in resources(built.doc, "aws_security_group").values()}
    assert groups["pcp-unit-mariadb-owner"]["description"] == "MariaDB database owner function"


def test_mariadb_owner_reads_the_two_secrets_and_reaches_3306_only(built_mariadb: Built) -> None:
    built = built_mariadb
    (policy,) = [
        p
        for p in resources(built.doc, "aws_iam_role_policy").values()
        if p["role"] == built.ref(built.owner.role, "id")
    ]
    statements = json.loads(policy["policy"])["Statement"]
    secrets = [s for s in statements if any(a.startswith("secretsmanager:") for a in s["Action"])]
    assert secrets == [
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [
                built.ref(built.database.instance, "master_user_secret[0].secret_arn"),
                built.ref(built.credentials.secret, "arn"),
            ],
        }
    ]
    function_sg = built.ref(built.owner.security_group, "id")
    (ingress,) = resources(built.doc, "aws_vpc_security_group_ingress_rule").values()
    assert ingress["security_group_id"] == built.ref(built.database.security_group, "id")
    assert ingress["referenced_security_group_id"] == function_sg
    assert (ingress["from_port"], ingress["to_port"]) == (3306, 3306)
    assert ingress["description"] == "database owner function to MariaDB"


def test_mariadb_owner_invocation_reruns_on_new_code_or_secret_and_waits_for_its_paths(
    built_mariadb: Built,
) -> None:
    built = built_mariadb
    invocation = one(built.doc, "aws_lambda_invocation")
    assert built.owner.ready is built.owner.invocation
    assert json.loads(invocation["input"]) == {"action": "own"}
    (state_id,) = built.doc["data"]["aws_secretsmanager_secret"]
    assert invocation["triggers"] == {
        "bundle": built.owner.bundle_sha256,
        "function": built.ref(built.owner.function, "version"),
        "secret": f"${{data.aws_secretsmanager_secret.{state_id}.last_changed_date}}",
    }
    stack = built.unit.stack
    needs = set(invocation["depends_on"])
    assert f"aws_db_instance.{stack.get_logical_id(built.database.instance)}" in needs
    rules = [
        f"{type_}.{k}"
        for type_ in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")
        for k in resources(built.doc, type_)
    ]
    assert set(rules) <= needs


@pytest.fixture(scope="module")
def mariadb_bundle() -> Path:
    from constructs_lib.database_owner import MARIADB_BUNDLE
    from constructs_lib.migration import build_bundle

    return build_bundle(ROOT, MARIADB_BUNDLE)


def test_mariadb_bundle_holds_pymysql_not_pg8000(mariadb_bundle: Path) -> None:
    names = zipfile.ZipFile(mariadb_bundle).namelist()
    for needed in (
        "apps/mariadbowner/handler.py",
        "apps/mariadbowner/owner.py",
        "apps/common/db.py",
        "apps/common/certs/rds-ca-bundle.pem",
        "pymysql/connections.py",
    ):
        assert needed in names
    assert not [
        n for n in names if n.startswith(("pg8000", "scramp", "apps/pgowner", "apps/migrate"))
    ]
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))]


def test_mariadb_bundle_imports_in_isolation(mariadb_bundle: Path, tmp_path: Path) -> None:
    zipfile.ZipFile(mariadb_bundle).extractall(tmp_path)
    probe = (
        "import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p];"
        f"sys.path.insert(0, {str(tmp_path)!r});"
        "import apps.mariadbowner.handler as h, pymysql;"
        f"assert all(m.__file__.startswith({str(tmp_path)!r}) for m in (h, pymysql));"
        "print(h.handler.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, cwd=tmp_path,
        check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "handler"


@pytest.mark.parametrize(
    ("username", "database_name", "field", "fix"),
    [
        ("Pi_app", "pi_repo", "credentials.username", "use 1-32 lowercase"),
        ("rdsadmin", "pi_repo", "credentials.username", "use 1-32 lowercase"),
        ("a" * 33, "pi_repo", "credentials.username", "use 1-32 lowercase"),
        ("pi_app", "mysql", "database.database_name", "use 1-64 lowercase"),
        ("pi_app", "pi-repo", "database.database_name", "use 1-64 lowercase"),
        ("dbadmin", "pi_repo", "credentials.username", "name the application's own login"),
    ],
)
def test_mariadb_owner_refuses_a_name_the_function_would_refuse(
    unit_stack: UnitStack, username: str, database_name: str, field: str, fix: str
) -> None:
    from constructs_lib.database_owner import DatabaseOwner, DatabaseOwnerProps
    from constructs_lib.errors import ConfigError

    props = DatabaseOwnerProps(
        naming=NAMING,
        project_root=ROOT,
        database=_mariadb(unit_stack, database_name),
        credentials=_credentials(unit_stack, username),
    )
    with pytest.raises(ConfigError, match=rf"^unit/owner\.{field}: got '.*', {fix}"):
        DatabaseOwner(unit_stack.stack, "owner", props=props)


def test_postgres_owner_refuses_the_master_user(unit_stack: UnitStack) -> None:
    from constructs_lib.database_owner import DatabaseOwner, DatabaseOwnerProps
    from constructs_lib.errors import ConfigError

    props = DatabaseOwnerProps(
        naming=NAMING,
        project_root=ROOT,
        database=_postgres(unit_stack),
        credentials=_credentials(unit_stack, "dbadmin"),
    )
    with pytest.raises(
        ConfigError, match=r"^unit/owner\.credentials\.username: got 'dbadmin', name the"
    ):
        DatabaseOwner(unit_stack.stack, "owner", props=props)
