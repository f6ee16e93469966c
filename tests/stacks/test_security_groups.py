"""The security-group chain: internet → CloudFront (VPC origin) → ALB → producer → queue/DB,
consumer → queue/database, migration → database; nothing else open."""

from __future__ import annotations

from typing import Any

from environments import ENVIRONMENTS
from tests.support import EnvStack, resources


def group_names(stack: dict[str, Any]) -> dict[str, str]:
    """``${aws_security_group.X.id}`` → the group's short role (``producer``, ``mysql`` ...)."""
    out = {}
    for key, group in resources(stack, "aws_security_group").items():
        out[f"${{aws_security_group.{key}.id}}"] = group["name"].split("-", 2)[2]
    # The group CloudFront puts on its VPC-origin interfaces (looked up, not managed here).
    for key, lookup in stack.get("data", {}).get("aws_security_group", {}).items():
        assert lookup["name"] == "CloudFront-VPCOrigins-Service-SG"
        out[f"${{data.aws_security_group.{key}.id}}"] = "cloudfront"
    return out


def ingress_edges(stack: dict[str, Any]) -> set[tuple[str, str, int]]:
    names = group_names(stack)
    edges = set()
    for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values():
        assert rule["from_port"] == rule["to_port"], "single ports only"
        if "referenced_security_group_id" in rule:
            source = names[rule["referenced_security_group_id"]]
        else:
            assert "prefix_list_id" not in rule  # never CloudFront's public prefix list
            source = rule["cidr_ipv4"]
        edges.add((source, names[rule["security_group_id"]], rule["from_port"]))
    return edges


def test_the_chain_and_nothing_else(env_stack: EnvStack) -> None:
    name, stack = env_stack
    expected = {
        ("cloudfront", "alb", 80),
        ("alb", "producer", 5080),
        ("producer", "consumer", 8081),
        ("producer", "mysql", 3306),
        ("consumer", "mysql", 3306),
        ("migrate", "mysql", 3306),
        ("rotate-db", "mysql", 3306),
        ("producer", "queue", 6379),
        ("consumer", "queue", 6379),
        ("rotate-queue", "queue", 6379),
    }
    expected |= {(cidr, "alb", 80) for cidr in ENVIRONMENTS[name].edge.allowed_cidrs}
    assert ingress_edges(stack) == expected


def test_no_inline_rules_and_no_open_ingress(env_stack: EnvStack) -> None:
    _, stack = env_stack
    for group in resources(stack, "aws_security_group").values():
        assert group.get("ingress", []) == [], group["name"]
        assert group.get("egress", []) == [], group["name"]
    for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values():
        assert rule.get("cidr_ipv4") != "0.0.0.0/0"
        assert "cidr_ipv6" not in rule


def test_egress_matches_ingress_or_is_https_to_aws_apis(env_stack: EnvStack) -> None:
    _, stack = env_stack
    names = group_names(stack)
    ingress = ingress_edges(stack)
    for rule in resources(stack, "aws_vpc_security_group_egress_rule").values():
        source = names[rule["security_group_id"]]
        if "referenced_security_group_id" in rule:
            edge = (source, names[rule["referenced_security_group_id"]], rule["from_port"])
            assert edge in ingress, edge
        else:
            assert (rule["cidr_ipv4"], rule["from_port"], rule["to_port"]) == (
                "0.0.0.0/0",
                443,
                443,
            )
            assert source in {"producer", "consumer", "migrate", "rotate-db", "rotate-queue"}
