"""tools/flows.py on small hand-written stacks (no cdktf): placements, security groups,
ACL rule order, routes through NAT, drift between the layers, the command line.

The stack: a VPC 10.0.0.0/16 with one public subnet (``pub-a``, the NAT gateway and the
load balancer ``web``) and two private ones (``priv-a``, ``priv-b``), where an ECS service
``app``, a database ``db`` (subnet group), EFS mount targets ``fs`` and a Lambda function
``fn`` (``priv-a`` only) sit. ``web`` admits the internet on 443 and reaches ``app`` on
8080; ``app`` and ``fn`` reach ``db`` on 5432; ``app`` sends HTTPS anywhere. No ACL until
a test adds one (the VPC's default ACL then allows everything).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tools.flows import (
    NETWORK_ACL,
    PLACEMENT,
    ROUTE,
    SECURITY_GROUP,
    FlowsError,
    StackNetwork,
    main,
)

INTERNET = "0.0.0.0/0"
SUBNETS = {"pub_a": "10.0.0.0/24", "priv_a": "10.0.16.0/20", "priv_b": "10.0.32.0/20"}
Rule = tuple[int, bool, str, str, str, int, int]
"""(number, egress, action, protocol, cidr, from, to)"""


def _id(type_: str, key: str, attr: str = "id") -> str:
    return f"${{{type_}.{key}.{attr}}}"


def _subnet(key: str) -> str:
    return _id("aws_subnet", key)


def _sg(key: str) -> str:
    return _id("aws_security_group", key)


def _pair(doc: dict[str, Any], source: str, target: str, port: int) -> None:
    res = doc["resource"]
    name = f"{source}-{target}-{port}"
    rule = {"ip_protocol": "tcp", "from_port": port, "to_port": port}
    res["aws_vpc_security_group_egress_rule"][name] = {
        "security_group_id": _sg(source),
        "referenced_security_group_id": _sg(target),
        **rule,
    }
    res["aws_vpc_security_group_ingress_rule"][name] = {
        "security_group_id": _sg(target),
        "referenced_security_group_id": _sg(source),
        **rule,
    }


def _stack() -> dict[str, Any]:
    private = [_subnet("priv_a"), _subnet("priv_b")]
    doc: dict[str, Any] = {
        "resource": {
            "aws_vpc": {"vpc": {"cidr_block": "10.0.0.0/16"}},
            "aws_subnet": {
                key: {
                    "vpc_id": _id("aws_vpc", "vpc"),
                    "cidr_block": cidr,
                    "tags": {"Name": key.replace("_", "-")},
                }
                for key, cidr in SUBNETS.items()
            },
            "aws_internet_gateway": {"igw": {"vpc_id": _id("aws_vpc", "vpc")}},
            "aws_nat_gateway": {"nat": {"subnet_id": _subnet("pub_a")}},
            "aws_route_table": {
                "public": {},
                # Inline routes are read too.
                "private": {
                    "route": [
                        {"cidr_block": INTERNET, "nat_gateway_id": _id("aws_nat_gateway", "nat")}
                    ]
                },
            },
            "aws_route": {
                "public-default": {
                    "route_table_id": _id("aws_route_table", "public"),
                    "destination_cidr_block": INTERNET,
                    "gateway_id": _id("aws_internet_gateway", "igw"),
                }
            },
            "aws_route_table_association": {
                key: {
                    "subnet_id": _subnet(key),
                    "route_table_id": _id(
                        "aws_route_table", "public" if key.startswith("pub") else "private"
                    ),
                }
                for key in SUBNETS
            },
            "aws_security_group": {key: {"name": key} for key in ("web", "app", "db", "fs", "fn")},
            "aws_lb": {"alb": {"subnets": [_subnet("pub_a")], "security_groups": [_sg("web")]}},
            "aws_ecs_service": {
                "app": {
                    "network_configuration": {"subnets": private, "security_groups": [_sg("app")]}
                }
            },
            "aws_db_subnet_group": {"db": {"subnet_ids": private}},
            "aws_db_instance": {
                "db": {
                    "db_subnet_group_name": _id("aws_db_subnet_group", "db", "name"),
                    "vpc_security_group_ids": [_sg("db")],
                }
            },
            "aws_efs_mount_target": {
                key: {"subnet_id": _subnet(key), "security_groups": [_sg("fs")]}
                for key in ("priv_a", "priv_b")
            },
            "aws_lambda_function": {
                "fn": {
                    "vpc_config": {
                        "subnet_ids": [_subnet("priv_a")],
                        "security_group_ids": [_sg("fn")],
                    }
                }
            },
            "aws_vpc_security_group_ingress_rule": {
                "clients": {
                    "security_group_id": _sg("web"),
                    "cidr_ipv4": INTERNET,
                    "ip_protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                }
            },
            "aws_vpc_security_group_egress_rule": {
                "app-out": {
                    "security_group_id": _sg("app"),
                    "cidr_ipv4": INTERNET,
                    "ip_protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                }
            },
        }
    }
    _pair(doc, "web", "app", 8080)
    _pair(doc, "app", "db", 5432)
    _pair(doc, "fn", "db", 5432)
    return doc


def _acl(
    doc: dict[str, Any],
    key: str,
    subnets: list[str],
    rules: list[Rule],
    *,
    style: str = "rules",
) -> None:
    """An ACL ``key`` on ``subnets`` with ``rules``: as ``aws_network_acl_rule`` resources
    and ``subnet_ids`` (``rules``), inline blocks and associations (``inline``), or as the
    VPC's default ACL (``default``)."""
    res = doc["resource"]
    if style == "default":
        acl: dict[str, Any] = {}
        res.setdefault("aws_default_network_acl", {})[key] = acl
    else:
        acl = {"vpc_id": _id("aws_vpc", "vpc"), "tags": {"Name": key}}
        res.setdefault("aws_network_acl", {})[key] = acl
    if style == "inline" or style == "default":
        for number, egress, action, protocol, cidr, low, high in rules:
            acl.setdefault("egress" if egress else "ingress", []).append(
                {
                    "rule_no": number,
                    "action": action,
                    "protocol": protocol,
                    "cidr_block": cidr,
                    "from_port": low,
                    "to_port": high,
                }
            )
    if style == "inline":
        for subnet in subnets:
            res.setdefault("aws_network_acl_association", {})[f"{key}-{subnet}"] = {
                "network_acl_id": _id("aws_network_acl", key),
                "subnet_id": _subnet(subnet),
            }
        return
    if style == "default":
        return
    acl["subnet_ids"] = [_subnet(s) for s in subnets]
    for number, egress, action, protocol, cidr, low, high in rules:
        res.setdefault("aws_network_acl_rule", {})[f"{key}-{egress}-{number}"] = {
            "network_acl_id": _id("aws_network_acl", key),
            "rule_number": number,
            "egress": egress,
            "rule_action": action,
            "protocol": protocol,
            "cidr_block": cidr,
            "from_port": low,
            "to_port": high,
        }


def _allow(number: int, egress: bool, cidr: str, low: int, high: int | None = None) -> Rule:
    return (number, egress, "allow", "tcp", cidr, low, low if high is None else high)


EPH = (1024, 65535)
GUARD: Rule = (150, False, "deny", "-1", "10.0.0.0/16", 0, 0)
PRIVATE_RULES = [
    _allow(100, False, "10.0.0.0/24", 8080),
    _allow(110, False, "10.0.16.0/20", 5432),
    _allow(111, False, "10.0.32.0/20", 5432),
    _allow(112, False, "10.0.16.0/20", *EPH),
    _allow(113, False, "10.0.32.0/20", *EPH),
    GUARD,
    _allow(160, False, INTERNET, *EPH),
    _allow(100, True, "10.0.0.0/24", *EPH),
    _allow(110, True, "10.0.16.0/20", 5432),
    _allow(111, True, "10.0.32.0/20", 5432),
    _allow(112, True, "10.0.16.0/20", *EPH),
    _allow(113, True, "10.0.32.0/20", *EPH),
    (150, True, "deny", "-1", "10.0.0.0/16", 0, 0),
    _allow(160, True, INTERNET, 443),
]
"""What the private subnets' flows need: from the load balancer, to and from the database,
out to the internet; the VPC denied before the internet's replies (which would cover it)."""
PUBLIC_RULES = [
    _allow(110, False, "10.0.16.0/20", 443),
    _allow(111, False, "10.0.32.0/20", 443),
    _allow(112, False, "10.0.16.0/20", *EPH),
    _allow(113, False, "10.0.32.0/20", *EPH),
    GUARD,
    _allow(160, False, INTERNET, 443),
    _allow(170, False, INTERNET, *EPH),
    _allow(110, True, "10.0.16.0/20", 8080),
    _allow(111, True, "10.0.32.0/20", 8080),
    _allow(112, True, "10.0.16.0/20", *EPH),
    _allow(113, True, "10.0.32.0/20", *EPH),
    (150, True, "deny", "-1", "10.0.0.0/16", 0, 0),
    _allow(160, True, INTERNET, *EPH),
    _allow(170, True, INTERNET, 443),
]
"""The load balancer's clients, its calls to the tasks, the NAT gateway's hop; the VPC
denied before the rules for anywhere."""
FLOWS = [
    (INTERNET, "web", 443),
    ("web", "app", 8080),
    ("app", "db", 5432),
    ("fn", "db", 5432),
    ("app", INTERNET, 443),
]


def _with_acls(
    private: list[Rule] = PRIVATE_RULES, public: list[Rule] = PUBLIC_RULES
) -> dict[str, Any]:
    doc = _stack()
    _acl(doc, "private", ["priv_a", "priv_b"], private)
    _acl(doc, "public", ["pub_a"], public)
    return doc


def _without(rules: list[Rule], *drop: Rule) -> list[Rule]:
    assert all(r in rules for r in drop)
    return [r for r in rules if r not in drop]


# --- reading the stack -------------------------------------------------------------------------


def test_placements_are_read_from_each_kind_of_resource() -> None:
    network = StackNetwork(_stack())
    placed = {
        network.groups[g]: sorted(network.subnets[s].label for s in subnets)
        for g, subnets in network.placements.items()
    }
    assert placed == {
        "web": ["pub-a"],  # load balancer subnets
        "app": ["priv-a", "priv-b"],  # ECS network_configuration
        "db": ["priv-a", "priv-b"],  # DB subnet group
        "fs": ["priv-a", "priv-b"],  # EFS mount targets
        "fn": ["priv-a"],  # Lambda vpc_config
    }


def test_references_are_resolved_within_the_stack() -> None:
    doc = _with_acls()
    rule = doc["resource"]["aws_network_acl_rule"]["private-False-100"]
    rule["cidr_block"] = _id("aws_subnet", "pub_a", "cidr_block")
    assert StackNetwork(doc).check("web", "app", 8080).passes
    rule["cidr_block"] = _id("aws_subnet", "priv_a", "cidr_block")
    assert not StackNetwork(doc).check("web", "app", 8080).passes
    rule["cidr_block"] = _id("aws_subnet", "nowhere", "cidr_block")
    with pytest.raises(FlowsError, match=r"cannot resolve \$\{aws_subnet\.nowhere\.cidr_block\}"):
        StackNetwork(doc)


def test_what_it_cannot_evaluate_is_an_error() -> None:
    network = StackNetwork(_stack())
    with pytest.raises(FlowsError, match="no security group or subnet named 'nobody'"):
        network.check("app", "nobody", 443)
    with pytest.raises(
        FlowsError, match=r"neither 1\.2\.3\.0/24 nor 0\.0\.0\.0/0 is inside the VPC"
    ):
        network.check("1.2.3.0/24", INTERNET, 443)
    doc = _stack()
    doc["resource"]["aws_security_group_rule"] = {"old": {"type": "ingress"}}
    with pytest.raises(FlowsError, match="aws_security_group_rule is not supported"):
        StackNetwork(doc)
    doc = _stack()
    doc["resource"]["aws_security_group"]["db"]["ingress"] = [{"from_port": 5432}]
    with pytest.raises(FlowsError, match=r"inline rules of aws_security_group\.db"):
        StackNetwork(doc)


# --- security groups ----------------------------------------------------------------------------


def test_without_acls_the_security_groups_decide() -> None:
    network = StackNetwork(_stack())
    for source, destination, port in FLOWS:
        verdict = network.check(source, destination, port)
        assert verdict.passes, verdict.explain()
    refused = network.check("app", "db", 5433)
    assert refused.layers() == {SECURITY_GROUP}
    assert {d.where for d in refused.all_denials()} == {"egress of app", "ingress of db"}
    one_way = network.check("fn", "app", 8080)
    assert {d.where for d in one_way.all_denials()} == {"egress of fn", "ingress of app"}
    assert not network.check("fs", "db", 5432).passes


def test_a_cidr_rule_must_hold_every_address_and_ports_every_port() -> None:
    doc = _stack()
    res = doc["resource"]
    # db admits priv-a's range instead of app's group: app's tasks in priv-b are refused.
    ingress = res["aws_vpc_security_group_ingress_rule"]["app-db-5432"]
    del ingress["referenced_security_group_id"]
    ingress["cidr_ipv4"] = "10.0.16.0/20"
    verdict = StackNetwork(doc).check("app", "db", 5432)
    refused = [(p.source, p.destination) for p in verdict.paths if not p.passes]
    assert refused == [("priv-b", "priv-a"), ("priv-b", "priv-b")]
    # Two egress ranges together cover 5432-5433; one alone does not.
    egress = res["aws_vpc_security_group_egress_rule"]
    egress["app-out"].update(from_port=5000, to_port=5432, cidr_ipv4="10.0.0.0/16")
    ingress.update(cidr_ipv4="10.0.0.0/16", from_port=5432, to_port=5433)
    assert not StackNetwork(doc).check("app", "db", (5432, 5433)).passes
    egress["more"] = {
        "security_group_id": _sg("app"),
        "cidr_ipv4": "10.0.32.0/19",
        "ip_protocol": "tcp",
        "from_port": 5433,
        "to_port": 6000,
    }
    assert not StackNetwork(doc).check("app", "db", (5432, 5433)).passes  # 10.0.16.0/20 misses
    egress["more"]["cidr_ipv4"] = "10.0.0.0/16"
    assert StackNetwork(doc).check("app", "db", (5432, 5433)).passes


def test_a_prefix_list_rule_never_matches_an_address() -> None:
    doc = _stack()
    out = doc["resource"]["aws_vpc_security_group_egress_rule"]["app-out"]
    del out["cidr_ipv4"]
    out["prefix_list_id"] = "pl-1234"
    assert StackNetwork(doc).check("app", INTERNET, 443).layers() == {SECURITY_GROUP}


def test_an_unplaced_group_is_refused() -> None:
    doc = _stack()
    doc["resource"]["aws_security_group"]["idle"] = {"name": "idle"}
    verdict = StackNetwork(doc).check("idle", "db", 5432)
    assert verdict.layers() == {PLACEMENT}
    assert not verdict.passes


# --- network ACLs ---------------------------------------------------------------------------------


def test_every_flow_passes_acls_that_declare_it() -> None:
    network = StackNetwork(_with_acls())
    for source, destination, port in FLOWS:
        verdict = network.check(source, destination, port)
        assert verdict.passes, verdict.explain()
    assert network.blocked_by_acls() == []


def test_rules_apply_in_number_order_and_the_first_match_decides() -> None:
    deny = (105, False, "deny", "tcp", "10.0.16.0/20", 5432, 5432)
    verdict = StackNetwork(_with_acls([*PRIVATE_RULES, deny])).check("app", "db", 5432)
    assert verdict.layers() == {NETWORK_ACL}
    assert (
        "private inbound on priv-b: request from 10.0.16.0/20 on tcp 5432: rule 105 denies it"
        in verdict.explain()
    )
    later = (130, False, "deny", "-1", "10.0.16.0/20", 0, 0)
    assert StackNetwork(_with_acls([*PRIVATE_RULES, later])).check("app", "db", 5432).passes


def test_every_address_and_port_must_be_allowed() -> None:
    half = _allow(100, False, "10.0.0.0/25", 8080)  # half of pub-a
    rules = [half, *_without(PRIVATE_RULES, _allow(100, False, "10.0.0.0/24", 8080))]
    verdict = StackNetwork(_with_acls(rules)).check("web", "app", 8080)
    assert "request from 10.0.0.0/24 on tcp 8080: rule 150 denies it" in verdict.explain()
    network = StackNetwork(_with_acls())
    assert network.check("pub-a", "priv-a", 8080).passes
    assert not network.check("pub-a", "priv-a", (8080, 8081)).passes
    assert "the final * rule denies" in network.check(INTERNET, "pub-a", 22).explain()


def test_inside_one_subnet_no_acl_applies() -> None:
    # No rule admits the private ranges into a private subnet any more.
    from_private = [r for r in PRIVATE_RULES if r[1] or r[0] not in (110, 111, 112, 113)]
    verdict = StackNetwork(_with_acls(from_private)).check("app", "db", 5432)
    passed = sorted((p.source, p.destination) for p in verdict.paths if p.passes)
    assert passed == [("priv-a", "priv-a"), ("priv-b", "priv-b")]
    assert not verdict.passes


def test_replies_need_the_ephemeral_rules() -> None:
    network = StackNetwork(_with_acls())
    assert all(network.check(*flow).passes for flow in FLOWS)
    cases = [
        (_without(PRIVATE_RULES, _allow(100, True, "10.0.0.0/24", *EPH)), PUBLIC_RULES, [FLOWS[1]]),
        (
            PRIVATE_RULES,
            _without(PUBLIC_RULES, _allow(170, False, INTERNET, *EPH)),
            [FLOWS[4]],
        ),
        (
            PRIVATE_RULES,
            _without(PUBLIC_RULES, _allow(112, False, "10.0.16.0/20", *EPH)),
            [FLOWS[1]],
        ),
        (
            _without(
                PRIVATE_RULES,
                _allow(112, True, "10.0.16.0/20", *EPH),
                _allow(113, True, "10.0.32.0/20", *EPH),
            ),
            PUBLIC_RULES,
            [FLOWS[2], FLOWS[3]],
        ),
    ]
    for private, public, refused in cases:
        network = StackNetwork(_with_acls(private, public))
        assert [f for f in FLOWS if not network.check(*f).passes] == refused
        for flow in refused:
            verdict = network.check(*flow)
            assert verdict.layers() == {NETWORK_ACL}
            assert all(d.detail.startswith("reply to") for d in verdict.all_denials())
    # The reply of app -> db leaves db's subnet toward app's on an ephemeral port.
    network = StackNetwork(_with_acls(cases[3][0]))
    assert {d.detail.split(":")[0] for d in network.check("app", "db", 5432).all_denials()} == {
        "reply to request to 10.0.16.0/20 on tcp 1024-65535",
        "reply to request to 10.0.32.0/20 on tcp 1024-65535",
    }
    # Replies allowed on Linux's range only: refused for the default range, not for that one.
    linux = [(*r[:5], 32768, 60999) if r[5:] == EPH else r for r in PRIVATE_RULES]
    network = StackNetwork(_with_acls(linux))
    assert not network.check("app", "db", 5432).passes
    assert network.check("app", "db", 5432, ephemeral=(32768, 60999)).passes


def test_each_way_of_attaching_an_acl_is_read() -> None:
    inline = _stack()
    _acl(inline, "private", ["priv_a", "priv_b"], PRIVATE_RULES, style="inline")
    _acl(inline, "public", ["pub_a"], PUBLIC_RULES, style="inline")
    default = _stack()  # the managed default ACL holds every subnet no other ACL names
    _acl(default, "private", ["priv_a", "priv_b"], PRIVATE_RULES)
    _acl(default, "public", [], PUBLIC_RULES, style="default")
    for doc in (inline, default):
        network = StackNetwork(doc)
        for flow in FLOWS:
            assert network.check(*flow).passes, network.check(*flow).explain()
        assert network.check("priv-a", "priv-b", 22).layers() == {NETWORK_ACL}
        assert network.check(INTERNET, "pub-a", 22).layers() == {NETWORK_ACL}
    # Without an ACL of its own, a subnet has AWS's default ACL: everything passes.
    assert StackNetwork(_stack()).check(INTERNET, "pub-a", 22).passes


# --- routes --------------------------------------------------------------------------------------


def test_a_call_out_crosses_the_nat_gateways_subnet_both_ways() -> None:
    cases = {
        _allow(110, False, "10.0.16.0/20", 443): "public inbound on pub-a: request to the NAT",
        _allow(170, True, INTERNET, 443): "public outbound on pub-a: request from the NAT",
        _allow(170, False, INTERNET, *EPH): "public inbound on pub-a: reply to request from",
        _allow(112, True, "10.0.16.0/20", *EPH): "public outbound on pub-a: reply to request to",
    }
    for rule, where in cases.items():
        verdict = StackNetwork(_with_acls(public=_without(PUBLIC_RULES, rule))).check(
            "app", INTERNET, 443
        )
        assert verdict.layers() == {NETWORK_ACL}
        assert where in verdict.explain(), verdict.explain()
    private = _without(PRIVATE_RULES, _allow(160, False, INTERNET, *EPH))
    verdict = StackNetwork(_with_acls(private)).check("app", INTERNET, 443)
    assert "private inbound on priv-a: reply to request to the NAT gateway from" in (
        verdict.explain()
    )


def test_routes_decide_what_leaves_and_what_enters() -> None:
    doc = _stack()
    doc["resource"]["aws_vpc_security_group_ingress_rule"]["anyone"] = {
        "security_group_id": _sg("app"),
        "cidr_ipv4": INTERNET,
        "ip_protocol": "tcp",
        "from_port": 8080,
        "to_port": 8080,
    }
    verdict = StackNetwork(doc).check(INTERNET, "app", 8080)
    assert verdict.layers() == {ROUTE}
    assert "the route (nat) carries replies to" in verdict.explain()
    del doc["resource"]["aws_route_table"]["private"]["route"]
    assert StackNetwork(doc).check("app", INTERNET, 443).layers() == {ROUTE}


# --- drift -------------------------------------------------------------------------------------------


def test_security_group_flows_are_every_pair_and_internet_rule() -> None:
    flows = StackNetwork(_stack()).security_group_flows()
    assert flows == [
        (INTERNET, "web", 6, (443, 443)),
        ("app", INTERNET, 6, (443, 443)),
        ("app", "db", 6, (5432, 5432)),
        ("fn", "db", 6, (5432, 5432)),
        ("web", "app", 6, (8080, 8080)),
    ]  # app's "443 anywhere" meeting web's "443 from anywhere" is no flow of its own


def test_a_flow_the_acls_forget_is_reported_as_blocked() -> None:
    forgot = _without(PRIVATE_RULES, _allow(100, False, "10.0.0.0/24", 8080))
    assert StackNetwork(_with_acls(forgot)).check("web", "app", 8080).layers() == {NETWORK_ACL}
    blocked = StackNetwork(_with_acls(forgot)).blocked_by_acls()
    assert [(v.source, v.destination, v.ports) for v in blocked] == [("web", "app", (8080, 8080))]
    assert [(p.source, p.destination) for p in blocked[0].paths] == [
        ("pub-a", "priv-a"),
        ("pub-a", "priv-b"),
    ]
    # A route missing is no ACL drift.
    doc = _with_acls()
    del doc["resource"]["aws_route_table"]["private"]["route"]
    assert StackNetwork(doc).blocked_by_acls() == []


def test_a_reviewed_accidental_pair_can_be_ignored() -> None:
    doc = _with_acls()
    res = doc["resource"]
    # Interface endpoints admitting HTTPS from the whole VPC, and web sending HTTPS anywhere
    # (to Cognito): the groups let web reach the endpoints, which no flow means to.
    res["aws_security_group"]["endpoints"] = {"name": "endpoints"}
    res["aws_vpc_endpoint"] = {
        "logs": {"subnet_ids": [_subnet("priv_a")], "security_group_ids": [_sg("endpoints")]}
    }
    https = {"ip_protocol": "tcp", "from_port": 443, "to_port": 443}
    res["aws_vpc_security_group_ingress_rule"]["vpc"] = {
        "security_group_id": _sg("endpoints"),
        "cidr_ipv4": "10.0.0.0/16",
        **https,
    }
    res["aws_vpc_security_group_egress_rule"]["cognito"] = {
        "security_group_id": _sg("web"),
        "cidr_ipv4": INTERNET,
        **https,
    }
    network = StackNetwork(doc)
    pairs = [(v.source, v.destination) for v in network.blocked_by_acls()]
    assert pairs == [("app", "endpoints"), ("web", "endpoints")]  # web -> Cognito passes
    ignored = network.blocked_by_acls(ignore={("web", "endpoints")})
    assert [(v.source, v.destination) for v in ignored] == [("app", "endpoints")]


# --- the command line ----------------------------------------------------------------------------


def test_the_command_line(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    good = tmp_path / "good.json"
    good.write_text(json.dumps(_with_acls()))
    assert main([str(good), "web", "app", "8080"]) == 0
    assert "web -> app tcp 8080: passes (2 subnet pairs)" in capsys.readouterr().out
    assert main([str(good), "web", "app", "8081-8082"]) == 1
    assert "refused" in capsys.readouterr().out
    assert main([str(good), "--blocked"]) == 0
    bad = tmp_path / "bad.json"
    doc = copy.deepcopy(
        _with_acls(_without(PRIVATE_RULES, _allow(100, False, "10.0.0.0/24", 8080)))
    )
    bad.write_text(json.dumps(doc))
    assert main([str(bad), "--blocked"]) == 1
    assert "1 security-group flows blocked by network ACLs" in capsys.readouterr().out
    assert main([str(good), "web", "nobody", "80"]) == 2
    assert "no security group or subnet named 'nobody'" in capsys.readouterr().err
