"""A REST API in API Gateway in front of an internal Network Load Balancer.

The API has a regional (public) endpoint; every path and method (``ANY /`` and ``ANY
/{proxy+}``) is proxied unchanged (``HTTP_PROXY``) through a VPC link to the load
balancer's main listener, so the service itself stays in private subnets. Callers are
checked here, before anything reaches the VPC:

- the resource policy lets only ``allowed_cidrs`` (the callers' *public* addresses: a
  VPN's or office's egress, a NAT gateway's address for callers in a VPC) invoke the API
  and explicitly denies every other source address;
- with ``require_api_key`` every method needs the ``x-api-key`` header holding the key of
  the API's usage plan (throttled, optionally with a quota). The key's value is generated
  by API Gateway and never leaves it through this construct: read it with
  ``aws apigateway get-api-key --api-key <api_key_id> --include-value`` (it is also in
  the Terraform state, as every generated secret is).

Access logs (JSON, one line per request, no key value) go to a log group encrypted with
the environment's key. API Gateway writes them with the account's CloudWatch Logs role,
an account-wide setting per region (``aws_api_gateway_account``) that this construct
does not manage: two stacks managing it would overwrite each other, and API Gateway cannot
reset it on destroy. Set it once per account and region before the first deployment
(console: API Gateway > Settings; or one ``aws_api_gateway_account`` outside the systems);
until then creating the stage fails with "CloudWatch Logs role ARN must be set in account
settings to enable logging", or set ``access_logs=False``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cdktf import Fn, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.api_gateway_api_key import ApiGatewayApiKey
from cdktf_cdktf_provider_aws.api_gateway_deployment import ApiGatewayDeployment
from cdktf_cdktf_provider_aws.api_gateway_integration import ApiGatewayIntegration
from cdktf_cdktf_provider_aws.api_gateway_method import ApiGatewayMethod
from cdktf_cdktf_provider_aws.api_gateway_method_settings import (
    ApiGatewayMethodSettings,
    ApiGatewayMethodSettingsSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_resource import ApiGatewayResource
from cdktf_cdktf_provider_aws.api_gateway_rest_api import (
    ApiGatewayRestApi,
    ApiGatewayRestApiEndpointConfiguration,
)
from cdktf_cdktf_provider_aws.api_gateway_rest_api_policy import ApiGatewayRestApiPolicy
from cdktf_cdktf_provider_aws.api_gateway_stage import (
    ApiGatewayStage,
    ApiGatewayStageAccessLogSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_usage_plan import (
    ApiGatewayUsagePlan,
    ApiGatewayUsagePlanApiStages,
    ApiGatewayUsagePlanQuotaSettings,
    ApiGatewayUsagePlanThrottleSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_usage_plan_key import ApiGatewayUsagePlanKey
from cdktf_cdktf_provider_aws.api_gateway_vpc_link import ApiGatewayVpcLink
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct

from .alarms import AlarmSpec, Watch
from .encryption import EncryptionKey
from .errors import ConfigError
from .logs import log_group
from .naming import Naming
from .network_load_balancer import NetworkLoadBalancer
from .policy import Statement
from .settings import DEFAULT_LOG_RETENTION_DAYS, PRIVATE_RANGES

__all__ = ["QuotaPeriod", "RestApi", "RestApiProps"]

API_METRICS = "AWS/ApiGateway"
INVOKE = "execute-api:Invoke"
MAX_THROTTLE_RATE = 10000
"""Requests per second: API Gateway's default account-wide limit per region."""
MAX_THROTTLE_BURST = 5000
"""API Gateway's default account-wide burst per region."""
MAX_INTEGRATION_TIMEOUT_MS = 29000
"""A regional REST API's default integration timeout ceiling."""
STAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
QuotaPeriod = Literal["DAY", "WEEK", "MONTH"]

ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "apiKeyId": "$context.identity.apiKeyId",
    "httpMethod": "$context.httpMethod",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "integrationError": "$context.integration.error",
    "error": "$context.error.message",
}
"""One JSON line per request. It names the caller's key by its id
(``$context.identity.apiKeyId``) and never logs the key itself
(``$context.identity.apiKey``); ``integrationError`` says why the VPC link or the load
balancer failed a request."""


@dataclass(frozen=True)
class RestApiProps:
    naming: Naming
    network_load_balancer: NetworkLoadBalancer
    """Every request goes, through a VPC link, to its main listener."""
    key: EncryptionKey
    """Encrypts the access-log group."""
    allowed_cidrs: Sequence[str] = ()
    """Public IPv4 ranges (the callers' internet egress: a VPN's, an office's, a NAT
    gateway's) that may invoke the API; the resource policy denies every other source.
    The endpoint is public, so private ranges never match and are refused. Unset: no
    resource policy, any address may call (the API key, when required, still is)."""
    require_api_key: bool = True
    """Every method requires the usage plan's API key (``x-api-key`` header). False: no
    key, no usage plan; anyone ``allowed_cidrs`` admits may call. Unset: required."""
    name: str = "api"
    """Names the API (``<prefix>-<name>``), its VPC link, key, usage plan, log group and
    alarm keys. Unset: ``api``."""
    stage_name: str = "api"
    """The stage, the invoke URL's path prefix (letters, digits, ``-``, ``_``). Unset:
    ``api``."""
    throttle_rate_limit: float = 50
    """Steady requests per second for the whole stage and for the key's usage plan.
    Unset: 50."""
    throttle_burst_limit: int = 100
    """Requests API Gateway admits at once above the steady rate. Unset: 100."""
    quota_limit: int | None = None
    """Requests the key may make per ``quota_period`` (needs ``require_api_key``).
    Unset: no quota."""
    quota_period: QuotaPeriod = "DAY"
    """Unset: a day."""
    integration_timeout_ms: int = MAX_INTEGRATION_TIMEOUT_MS
    """How long API Gateway waits for the service, 50-29000 ms. Unset: 29000."""
    access_logs: bool = True
    """Write the stage's access log. Needs the account's API Gateway CloudWatch Logs role
    in this region (see the module doc). Unset: written."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Unset: 30 days."""
    xray_tracing: bool = False
    """Active X-Ray tracing on the stage. Unset: off."""
    detailed_metrics: bool = False
    """Per-method CloudWatch metrics (charged as custom metrics). The API-level metrics
    that :meth:`RestApi.alarms` watch exist either way. Unset: off."""
    error_5xx_threshold: int = 5
    """5xx answers in 5 minutes above which the ``<name>-5xx`` alarm fires. Unset: 5."""
    latency_p99_threshold_ms: int = 5000
    """p99 latency above which the ``<name>-p99-latency`` pressure alarm fires. Unset:
    5000 ms."""


class RestApi(Construct):
    """A regional REST API proxying everything through a VPC link to an internal NLB.

    Resources: the API (regional endpoint, key from the ``x-api-key`` header), the VPC link
    to the load balancer, ``ANY`` on ``/`` and on ``/{proxy+}`` with ``HTTP_PROXY``
    integrations to ``http://<nlb dns>:<listener port>/`` and ``.../{proxy}``, the
    resource policy (with ``allowed_cidrs``), a deployment, the stage with encrypted JSON
    access logs and stage-wide throttling (execution logging off: it would write request
    details to a log group API Gateway creates unencrypted), and with ``require_api_key``
    an API key, a usage plan on the stage and the key's membership in it.

    The deployment is a snapshot: Terraform replaces it (new one first, then the stage
    moves) whenever a method, an integration, the resource or the resource policy
    changes, since API Gateway applies none of those to a running stage by itself.
    """

    def __init__(self, scope: Construct, id_: str, *, props: RestApiProps) -> None:
        super().__init__(scope, id_)
        self._validate(props)
        self.props = props
        naming = props.naming
        nlb = props.network_load_balancer
        self.api_name = naming.name(props.name)
        self.stage_name = props.stage_name

        self.api = ApiGatewayRestApi(
            self,
            "api",
            name=self.api_name,
            description=f"{self.api_name}: proxied through a VPC link to an internal NLB",
            endpoint_configuration=ApiGatewayRestApiEndpointConfiguration(types=["REGIONAL"]),
            api_key_source="HEADER",
            tags={"Name": self.api_name},
        )
        self.vpc_link = ApiGatewayVpcLink(
            self,
            "vpc-link",
            name=naming.name(props.name, "vpc-link"),
            target_arns=[nlb.arn],
            tags={"Name": naming.name(props.name, "vpc-link")},
        )
        self.policy: ApiGatewayRestApiPolicy | None = self._resource_policy(props)
        origin = f"http://{nlb.dns_name}:{nlb.listener_port}"
        self.proxy_resource = ApiGatewayResource(
            self,
            "proxy",
            rest_api_id=self.api.id,
            parent_id=self.api.root_resource_id,
            path_part="{proxy+}",
        )
        self.methods = {
            "root": self._method("root", self.api.root_resource_id, proxy=False),
            "proxy": self._method("proxy", self.proxy_resource.id, proxy=True),
        }
        """``ANY`` on ``/`` and on ``/{proxy+}``."""
        self.integrations = {
            "root": self._integration("root", f"{origin}/", proxy=False),
            "proxy": self._integration("proxy", f"{origin}/{{proxy}}", proxy=True),
        }
        """Each method's ``HTTP_PROXY`` integration through the VPC link."""
        self.deployment = self._deployment()
        self.log_group: CloudwatchLogGroup | None = None
        """The access-log group (``/<project>/<env>/apigateway/<name>``); None without
        ``access_logs``."""
        if props.access_logs:
            self.log_group = log_group(
                self,
                "access-logs",
                name=naming.path("apigateway", props.name),
                retention_days=props.log_retention_days,
                kms_key_arn=props.key.arn,
            )
        self.stage = ApiGatewayStage(
            self,
            "stage",
            rest_api_id=self.api.id,
            deployment_id=self.deployment.id,
            stage_name=props.stage_name,
            xray_tracing_enabled=props.xray_tracing,
            access_log_settings=(
                ApiGatewayStageAccessLogSettings(
                    destination_arn=self.log_group.arn, format=json.dumps(ACCESS_LOG_FORMAT)
                )
                if self.log_group is not None
                else None
            ),
            tags={"Name": f"{self.api_name}-{props.stage_name}"},
        )
        self.method_settings = ApiGatewayMethodSettings(
            self,
            "method-settings",
            rest_api_id=self.api.id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings=ApiGatewayMethodSettingsSettings(
                metrics_enabled=props.detailed_metrics,
                logging_level="OFF",
                data_trace_enabled=False,
                throttling_rate_limit=props.throttle_rate_limit,
                throttling_burst_limit=props.throttle_burst_limit,
            ),
        )
        self.api_key: ApiGatewayApiKey | None = None
        self.usage_plan: ApiGatewayUsagePlan | None = None
        self.usage_plan_key: ApiGatewayUsagePlanKey | None = None
        if props.require_api_key:
            self._key_and_usage_plan(props)

        self.rest_api_id: str = self.api.id
        self.url: str = self.stage.invoke_url
        """``https://<api id>.execute-api.<region>.amazonaws.com/<stage>``."""
        self.api_key_id: str | None = self.api_key.id if self.api_key is not None else None
        """The API key's id (never its value); None without ``require_api_key``."""

    def alarms(self) -> list[AlarmSpec]:
        """5xx answers (breakage: the service, the VPC link or the load balancer fails)
        and slow answers (pressure)."""
        props = self.props
        dimensions = {"ApiName": self.api_name, "Stage": self.stage_name}
        return [
            AlarmSpec(
                f"{props.name}-5xx",
                f"More than {props.error_5xx_threshold} HTTP 5xx answers from REST API "
                f"{self.api_name} in 5 minutes. Look at integrationError in its access log "
                "(VPC link or load balancer), then the service's logs and target health.",
                (API_METRICS, "5XXError", dimensions),
                Watch("Sum", 300, ">", props.error_5xx_threshold),
            ),
            AlarmSpec(
                f"{props.name}-p99-latency",
                f"The slowest 1 % of answers from REST API {self.api_name} took over "
                f"{props.latency_p99_threshold_ms} ms in 3 of the last 5 minutes. Compare "
                "integrationLatency in the access log with the service's CPU and database.",
                (API_METRICS, "Latency", dimensions),
                Watch("p99", 60, ">", props.latency_p99_threshold_ms, evaluations=5, datapoints=3),
                breakage=False,
            ),
        ]

    # --- internals ----------------------------------------------------------------------

    def _resource_policy(self, props: RestApiProps) -> ApiGatewayRestApiPolicy | None:
        """Invoke from ``allowed_cidrs`` only (an explicit deny for every other source
        address); None without ``allowed_cidrs``."""
        if not props.allowed_cidrs:
            return None
        every_method = f"{self.api.execution_arn}/*"
        statements = [
            Statement(sid="AllowInvoke", actions=[INVOKE], resources=[every_method]),
            Statement(
                sid="DenyOutsideAllowedCidrs",
                effect="Deny",
                actions=[INVOKE],
                resources=[every_method],
                conditions={"NotIpAddress": {"aws:SourceIp": list(props.allowed_cidrs)}},
            ),
        ]
        return ApiGatewayRestApiPolicy(
            self, "policy", rest_api_id=self.api.id, policy=_anyone_policy(statements)
        )

    def _method(self, key: str, resource_id: str, *, proxy: bool) -> ApiGatewayMethod:
        return ApiGatewayMethod(
            self,
            f"{key}-any",
            rest_api_id=self.api.id,
            resource_id=resource_id,
            http_method="ANY",
            authorization="NONE",
            api_key_required=self.props.require_api_key,
            request_parameters={"method.request.path.proxy": True} if proxy else None,
        )

    def _integration(self, key: str, uri: str, *, proxy: bool) -> ApiGatewayIntegration:
        """``HTTP_PROXY`` to ``uri`` through the VPC link: API Gateway connects to the load
        balancer's listener on the URI's port; the host only sets the ``Host`` header."""
        method = self.methods[key]
        return ApiGatewayIntegration(
            self,
            f"{key}-integration",
            rest_api_id=self.api.id,
            resource_id=method.resource_id,
            http_method=method.http_method,
            type="HTTP_PROXY",
            integration_http_method="ANY",
            uri=uri,
            connection_type="VPC_LINK",
            connection_id=self.vpc_link.id,
            timeout_milliseconds=self.props.integration_timeout_ms,
            request_parameters=(
                {"integration.request.path.proxy": "method.request.path.proxy"} if proxy else None
            ),
        )

    def _deployment(self) -> ApiGatewayDeployment:
        """A deployment replaced (create before destroy) when what it snapshots changes:
        the trigger hashes the resource, methods, integrations and policy as Terraform
        plans them, so an in-place change (a new URI, key requirement or CIDR) counts."""
        watched: list[Any] = [self.proxy_resource.id, self.proxy_resource.path_part]
        for key, method in self.methods.items():
            integration = self.integrations[key]
            watched += [
                method.id,
                method.http_method,
                method.authorization,
                method.api_key_required,
                integration.id,
                integration.type,
                integration.uri,
                integration.connection_type,
                integration.connection_id,
                integration.timeout_milliseconds,
            ]
        if self.policy is not None:
            watched.append(self.policy.policy)
        return ApiGatewayDeployment(
            self,
            "deployment",
            rest_api_id=self.api.id,
            description=f"{self.api_name} (replaced when its routes or policy change)",
            triggers={"redeployment": Fn.sha1(Fn.jsonencode(watched))},
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            depends_on=[
                *self.methods.values(),
                *self.integrations.values(),
                *([self.policy] if self.policy is not None else []),
            ],
        )

    def _key_and_usage_plan(self, props: RestApiProps) -> None:
        naming = props.naming
        self.api_key = ApiGatewayApiKey(
            self,
            "api-key",
            name=naming.name(props.name, "key"),
            description=f"Callers of {self.api_name} (value generated by API Gateway)",
            enabled=True,
        )
        quota = (
            ApiGatewayUsagePlanQuotaSettings(limit=props.quota_limit, period=props.quota_period)
            if props.quota_limit is not None
            else None
        )
        self.usage_plan = ApiGatewayUsagePlan(
            self,
            "usage-plan",
            name=naming.name(props.name, "usage"),
            description=f"Throttling{' and quota' if quota else ''} of {self.api_name}'s key",
            api_stages=[
                ApiGatewayUsagePlanApiStages(api_id=self.api.id, stage=self.stage.stage_name)
            ],
            throttle_settings=ApiGatewayUsagePlanThrottleSettings(
                rate_limit=props.throttle_rate_limit, burst_limit=props.throttle_burst_limit
            ),
            quota_settings=quota,
        )
        self.usage_plan_key = ApiGatewayUsagePlanKey(
            self,
            "usage-plan-key",
            key_id=self.api_key.id,
            key_type="API_KEY",
            usage_plan_id=self.usage_plan.id,
        )

    def _validate(self, props: RestApiProps) -> None:
        where = self.node.path
        self._validate_cidrs(props)
        if not STAGE_NAME.match(props.stage_name):
            raise ConfigError(
                where,
                "stage_name",
                repr(props.stage_name),
                "give 1-128 letters, digits, - or _",
            )
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", props.name):
            raise ConfigError(
                where, "name", repr(props.name), "give 1-31 lower-case letters, digits or -"
            )
        if not 0 < props.throttle_rate_limit <= MAX_THROTTLE_RATE:
            raise ConfigError(
                where,
                "throttle_rate_limit",
                props.throttle_rate_limit,
                f"give more than 0 and at most {MAX_THROTTLE_RATE} requests per second",
            )
        if not 1 <= props.throttle_burst_limit <= MAX_THROTTLE_BURST:
            raise ConfigError(
                where,
                "throttle_burst_limit",
                props.throttle_burst_limit,
                f"give 1-{MAX_THROTTLE_BURST} requests",
            )
        if props.quota_limit is not None:
            if not props.require_api_key:
                raise ConfigError(
                    where,
                    "quota_limit",
                    props.quota_limit,
                    "a quota counts an API key's requests: set require_api_key or leave it unset",
                )
            if props.quota_limit < 1:
                raise ConfigError(where, "quota_limit", props.quota_limit, "give 1 or more")
        if props.quota_period not in ("DAY", "WEEK", "MONTH"):
            raise ConfigError(
                where, "quota_period", repr(props.quota_period), "give DAY, WEEK or MONTH"
            )
        if not 50 <= props.integration_timeout_ms <= MAX_INTEGRATION_TIMEOUT_MS:
            raise ConfigError(
                where,
                "integration_timeout_ms",
                props.integration_timeout_ms,
                f"give 50-{MAX_INTEGRATION_TIMEOUT_MS} ms",
            )
        for field in ("error_5xx_threshold", "latency_p99_threshold_ms"):
            value = getattr(props, field)
            if value < 1:
                raise ConfigError(where, field, value, "give 1 or more")

    def _validate_cidrs(self, props: RestApiProps) -> None:
        where = self.node.path
        if not props.require_api_key and not props.allowed_cidrs:
            raise ConfigError(
                where,
                "require_api_key",
                False,
                "a public endpoint that checks nobody would open the service to the internet: "
                "require the API key or give allowed_cidrs",
            )
        for cidr in props.allowed_cidrs:
            problem = _public_cidr_problem(cidr)
            if problem:
                raise ConfigError(where, "allowed_cidrs", repr(cidr), problem)
        cidrs = list(props.allowed_cidrs)
        twice = sorted({c for c in cidrs if cidrs.count(c) > 1})
        if twice:
            raise ConfigError(where, "allowed_cidrs", twice, "give each range once")


def _public_cidr_problem(cidr: str) -> str | None:
    """Why ``cidr`` cannot be a source address of a regional API's callers (the fix to
    give), or None when it can."""
    try:
        network = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        return "give IPv4 network CIDRs such as 203.0.113.0/24"
    if network.prefixlen == 0:
        return "leave allowed_cidrs empty to let every address call (the API key still applies)"
    if any(network.overlaps(private) for private in PRIVATE_RANGES):
        return (
            "the API's endpoint is public and sees callers' public addresses: give the "
            "public egress ranges of the VPN or office (for callers in a VPC, its NAT "
            "gateway's address), not private ranges"
        )
    return None


def _anyone_policy(statements: Sequence[Statement]) -> str:
    """A resource policy whose statements apply to every principal (``"Principal":
    "*"``, the form API Gateway's resource-policy examples use), rendered like
    :func:`~constructs_lib.policy.policy_document`."""
    rendered = [{**s.render(), "Principal": "*"} for s in statements]
    ordered = [
        {
            k: r[k]
            for k in ("Sid", "Effect", "Principal", "Action", "Resource", "Condition")
            if k in r
        }
        for r in rendered
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": ordered})
