"""NetworkLoadBalancer construct: the internal NLB a REST API's VPC link reaches.

Two unit stacks are synthesized once for the module: ``plain`` (defaults: listener 80 to
container port 8080, the VPC admitted, no extra listener) and ``full`` (a migration
listener 8082, allowed private CIDRs instead of the VPC, deletion protection, a longer
deregistration delay).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from constructs_lib.alarms import AlarmSpec, Watch
from constructs_lib.errors import ConfigError
from tests.support import NAMING, UNIT_NETWORK, UnitStack, new_unit_stack, one, resources

CIDRS = ["172.16.0.0/22", "100.64.7.0/24"]
"""Private ranges (a VPN, a peered network)."""
OUTPUTS = ("dns_name", "arn", "arn_suffix", "internal_url")


def _nlb(unit: UnitStack, **overrides: Any) -> Any:
    from constructs_lib.network_load_balancer import (
        NetworkListener,
        NetworkLoadBalancer,
        NetworkLoadBalancerProps,
    )

    props: dict[str, Any] = {"naming": NAMING, "network": unit.network(), "target_port": 8080}
    overrides["extra_listeners"] = [
        NetworkListener(**spec) if isinstance(spec, dict) else spec
        for spec in overrides.get("extra_listeners", ())
    ]
    return NetworkLoadBalancer(
        unit.stack, "nlb", props=NetworkLoadBalancerProps(**{**props, **overrides})
    )


def _stack(**overrides: Any) -> dict[str, Any]:
    from cdktf import TerraformOutput

    unit = new_unit_stack()
    nlb = _nlb(unit, **overrides)
    for name in OUTPUTS:
        TerraformOutput(unit.stack, name, value=getattr(nlb, name))
    TerraformOutput(unit.stack, "forwarding", value=[r.fqn for r in nlb.forwarding])
    TerraformOutput(unit.stack, "target_group_arn", value=nlb.target_group.arn)
    return unit.synth()


@pytest.fixture(scope="module")
def plain() -> dict[str, Any]:
    return _stack()


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    from constructs_lib.network_load_balancer import NetworkListener

    return _stack(
        ingress_cidrs=CIDRS,
        vpc_clients=False,
        extra_listeners=[NetworkListener(8082, 8082, "/db_schema_status")],
        deletion_protection=True,
        deregistration_delay_seconds=120,
    )


def _ref(doc: dict[str, Any], type_: str, attr: str, logical_id: str | None = None) -> str:
    if logical_id is None:
        (logical_id,) = resources(doc, type_)
    return f"${{{type_}.{logical_id}.{attr}}}"


def _nlb_sg(doc: dict[str, Any]) -> str:
    (logical_id,) = [
        k
        for k, v in resources(doc, "aws_security_group").items()
        if v.get("name") == "pcp-unit-nlb"
    ]
    return f"${{aws_security_group.{logical_id}.id}}"


def _target_groups(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Target groups by name."""
    return {tg["name"]: tg for tg in resources(doc, "aws_lb_target_group").values()}


def _tg_arn(doc: dict[str, Any], name: str) -> str:
    (logical_id,) = [
        k for k, v in resources(doc, "aws_lb_target_group").items() if v["name"] == name
    ]
    return _ref(doc, "aws_lb_target_group", "arn", logical_id)


def _ingress(doc: dict[str, Any]) -> list[tuple[int, int, str, str]]:
    sg = _nlb_sg(doc)
    return sorted(
        (r["from_port"], r["to_port"], r["cidr_ipv4"], r["description"])
        for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == sg
    )


# --- the load balancer ----------------------------------------------------------------------


def test_the_nlb_is_internal_in_the_private_subnets_with_its_group_and_cross_zone(
    plain: dict[str, Any],
) -> None:
    nlb = one(plain, "aws_lb")
    private = [f"${{aws_subnet.{k}.id}}" for k in resources(plain, "aws_subnet") if "private" in k]
    assert nlb == {
        "name": "pcp-unit-nlb",
        "internal": True,
        "load_balancer_type": "network",
        "ip_address_type": "ipv4",
        "subnets": private,
        "security_groups": [_nlb_sg(plain)],
        "enforce_security_group_inbound_rules_on_private_link_traffic": "off",
        "enable_cross_zone_load_balancing": True,
        "enable_deletion_protection": False,
        "tags": {"Name": "pcp-unit-nlb"},
    }
    assert len(private) == len(UNIT_NETWORK.availability_zones)
    assert "access_logs" not in nlb


def test_deletion_protection_is_passed_on(full: dict[str, Any]) -> None:
    assert one(full, "aws_lb")["enable_deletion_protection"] is True


def test_the_attributes_name_the_nlb_and_its_main_listener(plain: dict[str, Any]) -> None:
    out = {k: v["value"] for k, v in plain["output"].items()}
    assert out["dns_name"] == _ref(plain, "aws_lb", "dns_name")
    assert out["arn"] == _ref(plain, "aws_lb", "arn")
    assert out["arn_suffix"] == _ref(plain, "aws_lb", "arn_suffix")
    assert out["internal_url"] == f"http://{_ref(plain, 'aws_lb', 'dns_name')}:80"
    assert out["target_group_arn"] == _tg_arn(plain, "pcp-unit-nlb-80")


# --- target groups and listeners --------------------------------------------------------------


def test_the_target_group_forwards_tcp_to_task_ips_and_checks_http_health(
    plain: dict[str, Any],
) -> None:
    (vpc_id,) = resources(plain, "aws_vpc")
    assert _target_groups(plain) == {
        "pcp-unit-nlb-80": {
            "name": "pcp-unit-nlb-80",
            "vpc_id": f"${{aws_vpc.{vpc_id}.id}}",
            "target_type": "ip",
            "protocol": "TCP",
            "port": 8080,
            "preserve_client_ip": "false",
            "deregistration_delay": "30",
            "connection_termination": True,
            "health_check": {
                "enabled": True,
                "protocol": "HTTP",
                "port": "traffic-port",
                "path": "/health",
                "matcher": "200",
                "interval": 15,
                "timeout": 5,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            "tags": {"Name": "pcp-unit-nlb-80"},
        }
    }


def test_each_listener_forwards_tcp_to_its_own_target_group(full: dict[str, Any]) -> None:
    nlb = _ref(full, "aws_lb", "arn")
    listeners = {lst["port"]: lst for lst in resources(full, "aws_lb_listener").values()}
    assert sorted(listeners) == [80, 8082]
    for port in (80, 8082):
        assert listeners[port] == {
            "load_balancer_arn": nlb,
            "port": port,
            "protocol": "TCP",
            "default_action": [
                {"type": "forward", "target_group_arn": _tg_arn(full, f"pcp-unit-nlb-{port}")}
            ],
        }
    groups = _target_groups(full)
    assert (groups["pcp-unit-nlb-80"]["port"], groups["pcp-unit-nlb-8082"]["port"]) == (8080, 8082)
    assert groups["pcp-unit-nlb-8082"]["health_check"]["path"] == "/db_schema_status"
    assert {g["deregistration_delay"] for g in groups.values()} == {"120"}
    listener_refs = {f"${{aws_lb_listener.{k}}}" for k in resources(full, "aws_lb_listener")}
    assert set(full["output"]["forwarding"]["value"]) == listener_refs


# --- who gets in --------------------------------------------------------------------------------


def test_by_default_the_vpc_is_admitted_on_the_listener_port_only(plain: dict[str, Any]) -> None:
    assert _ingress(plain) == [(80, 80, "10.0.0.0/16", "Clients in the VPC 10.0.0.0/16")]
    sg = _nlb_sg(plain)
    egress = resources(plain, "aws_vpc_security_group_egress_rule").values()
    assert [r for r in egress if r["security_group_id"] == sg] == []


def test_allowed_cidrs_are_admitted_on_every_listener_port_instead_of_the_vpc(
    full: dict[str, Any],
) -> None:
    assert _ingress(full) == sorted(
        (port, port, cidr, f"Allowed CIDR {cidr}") for port in (80, 8082) for cidr in CIDRS
    )


def test_a_security_group_is_admitted_on_a_listener_port_with_allow_from(
    unit_stack: UnitStack,
) -> None:
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    from constructs_lib.network_load_balancer import NetworkListener

    nlb = _nlb(unit_stack, extra_listeners=[NetworkListener(8082, 8082)])
    function = SecurityGroup(unit_stack.stack, "function", vpc_id="vpc-1", description="fn")
    nlb.allow_from(function, description="migration function")
    nlb.allow_from(function, description="migration function", port=8082)
    with pytest.raises(
        ConfigError,
        match=r"^unit/nlb\.allow_from\.port: got 9000, give a listener port \(80, 8082\)$",
    ):
        nlb.allow_from(function, description="nothing listens", port=9000)
    doc = unit_stack.synth()
    fn = f"${{aws_security_group.{unit_stack.stack.get_logical_id(function)}.id}}"
    ingress = [
        (r["from_port"], r["referenced_security_group_id"])
        for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == _nlb_sg(doc) and "referenced_security_group_id" in r
    ]
    assert sorted(ingress) == [(80, fn), (8082, fn)]
    egress = [
        (r["from_port"], r["referenced_security_group_id"])
        for r in resources(doc, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == fn
    ]
    assert sorted(egress) == [(80, _nlb_sg(doc)), (8082, _nlb_sg(doc))]


# --- a Fargate service behind it ------------------------------------------------------------------


def test_a_fargate_service_registers_behind_the_nlb_and_admits_it(unit_stack: UnitStack) -> None:
    from constructs_lib.network_load_balancer import NetworkListener

    nlb = _nlb(unit_stack, extra_listeners=[NetworkListener(8082, 8082)])
    service = unit_stack.service("metadata", load_balancer=nlb)
    service.scale_on_cpu(60)
    doc = unit_stack.synth()
    ecs = one(doc, "aws_ecs_service")
    assert ecs["load_balancer"] == [
        {
            "target_group_arn": _tg_arn(doc, "pcp-unit-nlb-80"),
            "container_name": "metadata",
            "container_port": 8080,
        }
    ]
    listeners = {f"aws_lb_listener.{k}" for k in resources(doc, "aws_lb_listener")}
    assert len(listeners) == 2
    assert listeners <= set(ecs["depends_on"])
    service_sg = (
        f"${{aws_security_group.{unit_stack.stack.get_logical_id(service.security_group)}.id}}"
    )
    (ingress,) = [
        r
        for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == service_sg
    ]
    assert (ingress["referenced_security_group_id"], ingress["from_port"]) == (_nlb_sg(doc), 8080)
    (egress,) = [
        r
        for r in resources(doc, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == _nlb_sg(doc)
    ]
    assert (egress["referenced_security_group_id"], egress["from_port"]) == (service_sg, 8080)


def test_scaling_on_requests_behind_an_nlb_is_refused_with_a_fix(unit_stack: UnitStack) -> None:
    nlb = _nlb(unit_stack)
    service = unit_stack.service("metadata", load_balancer=nlb)
    with pytest.raises(
        ConfigError,
        match=r"^unit/nlb\.request_count_label: got a Network Load Balancer, scale the service "
        r"with scale_on_cpu or scale_on_backlog_per_task: ALBRequestCountPerTarget exists only",
    ):
        service.scale_on_requests(500)
    assert service.scaling_policies == {}


# --- alarms ----------------------------------------------------------------------------------------


def _synth_metrics(unit: UnitStack, specs: Iterable[AlarmSpec]) -> dict[str, Any]:
    """The stack synthesized with each spec's metric as the output ``metric-<key>``."""
    from cdktf import TerraformOutput

    for spec in specs:
        TerraformOutput(unit.stack, f"metric-{spec.key}", value=list(spec.metric))
    return unit.synth()


def test_alarms_watch_each_target_group_and_the_target_resets(unit_stack: UnitStack) -> None:
    nlb = _nlb(unit_stack, extra_listeners=[{"port": 8082, "target_port": 8082}])
    specs = {s.key: s for s in nlb.alarms()}
    assert list(specs) == [
        "nlb-80-unhealthy-targets",
        "nlb-80-no-healthy-targets",
        "nlb-8082-unhealthy-targets",
        "nlb-8082-no-healthy-targets",
        "nlb-target-resets",
    ]
    doc = _synth_metrics(unit_stack, specs.values())

    def resolve(key: str) -> Any:
        return doc["output"][f"metric-{key}"]["value"]

    lb = _ref(doc, "aws_lb", "arn_suffix")
    for port in (80, 8082):
        (tg_id,) = [
            k
            for k, v in resources(doc, "aws_lb_target_group").items()
            if v["name"] == f"pcp-unit-nlb-{port}"
        ]
        tg = _ref(doc, "aws_lb_target_group", "arn_suffix", tg_id)
        dims = {"LoadBalancer": lb, "TargetGroup": tg}
        unhealthy = specs[f"nlb-{port}-unhealthy-targets"]
        assert resolve(unhealthy.key) == ["AWS/NetworkELB", "UnHealthyHostCount", dims]
        assert unhealthy.watch == Watch("Maximum", 60, ">", 0, evaluations=5, datapoints=3)
        assert unhealthy.breakage
        none = specs[f"nlb-{port}-no-healthy-targets"]
        assert resolve(none.key) == ["AWS/NetworkELB", "HealthyHostCount", dims]
        assert none.watch == Watch("Minimum", 60, "<", 1, evaluations=3)
        assert none.breakage
    resets = specs["nlb-target-resets"]
    assert resolve(resets.key) == [
        "AWS/NetworkELB",
        "TCP_Target_Reset_Count",
        {"LoadBalancer": lb},
    ]
    assert resets.watch == Watch("Sum", 300, ">", 100, evaluations=3, datapoints=2)
    assert resets.breakage is False


# --- refused configurations -----------------------------------------------------------------------


def _listener(**fields: Any) -> dict[str, Any]:
    """A further listener's fields (``NetworkListener``), 8082 to 8082 unless given."""
    return {"port": 8082, "target_port": 8082, **fields}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"access_logs_bucket_name": "pcp-unit-nlb-logs"},
            r"access_logs_bucket_name: got 'pcp-unit-nlb-logs', leave it unset: a Network Load "
            r"Balancer logs TLS listeners only",
        ),
        ({"listener_port": 0}, r"listener_port: got 0, give a TCP port 1-65535"),
        ({"target_port": 65536}, r"target_port: got 65536, give a TCP port 1-65535"),
        (
            {"extra_listeners": [_listener(port=70000)]},
            r"extra_listeners\.port: got 70000, give a TCP port",
        ),
        (
            {"extra_listeners": [_listener(target_port=0)]},
            r"extra_listeners\.target_port: got 0, give a TCP port",
        ),
        (
            {"extra_listeners": [_listener(port=80)]},
            r"extra_listeners: got \[80\], give each listener its own port",
        ),
        ({"health_check_path": "health"}, r"health_check_path: got 'health', start it with /"),
        (
            {"extra_listeners": [_listener(health_check_path="status")]},
            r"extra_listeners\.health_check_path: got 'status', start it with /",
        ),
        (
            {"ingress_cidrs": ["203.0.113.0/24"]},
            r"ingress_cidrs: got '203\.0\.113\.0/24', the load balancer is internal: only private",
        ),
        (
            {"ingress_cidrs": ["0.0.0.0/0"]},
            r"ingress_cidrs: got '0\.0\.0\.0/0', the allow-list must not admit the whole internet",
        ),
        ({"ingress_cidrs": ["10.1.0.0/33"]}, r"ingress_cidrs: got '10\.1\.0\.0/33', give IPv4"),
        (
            {"ingress_cidrs": ["172.16.0.0/22", "172.16.0.0/22"]},
            r"ingress_cidrs: got \['172\.16\.0\.0/22'\], give each range once",
        ),
        (
            {"ingress_cidrs": ["10.0.0.0/16"]},
            r"ingress_cidrs: got '10\.0\.0\.0/16', the VPC's CIDR is admitted already",
        ),
        (
            {"deregistration_delay_seconds": 3601},
            r"deregistration_delay_seconds: got 3601, give 0-3600 seconds",
        ),
        (
            {"deregistration_delay_seconds": -1},
            r"deregistration_delay_seconds: got -1, give 0-3600 seconds",
        ),
    ],
)
def test_a_wrong_setting_is_refused_with_the_fix(
    unit_stack: UnitStack, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^unit/nlb\.{message}"):
        _nlb(unit_stack, **overrides)


def test_the_vpc_cidr_may_be_listed_when_the_vpc_is_not_admitted(unit_stack: UnitStack) -> None:
    _nlb(unit_stack, vpc_clients=False, ingress_cidrs=["10.0.0.0/16"])
    doc = unit_stack.synth()
    assert _ingress(doc) == [(80, 80, "10.0.0.0/16", "Allowed CIDR 10.0.0.0/16")]


def test_names_too_long_for_a_target_group_are_refused(unit_stack: UnitStack) -> None:
    from constructs_lib.naming import Naming

    with pytest.raises(
        ConfigError,
        match=r"^unit/nlb\.naming: got 'pcp-a-long-environment-nam-nlb-80', load balancer "
        r"names are limited to 32 characters; shorten the environment name$",
    ):
        _nlb(unit_stack, naming=Naming("a-long-environment-nam"))


def test_only_scaling_on_requests_reads_a_request_count_label() -> None:
    """An NLB's ``request_count_label`` raises, so nothing but
    ``FargateService.scale_on_requests`` (an explicit request to scale on ALB requests)
    may read it: a dashboard or an alarm reading it would break every NLB-backed stack."""
    import ast

    from tests.support import ROOT

    readers = []
    for folder in ("constructs_lib", "stacks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for function in ast.walk(tree):
                if not isinstance(function, ast.FunctionDef):
                    continue
                for node in ast.walk(function):
                    if isinstance(node, ast.Attribute) and node.attr == "request_count_label":
                        readers.append(f"{path.relative_to(ROOT)}:{function.name}")
    assert readers == ["constructs_lib/service.py:scale_on_requests"]


def test_a_listener_closed_to_clients_admits_only_granted_groups() -> None:
    doc = _stack(
        ingress_cidrs=CIDRS,
        extra_listeners=[
            {"port": 8082, "target_port": 8082, "open_to_clients": False},
            {"port": 9000, "target_port": 9000},
        ],
    )
    ports = {port for port, _, _, _ in _ingress(doc)}
    assert ports == {80, 9000}  # 8082 admits no CIDR: only allow_from(..., port=8082)
