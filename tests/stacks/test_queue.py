"""Queue construct: ElastiCache encrypted, private, RBAC-protected; prod fails over."""

from __future__ import annotations

import pytest

from tests.support import EnvStack, Synth, one, resources


def test_prod_queue_is_a_multi_az_replication_group_with_failover(synth: Synth) -> None:
    prod = synth.stack("prod")
    assert resources(prod, "aws_elasticache_serverless_cache") == {}
    group = one(prod, "aws_elasticache_replication_group")
    assert group["num_cache_clusters"] == 3
    assert group["automatic_failover_enabled"] is True
    assert group["multi_az_enabled"] is True
    assert group["at_rest_encryption_enabled"] == "true"
    assert group["transit_encryption_enabled"] is True
    assert group["transit_encryption_mode"] == "required"
    assert group["kms_key_id"].startswith("${aws_kms_key.")
    assert len(group["user_group_ids"]) == 1
    subnets = one(prod, "aws_elasticache_subnet_group")["subnet_ids"]
    assert len(subnets) == 3


@pytest.mark.parametrize("name", ["dev", "test", "stage"])
def test_non_prod_queue_is_serverless(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    assert resources(stack, "aws_elasticache_replication_group") == {}
    cache = one(stack, "aws_elasticache_serverless_cache")
    assert cache["engine"] == "valkey"
    assert cache["kms_key_id"].startswith("${aws_kms_key.")
    assert len(cache["subnet_ids"]) == 2
    assert all("private" in s for s in cache["subnet_ids"])
    assert cache["user_group_id"].startswith("${aws_elasticache_user_group.")


def test_rbac_disables_default_user_and_keeps_the_password_in_secrets_manager(
    env_stack: EnvStack,
) -> None:
    _, stack = env_stack
    users = {u["user_name"]: u for u in resources(stack, "aws_elasticache_user").values()}
    assert set(users) == {"default", "app"}
    assert users["default"]["access_string"].startswith("off")
    app = users["app"]
    assert "-@dangerous" in app["access_string"]
    (password,) = app["authentication_mode"]["passwords"]
    assert password.startswith("${jsondecode(aws_secretsmanager_secret_version.")
    version_id = password.split("aws_secretsmanager_secret_version.")[1].split(".")[0]
    version = resources(stack, "aws_secretsmanager_secret_version")[version_id]
    assert version["lifecycle"] == {"ignore_changes": ["secret_string"]}
    assert "data.aws_secretsmanager_random_password." in version["secret_string"]


def test_queue_security_group_has_no_open_rules(env_stack: EnvStack) -> None:
    name, stack = env_stack
    groups = {g["name"]: g for g in resources(stack, "aws_security_group").values()}
    sg = groups[f"pcp-{name}-queue"]
    assert sg.get("ingress", []) == []
    assert sg.get("egress", []) == []
