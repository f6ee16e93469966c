"""An environment with a custom domain: HTTPS end to end and Route 53 records.

No shipped environment names a domain, so this module builds one more stack (a copy of
``stage`` with ``EdgeConfig`` filled in) and checks what the domain switches on.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from constructs_lib.errors import ConfigError
from environments import STAGE
from environments.config import EdgeConfig
from tests.support import IMAGE_TAG, one, resources

DOMAIN = "counts.example.com"
ZONE = "Z0123456789ABCDEFGHIJ"
VPN = "172.16.0.0/22"
"""A private range (a VPN or a peered network) that may call the internal ALB directly."""
EDGE = EdgeConfig(
    domain_name=DOMAIN,
    hosted_zone_id=ZONE,
    alb_certificate_arn="arn:aws:acm:eu-central-1:123456789012:certificate/alb",
    cloudfront_certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/cdn",
    allowed_cidrs=(VPN,),
)


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    from cdktf import Testing

    from environments.release import Release
    from environments.stack import PlatformStack
    from environments.state import StateConfig

    config = replace(STAGE, name="custom", edge=EDGE)
    built = PlatformStack(
        Testing.app(), "custom", config=config, state=StateConfig(), release=Release(IMAGE_TAG)
    )
    doc: dict[str, Any] = json.loads(Testing.synth(built))
    return doc


def test_alb_serves_https_and_redirects_http(stack: dict[str, Any]) -> None:
    listeners = {
        listener["port"]: listener for listener in resources(stack, "aws_lb_listener").values()
    }
    assert sorted(listeners) == [80, 443]
    https = listeners[443]
    assert https["protocol"] == "HTTPS"
    assert https["certificate_arn"] == EDGE.alb_certificate_arn
    assert https["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    (redirect,) = listeners[80]["default_action"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"]["protocol"] == "HTTPS"
    assert redirect["redirect"]["status_code"] == "HTTP_301"


def test_cloudfront_uses_the_domain_and_reaches_the_alb_over_https(stack: dict[str, Any]) -> None:
    """HTTPS end to end: viewer → CloudFront (us-east-1 certificate) → VPC origin → ALB
    (regional certificate for ``origin.<domain>``, the name CloudFront checks)."""
    distribution = one(stack, "aws_cloudfront_distribution")
    assert distribution["aliases"] == [DOMAIN]
    certificate = distribution["viewer_certificate"]
    assert certificate["acm_certificate_arn"] == EDGE.cloudfront_certificate_arn
    assert certificate["minimum_protocol_version"].startswith("TLSv1.2")
    (api,) = distribution["ordered_cache_behavior"]
    assert api["viewer_protocol_policy"] == "redirect-to-https"
    origin = next(o for o in distribution["origin"] if o["origin_id"] == api["target_origin_id"])
    assert origin["domain_name"] == f"origin.{DOMAIN}"
    (vpc_origin_id,) = resources(stack, "aws_cloudfront_vpc_origin")
    assert origin["vpc_origin_config"]["vpc_origin_id"] == (
        f"${{aws_cloudfront_vpc_origin.{vpc_origin_id}.id}}"
    )
    assert "custom_origin_config" not in origin
    (config,) = one(stack, "aws_cloudfront_vpc_origin")["vpc_origin_endpoint_config"]
    assert config["origin_protocol_policy"] == "https-only"
    assert config["https_port"] == 443
    assert config["origin_ssl_protocols"] == [{"items": ["TLSv1.2"], "quantity": 1}]


def test_cloudfront_vpc_origins_reach_the_alb_on_443_only(stack: dict[str, Any]) -> None:
    (lookup_id,) = stack["data"]["aws_security_group"]
    group = f"${{data.aws_security_group.{lookup_id}.id}}"
    from_cloudfront = [
        r
        for r in resources(stack, "aws_vpc_security_group_ingress_rule").values()
        if r.get("referenced_security_group_id") == group
    ]
    assert [(r["from_port"], r["to_port"]) for r in from_cloudfront] == [(443, 443)]


def test_route53_names_the_site_and_the_origin(stack: dict[str, Any]) -> None:
    records = [(r["name"], r["type"]) for r in resources(stack, "aws_route53_record").values()]
    assert sorted(records) == sorted([(DOMAIN, "A"), (DOMAIN, "AAAA"), (f"origin.{DOMAIN}", "A")])
    assert all(r["zone_id"] == ZONE for r in resources(stack, "aws_route53_record").values())


def test_allowed_private_cidrs_reach_the_alb_directly(stack: dict[str, Any]) -> None:
    rules = resources(stack, "aws_vpc_security_group_ingress_rule").values()
    direct = [r for r in rules if r.get("cidr_ipv4") == VPN]
    assert sorted(r["from_port"] for r in direct) == [80, 443]


@pytest.mark.parametrize(
    ("edge", "message"),
    [
        (
            replace(EDGE, hosted_zone_id=None),
            r"^stage\.edge\.hosted_zone_id: got None, name the Route 53 zone of domain_name$",
        ),
        (
            replace(EDGE, cloudfront_certificate_arn=EDGE.alb_certificate_arn),
            r"^stage\.edge\.cloudfront_certificate_arn: got .*, use an ACM certificate ARN in us-east-1",
        ),
        (
            EdgeConfig(hosted_zone_id=ZONE),
            r"^stage\.edge\.hosted_zone_id: got set, set edge\.domain_name too, or unset it$",
        ),
        (
            replace(EDGE, allowed_cidrs=("0.0.0.0/0",)),
            r"^stage\.edge\.allowed_cidrs: got 0\.0\.0\.0/0, name the ranges",
        ),
        (
            replace(EDGE, allowed_cidrs=("203.0.113.0/24",)),
            r"^stage\.edge\.allowed_cidrs: got 203\.0\.113\.0/24, the ALB is internal",
        ),
        (
            replace(EDGE, domain_name="not a domain"),
            r"^stage\.edge\.domain_name: got 'not a domain', use a DNS name$",
        ),
    ],
)
def test_edge_config_errors(edge: EdgeConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(STAGE, edge=edge)
