"""Queue construct: ElastiCache encrypted, private, RBAC-protected; prod fails over."""

from __future__ import annotations

from typing import Any

import pytest

from apps.common import contract
from apps.common.contract import EnvVar
from tests.support import (
    EnvStack,
    Synth,
    cache_node_ids,
    containers,
    one,
    resources,
)


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


# --- a sharded queue ------------------------------------------------------------------------
# No shipped environment shards its queue: ``stage_variant`` (conftest) is ``stage`` with
# ``QueueMode.SHARDED`` (3 shards), its names unchanged, and these tests check what the mode
# switches on.


@pytest.fixture(scope="module")
def sharded(stage_variant: dict[str, Any]) -> dict[str, Any]:
    return stage_variant


def test_sharded_queue_turns_on_the_cluster_client_in_both_services(
    sharded: dict[str, Any], synth: Synth
) -> None:
    """The services' environment is stage's plus ``REDIS_CLUSTER=on``, with the cluster's
    configuration endpoint as the URL: what the cluster-client app tests run with
    (``tests/apps/test_apps_cluster_client.py``: a task environment plus that variable)."""
    (group_id,) = resources(sharded, "aws_elasticache_replication_group")
    stage = containers(synth.stack("stage"))
    for name, container in containers(sharded).items():
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env.pop(EnvVar.REDIS_CLUSTER) == "on", name
        assert env.pop(EnvVar.REDIS_URL) == (
            f"rediss://${{aws_elasticache_replication_group.{group_id}"
            ".configuration_endpoint_address}:6379"
        )
        expected = {e["name"]: e["value"] for e in stage[name]["environment"]}
        expected.pop(EnvVar.REDIS_URL)
        assert env == expected, name


def test_sharded_queue_user_may_learn_the_topology(sharded: dict[str, Any]) -> None:
    users = {u["user_name"]: u for u in resources(sharded, "aws_elasticache_user").values()}
    assert users["app"]["access_string"] == contract.queue_access_string(
        contract.QUEUE_STREAM, cluster_client=True
    )
    group = one(sharded, "aws_elasticache_replication_group")
    assert (group["cluster_mode"], group["num_node_groups"]) == ("enabled", 3)
    assert group["replicas_per_node_group"] == 1  # stage has two AZs: one replica per shard


def test_every_node_of_every_shard_is_alarmed(sharded: dict[str, Any]) -> None:
    group = one(sharded, "aws_elasticache_replication_group")
    nodes = cache_node_ids(group)
    assert len(nodes) == 6
    by_node: dict[str, set[str]] = {}
    for alarm in resources(sharded, "aws_cloudwatch_metric_alarm").values():
        node = (alarm.get("dimensions") or {}).get("CacheClusterId")
        if node is not None:
            by_node.setdefault(node, set()).add(alarm["alarm_name"])
    assert set(by_node) == nodes
    # stage is not production: the breakage alarms (evictions, memory), not capacity ones.
    assert by_node["pcp-stage-queue-0003-002"] == {
        "pcp-stage-queue-3-2-evictions",
        "pcp-stage-queue-3-2-memory",
    }
