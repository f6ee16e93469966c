"""Security posture read from the real synthesized stacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Synth
from tools.review.model import Stack, cache_nodes, load_stacks
from tools.review.posture import posture


@pytest.fixture(scope="module")
def stacks(synth: Synth) -> dict[str, Stack]:
    return load_stacks(Path(synth.outdir))


def test_the_only_public_entry_is_cloudfront_with_waf(stacks: dict[str, Stack]) -> None:
    for name in ("dev", "prod"):
        entries = posture(stacks[name]).entry_points
        assert [(e.kind, e.construct) for e in entries] == [("CloudFront", "frontend/distribution")]
        assert "with WAF" in entries[0].detail
    assert posture(stacks["bootstrap"]).entry_points == ()


def test_ingress_matrix_names_who_reaches_whom_on_which_port(stacks: dict[str, Stack]) -> None:
    rules = {(i.source, i.target, i.port) for i in posture(stacks["prod"]).ingress}
    assert ("load-balancer/alb", "producer/service", "tcp/5080") in rules
    assert ("producer/service", "database/instance", "tcp/3306") in rules
    assert ("consumer/service", "queue/replication-group", "tcp/6379") in rules
    assert not any(i.public for i in posture(stacks["prod"]).ingress)


def test_iam_wildcards_are_flagged_and_scoped_grants_are_not(stacks: dict[str, Stack]) -> None:
    p = posture(stacks["prod"])
    flagged = {(g.principal, a) for g in p.wildcards for a in g.actions}
    assert ("consumer/execution-role", "ecr:GetAuthorizationToken") in flagged  # Resource "*"
    scoped = [g for g in p.grants if "ecr:BatchGetImage" in g.actions]
    assert scoped
    assert not any(g.wildcard for g in scoped)


def test_data_stores_show_encryption_multi_az_backups_protection_tls(
    stacks: dict[str, Stack],
) -> None:
    prod = {d.construct: d for d in posture(stacks["prod"]).data_stores}
    db = prod["database/instance"]
    assert (db.multi_az, db.deletion_protection, db.tls) == ("yes", "yes", "required")
    assert db.encryption == "KMS key/key"
    assert db.backups == "14 days"
    cache = prod["queue/replication-group"]
    assert (cache.multi_az, cache.tls) == ("yes", "required")
    dev = {d.construct: d for d in posture(stacks["dev"]).data_stores}
    assert dev["database/instance"].multi_az == "no"
    assert dev["queue/serverless"].tls.startswith("required")
    assert cache.kind.endswith("3 x cache.t4g.small")


@pytest.mark.parametrize(
    ("attrs", "shown"),
    [
        ({"num_cache_clusters": 3}, "3"),
        ({"num_node_groups": 2, "replicas_per_node_group": 2}, "2 shards x 3"),
        ({"num_node_groups": 4}, "4 shards x 1"),
        ({"num_cache_nodes": 2}, "2"),
        ({}, "1"),
    ],
)
def test_cache_node_counts_read_both_topologies(attrs: dict[str, int], shown: str) -> None:
    assert cache_nodes(attrs) == shown
