"""LoadBalancer construct: internal ALB reached by CloudFront through a VPC origin (and by
allowed private CIDRs).

Two unit stacks are synthesized once for the module: ``plain`` (defaults: HTTP only, no
origin secret, no logs, no DNS) and ``full`` (certificate, origin secret, allowed CIDRs,
access logs, Route 53 record, deletion protection).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from constructs_lib.errors import ConfigError
from tests.support import (
    NAMING,
    ONE_AZ_NETWORK,
    UNIT_NETWORK,
    UnitStack,
    new_unit_stack,
    one,
    resources,
)

SECRET = "Zq8vN3kLm2Pw9Xr4Ty7Ua1Sd"
CIDRS = ["172.16.0.0/22", "100.64.7.0/24"]
"""Private ranges (a VPN, a peered network): the only sources that can reach an internal ALB."""
CLOUDFRONT_SG = "CloudFront-VPCOrigins-Service-SG"
CERT = "arn:aws:acm:eu-central-1:123456789012:certificate/abc"
OUTPUTS = (
    "dns_name",
    "arn_suffix",
    "target_group_arn_suffix",
    "origin_protocol_policy",
    "origin_domain",
)


def _stack(**overrides: Any) -> UnitStack:
    from cdktf import TerraformOutput
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    from constructs_lib.load_balancer import LoadBalancer, LoadBalancerProps
    from constructs_lib.security import allow_tcp

    unit = new_unit_stack()
    stack = unit.stack
    network = unit.network(overrides.pop("network", UNIT_NETWORK))
    props: dict[str, Any] = {"naming": NAMING, "network": network, "target_port": 5000}
    lb = LoadBalancer(stack, "lb", props=LoadBalancerProps(**{**props, **overrides}))
    producer = SecurityGroup(stack, "producer", vpc_id="vpc-1", description="producer tasks")
    # What a service's allow_from does: the load balancer is the peer (one SG API).
    allow_tcp(lb, source=lb, target=producer, port=5000, description="ALB to producer")
    for name in OUTPUTS:
        TerraformOutput(stack, name, value=getattr(lb, name))
    TerraformOutput(stack, "forwarding", value=[r.fqn for r in lb.forwarding])
    TerraformOutput(stack, "vpc_origin_id", value=lb.vpc_origin.id)
    return unit


@pytest.fixture(scope="module")
def plain() -> dict[str, Any]:
    return _stack().synth()


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return _stack(
        allowed_cidrs=CIDRS,
        origin_secret_header_value=SECRET,
        certificate_arn=CERT,
        domain_name="api.example.com",
        hosted_zone_id="Z0123456789",
        access_logs_bucket_name="pcp-unit-alb-logs",
        deletion_protection=True,
    ).synth()


def _ref(doc: dict[str, Any], type_: str, attr: str) -> str:
    (logical_id,) = resources(doc, type_)
    return f"${{{type_}.{logical_id}.{attr}}}"


def _cloudfront_sg_ref(doc: dict[str, Any]) -> str:
    (logical_id,) = doc["data"]["aws_security_group"]
    return f"${{data.aws_security_group.{logical_id}.id}}"


def _alb_sg_ref(doc: dict[str, Any]) -> str:
    groups = resources(doc, "aws_security_group")
    (logical_id,) = [k for k, v in groups.items() if v.get("name") == "pcp-unit-alb"]
    return f"${{aws_security_group.{logical_id}.id}}"


def _listeners(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {lst["port"]: lst for lst in resources(doc, "aws_lb_listener").values()}


def _alb_ingress(doc: dict[str, Any]) -> list[dict[str, Any]]:
    sg = _alb_sg_ref(doc)
    rules = resources(doc, "aws_vpc_security_group_ingress_rule").values()
    return [r for r in rules if r["security_group_id"] == sg]


def _vpc(doc: dict[str, Any]) -> str:
    (vpc_id,) = resources(doc, "aws_vpc")
    return f"${{aws_vpc.{vpc_id}.id}}"


def _private_subnets(doc: dict[str, Any]) -> list[str]:
    """The network's private subnets, in AZ order."""
    return [f"${{aws_subnet.{k}.id}}" for k in resources(doc, "aws_subnet") if "private" in k]


def test_alb_is_internal_in_the_given_subnets_and_drops_invalid_headers(
    plain: dict[str, Any],
) -> None:
    alb = one(plain, "aws_lb")
    assert alb["internal"] is True
    assert alb["load_balancer_type"] == "application"
    assert alb["subnets"] == _private_subnets(plain)
    assert alb["security_groups"] == [_alb_sg_ref(plain)]
    assert alb["drop_invalid_header_fields"] is True
    assert alb["enable_deletion_protection"] is False
    assert alb["idle_timeout"] == 60
    assert alb["name"] == "pcp-unit-alb"
    assert "access_logs" not in alb


def test_target_group_registers_tasks_by_ip_with_a_health_check(plain: dict[str, Any]) -> None:
    tg = one(plain, "aws_lb_target_group")
    assert tg["target_type"] == "ip"
    assert (tg["protocol"], tg["port"], tg["vpc_id"]) == ("HTTP", 5000, _vpc(plain))
    assert tg["deregistration_delay"] == "30"
    check = tg["health_check"]
    assert check["path"] == "/health"
    assert check["matcher"] == "200"
    assert (check["interval"], check["healthy_threshold"], check["unhealthy_threshold"]) == (
        15,
        2,
        3,
    )


def test_without_certificate_the_http_listener_forwards(plain: dict[str, Any]) -> None:
    listeners = _listeners(plain)
    assert list(listeners) == [80]
    http = listeners[80]
    assert http["protocol"] == "HTTP"
    assert http["load_balancer_arn"] == _ref(plain, "aws_lb", "arn")
    assert http["default_action"] == [
        {"type": "forward", "target_group_arn": _ref(plain, "aws_lb_target_group", "arn")}
    ]
    assert "aws_lb_listener_rule" not in plain["resource"]


def test_with_certificate_https_serves_tls13_and_http_redirects_301(full: dict[str, Any]) -> None:
    listeners = _listeners(full)
    assert sorted(listeners) == [80, 443]
    https = listeners[443]
    assert https["protocol"] == "HTTPS"
    assert https["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["certificate_arn"] == CERT
    (redirect,) = listeners[80]["default_action"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}


def test_cloudfront_reaches_the_alb_through_a_vpc_origin(
    plain: dict[str, Any], full: dict[str, Any]
) -> None:
    for doc, policy in ((plain, "http-only"), (full, "https-only")):
        (logical_id, origin), *others = resources(doc, "aws_cloudfront_vpc_origin").items()
        assert not others
        (config,) = origin["vpc_origin_endpoint_config"]
        assert config["arn"] == _ref(doc, "aws_lb", "arn")
        assert config["name"] == f"pcp-unit-api-{policy.removesuffix('-only')}"
        assert (config["http_port"], config["https_port"]) == (80, 443)
        assert config["origin_protocol_policy"] == policy
        assert config["origin_ssl_protocols"] == [{"items": ["TLSv1.2"], "quantity": 1}]
        # A VPC origin in use cannot be updated: a protocol change makes a new one (its
        # construct id names the protocol), the distribution moves to it, then Terraform
        # deletes the old one. No create_before_destroy: it would spread to the ALB, whose
        # fixed name and target group cannot exist twice.
        assert logical_id.startswith(f"lb_vpc-origin-{policy.removesuffix('-only')}_")
        assert "lifecycle" not in origin


def test_security_group_admits_only_cloudfront_vpc_origins_by_default(
    plain: dict[str, Any],
) -> None:
    sg = next(
        g for g in resources(plain, "aws_security_group").values() if g["name"] == "pcp-unit-alb"
    )
    assert "ingress" not in sg
    assert "egress" not in sg
    (lookup,) = plain["data"]["aws_security_group"].values()
    assert lookup["name"] == CLOUDFRONT_SG
    assert lookup["vpc_id"] == _vpc(plain)
    (vpc_origin,) = resources(plain, "aws_cloudfront_vpc_origin")
    # CloudFront creates the group with the VPC's first VPC origin: read it after that.
    assert lookup["depends_on"] == [f"aws_cloudfront_vpc_origin.{vpc_origin}"]
    (rule,) = _alb_ingress(plain)
    assert rule["referenced_security_group_id"] == _cloudfront_sg_ref(plain)
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 80, 80)
    assert "aws_ec2_managed_prefix_list" not in plain["data"]
    assert "cidr_ipv4" not in rule
    assert "prefix_list_id" not in rule


def test_security_group_admits_cloudfront_on_443_and_each_cidr_on_both_ports(
    full: dict[str, Any],
) -> None:
    rules = _alb_ingress(full)
    by_source = {
        (r.get("cidr_ipv4") or r["referenced_security_group_id"], r["from_port"]) for r in rules
    }
    assert by_source == {
        (_cloudfront_sg_ref(full), 443),
        *((cidr, port) for cidr in CIDRS for port in (80, 443)),
    }
    assert all(r["from_port"] == r["to_port"] for r in rules)
    assert not any("prefix_list_id" in r for r in rules)
    # Everything but the unit network (whose NAT default routes are 0.0.0.0/0).
    text = json.dumps(
        {t: r for t, r in full["resource"].items() if t not in ("aws_route", "aws_subnet")}
    )
    assert "0.0.0.0/0" not in text
    assert "::/0" not in text


def test_origin_secret_forwards_on_header_or_allowed_cidr_and_answers_403_otherwise(
    full: dict[str, Any],
) -> None:
    https = _listeners(full)[443]
    (default,) = https["default_action"]
    assert default["type"] == "fixed-response"
    assert default["fixed_response"]["status_code"] == "403"
    assert default["fixed_response"]["content_type"] == "application/json"
    assert json.loads(default["fixed_response"]["message_body"])["status"] == 403

    target_group = _ref(full, "aws_lb_target_group", "arn")
    (https_id,) = [k for k in resources(full, "aws_lb_listener") if "https" in k]
    rules = sorted(resources(full, "aws_lb_listener_rule").values(), key=lambda r: r["priority"])
    assert [r["priority"] for r in rules] == [10, 20]
    for rule in rules:
        assert rule["listener_arn"] == f"${{aws_lb_listener.{https_id}.arn}}"
        assert rule["action"] == [{"type": "forward", "target_group_arn": target_group}]
    (header,) = rules[0]["condition"]
    assert header == {"http_header": {"http_header_name": "X-Origin-Verify", "values": [SECRET]}}
    (source,) = rules[1]["condition"]
    assert source == {"source_ip": {"values": CIDRS}}


def test_access_logs_go_to_an_sse_s3_bucket_writable_by_alb_log_delivery(
    full: dict[str, Any], plain: dict[str, Any]
) -> None:
    assert "aws_s3_bucket" not in plain["resource"]
    bucket = one(full, "aws_s3_bucket")
    assert bucket["bucket"] == "pcp-unit-alb-logs"
    assert bucket["force_destroy"] is False  # deletion_protection keeps the logs too
    (rule,) = one(full, "aws_s3_bucket_server_side_encryption_configuration")["rule"]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"
    (lifecycle,) = one(full, "aws_s3_bucket_lifecycle_configuration")["rule"]
    assert lifecycle["expiration"] == [{"days": 90}]

    bucket_arn = _ref(full, "aws_s3_bucket", "arn")
    policy = json.loads(one(full, "aws_s3_bucket_policy")["policy"])
    (allow,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {
        "Service": "logdelivery.elasticloadbalancing.amazonaws.com",
        # Regions opened before August 2022 deliver as the regional ELB account.
        "AWS": "${"
        + f"data.aws_elb_service_account.{next(iter(full['data']['aws_elb_service_account']))}.arn"
        + "}",
    }
    assert allow["Action"] == ["s3:PutObject"]
    assert allow["Resource"] == [f"{bucket_arn}/alb/AWSLogs/*"]

    alb = one(full, "aws_lb")
    assert alb["access_logs"] == {
        "bucket": _ref(full, "aws_s3_bucket", "id"),
        "prefix": "alb",
        "enabled": True,
    }
    (policy_id,) = resources(full, "aws_s3_bucket_policy")
    assert alb["depends_on"] == [f"aws_s3_bucket_policy.{policy_id}"]
    assert alb["enable_deletion_protection"] is True


def test_route53_alias_record_points_at_the_alb(
    full: dict[str, Any], plain: dict[str, Any]
) -> None:
    assert "aws_route53_record" not in plain["resource"]
    record = one(full, "aws_route53_record")
    assert (record["name"], record["type"], record["zone_id"]) == (
        "api.example.com",
        "A",
        "Z0123456789",
    )
    assert record["alias"] == {
        "name": _ref(full, "aws_lb", "dns_name"),
        "zone_id": _ref(full, "aws_lb", "zone_id"),
        "evaluate_target_health": True,
    }


def test_exposed_attributes(plain: dict[str, Any], full: dict[str, Any]) -> None:
    out = {k: v["value"] for k, v in plain["output"].items()}
    assert out["dns_name"] == _ref(plain, "aws_lb", "dns_name")
    assert out["vpc_origin_id"] == _ref(plain, "aws_cloudfront_vpc_origin", "id")
    assert out["arn_suffix"] == _ref(plain, "aws_lb", "arn_suffix")
    assert out["target_group_arn_suffix"] == _ref(plain, "aws_lb_target_group", "arn_suffix")
    assert out["origin_protocol_policy"] == "http-only"
    assert out["origin_domain"] == _ref(plain, "aws_lb", "dns_name")
    (http_id,) = resources(plain, "aws_lb_listener")
    assert out["forwarding"] == [f"${{aws_lb_listener.{http_id}}}"]
    out = {k: v["value"] for k, v in full["output"].items()}
    assert out["origin_protocol_policy"] == "https-only"
    assert out["origin_domain"] == "api.example.com"
    (https_id,) = [k for k in resources(full, "aws_lb_listener") if "https" in k]
    rule_ids = sorted(resources(full, "aws_lb_listener_rule"))
    assert out["forwarding"][0] == f"${{aws_lb_listener.{https_id}}}"
    assert sorted(out["forwarding"][1:]) == [f"${{aws_lb_listener_rule.{r}}}" for r in rule_ids]


def test_a_peer_admitting_the_load_balancer_gets_the_matching_ingress_and_egress_pair(
    plain: dict[str, Any],
) -> None:
    alb_sg = _alb_sg_ref(plain)
    (ingress,) = [
        r
        for r in resources(plain, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == "${aws_security_group.producer.id}"
    ]
    (egress,) = resources(plain, "aws_vpc_security_group_egress_rule").values()
    assert ingress["referenced_security_group_id"] == alb_sg
    assert egress["security_group_id"] == alb_sg
    assert egress["referenced_security_group_id"] == "${aws_security_group.producer.id}"
    for rule in (ingress, egress):
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 5000, 5000)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"network": ONE_AZ_NETWORK}, r"^unit/lb\.network: got 1, .*2 or more AZs"),
        (
            {"allowed_cidrs": ["10.0.0.0/33"]},
            r"^unit/lb\.allowed_cidrs: got '10\.0\.0\.0/33', give IPv4",
        ),
        ({"allowed_cidrs": ["10.0.0.1/24"]}, r"allowed_cidrs: got '10\.0\.0\.1/24', give IPv4"),
        ({"allowed_cidrs": ["2001:db8::/32"]}, r"allowed_cidrs: got '2001:db8::/32', give IPv4"),
        ({"allowed_cidrs": ["0.0.0.0/0"]}, r"allowed_cidrs: got '0\.0\.0\.0/0', .*whole internet"),
        (
            {"allowed_cidrs": ["203.0.113.0/24"]},
            r"allowed_cidrs: got '203\.0\.113\.0/24', the load balancer is internal",
        ),
        (
            {"allowed_cidrs": ["10.0.0.0/7"]},
            r"allowed_cidrs: got '10\.0\.0\.0/7', the load balancer is internal",
        ),
        ({"certificate_arn": CERT}, r"^unit/lb\.domain_name: got None, certificate_arn needs"),
        ({"hosted_zone_id": "Z1"}, r"^unit/lb\.domain_name: got None, hosted_zone_id is set"),
        ({"origin_secret_header_value": "short"}, r"origin_secret_header_value: got a value of 5"),
        ({"origin_secret_header_value": "a*" * 10}, r"origin_secret_header_value: .*wildcards"),
        ({"target_port": 0}, r"^unit/lb\.target_port: got 0"),
        ({"health_check_path": "health"}, r"health_check_path: got 'health', start it with /"),
    ],
)
def test_invalid_configuration_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _stack(**overrides)
