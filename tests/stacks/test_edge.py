"""The edge as each environment stack wires it: CloudFront (+ WAF) → VPC origin → internal
ALB → producer; and, in one more stack, what a custom domain switches on (HTTPS end to
end, Route 53 records)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.common.contract import READINESS_PATH
from tests.support import (
    DOMAIN,
    EDGE,
    ROOT,
    VPN,
    ZONE,
    EnvStack,
    Synth,
    logical_id,
    named,
    one,
    ref,
    resources,
)

SITE = ROOT / "apps" / "frontend" / "static"


def test_frontend_serves_the_app_files_with_content_types(env_stack: EnvStack) -> None:
    _, stack = env_stack
    objects = {o["key"]: o for o in resources(stack, "aws_s3_object").values()}
    expected = sorted(
        p.relative_to(SITE).as_posix()
        for p in SITE.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    assert sorted(objects) == expected
    assert objects["index.html"]["content_type"].startswith("text/html")
    assert objects["app.js"]["content_type"].startswith(
        ("text/javascript", "application/javascript")
    )
    assert objects["style.css"]["content_type"].startswith("text/css")
    for obj in objects.values():
        assert obj["source"].startswith("assets/")


def test_api_path_goes_through_cloudfront_to_the_alb(env_stack: EnvStack) -> None:
    _, stack = env_stack
    distribution = one(stack, "aws_cloudfront_distribution")
    alb = logical_id(stack, "aws_lb", "load_balancer_type", "application")
    origins = {o["origin_id"]: o for o in distribution["origin"]}
    (api,) = distribution["ordered_cache_behavior"]
    assert api["path_pattern"] == "/api/*"
    api_origin = origins[api["target_origin_id"]]
    assert api_origin["domain_name"] == ref("aws_lb", alb, "dns_name")
    # The ALB checks this header; its value is a generated secret, never a literal.
    (header,) = api_origin["custom_header"]
    assert header["name"] == "X-Origin-Verify"
    assert header["value"].startswith("${jsondecode(aws_secretsmanager_secret_version.")
    assert api["viewer_protocol_policy"] == "redirect-to-https"
    assert sorted(api["allowed_methods"]) == sorted(
        ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    )
    assert distribution["default_cache_behavior"]["viewer_protocol_policy"] == "redirect-to-https"
    assert distribution["web_acl_id"] == ref(
        "aws_wafv2_web_acl", next(iter(resources(stack, "aws_wafv2_web_acl"))), "arn"
    )


def test_alb_forwards_only_requests_carrying_the_origin_header(env_stack: EnvStack) -> None:
    _, stack = env_stack
    (listener,) = resources(stack, "aws_lb_listener").values()
    assert listener["port"] == 80
    (default,) = listener["default_action"]
    assert default["type"] == "fixed-response"
    assert default["fixed_response"]["status_code"] == "403"
    rules = list(resources(stack, "aws_lb_listener_rule").values())
    header_rules = [r for r in rules if any("http_header" in c for c in r["condition"])]
    (rule,) = header_rules
    (condition,) = rule["condition"]
    assert condition["http_header"]["http_header_name"] == "X-Origin-Verify"
    assert rule["action"][0]["type"] == "forward"


def test_alb_is_hardened_and_checks_health(env_stack: EnvStack) -> None:
    _, stack = env_stack
    alb = one(stack, "aws_lb")
    assert alb["drop_invalid_header_fields"] is True
    target_group = one(stack, "aws_lb_target_group")
    assert target_group["target_type"] == "ip"
    # readiness = the write path (the queue), not the database: apps' contract
    assert target_group["health_check"]["path"] == READINESS_PATH == "/ready"
    assert target_group["port"] == 5080


def test_alb_is_internal_in_the_private_subnets(env_stack: EnvStack) -> None:
    """No public address: the internet reaches the API only through CloudFront."""
    _, stack = env_stack
    alb = one(stack, "aws_lb")
    assert alb["internal"] is True
    private = sorted(
        ref("aws_subnet", key)
        for key, subnet in resources(stack, "aws_subnet").items()
        if subnet["tags"]["tier"] == "private"
    )
    assert sorted(alb["subnets"]) == private


def test_api_origin_is_a_cloudfront_vpc_origin(env_stack: EnvStack) -> None:
    _, stack = env_stack
    distribution = one(stack, "aws_cloudfront_distribution")
    (api,) = distribution["ordered_cache_behavior"]
    origin = next(o for o in distribution["origin"] if o["origin_id"] == api["target_origin_id"])
    (vpc_origin_id,) = resources(stack, "aws_cloudfront_vpc_origin")
    assert origin["vpc_origin_config"]["vpc_origin_id"] == ref(
        "aws_cloudfront_vpc_origin", vpc_origin_id
    )
    assert "custom_origin_config" not in origin  # never a public origin


def test_vpc_origin_points_at_the_alb_over_http_without_a_domain(env_stack: EnvStack) -> None:
    """No shipped environment names a domain: HTTP on AWS's network, no certificate."""
    _, stack = env_stack
    alb = logical_id(stack, "aws_lb", "load_balancer_type", "application")
    (config,) = one(stack, "aws_cloudfront_vpc_origin")["vpc_origin_endpoint_config"]
    assert config["arn"] == ref("aws_lb", alb, "arn")
    assert (config["http_port"], config["https_port"]) == (80, 443)
    assert config["origin_protocol_policy"] == "http-only"
    # VPC origins need an internet gateway on the VPC (their traffic does not use it).
    (igw,) = resources(stack, "aws_internet_gateway").values()
    (vpc,) = resources(stack, "aws_vpc")
    assert igw["vpc_id"] == ref("aws_vpc", vpc)


def test_alb_admits_only_cloudfront_vpc_origins(env_stack: EnvStack) -> None:
    """Not CloudFront's public origin-facing prefix list (every distribution's servers), not
    0.0.0.0/0: only the security group CloudFront gives its VPC origin interfaces here."""
    name, stack = env_stack
    alb_sg = ref(
        "aws_security_group", logical_id(stack, "aws_security_group", "name", f"pcp-{name}-alb")
    )
    rules = [
        r
        for r in resources(stack, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == alb_sg
    ]
    (rule,) = rules  # no shipped environment allows direct CIDRs
    ((lookup_id, lookup),) = stack["data"]["aws_security_group"].items()
    assert lookup["name"] == "CloudFront-VPCOrigins-Service-SG"
    (vpc,) = resources(stack, "aws_vpc")
    assert lookup["vpc_id"] == ref("aws_vpc", vpc)
    (vpc_origin,) = resources(stack, "aws_cloudfront_vpc_origin")
    # CloudFront creates the group with the first VPC origin: look it up after that.
    assert lookup["depends_on"] == [f"aws_cloudfront_vpc_origin.{vpc_origin}"]
    assert rule["referenced_security_group_id"] == f"${{data.aws_security_group.{lookup_id}.id}}"
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 80, 80)
    assert "aws_ec2_managed_prefix_list" not in stack.get("data", {})
    assert not any("prefix_list_id" in r or "cidr_ipv4" in r for r in rules)


def test_prod_alb_is_protected_and_logged(synth: Synth) -> None:
    alb = one(synth.stack("prod"), "aws_lb")
    assert alb["enable_deletion_protection"] is True
    assert alb["access_logs"]["enabled"] is True


@pytest.mark.parametrize("name", ["dev", "test", "stage"])
def test_non_prod_alb_is_disposable(synth: Synth, name: str) -> None:
    alb = one(synth.stack(name), "aws_lb")
    assert alb.get("enable_deletion_protection") is not True
    assert "access_logs" not in alb


def test_waf_runs_managed_rules_and_a_rate_limit_in_us_east_1(env_stack: EnvStack) -> None:
    _, stack = env_stack
    acl = one(stack, "aws_wafv2_web_acl")
    assert acl["scope"] == "CLOUDFRONT"
    assert acl["provider"] == "aws.us_east_1"
    statements = [r["statement"] for r in acl["rule"]]
    groups = {
        s["managed_rule_group_statement"]["name"]
        for s in statements
        if "managed_rule_group_statement" in s
    }
    assert "AWSManagedRulesKnownBadInputsRuleSet" in groups  # Log4j lookups
    assert "AWSManagedRulesCommonRuleSet" in groups
    assert any("rate_based_statement" in s for s in statements)
    logging = one(stack, "aws_wafv2_web_acl_logging_configuration")
    group = named(stack, "aws_cloudwatch_log_group")
    waf_group = next(g for n, g in group.items() if n.startswith("aws-waf-logs-"))
    assert waf_group["provider"] == "aws.us_east_1"
    assert waf_group["kms_key_id"].startswith("${aws_kms_key.")
    assert logging["log_destination_configs"][0].startswith("${aws_cloudwatch_log_group.")


def test_frontend_objects_are_readable_only_by_this_distribution(env_stack: EnvStack) -> None:
    _, stack = env_stack
    policies = [json.loads(p["policy"]) for p in resources(stack, "aws_s3_bucket_policy").values()]
    cloudfront = [
        s
        for p in policies
        for s in p["Statement"]
        if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    (statement,) = cloudfront
    assert statement["Action"] == ["s3:GetObject"]
    (condition,) = statement["Condition"].values()
    assert condition["AWS:SourceArn"].startswith("${aws_cloudfront_distribution.")


# --- a custom domain ------------------------------------------------------------------------
# No shipped environment names a domain: ``stage_variant`` (conftest) is ``stage`` with
# ``EdgeConfig`` filled in, and these tests check what the domain switches on.


@pytest.fixture(scope="module")
def stack(stage_variant: dict[str, Any]) -> dict[str, Any]:
    return stage_variant


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
