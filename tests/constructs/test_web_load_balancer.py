"""WebLoadBalancer construct: an ALB users reach directly, secure by default.

Three unit stacks are synthesized once for the module: ``internal`` (defaults: no
certificate, so internal and plain HTTP), ``https`` (a certificate and a DNS record, no
authentication) and ``full`` (certificate, Cognito authentication, unauthenticated paths,
access logs, a web ACL, deletion protection). Error paths build without synthesizing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from constructs_lib.errors import ConfigError
from constructs_lib.options import NatGateways
from tests.support import (
    NAMING,
    ONE_AZ_NETWORK,
    UNIT_NETWORK,
    UnitStack,
    new_unit_stack,
    one,
    resources,
)

if TYPE_CHECKING:
    from constructs_lib.user_pool import CognitoAuthentication
    from constructs_lib.web_load_balancer import WebLoadBalancer

CERT = "arn:aws:acm:eu-central-1:123456789012:certificate/web"
DOMAIN = "metabase.example.com"
ZONE = "Z0123456789ABCDEFGHIJ"
POOL_ARN = "arn:aws:cognito-idp:eu-central-1:123456789012:userpool/eu-central-1_AbC123"
WEB_ACL = "arn:aws:wafv2:eu-central-1:123456789012:regional/webacl/web/0123-abcd"
PUBLIC_PATHS = ["/public/*", "/embed/*", "/api/public/*", "/app/dist/*", "/favicon.ico", "/x"]
"""Six patterns: two rules (a rule holds five values)."""
OUTPUTS = ("dns_name", "url", "arn_suffix", "target_group_arn_suffix", "request_count_label")


def _auth(**overrides: Any) -> CognitoAuthentication:
    from constructs_lib.user_pool import CognitoAuthentication

    values: dict[str, Any] = {
        "user_pool_arn": POOL_ARN,
        "user_pool_client_id": "client123",
        "user_pool_domain": "metabase-unit",
        "session_timeout_seconds": 3600,
        **overrides,
    }
    return CognitoAuthentication(**values)


def _build(unit: UnitStack, **overrides: Any) -> WebLoadBalancer:
    from constructs_lib.web_load_balancer import WebLoadBalancer, WebLoadBalancerProps

    network = unit.network(overrides.pop("network", UNIT_NETWORK))
    props: dict[str, Any] = {"naming": NAMING, "network": network, "target_port": 3000}
    return WebLoadBalancer(unit.stack, "web", props=WebLoadBalancerProps(**{**props, **overrides}))


def _stack(**overrides: Any) -> UnitStack:
    from cdktf import TerraformOutput

    unit = new_unit_stack()
    lb = _build(unit, **overrides)
    for name in OUTPUTS:
        TerraformOutput(unit.stack, name, value=getattr(lb, name))
    TerraformOutput(unit.stack, "forwarding", value=[r.fqn for r in lb.forwarding])
    unit.parts["lb"] = lb
    return unit


@pytest.fixture(scope="module")
def internal() -> dict[str, Any]:
    return _stack().synth()


@pytest.fixture(scope="module")
def https() -> dict[str, Any]:
    return _stack(certificate_arn=CERT, domain_name=DOMAIN, hosted_zone_id=ZONE).synth()


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return _stack(
        certificate_arn=CERT,
        domain_name=DOMAIN,
        authentication=_auth(),
        unauthenticated_paths=PUBLIC_PATHS,
        access_logs_bucket_name="pcp-unit-web-logs",
        web_acl_arn=WEB_ACL,
        deletion_protection=True,
        idle_timeout_seconds=300,
        deregistration_delay_seconds=10,
        hsts_max_age_seconds=600,
    ).synth()


def _ref(doc: dict[str, Any], type_: str, attr: str = "id") -> str:
    (logical_id,) = resources(doc, type_)
    return f"${{{type_}.{logical_id}.{attr}}}"


def _listeners(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {lst["port"]: lst for lst in resources(doc, "aws_lb_listener").values()}


def _subnets(doc: dict[str, Any], tier: str) -> list[str]:
    """The network's ``tier`` subnets, in AZ order."""
    return [f"${{aws_subnet.{k}.id}}" for k in resources(doc, "aws_subnet") if tier in k]


def _sg_rules(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The load balancer security group's ``ingress`` or ``egress`` rules."""
    sg = _ref(doc, "aws_security_group")
    rules = resources(doc, f"aws_vpc_security_group_{kind}_rule").values()
    return [r for r in rules if r["security_group_id"] == sg]


def _outputs(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v["value"] for k, v in doc["output"].items()}


# --- placement and listeners ----------------------------------------------------------


def test_without_certificate_it_is_internal_in_private_subnets_and_forwards_http(
    internal: dict[str, Any],
) -> None:
    alb = one(internal, "aws_lb")
    assert alb["internal"] is True
    assert alb["subnets"] == _subnets(internal, "private")
    assert alb["name"] == "pcp-unit-web"
    listeners = _listeners(internal)
    assert list(listeners) == [80]
    assert listeners[80]["protocol"] == "HTTP"
    assert listeners[80]["default_action"] == [
        {"type": "forward", "target_group_arn": _ref(internal, "aws_lb_target_group", "arn")}
    ]
    assert "aws_lb_listener_rule" not in internal["resource"]


def test_with_certificate_it_is_internet_facing_in_public_subnets(https: dict[str, Any]) -> None:
    alb = one(https, "aws_lb")
    assert alb["internal"] is False
    assert alb["subnets"] == _subnets(https, "public")


def test_https_serves_with_the_tls13_policy_and_hsts_and_http_redirects_301(
    https: dict[str, Any], full: dict[str, Any]
) -> None:
    listeners = _listeners(https)
    assert sorted(listeners) == [80, 443]
    tls = listeners[443]
    assert (tls["protocol"], tls["certificate_arn"]) == ("HTTPS", CERT)
    assert tls["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert tls["load_balancer_arn"] == _ref(https, "aws_lb", "arn")
    assert tls["routing_http_response_strict_transport_security_header_value"] == (
        "max-age=31536000"
    )
    assert tls["default_action"] == [
        {"type": "forward", "target_group_arn": _ref(https, "aws_lb_target_group", "arn")}
    ]
    (redirect,) = listeners[80]["default_action"]
    assert redirect == {
        "type": "redirect",
        "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
    }
    full_tls = _listeners(full)[443]
    assert full_tls["routing_http_response_strict_transport_security_header_value"] == (
        "max-age=600"
    )


def test_hsts_can_be_switched_off() -> None:
    doc = _stack(certificate_arn=CERT, domain_name=DOMAIN, hsts_max_age_seconds=None).synth()
    tls = _listeners(doc)[443]
    assert "routing_http_response_strict_transport_security_header_value" not in tls


def test_an_https_load_balancer_can_stay_internal() -> None:
    doc = _stack(
        certificate_arn=CERT,
        domain_name=DOMAIN,
        internet_facing=False,
        ingress_cidrs=["10.8.0.0/16"],
    ).synth()
    alb = one(doc, "aws_lb")
    assert alb["internal"] is True
    assert alb["subnets"] == _subnets(doc, "private")
    assert sorted(_listeners(doc)) == [80, 443]


# --- Cognito ------------------------------------------------------------------------------


def test_cognito_signs_users_in_before_the_request_is_forwarded(full: dict[str, Any]) -> None:
    actions = _listeners(full)[443]["default_action"]
    assert [(a["order"], a["type"]) for a in actions] == [
        (1, "authenticate-cognito"),
        (2, "forward"),
    ]
    assert actions[0]["authenticate_cognito"] == {
        "user_pool_arn": POOL_ARN,
        "user_pool_client_id": "client123",
        "user_pool_domain": "metabase-unit",
        "scope": "openid email",
        "session_timeout": 3600,
        "on_unauthenticated_request": "authenticate",
    }
    assert actions[1]["target_group_arn"] == _ref(full, "aws_lb_target_group", "arn")
    (redirect,) = _listeners(full)[80]["default_action"]
    assert redirect["type"] == "redirect"


def test_authentication_lets_the_load_balancer_reach_cognito_over_https_only(
    full: dict[str, Any], https: dict[str, Any], internal: dict[str, Any]
) -> None:
    (egress,) = _sg_rules(full, "egress")
    assert egress["cidr_ipv4"] == "0.0.0.0/0"
    assert (egress["ip_protocol"], egress["from_port"], egress["to_port"]) == ("tcp", 443, 443)
    assert "Cognito" in egress["description"]
    assert _sg_rules(https, "egress") == []
    assert _sg_rules(internal, "egress") == []


def test_unauthenticated_paths_are_forwarded_without_signing_in(full: dict[str, Any]) -> None:
    (https_id,) = [k for k, v in resources(full, "aws_lb_listener").items() if v["port"] == 443]
    rules = sorted(resources(full, "aws_lb_listener_rule").values(), key=lambda r: r["priority"])
    assert [r["priority"] for r in rules] == [10, 11]
    for rule in rules:
        assert rule["listener_arn"] == f"${{aws_lb_listener.{https_id}.arn}}"
        assert rule["action"] == [
            {"type": "forward", "target_group_arn": _ref(full, "aws_lb_target_group", "arn")}
        ]
    paths = [r["condition"][0]["path_pattern"]["values"] for r in rules]
    assert paths == [PUBLIC_PATHS[:5], PUBLIC_PATHS[5:]]
    forwarding = _outputs(full)["forwarding"]
    assert forwarding[0] == f"${{aws_lb_listener.{https_id}}}"
    assert sorted(forwarding[1:]) == [
        f"${{aws_lb_listener_rule.{k}}}" for k in sorted(resources(full, "aws_lb_listener_rule"))
    ]


# --- security group -----------------------------------------------------------------------


def test_internal_by_default_admits_only_the_vpc_range_on_80_and_sends_nothing(
    internal: dict[str, Any],
) -> None:
    group = one(internal, "aws_security_group")
    assert group["name"] == "pcp-unit-web"
    assert "ingress" not in group
    assert "egress" not in group
    rules = _sg_rules(internal, "ingress")
    assert [(r["cidr_ipv4"], r["from_port"], r["to_port"]) for r in rules] == [
        ("10.0.0.0/16", 80, 80)
    ]
    assert _sg_rules(internal, "egress") == []


def test_internet_facing_admits_everyone_on_80_and_443_by_default(https: dict[str, Any]) -> None:
    rules = _sg_rules(https, "ingress")
    assert sorted((r["cidr_ipv4"], r["from_port"]) for r in rules) == [
        ("0.0.0.0/0", 80),
        ("0.0.0.0/0", 443),
    ]
    assert all(r["from_port"] == r["to_port"] and r["ip_protocol"] == "tcp" for r in rules)


def test_ingress_cidrs_replace_the_default() -> None:
    doc = _stack(
        certificate_arn=CERT, domain_name=DOMAIN, ingress_cidrs=["203.0.113.0/24", "10.8.0.0/16"]
    ).synth()
    rules = _sg_rules(doc, "ingress")
    assert sorted((r["cidr_ipv4"], r["from_port"]) for r in rules) == [
        ("10.8.0.0/16", 80),
        ("10.8.0.0/16", 443),
        ("203.0.113.0/24", 80),
        ("203.0.113.0/24", 443),
    ]


def test_a_fargate_service_behind_it_admits_it_and_starts_after_it_forwards(
    unit_stack: UnitStack,
) -> None:
    from constructs_lib.service import ServiceLoadBalancer

    lb = _build(unit_stack, certificate_arn=CERT, domain_name=DOMAIN, authentication=_auth())
    balancer: ServiceLoadBalancer = lb  # what FargateService takes (mypy checks the protocol)
    service = unit_stack.service("metabase", load_balancer=balancer, port=3000)
    service.scale_on_requests(200)
    doc = unit_stack.synth()
    lb_sg = f"${{aws_security_group.{unit_stack.stack.get_logical_id(lb.security_group)}.id}}"
    service_sg = (
        f"${{aws_security_group.{unit_stack.stack.get_logical_id(service.security_group)}.id}}"
    )
    (ingress,) = [
        r
        for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == service_sg
    ]
    assert ingress["referenced_security_group_id"] == lb_sg
    assert (ingress["from_port"], ingress["to_port"]) == (3000, 3000)
    egress = [
        r
        for r in resources(doc, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == lb_sg
    ]
    assert {
        (r.get("referenced_security_group_id") or r["cidr_ipv4"], r["from_port"]) for r in egress
    } == {("0.0.0.0/0", 443), (service_sg, 3000)}  # Cognito, the tasks
    ecs = one(doc, "aws_ecs_service")
    (registration,) = ecs["load_balancer"]
    tg_id = unit_stack.stack.get_logical_id(lb.target_group)
    assert registration["target_group_arn"] == f"${{aws_lb_target_group.{tg_id}.arn}}"
    assert registration["container_port"] == 3000
    forwarding = {f"{r.terraform_resource_type}.{r.friendly_unique_id}" for r in lb.forwarding}
    assert forwarding == {f"aws_lb_listener.{unit_stack.stack.get_logical_id(lb.listener)}"}
    assert forwarding <= set(ecs["depends_on"])
    (policy,) = resources(doc, "aws_appautoscaling_policy").values()
    spec = policy["target_tracking_scaling_policy_configuration"]["predefined_metric_specification"]
    (alb_id,) = resources(doc, "aws_lb")
    assert spec["resource_label"] == (
        f"${{aws_lb.{alb_id}.arn_suffix}}/${{aws_lb_target_group.{tg_id}.arn_suffix}}"
    )


# --- target group, hardening, logs, WAF, DNS ----------------------------------------------


def test_target_group_registers_task_ips_with_a_health_check_and_replaces_cleanly(
    internal: dict[str, Any], full: dict[str, Any]
) -> None:
    tg = one(internal, "aws_lb_target_group")
    # A generated name (prefix + unique suffix): a replacement made before the old group
    # goes never collides with it; the readable name is its tag.
    assert "name" not in tg
    assert tg["name_prefix"] == "pcun-"
    assert tg["tags"]["Name"] == "pcp-unit-web-3000"
    assert tg["target_type"] == "ip"
    assert (tg["protocol"], tg["port"]) == ("HTTP", 3000)
    assert tg["vpc_id"] == _ref(internal, "aws_vpc")
    assert tg["deregistration_delay"] == "30"
    assert tg["lifecycle"] == {"create_before_destroy": True}
    check = tg["health_check"]
    assert (check["path"], check["matcher"], check["port"]) == ("/health", "200", "traffic-port")
    assert one(full, "aws_lb_target_group")["deregistration_delay"] == "10"


def test_alb_drops_invalid_headers_mitigates_desync_and_applies_the_settings(
    internal: dict[str, Any], full: dict[str, Any]
) -> None:
    for doc in (internal, full):
        alb = one(doc, "aws_lb")
        assert alb["drop_invalid_header_fields"] is True
        assert alb["desync_mitigation_mode"] == "defensive"
        assert alb["ip_address_type"] == "ipv4"
        assert alb["load_balancer_type"] == "application"
        assert alb["security_groups"] == [_ref(doc, "aws_security_group")]
    default = one(internal, "aws_lb")
    assert (default["enable_deletion_protection"], default["idle_timeout"]) == (False, 60)
    assert "access_logs" not in default
    configured = one(full, "aws_lb")
    assert (configured["enable_deletion_protection"], configured["idle_timeout"]) == (True, 300)


def test_access_logs_go_to_a_bucket_alb_log_delivery_may_write(
    full: dict[str, Any], internal: dict[str, Any]
) -> None:
    assert "aws_s3_bucket" not in internal["resource"]
    bucket = one(full, "aws_s3_bucket")
    assert bucket["bucket"] == "pcp-unit-web-logs"
    assert bucket["force_destroy"] is False
    policy = json.loads(one(full, "aws_s3_bucket_policy")["policy"])
    (allow,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"]["Service"] == "logdelivery.elasticloadbalancing.amazonaws.com"
    assert allow["Resource"] == [f"{_ref(full, 'aws_s3_bucket', 'arn')}/alb/AWSLogs/*"]
    alb = one(full, "aws_lb")
    assert alb["access_logs"] == {
        "bucket": _ref(full, "aws_s3_bucket"),
        "prefix": "alb",
        "enabled": True,
    }
    (policy_id,) = resources(full, "aws_s3_bucket_policy")
    assert alb["depends_on"] == [f"aws_s3_bucket_policy.{policy_id}"]


def test_a_regional_web_acl_is_associated(full: dict[str, Any], https: dict[str, Any]) -> None:
    association = one(full, "aws_wafv2_web_acl_association")
    assert association == {
        "resource_arn": _ref(full, "aws_lb", "arn"),
        "web_acl_arn": WEB_ACL,
    }
    assert "aws_wafv2_web_acl_association" not in https["resource"]


def test_route53_alias_record_points_at_the_alb(
    https: dict[str, Any], full: dict[str, Any]
) -> None:
    record = one(https, "aws_route53_record")
    assert (record["name"], record["type"], record["zone_id"]) == (DOMAIN, "A", ZONE)
    assert record["alias"] == {
        "name": _ref(https, "aws_lb", "dns_name"),
        "zone_id": _ref(https, "aws_lb", "zone_id"),
        "evaluate_target_health": True,
    }
    assert "aws_route53_record" not in full["resource"]  # no hosted_zone_id


# --- attributes and alarms ------------------------------------------------------------------


def test_exposed_attributes(internal: dict[str, Any], https: dict[str, Any]) -> None:
    out = _outputs(internal)
    dns = _ref(internal, "aws_lb", "dns_name")
    assert out["dns_name"] == dns
    assert out["url"] == f"http://{dns}"
    assert out["arn_suffix"] == _ref(internal, "aws_lb", "arn_suffix")
    assert out["target_group_arn_suffix"] == _ref(internal, "aws_lb_target_group", "arn_suffix")
    assert out["request_count_label"] == f"{out['arn_suffix']}/{out['target_group_arn_suffix']}"
    (http_id,) = resources(internal, "aws_lb_listener")
    assert out["forwarding"] == [f"${{aws_lb_listener.{http_id}}}"]
    assert _outputs(https)["url"] == f"https://{DOMAIN}"
    named = _build(new_unit_stack(), domain_name="bi.internal.example.com")
    assert named.url == "http://bi.internal.example.com"


def test_alarms_watch_5xx_unhealthy_targets_and_latency() -> None:
    unit = new_unit_stack()
    lb = _build(unit, name="metabase", alarm_5xx_threshold=25, p99_latency_threshold_seconds=3)
    lb_dims = {"LoadBalancer": lb.arn_suffix}
    specs = {s.key: s for s in lb.alarms()}
    assert list(specs) == [
        "metabase-target-5xx",
        "metabase-elb-5xx",
        "metabase-unhealthy-targets",
        "metabase-p99-latency",
    ]
    target, elb, unhealthy, latency = specs.values()
    assert target.metric == ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb_dims)
    assert elb.metric == ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb_dims)
    for spec in (target, elb):
        assert (spec.watch.statistic, spec.watch.period, spec.watch.threshold) == ("Sum", 300, 25)
        assert spec.watch.compare == ">"
    assert unhealthy.metric == (
        "AWS/ApplicationELB",
        "UnHealthyHostCount",
        {"TargetGroup": lb.target_group_arn_suffix, **lb_dims},
    )
    assert (unhealthy.watch.statistic, unhealthy.watch.threshold) == ("Maximum", 0)
    assert (unhealthy.watch.evaluations, unhealthy.watch.datapoints) == (5, 3)
    assert latency.metric == ("AWS/ApplicationELB", "TargetResponseTime", lb_dims)
    assert (latency.watch.statistic, latency.watch.threshold) == ("p99", 3)
    assert [s.breakage for s in specs.values()] == [True, True, True, False]
    assert "Cognito" in elb.description
    assert "3 s" in latency.description


# --- refused configurations -----------------------------------------------------------------

NO_NAT = replace(UNIT_NETWORK, nat_gateways=NatGateways.NONE)
HTTPS = {"certificate_arn": CERT, "domain_name": DOMAIN}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"internet_facing": True},
            r"^unit/web\.internet_facing: got True, plain HTTP must never face the internet: "
            r"give certificate_arn",
        ),
        ({"network": ONE_AZ_NETWORK}, r"^unit/web\.network: got 1, .*private subnets in 2"),
        ({**HTTPS, "network": ONE_AZ_NETWORK}, r"network: got 1, .*public subnets in 2"),
        ({"certificate_arn": CERT}, r"^unit/web\.domain_name: got None, certificate_arn needs"),
        ({"hosted_zone_id": ZONE}, r"domain_name: got None, hosted_zone_id is set"),
        ({**HTTPS, "domain_name": "https://a.example.com"}, r"domain_name: got 'https://"),
        ({"ingress_cidrs": []}, r"ingress_cidrs: got an empty list, .*nobody"),
        ({"ingress_cidrs": ["10.0.0.1/24"]}, r"ingress_cidrs: got '10\.0\.0\.1/24', give IPv4"),
        ({"ingress_cidrs": ["2001:db8::/32"]}, r"ingress_cidrs: got '2001:db8::/32', give IPv4"),
        (
            {"ingress_cidrs": ["203.0.113.0/24"]},
            r"ingress_cidrs: got '203\.0\.113\.0/24', the load balancer is internal: .*"
            r"give a certificate_arn",
        ),
        ({"ingress_cidrs": ["0.0.0.0/0"]}, r"ingress_cidrs: got '0\.0\.0\.0/0', .*internal"),
        (
            {"authentication": "AUTH"},
            r"^unit/web\.authentication: got Cognito without certificate_arn, .*HTTPS",
        ),
        (
            {**HTTPS, "authentication": {"user_pool_arn": "eu-central-1_AbC123"}},
            r"authentication\.user_pool_arn: got 'eu-central-1_AbC123', give the pool's ARN",
        ),
        (
            {**HTTPS, "authentication": {"user_pool_client_id": ""}},
            r"authentication\.user_pool_client_id: got ''",
        ),
        (
            {**HTTPS, "authentication": {"scope": "email profile"}},
            r"authentication\.scope: got 'email profile', include openid",
        ),
        (
            {**HTTPS, "authentication": {"session_timeout_seconds": 604801}},
            r"authentication\.session_timeout_seconds: got 604801, give 1-604800",
        ),
        (
            {**HTTPS, "authentication": {"on_unauthenticated_request": "redirect"}},
            r"authentication\.on_unauthenticated_request: got 'redirect', use one of",
        ),
        (
            {
                **HTTPS,
                "authentication": "AUTH",
                "internet_facing": False,
                "ingress_cidrs": ["10.8.0.0/16"],
                "network": NO_NAT,
            },
            r"authentication: got an internal load balancer in a network without NAT",
        ),
        (
            {**HTTPS, "unauthenticated_paths": ["/public/*"]},
            r"unauthenticated_paths: got /public/\*, without authentication",
        ),
        (
            {**HTTPS, "authentication": "AUTH", "unauthenticated_paths": ["public/*"]},
            r"unauthenticated_paths: got 'public/\*', give path patterns starting with /",
        ),
        ({"target_port": 70000}, r"^unit/web\.target_port: got 70000"),
        ({"health_check_path": "api/health"}, r"health_check_path: got 'api/health', start"),
        ({"idle_timeout_seconds": 0}, r"idle_timeout_seconds: got 0, give 1-4000"),
        ({"deregistration_delay_seconds": 3601}, r"deregistration_delay_seconds: got 3601"),
        ({"name": "Web_App"}, r"name: got 'Web_App', use lower-case"),
        ({"name": "a-rather-long-application"}, r"naming: got 'pcp-unit-a-rather-long-app"),
        (
            {"web_acl_arn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/cdn/1"},
            r"web_acl_arn: got .*, give a REGIONAL web ACL",
        ),
        ({**HTTPS, "hsts_max_age_seconds": 0}, r"hsts_max_age_seconds: got 0"),
        ({"alarm_5xx_threshold": 0}, r"alarm_5xx_threshold: got 0, give 1 or more"),
        ({"p99_latency_threshold_seconds": 0}, r"p99_latency_threshold_seconds: got 0"),
    ],
)
def test_invalid_configuration_is_refused(overrides: dict[str, Any], message: str) -> None:
    auth = overrides.get("authentication")
    if auth == "AUTH":
        overrides = {**overrides, "authentication": _auth()}
    elif isinstance(auth, dict):
        overrides = {**overrides, "authentication": _auth(**auth)}
    with pytest.raises(ConfigError, match=message):
        _build(new_unit_stack(), **overrides)


@pytest.mark.parametrize("prefix", ["", "toolong-"])
def test_a_target_group_prefix_fits_the_providers_limit(unit_stack: UnitStack, prefix: str) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.load_balancer import ip_target_group

    with pytest.raises(
        ConfigError,
        match=rf"^unit/target-group\.name_prefix: got '{prefix}', use 1-6 characters "
        r"\(the provider's limit\)$",
    ):
        ip_target_group(
            unit_stack.stack,
            name="x",
            name_prefix=prefix,
            vpc_id="vpc-1",
            port=80,
            health_check_path="/",
            deregistration_delay_seconds=10,
        )
