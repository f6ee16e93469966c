"""SubnetAcls: one network ACL per tier, derived from a flow list, consistent with the
security groups.

One unit stack is synthesized for the module: the two-AZ unit network (one NAT gateway),
an internet-facing web load balancer in the public subnets, an ``app`` service behind it,
a ``worker`` service ``app`` calls, a MySQL database and an EFS file system ``app`` uses,
and ``SubnetAcls`` built from ``web_system_flows``. ``tools/flows.py`` evaluates it; the
tests that break something break a copy of the parsed JSON.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from constructs_lib.errors import ConfigError
from constructs_lib.options import NatGateways
from tests.support import NAMING, UNIT_NETWORK, UnitStack, new_unit_stack, ref, resources
from tools.flows import NETWORK_ACL, SECURITY_GROUP, StackNetwork

if TYPE_CHECKING:
    from constructs_lib.network import Network
    from constructs_lib.network_acl import Flow

CERT = "arn:aws:acm:eu-central-1:123456789012:certificate/web"
WEB = "pcp-unit-web"
APP = "pcp-unit-app"
WORKER = "pcp-unit-worker"
DB = "pcp-unit-mysql"
EFS = "pcp-unit-files-efs"
INTERNET = "0.0.0.0/0"
PUBLIC_A = "pcp-unit-public-eu-central-1a"
PUBLIC_B = "pcp-unit-public-eu-central-1b"
PRIVATE_A = "pcp-unit-private-eu-central-1a"
PRIVATE_B = "pcp-unit-private-eu-central-1b"
PUBLIC_CIDRS = ("10.0.0.0/24", "10.0.1.0/24")
PRIVATE_CIDRS = ("10.0.16.0/20", "10.0.32.0/20")
EPHEMERAL = (1024, 65535)

DECLARED = [
    (INTERNET, WEB, 443),
    (INTERNET, WEB, 80),
    (WEB, APP, 3000),
    (APP, DB, 3306),
    (APP, EFS, 2049),
    (APP, WORKER, 8081),
    (APP, INTERNET, 443),
    (WORKER, INTERNET, 443),
]
"""What the system's security groups allow, each meant to pass the ACLs too."""


def _flows(network: Network) -> tuple[Flow, ...]:
    from constructs_lib.network_acl import web_system_flows

    return web_system_flows(network, service_ports=(3000,), private_ports=(3306, 2049, 8081))


def _system(unit: UnitStack, flows: tuple[Flow, ...] | None = None) -> None:
    from constructs_lib.network_acl import SubnetAcls, SubnetAclsProps
    from constructs_lib.web_load_balancer import WebLoadBalancer, WebLoadBalancerProps

    network = unit.network()
    web = WebLoadBalancer(
        unit.stack,
        "web",
        props=WebLoadBalancerProps(
            naming=NAMING,
            network=network,
            target_port=3000,
            certificate_arn=CERT,
            domain_name="app.example.com",
        ),
    )
    app = unit.service("app", load_balancer=web, port=3000)
    worker = unit.service("worker", port=8081)
    worker.allow_from(app, description="app calls the worker")
    unit.database().allow_from(app, description="app to MySQL")
    unit.file_system().allow_from(app, description="app mounts the files")
    unit.parts["acls"] = SubnetAcls(
        unit.stack,
        "acls",
        props=SubnetAclsProps(
            naming=NAMING, network=network, flows=_flows(network) if flows is None else flows
        ),
    )


@pytest.fixture(scope="module")
def built() -> UnitStack:
    unit = new_unit_stack()
    _system(unit)
    return unit


@pytest.fixture(scope="module")
def doc(built: UnitStack) -> dict[str, Any]:
    return built.synth()


def _without(doc: dict[str, Any], drop: Any) -> StackNetwork:
    """The stack's network with the ACL rules ``drop(acl_name, rule)`` selects removed."""
    broken = copy.deepcopy(doc)
    acls = {
        ref("aws_network_acl", k): acl["tags"]["Name"]
        for k, acl in resources(broken, "aws_network_acl").items()
    }
    rules = resources(broken, "aws_network_acl_rule")
    for key in [k for k, r in rules.items() if drop(acls[r["network_acl_id"]], r)]:
        del rules[key]
    return StackNetwork(broken)


def _acl_rules(doc: dict[str, Any], tier: str, egress: bool) -> list[dict[str, Any]]:
    (key,) = [k for k, a in resources(doc, "aws_network_acl").items() if a["tags"]["tier"] == tier]
    return sorted(
        (
            r
            for r in resources(doc, "aws_network_acl_rule").values()
            if r["network_acl_id"] == ref("aws_network_acl", key) and r["egress"] is egress
        ),
        key=lambda r: r["rule_number"],
    )


# --- the ACLs themselves -------------------------------------------------------------------


def test_one_acl_per_tier_on_that_tiers_subnets_and_the_default_acl_untouched(
    doc: dict[str, Any],
) -> None:
    subnets = resources(doc, "aws_subnet")
    acls = {a["tags"]["tier"]: a for a in resources(doc, "aws_network_acl").values()}
    assert set(acls) == {"public", "private"}
    for tier, acl in acls.items():
        assert acl["tags"]["Name"] == f"pcp-unit-{tier}-acl"
        assert acl["vpc_id"] == ref("aws_vpc", next(iter(resources(doc, "aws_vpc"))))
        assert sorted(acl["subnet_ids"]) == sorted(
            ref("aws_subnet", k) for k, s in subnets.items() if s["tags"]["tier"] == tier
        )
        assert "ingress" not in acl
        assert "egress" not in acl
    assert resources(doc, "aws_default_network_acl") == {}
    assert resources(doc, "aws_network_acl_association") == {}


def test_every_rule_allows_but_the_guards_and_anything_undeclared_is_denied(
    doc: dict[str, Any],
) -> None:
    from constructs_lib.network_acl import VPC_GUARD_RULE

    rules = list(resources(doc, "aws_network_acl_rule").values())
    allows = [r for r in rules if r["rule_action"] == "allow"]
    guards = [r for r in rules if r["rule_action"] == "deny"]
    assert {r["protocol"] for r in allows} == {"tcp"}
    assert all(1 <= r["from_port"] <= r["to_port"] <= 65535 for r in allows)
    # One guard per ACL and direction (each has rules for outside ranges after it).
    assert len(guards) == 4
    for guard in guards:
        assert (guard["rule_number"], guard["protocol"], guard["cidr_block"]) == (
            VPC_GUARD_RULE,
            "-1",
            "10.0.0.0/16",
        )
        assert "from_port" not in guard
    network = StackNetwork(doc)
    # No security group in the way: the ACLs alone decide between two subnets.
    assert network.check(PRIVATE_A, PRIVATE_B, 3306).passes
    for source, destination, port, refusal in [
        (PRIVATE_A, PRIVATE_B, 22, "rule 15000 denies it"),
        (PUBLIC_A, PRIVATE_A, 3306, "rule 15000 denies it"),
        (PUBLIC_A, PRIVATE_A, 443, "rule 15000 denies it"),
        (PRIVATE_A, PUBLIC_B, 3000, "rule 15000 denies it"),
        (INTERNET, PUBLIC_A, 22, "no rule allows it (the final * rule denies)"),
    ]:
        verdict = network.check(source, destination, port)
        assert verdict.layers() == {NETWORK_ACL}, verdict.explain()
        assert refusal in verdict.explain()


def test_rule_numbers_are_unique_per_acl_and_direction_in_one_block_per_flow(
    built: UnitStack, doc: dict[str, Any]
) -> None:
    from constructs_lib.network_acl import RULE_BLOCK, VPC_GUARD_RULE

    acls = built.parts["acls"]
    for tier in ("public", "private"):
        for egress in (False, True):
            numbers = [r["rule_number"] for r in _acl_rules(doc, tier, egress)]
            assert len(numbers) == len(set(numbers))
            assert numbers == sorted(numbers)
    names = [f.name for f in acls.flows]
    for entry in acls.entries:
        if entry.flow is None:
            assert entry.rule_number == VPC_GUARD_RULE
            continue
        inside = entry.cidr_block != INTERNET
        offset = 0 if inside else VPC_GUARD_RULE
        assert (entry.rule_number - offset) // RULE_BLOCK == names.index(entry.flow) + 1
    assert {(e.tier, e.egress, e.rule_number) for e in acls.entries} == set(acls.rules)


def test_a_tier_stands_for_its_subnet_ranges_not_the_vpc(doc: dict[str, Any]) -> None:
    def rules(tier: str, egress: bool) -> list[tuple[str, int, int]]:
        return [
            (r["cidr_block"], r.get("from_port", 0), r.get("to_port", 65535))
            for r in _acl_rules(doc, tier, egress)
        ]

    guard = ("10.0.0.0/16", 0, 65535)
    assert rules("private", False) == [
        *((cidr, 3000, 3000) for cidr in PUBLIC_CIDRS),  # from the load balancer
        *((cidr, *EPHEMERAL) for cidr in PRIVATE_CIDRS),  # requests and replies in the tier
        guard,
        (INTERNET, *EPHEMERAL),  # replies through NAT
    ]
    assert rules("private", True) == [
        *((cidr, *EPHEMERAL) for cidr in PUBLIC_CIDRS),  # replies to the load balancer
        *((cidr, *EPHEMERAL) for cidr in PRIVATE_CIDRS),  # covers 3306, 2049 and 8081
        guard,
        (INTERNET, 443, 443),
    ]


def test_the_nat_gateways_hop_through_the_public_tier_is_allowed_both_ways(
    doc: dict[str, Any],
) -> None:
    def rules(egress: bool) -> list[tuple[str, int, int]]:
        return [
            (r["cidr_block"], r.get("from_port", 0), r.get("to_port", 65535))
            for r in _acl_rules(doc, "public", egress)
        ]

    guard = ("10.0.0.0/16", 0, 65535)
    assert rules(False) == [
        *((cidr, *EPHEMERAL) for cidr in PRIVATE_CIDRS),  # the tasks' replies to the ALB
        *((cidr, 443, 443) for cidr in PRIVATE_CIDRS),  # requests into the NAT gateway
        guard,
        (INTERNET, 443, 443),
        (INTERNET, 80, 80),
        (INTERNET, *EPHEMERAL),  # replies to the NAT gateway's requests
    ]
    assert rules(True) == [
        # Replies back to the tasks; they also cover the ALB's requests to 3000.
        *((cidr, *EPHEMERAL) for cidr in PRIVATE_CIDRS),
        guard,
        (INTERNET, *EPHEMERAL),  # replies to clients (80 and 443 share it)
        (INTERNET, 443, 443),  # the NAT gateway's requests out
    ]


def test_a_typical_three_az_system_stays_within_the_quota(unit_stack: UnitStack) -> None:
    from constructs_lib.network_acl import acl_entries, web_system_flows

    three = replace(
        UNIT_NETWORK,
        availability_zones=("eu-central-1a", "eu-central-1b", "eu-central-1c"),
        public_subnet_cidrs=("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"),
        private_subnet_cidrs=("10.0.16.0/20", "10.0.32.0/20", "10.0.48.0/20"),
        nat_gateways=NatGateways.PER_AZ,
        interface_endpoints=("ecr.api", "ecr.dkr", "logs", "secretsmanager"),
    )
    network = unit_stack.network(three)
    flows = web_system_flows(network, service_ports=(3000, 3001), private_ports=(5432, 2049, 8081))
    entries = acl_entries(flows, network=network, where="unit")
    counts = Counter((e.tier, e.egress) for e in entries)
    assert max(counts.values()) <= 20, counts


# --- both layers, evaluated on the synthesized stack ------------------------------------


def test_each_declared_flow_passes_both_layers(doc: dict[str, Any]) -> None:
    network = StackNetwork(doc)
    for source, destination, port in DECLARED:
        verdict = network.check(source, destination, port)
        assert verdict.passes, verdict.explain()
        assert len(verdict.paths) >= 2


def test_every_flow_the_security_groups_allow_passes_the_acls(doc: dict[str, Any]) -> None:
    network = StackNetwork(doc)
    allowed = {(s, d, ports[0]) for s, d, _, ports in network.security_group_flows()}
    # The drift check covers at least the declared flows (it is not empty by accident);
    # the tasks may also reach the public load balancer's addresses on 443.
    assert set(DECLARED) <= allowed
    assert network.blocked_by_acls() == []


def test_a_flow_the_groups_allow_but_the_acls_forget_is_refused_and_reported() -> None:
    unit = new_unit_stack()
    network = unit.network()
    flows = tuple(f for f in _flows(network) if f.name != "load-balancer-3000")
    assert len(flows) == len(_flows(network)) - 1
    _system(unit, flows)
    stack = StackNetwork(unit.synth())
    verdict = stack.check(WEB, APP, 3000)
    assert not verdict.passes
    assert verdict.layers() == {NETWORK_ACL}
    assert "request from 10.0.0.0/24 on tcp 3000: rule 15000 denies it" in verdict.explain()
    blocked = stack.blocked_by_acls()
    assert [(v.source, v.destination, v.ports) for v in blocked] == [(WEB, APP, (3000, 3000))]
    assert len(blocked[0].paths) == 4  # two public subnets by two private ones
    # Everything else still passes.
    for source, destination, port in DECLARED:
        if (source, destination) != (WEB, APP):
            assert stack.check(source, destination, port).passes


def test_a_flow_the_acls_allow_but_the_groups_do_not_is_refused(doc: dict[str, Any]) -> None:
    network = StackNetwork(doc)
    # private-3306 lets every private subnet reach 3306; only app's group may.
    assert network.check(PRIVATE_A, PRIVATE_B, 3306).passes
    verdict = network.check(WORKER, DB, 3306)
    assert verdict.layers() == {SECURITY_GROUP}
    assert "egress of pcp-unit-worker: nothing admits to pcp-unit-mysql on tcp 3306" in (
        verdict.explain()
    )
    assert "ingress of pcp-unit-mysql: nothing admits from pcp-unit-worker" in verdict.explain()


def test_replies_need_the_ephemeral_rules(doc: dict[str, Any]) -> None:
    intact = StackNetwork(doc)
    assert intact.check(WEB, APP, 3000).passes
    assert intact.check(APP, INTERNET, 443).passes
    cases = [
        # (ACL, egress, peer range): the reply rules one connection needs, one at a time.
        (WEB, APP, 3000, "pcp-unit-private-acl", True, PUBLIC_CIDRS, "outbound"),
        (WEB, APP, 3000, "pcp-unit-public-acl", False, PRIVATE_CIDRS, "inbound"),
        (APP, INTERNET, 443, "pcp-unit-private-acl", False, (INTERNET,), "inbound"),
        (APP, INTERNET, 443, "pcp-unit-public-acl", False, (INTERNET,), "inbound"),
        (APP, INTERNET, 443, "pcp-unit-public-acl", True, PRIVATE_CIDRS, "outbound"),
    ]
    for source, destination, port, acl_name, egress, peers, direction in cases:
        broken = _without(
            doc,
            lambda acl, r, acl_name=acl_name, egress=egress, peers=peers: (
                acl == acl_name
                and r["egress"] is egress
                and r.get("from_port") == 1024
                and r["cidr_block"] in peers
            ),
        )
        verdict = broken.check(source, destination, port)
        assert verdict.layers() == {NETWORK_ACL}, (acl_name, egress)
        denials = verdict.all_denials()
        assert all(d.detail.startswith("reply to request") for d in denials), verdict.explain()
        assert all(f"{acl_name} {direction}" in d.where for d in denials)


def test_calls_out_need_the_nat_gateways_subnet_to_pass_them(doc: dict[str, Any]) -> None:
    into_nat = _without(
        doc,
        lambda acl, r: (
            acl == "pcp-unit-public-acl"
            and not r["egress"]
            and r.get("from_port") == 443
            and r["cidr_block"] != INTERNET
        ),
    )
    verdict = into_nat.check(APP, INTERNET, 443)
    assert verdict.layers() == {NETWORK_ACL}
    assert "request to the NAT gateway" in verdict.explain()
    out_of_nat = _without(
        doc,
        lambda acl, r: acl == "pcp-unit-public-acl" and r["egress"] and r.get("from_port") == 443,
    )
    assert "request from the NAT gateway" in out_of_nat.check(APP, INTERNET, 443).explain()


# --- the declaration ------------------------------------------------------------------------


def test_appending_a_flow_keeps_every_existing_rule_number(built: UnitStack) -> None:
    from constructs_lib.network_acl import Flow, SubnetTier, acl_entries

    network = built.network()
    flows = _flows(network)
    before = set(acl_entries(flows, network=network, where="unit"))
    extra = Flow("ldap", SubnetTier.PRIVATE, "10.200.0.0/16", 636)  # a directory over VPN
    after = set(acl_entries((*flows, extra), network=network, where="unit"))
    assert before < after
    assert {e.flow for e in after - before} == {"ldap"}
    assert acl_entries(flows, network=network, where="unit") == built.parts["acls"].entries


def test_web_system_flows_follow_the_network_and_the_load_balancer(unit_stack: UnitStack) -> None:
    from constructs_lib.network_acl import INTERNET as ANYWHERE
    from constructs_lib.network_acl import SubnetTier, acl_entries, web_system_flows

    network = unit_stack.network(
        replace(UNIT_NETWORK, nat_gateways=NatGateways.NONE, interface_endpoints=("logs",))
    )
    flows = web_system_flows(network, service_ports=(3000,), internet_facing=False)
    assert [(f.name, f.source, f.destination, f.port) for f in flows] == [
        ("load-balancer-3000", SubnetTier.PRIVATE, SubnetTier.PRIVATE, 3000),
        ("aws-endpoints", SubnetTier.PRIVATE, SubnetTier.PRIVATE, 443),
        ("internet-https", SubnetTier.PRIVATE, ANYWHERE, 443),
    ]
    entries = acl_entries(flows, network=network, where="unit")
    # Without NAT nothing crosses the public tier: calls out reach only the S3 gateway.
    assert {e.tier for e in entries} == {SubnetTier.PRIVATE}
    # An internal load balancer calls Cognito through internet-https; a public one itself.
    calling = {"service_ports": (3000,), "load_balancer_calls_out": True}
    assert web_system_flows(network, internet_facing=False, **calling) == flows
    (last,) = web_system_flows(network, **calling)[-1:]
    assert (last.name, last.source, last.destination, last.port) == (
        "load-balancer-out",
        SubnetTier.PUBLIC,
        ANYWHERE,
        443,
    )


@pytest.mark.parametrize(
    ("flow", "match"),
    [
        (
            ("web", INTERNET, "PRIVATE", 443),
            r"flows\[web\]\.source: got 0\.0\.0\.0/0, the internet reaches only the public tier",
        ),
        (
            ("vpn", "172.16.0.0/22", INTERNET, 443),
            r"flows\[vpn\]: got 172\.16\.0\.0/22 -> 0\.0\.0\.0/0, make one end a tier",
        ),
        (
            ("inside", "10.0.5.0/24", "PRIVATE", 443),
            r"flows\[inside\]\.source: got 10\.0\.5\.0/24, it lies inside the VPC",
        ),
        (
            ("host", "PRIVATE", "10.1.2.3", 443),
            r"flows\[host\]\.destination: got '10\.1\.2\.3', give a SubnetTier or an IPv4 network CIDR",
        ),
        (
            ("Bad_Name", "PRIVATE", "PRIVATE", 443),
            r"flows: got 'Bad_Name', name each flow with lower-case words",
        ),
        (
            ("range", "PRIVATE", "PRIVATE", 0),
            r"flows\[range\]\.port: got 0-0, give ports from 1 to 65535",
        ),
    ],
)
def test_a_flow_that_cannot_be_built_is_refused(
    unit_stack: UnitStack, flow: tuple[str, str, str, int], match: str
) -> None:
    from constructs_lib.network_acl import Flow, SubnetAcls, SubnetAclsProps, SubnetTier

    def end(value: str) -> SubnetTier | str:
        return SubnetTier[value] if value in SubnetTier.__members__ else value

    name, source, destination, port = flow
    bad = Flow(name, end(source), end(destination), port)
    props = SubnetAclsProps(naming=NAMING, network=unit_stack.network(), flows=(bad,))
    with pytest.raises(ConfigError, match=r"^unit/acls\." + match):
        SubnetAcls(unit_stack.stack, "acls", props=props)


def test_duplicate_names_other_protocols_and_no_flows_are_refused(unit_stack: UnitStack) -> None:
    from constructs_lib.network_acl import Flow, SubnetAcls, SubnetAclsProps, SubnetTier

    network = unit_stack.network()
    private = SubnetTier.PRIVATE
    cases = [
        (
            (Flow("a", private, private, 1), Flow("a", private, private, 2)),
            "got 'a', name each flow once",
        ),
        (
            (Flow("icmp", private, private, 1, protocol="icmp"),),
            r"flows\[icmp\]\.protocol: got 'icmp', use tcp or udp",
        ),
        ((), "flows: got 0, declare the flows"),
    ]
    for index, (flows, match) in enumerate(cases):
        props = SubnetAclsProps(naming=NAMING, network=network, flows=flows)
        with pytest.raises(ConfigError, match=match):
            SubnetAcls(unit_stack.stack, f"acls-{index}", props=props)


def test_more_rules_than_the_quota_are_refused(unit_stack: UnitStack) -> None:
    from constructs_lib.network_acl import SubnetAcls, SubnetAclsProps

    network = unit_stack.network()
    props = SubnetAclsProps(
        naming=NAMING, network=network, flows=_flows(network), max_rules_per_direction=7
    )
    with pytest.raises(
        ConfigError,
        match=r"^unit/acls\.flows: got 8 inbound rules on the public ACL, stay within max_rules_per_direction \(7\)",
    ):
        SubnetAcls(unit_stack.stack, "acls", props=props)
