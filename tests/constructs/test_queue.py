"""Queue construct: its three modes on a unit stack, above all what a SHARDED queue needs
from its clients (a cluster-aware client allowed CLUSTER SLOTS) and gives its operators
(an alarm set per node of every shard)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from apps.common import contract
from apps.common.contract import EnvVar
from tests.support import NAMING, ONE_AZ_NETWORK, UnitStack, cache_node_ids, one, resources

if TYPE_CHECKING:
    from constructs_lib.queue import Queue


def _queue(unit_stack: UnitStack, *, one_az: bool = False, **settings: Any) -> Queue:
    from constructs_lib.queue import Queue, QueueProps, QueueSettings

    props = QueueProps(
        naming=NAMING,
        network=unit_stack.network(ONE_AZ_NETWORK) if one_az else unit_stack.network(),
        key=unit_stack.key(),
        app_access_string=contract.queue_access_string(),
        settings=QueueSettings(**settings),
    )
    return Queue(unit_stack.stack, "queue", props=props)


def _sharded(unit_stack: UnitStack, **settings: Any) -> Queue:
    from constructs_lib.options import QueueMode

    return _queue(unit_stack, mode=QueueMode.SHARDED, **settings)


def _app_user(doc: dict[str, Any]) -> dict[str, Any]:
    users = {u["user_name"]: u for u in resources(doc, "aws_elasticache_user").values()}
    return users["app"]


def test_sharded_queue_is_a_cluster_mode_group_with_a_replica_per_other_az(
    unit_stack: UnitStack,
) -> None:
    from cdktf import TerraformOutput

    queue = _sharded(unit_stack, shards=3)
    TerraformOutput(unit_stack.stack, "url", value=queue.url)
    doc = unit_stack.synth()
    group = one(doc, "aws_elasticache_replication_group")
    assert group["cluster_mode"] == "enabled"
    assert group["parameter_group_name"] == "default.valkey8.cluster.on"
    assert (group["num_node_groups"], group["replicas_per_node_group"]) == (3, 1)
    assert group["automatic_failover_enabled"] is True
    assert group["multi_az_enabled"] is True
    # The non-sharded topology's arguments conflict with cluster mode in the provider.
    assert "num_cache_clusters" not in group
    assert "preferred_cache_cluster_azs" not in group
    assert group["transit_encryption_mode"] == "required"
    assert group["at_rest_encryption_enabled"] == "true"
    (group_id,) = resources(doc, "aws_elasticache_replication_group")
    # The configuration endpoint: in cluster mode the primary endpoint is empty.
    assert doc["output"]["url"]["value"] == (
        f"rediss://${{aws_elasticache_replication_group.{group_id}"
        ".configuration_endpoint_address}:6379"
    )


def test_sharded_redis_queue_uses_the_redis_cluster_parameter_group(
    unit_stack: UnitStack,
) -> None:
    from constructs_lib.options import QueueEngine

    _sharded(unit_stack, engine=QueueEngine.REDIS)
    group = one(unit_stack.synth(), "aws_elasticache_replication_group")
    assert (group["engine"], group["engine_version"]) == ("redis", "7.1")
    assert group["parameter_group_name"] == "default.redis7.cluster.on"


def test_sharded_queue_in_one_az_fails_over_within_it(unit_stack: UnitStack) -> None:
    """One AZ: no replica (one node per AZ), so no Multi-AZ; cluster mode still needs
    automatic failover on."""
    _sharded(unit_stack, one_az=True)
    group = one(unit_stack.synth(), "aws_elasticache_replication_group")
    assert (group["num_node_groups"], group["replicas_per_node_group"]) == (1, 0)
    assert group["automatic_failover_enabled"] is True
    assert group["multi_az_enabled"] is False


def test_sharded_queue_lets_its_clients_learn_the_topology(unit_stack: UnitStack) -> None:
    queue = _sharded(unit_stack)
    access = _app_user(unit_stack.synth())["access_string"]
    assert access == contract.queue_access_string(cluster_client=True)
    assert access.split()[-1] == contract.CLUSTER_CLIENT_ACL == "+cluster|slots"
    env = queue.connection_environment(ca_bundle="/ca.pem")
    assert env == {
        EnvVar.REDIS_URL: queue.url,
        EnvVar.REDIS_TLS_CA: "/ca.pem",
        EnvVar.REDIS_CLUSTER: "on",
    }
    assert queue.cluster_client is True


def test_sharded_queue_does_not_grant_cluster_slots_twice(unit_stack: UnitStack) -> None:
    from constructs_lib.options import QueueMode
    from constructs_lib.queue import Queue, QueueProps, QueueSettings

    props = QueueProps(
        naming=NAMING,
        network=unit_stack.network(),
        key=unit_stack.key(),
        app_access_string=contract.queue_access_string(cluster_client=True),
        settings=QueueSettings(mode=QueueMode.SHARDED),
    )
    Queue(unit_stack.stack, "queue", props=props)
    access = _app_user(unit_stack.synth())["access_string"]
    assert access == contract.queue_access_string(cluster_client=True)


@pytest.mark.parametrize("mode", ["SERVERLESS", "REPLICATION_GROUP"])
def test_single_endpoint_queues_keep_the_plain_client_and_access_string(
    unit_stack: UnitStack, mode: str
) -> None:
    from constructs_lib.options import QueueMode

    queue = _queue(unit_stack, mode=QueueMode[mode])
    access = _app_user(unit_stack.synth())["access_string"]
    assert access == contract.queue_access_string()
    assert "cluster" not in access
    assert EnvVar.REDIS_CLUSTER not in queue.connection_environment(ca_bundle="/ca.pem")
    assert queue.cluster_client is False


def test_sharded_queue_alarms_watch_every_node_of_every_shard(unit_stack: UnitStack) -> None:
    from constructs_lib.queue import NODE_ALARMS

    queue = _sharded(unit_stack, shards=3)
    nodes = queue.node_ids()
    assert nodes == {
        f"{s}-{n}": f"pcp-unit-queue-{s:04d}-{n:03d}" for s in (1, 2, 3) for n in (1, 2)
    }
    group = one(unit_stack.synth(), "aws_elasticache_replication_group")
    assert set(nodes.values()) == cache_node_ids(group)  # what the stack tests read
    alarms = queue.alarms()
    watched = {(a.metric[2]["CacheClusterId"], a.metric[1]) for a in alarms}
    assert watched == {(node, metric) for node in nodes.values() for _, metric, *_ in NODE_ALARMS}
    assert {a.key for a in alarms} == {
        f"queue-{index}-{kind}" for index in nodes for kind, *_ in NODE_ALARMS
    }


def test_replication_group_node_ids_keep_their_names(unit_stack: UnitStack) -> None:
    """The alarm names of a replication group's nodes predate SHARDED: unchanged."""
    from constructs_lib.options import QueueMode

    queue = _queue(unit_stack, mode=QueueMode.REPLICATION_GROUP)
    assert queue.node_ids() == {"1": "pcp-unit-queue-001", "2": "pcp-unit-queue-002"}
    assert _queue_keys(queue) >= {"queue-1-memory", "queue-2-evictions"}


def test_serverless_queue_has_no_nodes(unit_stack: UnitStack) -> None:
    queue = _queue(unit_stack)
    assert queue.node_ids() == {}
    assert _queue_keys(queue) == {"queue-throttled", "queue-storage", "queue-ecpu"}


def _queue_keys(queue: Queue) -> set[str]:
    return {a.key for a in queue.alarms()}
