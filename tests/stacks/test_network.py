"""The network as each environment stack deploys it: subnets per AZ, NAT layout, routing,
flow logs, default SG."""

from __future__ import annotations

from typing import Any

import pytest

from environments import ENVIRONMENTS
from tests.support import EnvStack, Synth, one, ref, resources


def routing(stack: dict[str, Any]) -> dict[str, str | None]:
    """Map each private subnet's AZ to the AZ of the NAT gateway its default route uses."""
    subnets = resources(stack, "aws_subnet")
    subnet_az = {ref("aws_subnet", k): v["availability_zone"] for k, v in subnets.items()}
    nat_az = {
        ref("aws_nat_gateway", k): subnet_az[v["subnet_id"]]
        for k, v in resources(stack, "aws_nat_gateway").items()
    }
    table_of = {
        v["subnet_id"]: v["route_table_id"]
        for v in resources(stack, "aws_route_table_association").values()
    }
    nat_of_table = {
        v["route_table_id"]: v.get("nat_gateway_id")
        for v in resources(stack, "aws_route").values()
        if v["destination_cidr_block"] == "0.0.0.0/0"
    }
    out: dict[str, str | None] = {}
    for key, subnet in subnets.items():
        if subnet["tags"]["tier"] != "private":
            continue
        nat = nat_of_table[table_of[ref("aws_subnet", key)]]
        out[subnet["availability_zone"]] = nat_az.get(nat) if nat else None
    return out


def test_prod_routes_each_private_subnet_to_the_nat_in_its_own_az(synth: Synth) -> None:
    prod = synth.stack("prod")
    assert len(resources(prod, "aws_nat_gateway")) == 3
    assert len(resources(prod, "aws_eip")) == 3
    assert routing(prod) == {az: az for az in ("eu-central-1a", "eu-central-1b", "eu-central-1c")}


@pytest.mark.parametrize("name", ["dev", "test", "stage"])
def test_non_prod_routes_every_private_subnet_to_one_nat(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    assert len(resources(stack, "aws_nat_gateway")) == 1
    assert routing(stack) == {"eu-central-1a": "eu-central-1a", "eu-central-1b": "eu-central-1a"}


def test_subnets_per_az_match_the_config(env_stack: EnvStack) -> None:
    name, stack = env_stack
    net = ENVIRONMENTS[name].network
    subnets = resources(stack, "aws_subnet").values()
    public = {
        s["availability_zone"]: s["cidr_block"] for s in subnets if s["tags"]["tier"] == "public"
    }
    private = {
        s["availability_zone"]: s["cidr_block"] for s in subnets if s["tags"]["tier"] == "private"
    }
    assert public == dict(zip(net.availability_zones, net.public_subnet_cidrs, strict=True))
    assert private == dict(zip(net.availability_zones, net.private_subnet_cidrs, strict=True))
    assert not any(s.get("map_public_ip_on_launch") for s in subnets)


def test_public_subnets_route_to_the_internet_gateway(env_stack: EnvStack) -> None:
    _, stack = env_stack
    igw = ref("aws_internet_gateway", next(iter(resources(stack, "aws_internet_gateway"))))
    igw_routes = [r for r in resources(stack, "aws_route").values() if r.get("gateway_id") == igw]
    assert len(igw_routes) == 1
    assert igw_routes[0]["destination_cidr_block"] == "0.0.0.0/0"


def test_vpc_dns_and_flow_logs(env_stack: EnvStack) -> None:
    name, stack = env_stack
    vpc = one(stack, "aws_vpc")
    assert vpc["enable_dns_support"] is True
    assert vpc["enable_dns_hostnames"] is True
    assert vpc["cidr_block"] == ENVIRONMENTS[name].network.vpc_cidr
    flow = one(stack, "aws_flow_log")
    assert flow["traffic_type"] == "ALL"
    assert flow["log_destination_type"] == "cloud-watch-logs"
    groups = resources(stack, "aws_cloudwatch_log_group")
    flow_group = next(g for g in groups.values() if g["name"] == f"/pcp/{name}/vpc-flow-logs")
    assert flow_group["kms_key_id"].startswith("${aws_kms_key.")
    assert flow_group["retention_in_days"] == ENVIRONMENTS[name].network.flow_log_retention_days


def test_default_security_group_has_no_rules(env_stack: EnvStack) -> None:
    _, stack = env_stack
    default_sg = one(stack, "aws_default_security_group")
    assert default_sg["ingress"] == []
    assert default_sg["egress"] == []


def test_s3_gateway_endpoint_serves_the_private_route_tables(env_stack: EnvStack) -> None:
    name, stack = env_stack
    endpoint = one(stack, "aws_vpc_endpoint")
    assert endpoint["vpc_endpoint_type"] == "Gateway"
    assert len(endpoint["route_table_ids"]) == len(ENVIRONMENTS[name].network.availability_zones)
