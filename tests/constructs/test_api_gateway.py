"""RestApi construct: a regional REST API proxying through a VPC link to an internal NLB.

Two unit stacks are synthesized once for the module: ``plain`` (defaults: API key and
usage plan, no resource policy, access logs) and ``full`` (an IP allow-list, a quota,
another stage name, X-Ray, per-method metrics, a shorter integration timeout).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from constructs_lib.alarms import Watch
from constructs_lib.errors import ConfigError
from tests.support import NAMING, UnitStack, new_unit_stack, one, resources

ALLOWED = ["203.0.113.0/24", "198.51.100.7/32"]
"""The callers' public egress ranges (documentation ranges)."""
ATTRIBUTES = ("url", "rest_api_id", "api_key_id")


def _api(unit: UnitStack, **overrides: Any) -> Any:
    from constructs_lib.api_gateway import RestApi, RestApiProps
    from constructs_lib.network_load_balancer import (
        NetworkLoadBalancer,
        NetworkLoadBalancerProps,
    )

    nlb = NetworkLoadBalancer(
        unit.stack,
        "nlb",
        props=NetworkLoadBalancerProps(
            naming=NAMING, network=unit.network(), target_port=8080, listener_port=8000
        ),
    )
    props: dict[str, Any] = {"naming": NAMING, "network_load_balancer": nlb, "key": unit.key()}
    return RestApi(unit.stack, "api", props=RestApiProps(**{**props, **overrides}))


def _stack(**overrides: Any) -> dict[str, Any]:
    from cdktf import TerraformOutput

    unit = new_unit_stack()
    api = _api(unit, **overrides)
    for name in ATTRIBUTES:
        if getattr(api, name) is not None:
            TerraformOutput(unit.stack, name, value=getattr(api, name))
    return unit.synth()


@pytest.fixture(scope="module")
def plain() -> dict[str, Any]:
    return _stack()


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return _stack(
        allowed_cidrs=ALLOWED,
        quota_limit=10000,
        quota_period="MONTH",
        stage_name="v1",
        xray_tracing=True,
        detailed_metrics=True,
        throttle_rate_limit=20,
        throttle_burst_limit=40,
        integration_timeout_ms=10000,
        log_retention_days=90,
    )


def _id(doc: dict[str, Any], type_: str) -> str:
    (logical_id,) = resources(doc, type_)
    return logical_id


def _ref(doc: dict[str, Any], type_: str, attr: str = "id") -> str:
    return f"${{{type_}.{_id(doc, type_)}.{attr}}}"


def _by_id_part(doc: dict[str, Any], type_: str, part: str) -> tuple[str, dict[str, Any]]:
    """The one resource of ``type_`` whose logical id contains ``part`` (e.g. ``proxy-``)."""
    ((logical_id, config),) = [(k, v) for k, v in resources(doc, type_).items() if part in k]
    return logical_id, config


API = "aws_api_gateway_rest_api"


# --- the API, the VPC link, routes and integrations ----------------------------------------


def test_the_api_is_regional_and_reads_the_key_from_the_header(plain: dict[str, Any]) -> None:
    assert one(plain, API) == {
        "name": "pcp-unit-api",
        "description": "pcp-unit-api: proxied through a VPC link to an internal NLB",
        "endpoint_configuration": {"types": ["REGIONAL"]},
        "api_key_source": "HEADER",
        "tags": {"Name": "pcp-unit-api"},
    }


def test_the_vpc_link_targets_the_network_load_balancer(plain: dict[str, Any]) -> None:
    assert one(plain, "aws_api_gateway_vpc_link") == {
        "name": "pcp-unit-api-vpc-link",
        "target_arns": [_ref(plain, "aws_lb", "arn")],
        "tags": {"Name": "pcp-unit-api-vpc-link"},
    }


def test_any_method_on_the_root_and_on_a_greedy_proxy_resource_needs_the_key(
    plain: dict[str, Any],
) -> None:
    api = _ref(plain, API)
    assert one(plain, "aws_api_gateway_resource") == {
        "rest_api_id": api,
        "parent_id": _ref(plain, API, "root_resource_id"),
        "path_part": "{proxy+}",
    }
    _, root = _by_id_part(plain, "aws_api_gateway_method", "root-any")
    _, proxy = _by_id_part(plain, "aws_api_gateway_method", "proxy-any")
    common = {
        "rest_api_id": api,
        "http_method": "ANY",
        "authorization": "NONE",
        "api_key_required": True,
    }
    assert root == {**common, "resource_id": _ref(plain, API, "root_resource_id")}
    assert proxy == {
        **common,
        "resource_id": _ref(plain, "aws_api_gateway_resource"),
        "request_parameters": {"method.request.path.proxy": True},
    }


def test_each_method_is_proxied_through_the_vpc_link_to_the_nlb_listener(
    plain: dict[str, Any],
) -> None:
    nlb_dns = _ref(plain, "aws_lb", "dns_name")
    link = _ref(plain, "aws_api_gateway_vpc_link")
    common = {
        "rest_api_id": _ref(plain, API),
        "type": "HTTP_PROXY",
        "integration_http_method": "ANY",
        "connection_type": "VPC_LINK",
        "connection_id": link,
        "timeout_milliseconds": 29000,
    }
    for key, uri in (
        ("root", f"http://{nlb_dns}:8000/"),
        ("proxy", f"http://{nlb_dns}:8000/{{proxy}}"),
    ):
        method_id, _ = _by_id_part(plain, "aws_api_gateway_method", f"{key}-any")
        _, integration = _by_id_part(plain, "aws_api_gateway_integration", f"{key}-integration")
        method = f"aws_api_gateway_method.{method_id}"
        expected = {
            **common,
            "uri": uri,
            "resource_id": f"${{{method}.resource_id}}",
            "http_method": f"${{{method}.http_method}}",
        }
        if key == "proxy":
            expected["request_parameters"] = {
                "integration.request.path.proxy": "method.request.path.proxy"
            }
        assert integration == expected


def test_the_integration_timeout_is_passed_on(full: dict[str, Any]) -> None:
    timeouts = {
        i["timeout_milliseconds"] for i in resources(full, "aws_api_gateway_integration").values()
    }
    assert timeouts == {10000}


# --- the resource policy -------------------------------------------------------------------------


def test_the_resource_policy_admits_only_the_allowed_source_addresses(full: dict[str, Any]) -> None:
    policy = one(full, "aws_api_gateway_rest_api_policy")
    assert policy["rest_api_id"] == _ref(full, API)
    every_method = f"{_ref(full, API, 'execution_arn')}/*"
    assert json.loads(policy["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowInvoke",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["execute-api:Invoke"],
                "Resource": [every_method],
            },
            {
                "Sid": "DenyOutsideAllowedCidrs",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["execute-api:Invoke"],
                "Resource": [every_method],
                "Condition": {"NotIpAddress": {"aws:SourceIp": ALLOWED}},
            },
        ],
    }


def test_without_allowed_cidrs_there_is_no_resource_policy(plain: dict[str, Any]) -> None:
    assert resources(plain, "aws_api_gateway_rest_api_policy") == {}


# --- deployment and stage -------------------------------------------------------------------------


def _trigger_refs(doc: dict[str, Any]) -> list[str]:
    """What the deployment's redeployment trigger hashes, as Terraform references."""
    trigger: str = one(doc, "aws_api_gateway_deployment")["triggers"]["redeployment"]
    assert trigger.startswith("${sha1(jsonencode([")
    assert trigger.endswith("]))}")
    return trigger.removeprefix("${sha1(jsonencode([").removesuffix("]))}").split(", ")


def test_the_deployment_is_replaced_when_a_route_integration_or_the_policy_changes(
    full: dict[str, Any],
) -> None:
    deployment = one(full, "aws_api_gateway_deployment")
    assert deployment["rest_api_id"] == _ref(full, API)
    assert deployment["lifecycle"] == {"create_before_destroy": True}
    refs = _trigger_refs(full)
    for key in ("root", "proxy"):
        method_id, _ = _by_id_part(full, "aws_api_gateway_method", f"{key}-any")
        integration_id, _ = _by_id_part(full, "aws_api_gateway_integration", f"{key}-integration")
        method = f"aws_api_gateway_method.{method_id}"
        integration = f"aws_api_gateway_integration.{integration_id}"
        for attr in ("id", "http_method", "authorization", "api_key_required"):
            assert f"{method}.{attr}" in refs
        for attr in (
            "id",
            "type",
            "uri",
            "connection_type",
            "connection_id",
            "timeout_milliseconds",
        ):
            assert f"{integration}.{attr}" in refs
    resource = f"aws_api_gateway_resource.{_id(full, 'aws_api_gateway_resource')}"
    assert {f"{resource}.id", f"{resource}.path_part"} <= set(refs)
    policy = f"aws_api_gateway_rest_api_policy.{_id(full, 'aws_api_gateway_rest_api_policy')}"
    assert f"{policy}.policy" in refs
    ordered_after = {
        *(f"aws_api_gateway_method.{k}" for k in resources(full, "aws_api_gateway_method")),
        *(
            f"aws_api_gateway_integration.{k}"
            for k in resources(full, "aws_api_gateway_integration")
        ),
        policy,
    }
    assert set(deployment["depends_on"]) == ordered_after


def test_without_a_policy_the_trigger_hashes_routes_only(plain: dict[str, Any]) -> None:
    refs = _trigger_refs(plain)
    assert len(refs) == 2 + 2 * 10
    assert not [r for r in refs if "policy" in r]


def test_the_stage_serves_the_deployment_and_logs_access_to_an_encrypted_group(
    plain: dict[str, Any],
) -> None:
    stage = one(plain, "aws_api_gateway_stage")
    access = stage.pop("access_log_settings")
    assert stage == {
        "rest_api_id": _ref(plain, API),
        "deployment_id": _ref(plain, "aws_api_gateway_deployment"),
        "stage_name": "api",
        "xray_tracing_enabled": False,
        "tags": {"Name": "pcp-unit-api-api"},
    }
    group_id, group = _by_id_part(plain, "aws_cloudwatch_log_group", "access-logs")
    assert access["destination_arn"] == f"${{aws_cloudwatch_log_group.{group_id}.arn}}"
    assert group == {
        "name": "/pcp/unit/apigateway/api",
        "retention_in_days": 30,
        "kms_key_id": _ref(plain, "aws_kms_key", "arn"),
    }
    fields = json.loads(access["format"])
    assert fields["apiKeyId"] == "$context.identity.apiKeyId"
    assert fields["sourceIp"] == "$context.identity.sourceIp"
    assert fields["integrationError"] == "$context.integration.error"
    assert fields["status"] == "$context.status"
    assert "$context.identity.apiKey" not in fields.values()


def test_stage_options_are_passed_on(full: dict[str, Any]) -> None:
    stage = one(full, "aws_api_gateway_stage")
    assert (stage["stage_name"], stage["xray_tracing_enabled"]) == ("v1", True)
    _, group = _by_id_part(full, "aws_cloudwatch_log_group", "access-logs")
    assert group["retention_in_days"] == 90


def test_method_settings_throttle_every_method_and_keep_execution_logs_off(
    plain: dict[str, Any], full: dict[str, Any]
) -> None:
    for doc, (metrics, rate, burst) in ((plain, (False, 50, 100)), (full, (True, 20, 40))):
        assert one(doc, "aws_api_gateway_method_settings") == {
            "rest_api_id": _ref(doc, API),
            "stage_name": _ref(doc, "aws_api_gateway_stage", "stage_name"),
            "method_path": "*/*",
            "settings": {
                "metrics_enabled": metrics,
                "logging_level": "OFF",
                "data_trace_enabled": False,
                "throttling_rate_limit": rate,
                "throttling_burst_limit": burst,
            },
        }


def test_without_access_logs_there_is_no_log_group(unit_stack: UnitStack) -> None:
    _api(unit_stack, access_logs=False)
    doc = unit_stack.synth()
    assert [k for k in resources(doc, "aws_cloudwatch_log_group") if "access-logs" in k] == []
    assert "access_log_settings" not in one(doc, "aws_api_gateway_stage")


# --- API key and usage plan ---------------------------------------------------------------------


def test_the_key_belongs_to_a_throttled_usage_plan_on_the_stage(plain: dict[str, Any]) -> None:
    assert one(plain, "aws_api_gateway_api_key") == {
        "name": "pcp-unit-api-key",
        "description": "Callers of pcp-unit-api (value generated by API Gateway)",
        "enabled": True,
    }
    assert one(plain, "aws_api_gateway_usage_plan") == {
        "name": "pcp-unit-api-usage",
        "description": "Throttling of pcp-unit-api's key",
        "api_stages": [
            {
                "api_id": _ref(plain, API),
                "stage": _ref(plain, "aws_api_gateway_stage", "stage_name"),
            }
        ],
        "throttle_settings": {"rate_limit": 50, "burst_limit": 100},
    }
    assert one(plain, "aws_api_gateway_usage_plan_key") == {
        "key_id": _ref(plain, "aws_api_gateway_api_key"),
        "key_type": "API_KEY",
        "usage_plan_id": _ref(plain, "aws_api_gateway_usage_plan"),
    }


def test_a_quota_is_set_on_the_usage_plan(full: dict[str, Any]) -> None:
    plan = one(full, "aws_api_gateway_usage_plan")
    assert plan["quota_settings"] == {"limit": 10000, "period": "MONTH"}
    assert plan["throttle_settings"] == {"rate_limit": 20, "burst_limit": 40}
    assert plan["description"] == "Throttling and quota of pcp-unit-api's key"


def test_the_attributes_give_the_url_and_ids_never_the_key_value(plain: dict[str, Any]) -> None:
    out = {k: v["value"] for k, v in plain["output"].items()}
    assert out == {
        "url": _ref(plain, "aws_api_gateway_stage", "invoke_url"),
        "rest_api_id": _ref(plain, API),
        "api_key_id": _ref(plain, "aws_api_gateway_api_key"),
    }
    key = f"aws_api_gateway_api_key.{_id(plain, 'aws_api_gateway_api_key')}"
    text = json.dumps(plain)
    assert f"{key}.id" in text
    assert f"{key}.value" not in text
    assert "value" not in one(plain, "aws_api_gateway_api_key")


def test_without_an_api_key_methods_are_open_to_the_allowed_cidrs_only(
    unit_stack: UnitStack,
) -> None:
    api = _api(unit_stack, require_api_key=False, allowed_cidrs=ALLOWED)
    assert api.api_key_id is None
    doc = unit_stack.synth()
    methods = resources(doc, "aws_api_gateway_method").values()
    assert {m["api_key_required"] for m in methods} == {False}
    for type_ in ("api_key", "usage_plan", "usage_plan_key"):
        assert resources(doc, f"aws_api_gateway_{type_}") == {}
    assert resources(doc, "aws_api_gateway_rest_api_policy") != {}


# --- alarms ------------------------------------------------------------------------------------


def test_alarms_watch_5xx_answers_and_p99_latency(unit_stack: UnitStack) -> None:
    api = _api(unit_stack, name="metadata", stage_name="v1", error_5xx_threshold=3)
    dims = {"ApiName": "pcp-unit-metadata", "Stage": "v1"}
    errors, latency = api.alarms()
    assert (errors.key, errors.metric) == ("metadata-5xx", ("AWS/ApiGateway", "5XXError", dims))
    assert errors.watch == Watch("Sum", 300, ">", 3)
    assert errors.breakage
    assert (latency.key, latency.metric) == (
        "metadata-p99-latency",
        ("AWS/ApiGateway", "Latency", dims),
    )
    assert latency.watch == Watch("p99", 60, ">", 5000, evaluations=5, datapoints=3)
    assert latency.breakage is False


# --- refused configurations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"allowed_cidrs": ["10.20.0.0/16"]},
            r"allowed_cidrs: got '10\.20\.0\.0/16', the API's endpoint is public and sees "
            r"callers' public addresses",
        ),
        (
            {"allowed_cidrs": ["100.64.0.0/16"]},
            r"allowed_cidrs: got '100\.64\.0\.0/16', the API's endpoint is public",
        ),
        (
            {"allowed_cidrs": ["0.0.0.0/0"]},
            r"allowed_cidrs: got '0\.0\.0\.0/0', leave allowed_cidrs empty to let every address",
        ),
        (
            {"allowed_cidrs": ["203.0.113.1/24"]},
            r"allowed_cidrs: got '203\.0\.113\.1/24', give IPv4",
        ),
        (
            {"allowed_cidrs": ["203.0.113.0/24", "203.0.113.0/24"]},
            r"allowed_cidrs: got \['203\.0\.113\.0/24'\], give each range once",
        ),
        (
            {"require_api_key": False},
            r"require_api_key: got False, a public endpoint that checks nobody",
        ),
        ({"stage_name": "v1/beta"}, r"stage_name: got 'v1/beta', give 1-128 letters"),
        ({"name": "Metadata"}, r"name: got 'Metadata', give 1-31 lower-case letters"),
        ({"throttle_rate_limit": 0}, r"throttle_rate_limit: got 0, give more than 0 and at most"),
        ({"throttle_rate_limit": 10001}, r"throttle_rate_limit: got 10001, give more than 0"),
        ({"throttle_burst_limit": 0}, r"throttle_burst_limit: got 0, give 1-5000 requests"),
        (
            {"require_api_key": False, "allowed_cidrs": ALLOWED, "quota_limit": 100},
            r"quota_limit: got 100, a quota counts an API key's requests",
        ),
        ({"quota_limit": 0}, r"quota_limit: got 0, give 1 or more"),
        ({"quota_period": "YEAR"}, r"quota_period: got 'YEAR', give DAY, WEEK or MONTH"),
        ({"integration_timeout_ms": 49}, r"integration_timeout_ms: got 49, give 50-29000 ms"),
        ({"integration_timeout_ms": 29001}, r"integration_timeout_ms: got 29001, give 50-29000"),
        ({"error_5xx_threshold": 0}, r"error_5xx_threshold: got 0, give 1 or more"),
        ({"latency_p99_threshold_ms": 0}, r"latency_p99_threshold_ms: got 0, give 1 or more"),
    ],
)
def test_a_wrong_setting_is_refused_with_the_fix(
    unit_stack: UnitStack, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^unit/api\.{message}"):
        _api(unit_stack, **overrides)
