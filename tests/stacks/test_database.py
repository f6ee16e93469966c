"""The database as each environment stack deploys it: RDS MySQL, private, encrypted, no
password in code."""

from __future__ import annotations

import pytest

from environments import ENVIRONMENTS
from tests.support import EnvStack, Synth, one, resources


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


def test_database_is_private_encrypted_and_rds_managed(env_stack: EnvStack) -> None:
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


def test_parameter_group_forces_utf8mb4_and_tls(env_stack: EnvStack) -> None:
    _, stack = env_stack
    group = one(stack, "aws_db_parameter_group")
    assert group["family"] == "mysql8.4"
    params = {p["name"]: p["value"] for p in group["parameter"]}
    assert params["character_set_server"] == "utf8mb4"
    assert params["require_secure_transport"] == "1"


def test_an_abandoned_session_ends_in_minutes_and_releases_its_locks(env_stack: EnvStack) -> None:
    """A task frozen or cut off from RDS mid-transaction keeps its row locks until the
    server ends its session: 5 idle minutes (MySQL's default is 8 hours), the same limits the
    local MariaDB of tests/apps starts with (contract.DB_SERVER_PARAMETERS)."""
    from apps.common.contract import DB_SERVER_PARAMETERS

    _, stack = env_stack
    group = one(stack, "aws_db_parameter_group")
    params = {p["name"]: p for p in group["parameter"]}
    assert {k: params[k]["value"] for k in DB_SERVER_PARAMETERS} == {
        "wait_timeout": "300",
        "innodb_lock_wait_timeout": "10",
    }
    # Dynamic parameters: applied at once (not pending-reboot).
    assert all("apply_method" not in params[k] for k in DB_SERVER_PARAMETERS)


def test_exported_logs_have_encrypted_groups_with_retention(env_stack: EnvStack) -> None:
    name, stack = env_stack
    groups = {g["name"]: g for g in resources(stack, "aws_cloudwatch_log_group").values()}
    for kind in ("error", "slowquery"):
        group = groups[f"/aws/rds/instance/pcp-{name}-mysql/{kind}"]
        assert group["retention_in_days"] == ENVIRONMENTS[name].database.log_retention_days
        assert group["kms_key_id"].startswith("${aws_kms_key.")


def test_database_security_group_is_closed_until_granted(env_stack: EnvStack) -> None:
    _, stack = env_stack
    groups = {g["name"]: g for g in resources(stack, "aws_security_group").values()}
    sg = groups[f"pcp-{env_stack[0]}-mysql"]
    assert "ingress" not in sg or sg["ingress"] == []
    rules = resources(stack, "aws_vpc_security_group_ingress_rule").values()
    cidr_rules = [r for r in rules if "cidr_ipv4" in r or "cidr_ipv6" in r]
    # No rule anywhere in the stack opens the database or queue to an address range.
    assert all(r.get("from_port") not in (3306, 6379) for r in cidr_rules)
