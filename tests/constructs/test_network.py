"""Network construct: its subnet rule, NAT modes and VPC endpoints, on a unit stack."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from constructs_lib.options import NatGateways
from tests.support import (
    ACCOUNT_ID,
    NAMING,
    REGION,
    UNIT_NETWORK,
    UnitStack,
    one,
    ref,
    resources,
)


def test_network_construct_rejects_mismatched_subnets(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.network import Network, NetworkProps

    props = NetworkProps(
        naming=NAMING,
        account_id=ACCOUNT_ID,
        region=REGION,
        settings=replace(UNIT_NETWORK, public_subnet_cidrs=("10.0.0.0/24",)),
    )
    with pytest.raises(
        ConfigError,
        match=r"^unit/network\.public_subnet_cidrs: got 1, give one subnet per AZ \(2\)$",
    ):
        Network(unit_stack.stack, "network", props=props)


def test_network_construct_needs_an_az(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.network import Network, NetworkProps

    no_az = replace(
        UNIT_NETWORK, availability_zones=(), public_subnet_cidrs=(), private_subnet_cidrs=()
    )
    props = NetworkProps(naming=NAMING, account_id=ACCOUNT_ID, region=REGION, settings=no_az)
    with pytest.raises(
        ConfigError, match=r"^unit/network\.availability_zones: got 0, name at least one AZ$"
    ):
        Network(unit_stack.stack, "network", props=props)


# --- without NAT, behind interface endpoints ---------------------------------------------------

NO_NAT = replace(UNIT_NETWORK, nat_gateways=NatGateways.NONE)
ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager")


def _private_tables(doc: dict[str, Any]) -> list[str]:
    return sorted(
        ref("aws_route_table", k) for k in resources(doc, "aws_route_table") if "private" in k
    )


def test_a_network_without_nat_has_no_route_out_of_its_private_subnets(
    unit_stack: UnitStack,
) -> None:
    network = unit_stack.network(NO_NAT)
    assert network.nat_gateways == {}
    assert network.private_default_routes == []
    assert network.interface_endpoints == {}
    assert network.endpoint_security_group is None
    doc = unit_stack.synth()
    assert resources(doc, "aws_eip") == {}
    assert resources(doc, "aws_nat_gateway") == {}
    (igw_id,) = resources(doc, "aws_internet_gateway")
    (route,) = resources(doc, "aws_route").values()
    assert route["gateway_id"] == ref("aws_internet_gateway", igw_id)
    (public_table,) = [
        k
        for k, t in resources(doc, "aws_route_table").items()
        if t["tags"]["Name"] == "pcp-unit-public"
    ]
    assert route["route_table_id"] == ref("aws_route_table", public_table)
    public = [s for s in resources(doc, "aws_subnet").values() if s["tags"]["tier"] == "public"]
    assert len(public) == 2
    (s3,) = resources(doc, "aws_vpc_endpoint").values()
    assert s3["vpc_endpoint_type"] == "Gateway"
    assert sorted(s3["route_table_ids"]) == _private_tables(doc)
    assert resources(doc, "aws_security_group") == {}


@pytest.mark.parametrize("nat", [NatGateways.SINGLE, NatGateways.PER_AZ])
def test_a_network_with_nat_routes_each_private_subnet_through_it(
    unit_stack: UnitStack, nat: NatGateways
) -> None:
    network = unit_stack.network(replace(UNIT_NETWORK, nat_gateways=nat))
    expected_nats = 1 if nat is NatGateways.SINGLE else 2
    assert len(network.nat_gateways) == expected_nats
    assert len(network.private_default_routes) == 2
    doc = unit_stack.synth()
    assert len(resources(doc, "aws_eip")) == expected_nats
    nat_routes = [r for r in resources(doc, "aws_route").values() if "nat_gateway_id" in r]
    assert sorted(r["route_table_id"] for r in nat_routes) == _private_tables(doc)


def test_interface_endpoints_sit_in_the_private_subnets_behind_one_https_only_group(
    unit_stack: UnitStack,
) -> None:
    network = unit_stack.network(replace(NO_NAT, interface_endpoints=ENDPOINTS))
    assert list(network.interface_endpoints) == list(ENDPOINTS)
    assert network.endpoint_security_group is not None
    doc = unit_stack.synth()
    (group_id,) = resources(doc, "aws_security_group")
    group = one(doc, "aws_security_group")
    assert group["name"] == "pcp-unit-vpc-endpoints"
    assert "ingress" not in group
    assert "egress" not in group
    group_ref = ref("aws_security_group", group_id)
    (ingress,) = resources(doc, "aws_vpc_security_group_ingress_rule").values()
    assert ingress["security_group_id"] == group_ref
    assert (ingress["ip_protocol"], ingress["from_port"], ingress["to_port"]) == ("tcp", 443, 443)
    assert ingress["cidr_ipv4"] == "10.0.0.0/16"
    assert resources(doc, "aws_vpc_security_group_egress_rule") == {}
    private_subnets = sorted(
        ref("aws_subnet", k)
        for k, s in resources(doc, "aws_subnet").items()
        if s["tags"]["tier"] == "private"
    )
    interface = {
        e["service_name"]: e
        for e in resources(doc, "aws_vpc_endpoint").values()
        if e["vpc_endpoint_type"] == "Interface"
    }
    assert sorted(interface) == sorted(f"com.amazonaws.{REGION}.{name}" for name in ENDPOINTS)
    for endpoint in interface.values():
        assert endpoint["private_dns_enabled"] is True
        assert sorted(endpoint["subnet_ids"]) == private_subnets
        assert endpoint["security_group_ids"] == [group_ref]
    assert interface[f"com.amazonaws.{REGION}.ecr.api"]["tags"] == {"Name": "pcp-unit-ecr.api"}
    gateway = [
        e
        for e in resources(doc, "aws_vpc_endpoint").values()
        if e["vpc_endpoint_type"] == "Gateway"
    ]
    assert [e["service_name"] for e in gateway] == [f"com.amazonaws.{REGION}.s3"]


def test_interface_endpoints_work_beside_nat_gateways(unit_stack: UnitStack) -> None:
    network = unit_stack.network(replace(UNIT_NETWORK, interface_endpoints=("logs",)))
    assert len(network.private_default_routes) == 2
    assert list(network.interface_endpoints) == ["logs"]


@pytest.mark.parametrize(
    ("names", "got", "fix"),
    [
        (("",), "''", "give the short service name"),
        (("ECR.API",), "'ECR.API'", "give the short service name"),
        (("ecr..api",), "'ecr..api'", "give the short service name"),
        (("logs ",), "'logs '", "give the short service name"),
        ((f"com.amazonaws.{REGION}.logs",), f"'com.amazonaws.{REGION}.logs'", "give the short"),
        (("s3",), "'s3'", "leave S3 out: the network's S3 gateway endpoint serves it"),
        (("logs", "ecr.api", "logs"), "logs", "name each service once"),
    ],
)
def test_interface_endpoint_names_are_checked(
    unit_stack: UnitStack, names: tuple[str, ...], got: str, fix: str
) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.network import Network, NetworkProps

    props = NetworkProps(
        naming=NAMING,
        account_id=ACCOUNT_ID,
        region=REGION,
        settings=replace(UNIT_NETWORK, interface_endpoints=names),
    )
    with pytest.raises(
        ConfigError,
        match=rf"^unit/network\.interface_endpoints: got {re.escape(got)}, {re.escape(fix)}",
    ):
        Network(unit_stack.stack, "network", props=props)
