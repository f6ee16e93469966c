"""An offline monthly cost ESTIMATE per stack, from a pinned on-demand price table.

Reads the synthesized resources only (``tools.review.model``) and ``prices.toml`` next to
this module: no credentials, no network, no Price List API. Every always-on resource is
priced at 730 hours a month at its configured size (ECS services at their minimum task
count); what AWS bills by usage (requests, GB processed or stored, log ingestion) is named
in the report's ``usage`` notes and left out of the total.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.review.model import Resource, Stack, is_on

HOURS_PER_MONTH = 730
PRICES_PATH = Path(__file__).resolve().with_name("prices.toml")
DISCLAIMER = (
    "This is an estimate from a pinned table of on-demand list prices (tools/review/prices.toml) "
    "for always-on resources at their configured minimum size; usage-priced parts, data "
    "transfer, free tiers, discounts and taxes are not included, so the bill will differ."
)

PRICED: frozenset[str] = frozenset(
    {
        "aws_cloudwatch_composite_alarm",
        "aws_cloudwatch_dashboard",
        "aws_cloudwatch_metric_alarm",
        "aws_db_instance",
        "aws_ecs_service",
        "aws_eip",
        "aws_elasticache_cluster",
        "aws_elasticache_replication_group",
        "aws_elasticache_serverless_cache",
        "aws_kms_key",
        "aws_lb",
        "aws_nat_gateway",
        "aws_route53_zone",
        "aws_secretsmanager_secret",
        "aws_service_discovery_private_dns_namespace",
        "aws_service_discovery_service",
        "aws_vpc_endpoint",
        "aws_wafv2_web_acl",
    }
)
"""Resource types with a monthly price of their own (some may come out at $0, e.g. a gateway
VPC endpoint or a Cloud Map service no task registers with)."""

FREE_OR_USAGE_ONLY: frozenset[str] = frozenset(
    {
        # networking: free by itself; traffic is usage
        "aws_vpc",
        "aws_subnet",
        "aws_route",
        "aws_route_table",
        "aws_route_table_association",
        "aws_main_route_table_association",
        "aws_default_route_table",
        "aws_internet_gateway",
        "aws_egress_only_internet_gateway",
        "aws_network_acl",
        "aws_network_acl_rule",
        "aws_default_network_acl",
        "aws_security_group",
        "aws_security_group_rule",
        "aws_default_security_group",
        "aws_vpc_security_group_ingress_rule",
        "aws_vpc_security_group_egress_rule",
        "aws_vpc_endpoint_route_table_association",
        # usage only: queries scanned, monthly active users, API requests, file storage
        "aws_api_gateway_api_key",
        "aws_api_gateway_deployment",
        "aws_api_gateway_integration",
        "aws_api_gateway_method",
        "aws_api_gateway_method_settings",
        "aws_api_gateway_resource",
        "aws_api_gateway_rest_api",
        "aws_api_gateway_rest_api_policy",
        "aws_api_gateway_stage",
        "aws_api_gateway_usage_plan",
        "aws_api_gateway_usage_plan_key",
        "aws_api_gateway_vpc_link",  # a REST API's VPC link has no charge of its own
        "aws_efs_access_point",
        "aws_efs_backup_policy",  # AWS Backup's storage is usage
        "aws_efs_file_system",
        "aws_efs_file_system_policy",
        "aws_efs_mount_target",
        "aws_athena_workgroup",
        "aws_cognito_user_pool",
        "aws_cognito_user_pool_client",
        "aws_cognito_user_pool_domain",
        "aws_flow_log",  # log ingestion
        # IAM
        "aws_iam_role",
        "aws_iam_role_policy",
        "aws_iam_role_policy_attachment",
        "aws_iam_policy",
        "aws_iam_instance_profile",
        "aws_iam_service_linked_role",
        "aws_iam_openid_connect_provider",
        # S3: storage and requests are usage
        "aws_s3_bucket",
        "aws_s3_bucket_acl",
        "aws_s3_bucket_cors_configuration",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_logging",
        "aws_s3_bucket_notification",
        "aws_s3_bucket_ownership_controls",
        "aws_s3_bucket_policy",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_website_configuration",
        "aws_s3_object",
        # CloudWatch Logs: ingestion and storage are usage
        "aws_cloudwatch_log_group",
        "aws_cloudwatch_log_resource_policy",
        "aws_cloudwatch_log_subscription_filter",
        "aws_cloudwatch_log_metric_filter",
        "aws_cloudwatch_query_definition",  # saved Logs Insights queries: queries are usage
        "aws_cloudwatch_event_rule",
        "aws_cloudwatch_event_target",
        # ECS: Fargate is priced on the service; the rest is configuration
        "aws_ecs_cluster",
        "aws_ecs_cluster_capacity_providers",
        "aws_ecs_task_definition",
        "aws_appautoscaling_target",
        "aws_appautoscaling_policy",
        "aws_appautoscaling_scheduled_action",
        "aws_ecr_repository",  # image storage
        "aws_ecr_lifecycle_policy",
        "aws_ecr_repository_policy",
        # load balancer configuration (LCUs are usage)
        "aws_lb_listener",
        "aws_lb_listener_rule",
        "aws_lb_listener_certificate",
        "aws_lb_target_group",
        "aws_lb_target_group_attachment",
        # databases and caches: configuration only
        "aws_db_parameter_group",
        "aws_db_subnet_group",
        "aws_db_event_subscription",  # free; the SNS deliveries are usage
        "aws_db_option_group",
        "aws_elasticache_parameter_group",
        "aws_elasticache_subnet_group",
        "aws_elasticache_user",
        "aws_elasticache_user_group",
        # Lambda: requests and GB-seconds are usage
        "aws_lambda_function",
        "aws_lambda_permission",
        "aws_lambda_invocation",
        "aws_lambda_alias",
        "aws_lambda_event_source_mapping",
        # CloudFront: requests and GB are usage
        "aws_cloudfront_distribution",
        "aws_cloudfront_origin_access_control",
        "aws_cloudfront_vpc_origin",
        "aws_cloudfront_cache_policy",
        "aws_cloudfront_origin_request_policy",
        "aws_cloudfront_response_headers_policy",
        "aws_cloudfront_function",
        # the rest
        "aws_kms_alias",
        "aws_kms_grant",
        "aws_secretsmanager_secret_version",
        "aws_secretsmanager_secret_rotation",  # Lambda invocations
        "aws_secretsmanager_secret_policy",
        "aws_sns_topic",
        "aws_sns_topic_policy",
        "aws_sns_topic_subscription",
        "aws_sqs_queue",
        "aws_sqs_queue_policy",
        "aws_wafv2_web_acl_logging_configuration",  # log ingestion
        "aws_wafv2_web_acl_association",
        "aws_acm_certificate",  # public certificates are free
        "aws_acm_certificate_validation",
        "aws_route53_record",  # queries are usage
        "aws_ssm_parameter",  # standard parameters are free
    }
)
"""Resource types that cost nothing by themselves or are billed only by usage."""

_REGION = re.compile(r"[a-z]{2}(?:-gov)?-[a-z]+-\d")
_KEY = re.compile(r"\{(\w+)\}")


PRICES_FILE = "tools/review/prices.toml"
"""How messages name the price table (from the project root)."""


class MissingPriceError(LookupError):
    """The price table has no figure for something the stack uses: add it to prices.toml.

    ``what`` is the missing entry's own name (an instance class such as ``db.r6g.large``,
    or a rate such as ``nat_gateway_hour``); the estimate leaves the resource out and
    reports the stack's total as a lower bound.
    """

    def __init__(self, what: str, region: str) -> None:
        self.what = what
        self.region = region
        super().__init__(f"no price for {what} in {region}: add it to {PRICES_FILE}")


@dataclass(frozen=True)
class Prices:
    """The pinned price table: ``regions[region][key]`` is a rate or a nested table."""

    source: str
    as_of: str
    regions: Mapping[str, Mapping[str, Any]]

    def rate(self, region: str, *path: str) -> float:
        """The figure at ``path`` in ``region`` (e.g. ``rate(r, "rds_instance_hour", "mysql",
        "db.t4g.micro")``)."""
        value: Any = self.regions.get(region)
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MissingPriceError(path[-1] if path else "?", region)
        return float(value)


def load_prices(path: Path | None = None) -> Prices:
    """The price table (default: ``prices.toml`` next to this module)."""
    document = tomllib.loads((path or PRICES_PATH).read_text(encoding="utf-8"))
    meta = document.get("meta", {})
    regions = {k: v for k, v in document.items() if k != "meta" and isinstance(v, dict)}
    return Prices(
        source=str(meta.get("source", "")), as_of=str(meta.get("prices_as_of", "")), regions=regions
    )


@dataclass(frozen=True)
class CostLine:
    address: str
    construct: str
    what: str
    usd_month: float


@dataclass(frozen=True)
class CostReport:
    stack: str
    region: str
    lines: tuple[CostLine, ...]
    usage: tuple[str, ...]
    """Usage-priced parts and assumptions, each naming what is not in the total."""
    unpriced: tuple[str, ...]
    """Resource types in neither ``PRICED`` nor ``FREE_OR_USAGE_ONLY``."""
    missing: tuple[str, ...] = ()
    """What the price table lacks, one message each (``no price for <class> in <region>:
    add it to tools/review/prices.toml``); those resources are not in ``total``."""

    @property
    def total(self) -> float:
        """The sum of the priced lines: a lower bound when ``missing`` names anything."""
        return sum(line.usd_month for line in self.lines)

    @property
    def total_text(self) -> str:
        """``$1,234`` or, with prices missing, ``at least $1,234``."""
        amount = f"${self.total:,.0f}"
        return f"at least {amount}" if self.missing else amount


def classify(types: Iterable[str]) -> dict[str, str]:
    """Each type as ``"priced"``, ``"free/usage"`` or ``"unknown"``."""
    return {
        t: "priced" if t in PRICED else "free/usage" if t in FREE_OR_USAGE_ONLY else "unknown"
        for t in types
    }


# ------------------------------------------------------------------ estimate


@dataclass
class _Context:
    stack: Stack
    prices: Prices
    region: str
    notes: dict[str, None] = field(default_factory=dict)
    missing: dict[str, None] = field(default_factory=dict)
    """What the price table lacks (``MissingPriceError`` messages), in order met."""

    def region_of(self, res: Resource) -> str:
        """The resource's region: its provider alias (``aws.us_east_1``) or the stack's."""
        provider = res.attrs.get("provider")
        if isinstance(provider, str) and provider.startswith("aws."):
            alias = provider.removeprefix("aws.").replace("_", "-")
            if _REGION.fullmatch(alias):
                return alias
        return self.region

    def rate(self, res: Resource, *path: str) -> float:
        return self.prices.rate(self.region_of(res), *path)

    def where(self, res: Resource) -> str:
        """`` (us-east-1)`` for a resource outside the stack's region."""
        region = self.region_of(res)
        return "" if region == self.region else f" ({region})"

    def note(self, res: Resource | None, template: str) -> None:
        """Add a usage note; ``{key}`` placeholders become that region's rates."""
        region = self.region if res is None else self.region_of(res)
        try:
            text = self._fill(template, region)
        except MissingPriceError as error:  # the note's rate: named, the note left out
            self.missing[str(error)] = None
            return
        if region != self.region:
            try:
                same = text == self._fill(template, self.region)
            except MissingPriceError:
                same = False
            if not same:
                text = text.replace(":", f" ({region}):", 1)
        self.notes[text] = None

    def _fill(self, template: str, region: str) -> str:
        return _KEY.sub(lambda m: _money(self.prices.rate(region, m.group(1))), template)

    def line(self, res: Resource, what: str, usd: float) -> CostLine:
        return CostLine(res.address, res.construct, what, usd)

    def lines_if_priced(self, res: Resource, what: str, usd: Callable[[], float]) -> list[CostLine]:
        """``[line]``, or none with the missing price recorded: one part of a resource
        left out keeps the parts that are priced (an unknown class keeps its storage)."""
        try:
            return [self.line(res, what, usd())]
        except MissingPriceError as error:
            self.missing[str(error)] = None
            return []


def _money(value: float) -> str:
    """``$0.052``, ``$0.60``, ``$1.00``, ``$0.0000133334``: no float noise, cents kept."""
    text = f"{value:.10f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def _number(res: Resource, key: str, default: float | None = None) -> float:
    value = res.attrs.get(key, default)
    if isinstance(value, bool):
        raise ValueError(f"{res.address}: {key} is not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{res.address}: {key} is not a number: {value!r}")


def _count(n: float) -> str:
    return f"{n:g}"


def _block(value: Any) -> dict[str, Any]:
    """A nested block as synthesized: a dict, or a one-element list of dicts."""
    if isinstance(value, list):
        value = value[0] if value else {}
    return value if isinstance(value, dict) else {}


def _nat_gateway(res: Resource, ctx: _Context) -> list[CostLine]:
    ctx.note(res, "NAT gateway: data processed, {nat_gateway_gb}/GB, not included")
    usd = ctx.rate(res, "nat_gateway_hour") * HOURS_PER_MONTH
    return [ctx.line(res, f"1 x NAT gateway{ctx.where(res)}, {HOURS_PER_MONTH} h", usd)]


def _eip(res: Resource, ctx: _Context) -> list[CostLine]:
    usd = ctx.rate(res, "public_ipv4_hour") * HOURS_PER_MONTH
    what = f"1 x public IPv4 address (Elastic IP){ctx.where(res)}, {HOURS_PER_MONTH} h"
    return [ctx.line(res, what, usd)]


def _lb(res: Resource, ctx: _Context) -> list[CostLine]:
    kind = res.attrs.get("load_balancer_type", "application")
    prefix, name = {"application": ("alb", "Application"), "network": ("nlb", "Network")}.get(
        kind, (str(kind), str(kind))
    )
    ctx.note(
        res,
        f"{name} Load Balancer: capacity units, {{{prefix}_lcu_hour}} per LCU-hour, not included",
    )
    usd = ctx.rate(res, f"{prefix}_hour") * HOURS_PER_MONTH
    what = f"1 x {name} Load Balancer{ctx.where(res)}, {HOURS_PER_MONTH} h"
    return [ctx.line(res, what, usd)]


def _db_instance(res: Resource, ctx: _Context) -> list[CostLine]:
    engine = str(res.attrs.get("engine", ""))
    table = {"mysql": "mysql", "mariadb": "mysql"}.get(engine, engine)
    klass = str(res.attrs.get("instance_class"))
    multi_az = is_on(res.attrs.get("multi_az"))
    copies = 2 if multi_az else 1
    deployment = "Multi-AZ (primary + standby)" if multi_az else "Single-AZ"
    where = ctx.where(res)
    lines = ctx.lines_if_priced(
        res,
        f"{copies} x {klass} {_ENGINES.get(engine, engine)} instance, {deployment}{where}, "
        f"{HOURS_PER_MONTH} h",
        lambda: copies * ctx.rate(res, "rds_instance_hour", table, klass) * HOURS_PER_MONTH,
    )
    storage_type = str(res.attrs.get("storage_type", "gp2"))
    gb = _number(res, "allocated_storage")
    lines += ctx.lines_if_priced(
        res,
        f"{copies} x {_count(gb)} GB {storage_type} storage, {deployment}{where}, month",
        lambda: copies * gb * ctx.rate(res, f"rds_{storage_type}_gb_month"),
    )
    if is_on(res.attrs.get("performance_insights_enabled")):
        retention = _number(res, "performance_insights_retention_period", 7)
        if retention <= 7:
            lines.append(ctx.line(res, "Performance Insights, 7-day retention (free tier)", 0.0))
        else:
            ctx.note(
                res,
                f"RDS Performance Insights: {_count(retention)}-day retention is billed per vCPU, "
                "not included",
            )
    ctx.note(
        res,
        "RDS: backup storage beyond the allocated size ({rds_backup_gb_month}/GB-month), storage "
        "grown by autoscaling, provisioned IOPS above the gp3 baseline, not included",
    )
    if _number(res, "monitoring_interval", 0) > 0:
        ctx.note(res, "RDS Enhanced Monitoring: billed as CloudWatch Logs ingestion, not included")
    return lines


_ENGINES = {
    "mysql": "MySQL",
    "mariadb": "MariaDB",
    "postgres": "PostgreSQL",
    "valkey": "Valkey",
    "redis": "Redis OSS",
    "memcached": "Memcached",
}
_SNAPSHOT_NOTE = "ElastiCache snapshots: {elasticache_snapshot_gb_month}/GB-month, not included"


def _cache_nodes(res: Resource) -> float:
    if "num_cache_clusters" in res.attrs:
        return _number(res, "num_cache_clusters")
    if "num_node_groups" in res.attrs:
        return _number(res, "num_node_groups") * (_number(res, "replicas_per_node_group", 0) + 1)
    if "num_cache_nodes" in res.attrs:
        return _number(res, "num_cache_nodes")
    return 1.0


def _cache_engine(res: Resource) -> str:
    engine = str(res.attrs.get("engine", "redis"))
    return engine if engine in ("valkey", "memcached") else "redis"


def _elasticache_nodes(res: Resource, ctx: _Context) -> list[CostLine]:
    if res.type == "aws_elasticache_cluster" and res.attrs.get("replication_group_id"):
        return []  # a member of a replication group, priced there
    engine = _cache_engine(res)
    node_type = str(res.attrs.get("node_type"))
    nodes = _cache_nodes(res)
    usd = nodes * ctx.rate(res, "elasticache_node_hour", engine, node_type) * HOURS_PER_MONTH
    if _number(res, "snapshot_retention_limit", 0) > 0:
        ctx.note(res, _SNAPSHOT_NOTE)
    name = _ENGINES[engine]
    what = f"{_count(nodes)} x {node_type} {name} node{ctx.where(res)}, {HOURS_PER_MONTH} h"
    return [ctx.line(res, what, usd)]


def _elasticache_serverless(res: Resource, ctx: _Context) -> list[CostLine]:
    engine = "valkey" if res.attrs.get("engine") == "valkey" else "redis"
    label = "Valkey" if engine == "valkey" else "Redis OSS/Memcached"
    minimum = ctx.rate(res, f"elasticache_serverless_{engine}_min_gb")
    limits = _block(_block(res.attrs.get("cache_usage_limits")).get("data_storage"))
    configured = limits.get("minimum")
    if isinstance(configured, int | float) and not isinstance(configured, bool):
        minimum = max(minimum, float(configured))
    usd = minimum * ctx.rate(res, f"elasticache_serverless_{engine}_gb_hour") * HOURS_PER_MONTH
    ctx.note(
        res,
        f"ElastiCache Serverless ({label}): ECPUs, {{elasticache_serverless_{engine}_ecpu_million}}"
        f" per million, and data stored above the {_count(minimum)} GB minimum, "
        f"{{elasticache_serverless_{engine}_gb_hour}}/GB-hour, not included",
    )
    if _number(res, "snapshot_retention_limit", 0) > 0:
        ctx.note(res, _SNAPSHOT_NOTE)
    what = (
        f"Serverless {label}, minimum billed when idle: {_count(minimum)} GB data storage"
        f"{ctx.where(res)}, {HOURS_PER_MONTH} h"
    )
    return [ctx.line(res, what, usd)]


def _service_tasks(service: Resource, stack: Stack) -> float:
    """The service's minimum task count: its autoscaling target's min_capacity, else
    desired_count."""
    name = service.attrs.get("name")
    for target in stack.of_type("aws_appautoscaling_target"):
        if target.attrs.get("scalable_dimension") != "ecs:service:DesiredCount":
            continue
        resource_id = str(target.attrs.get("resource_id", ""))
        if service.address in target.refs("resource_id") or (
            isinstance(name, str) and resource_id.endswith(f"/{name}")
        ):
            return _number(target, "min_capacity")
    return _number(service, "desired_count", 0)


def _task_definition(service: Resource, stack: Stack) -> Resource | None:
    value = service.attrs.get("task_definition")
    found = stack.target(value)
    if found is not None:
        return found
    family = str(value).split(":")[0]
    for task in stack.of_type("aws_ecs_task_definition"):
        if task.attrs.get("family") == family:
            return task
    return None


def _ecs_service(res: Resource, ctx: _Context) -> list[CostLine]:
    if res.attrs.get("launch_type") in ("EC2", "EXTERNAL"):
        ctx.note(res, f"ECS service {res.construct}: runs on EC2 capacity, priced with it")
        return []
    task = _task_definition(res, ctx.stack)
    if task is None:
        raise ValueError(f"{res.address}: task definition not found in the stack")
    tasks = _service_tasks(res, ctx.stack)
    vcpu = _number(task, "cpu") / 1024
    gb = _number(task, "memory") / 1024
    platform = _block(task.attrs.get("runtime_platform"))
    arch = "arm64" if platform.get("cpu_architecture") == "ARM64" else "x86_64"
    hourly = vcpu * ctx.rate(res, f"fargate_{arch}_vcpu_hour") + gb * ctx.rate(
        res, f"fargate_{arch}_gb_hour"
    )
    ctx.note(
        None,
        "ECS scaling above the minimum: services are priced at their minimum task count "
        "(autoscaling min_capacity, else desired_count); extra tasks are not included",
    )
    what = (
        f"{_count(tasks)} x Fargate task ({_count(vcpu)} vCPU, {_count(gb)} GB, "
        f"Linux/{arch.upper()}){ctx.where(res)}, {HOURS_PER_MONTH} h"
    )
    return [ctx.line(res, what, tasks * hourly * HOURS_PER_MONTH)]


def _discovery_service(res: Resource, ctx: _Context) -> list[CostLine]:
    """Cloud Map bills each registered instance: one per running task of the services that
    register with this discovery service."""
    instances = sum(
        _service_tasks(service, ctx.stack)
        for service in ctx.stack.of_type("aws_ecs_service")
        if res.address in service.refs("service_registries")
    )
    if not instances:
        return []
    usd = instances * ctx.rate(res, "cloudmap_instance_month")
    what = f"{_count(instances)} x Cloud Map registered instance{ctx.where(res)}, month"
    return [ctx.line(res, what, usd)]


def _hosted_zone(res: Resource, ctx: _Context) -> list[CostLine]:
    what = (
        "1 x Cloud Map private DNS namespace (a Route 53 hosted zone)"
        if res.type == "aws_service_discovery_private_dns_namespace"
        else "1 x Route 53 hosted zone"
    )
    ctx.note(res, "Route 53: DNS queries, not included")
    return [
        ctx.line(res, f"{what}{ctx.where(res)}, month", ctx.rate(res, "route53_hosted_zone_month"))
    ]


def _web_acl(res: Resource, ctx: _Context) -> list[CostLine]:
    rules = res.attrs.get("rule") or []
    count = len(rules) if isinstance(rules, list) else 1
    ctx.note(res, "WAF: requests, {waf_requests_million} per million, not included")
    paid_groups = {
        "AWSManagedRulesBotControlRuleSet",
        "AWSManagedRulesATPRuleSet",
        "AWSManagedRulesACFPRuleSet",
        "AWSManagedRulesAntiDDoSRuleSet",
    }
    for rule in rules if isinstance(rules, list) else []:
        statement = _block(_block(rule).get("statement"))
        group = _block(statement.get("managed_rule_group_statement"))
        if group.get("name") in paid_groups:
            ctx.note(res, f"WAF {group['name']}: subscription and request fees, not included")
    where = ctx.where(res)
    return [
        ctx.line(res, f"1 x WAF web ACL{where}, month", ctx.rate(res, "waf_web_acl_month")),
        ctx.line(res, f"{count} x WAF rule{where}, month", count * ctx.rate(res, "waf_rule_month")),
    ]


def _kms_key(res: Resource, ctx: _Context) -> list[CostLine]:
    ctx.note(
        res,
        "KMS: requests, {kms_requests_10k} per 10,000, and {kms_key_month}/month per rotated key "
        "version (first two rotations), not included",
    )
    what = f"1 x KMS customer managed key{ctx.where(res)}, month"
    return [ctx.line(res, what, ctx.rate(res, "kms_key_month"))]


def _secret(res: Resource, ctx: _Context) -> list[CostLine]:
    ctx.note(res, "Secrets Manager: API calls, {secret_api_10k} per 10,000, not included")
    what = f"1 x Secrets Manager secret{ctx.where(res)}, month"
    return [ctx.line(res, what, ctx.rate(res, "secret_month"))]


def _alarm(res: Resource, ctx: _Context) -> list[CostLine]:
    queries = res.attrs.get("metric_query") or []
    metrics = [_block(q["metric"]) for q in queries if isinstance(q, dict) and "metric" in q]
    count = max(len(metrics), 1)
    periods = [m.get("period") for m in metrics] or [res.attrs.get("period")]
    high = any(isinstance(p, int | float) and p < 60 for p in periods)
    kind = "high" if high else "standard"
    namespaces = [m.get("namespace") for m in metrics] or [res.attrs.get("namespace")]
    for namespace in namespaces:
        if isinstance(namespace, str) and not namespace.startswith(("AWS/", "ECS/")):
            ctx.note(
                res,
                f"CloudWatch custom metrics the apps publish (namespace {namespace}): "
                "{custom_metric_month} per metric-month, not included",
            )
    usd = count * ctx.rate(res, f"alarm_{'high_resolution' if high else 'standard'}_metric_month")
    what = f"{count} x {kind}-resolution alarm metric{ctx.where(res)}, month"
    return [ctx.line(res, what, usd)]


def _composite_alarm(res: Resource, ctx: _Context) -> list[CostLine]:
    what = f"1 x composite alarm{ctx.where(res)}, month"
    return [ctx.line(res, what, ctx.rate(res, "composite_alarm_month"))]


def _dashboard(res: Resource, ctx: _Context) -> list[CostLine]:
    what = f"1 x CloudWatch dashboard{ctx.where(res)}, month"
    return [ctx.line(res, what, ctx.rate(res, "dashboard_month"))]


def _vpc_endpoint(res: Resource, ctx: _Context) -> list[CostLine]:
    kind = str(res.attrs.get("vpc_endpoint_type", "Gateway"))
    service = str(res.attrs.get("service_name", "")).rsplit(".", 1)[-1]
    if kind == "Gateway":
        name = {"s3": "S3", "dynamodb": "DynamoDB"}.get(service, service)
        return [ctx.line(res, f"1 x {name} gateway endpoint (free)", 0.0)]
    if kind != "Interface":
        raise MissingPriceError(f"{kind} VPC endpoints", ctx.region_of(res))
    subnets = res.attrs.get("subnet_ids") or []
    azs = max(len(subnets) if isinstance(subnets, list) else 1, 1)
    ctx.note(
        res, "Interface VPC endpoints: data processed, {interface_endpoint_gb}/GB, not included"
    )
    usd = azs * ctx.rate(res, "interface_endpoint_hour") * HOURS_PER_MONTH
    what = f"1 x {service} interface endpoint in {azs} AZ{ctx.where(res)}, {HOURS_PER_MONTH} h"
    return [ctx.line(res, what, usd)]


_PRICERS: dict[str, Callable[[Resource, _Context], list[CostLine]]] = {
    "aws_cloudwatch_composite_alarm": _composite_alarm,
    "aws_cloudwatch_dashboard": _dashboard,
    "aws_cloudwatch_metric_alarm": _alarm,
    "aws_db_instance": _db_instance,
    "aws_ecs_service": _ecs_service,
    "aws_eip": _eip,
    "aws_elasticache_cluster": _elasticache_nodes,
    "aws_elasticache_replication_group": _elasticache_nodes,
    "aws_elasticache_serverless_cache": _elasticache_serverless,
    "aws_kms_key": _kms_key,
    "aws_lb": _lb,
    "aws_nat_gateway": _nat_gateway,
    "aws_route53_zone": _hosted_zone,
    "aws_secretsmanager_secret": _secret,
    "aws_service_discovery_private_dns_namespace": _hosted_zone,
    "aws_service_discovery_service": _discovery_service,
    "aws_vpc_endpoint": _vpc_endpoint,
    "aws_wafv2_web_acl": _web_acl,
}
_USAGE_NOTES: tuple[tuple[frozenset[str], str], ...] = (
    (
        frozenset({"aws_cloudfront_distribution"}),
        "CloudFront: billed per request and GB (Europe: {cloudfront_eu_gb}/GB, "
        "{cloudfront_eu_https_10k} per 10,000 HTTPS requests), not included",
    ),
    (
        frozenset(
            {"aws_cloudwatch_log_group", "aws_flow_log", "aws_wafv2_web_acl_logging_configuration"}
        ),
        "CloudWatch Logs: ingestion, {logs_ingest_gb}/GB, and storage, {logs_store_gb_month}/"
        "GB-month (VPC flow logs, WAF logs, container, Lambda and RDS logs), not included",
    ),
    (
        frozenset({"aws_s3_bucket", "aws_s3_object"}),
        "S3: storage, {s3_standard_gb_month}/GB-month, and requests ({s3_get_1k} per 1,000 GET), "
        "not included",
    ),
    (
        frozenset({"aws_lambda_function"}),
        "Lambda: requests, {lambda_requests_million} per million, and compute, "
        "{lambda_arm64_gb_second} per GB-second (arm64), not included",
    ),
    (
        frozenset({"aws_sns_topic"}),
        "SNS: publishes, {sns_requests_million} per million, email deliveries, {sns_email_100k} "
        "per 100,000, not included",
    ),
    (
        frozenset({"aws_api_gateway_rest_api"}),
        "API Gateway (REST): {apigateway_rest_million} per million requests, not included",
    ),
    (
        frozenset({"aws_efs_file_system"}),
        "EFS: storage, {efs_standard_gb_month}/GB-month (Standard; Infrequent Access after 30 "
        "days is cheaper), and elastic throughput per GB transferred, not included",
    ),
    (
        frozenset({"aws_athena_workgroup"}),
        "Athena: {athena_scanned_tb} per TB scanned (10 MB minimum per query; the workgroup "
        "caps each query's scan), not included",
    ),
    (
        frozenset({"aws_cognito_user_pool"}),
        "Cognito: the first 10,000 monthly active users free, then {cognito_essentials_mau} "
        "per user, not included",
    ),
    (
        frozenset({"aws_ecr_repository"}),
        "ECR: image storage, {ecr_storage_gb_month}/GB-month, not included",
    ),
)


_LAST = ("ECS scaling", "Data transfer")


def _note_order(note: str) -> tuple[int, str]:
    """Usage-priced services alphabetically, then the general assumptions."""
    for index, prefix in enumerate(_LAST, start=1):
        if note.startswith(prefix):
            return index, note
    return 0, note


def estimate(stack: Stack, prices: Prices | None = None) -> CostReport:
    """The stack's monthly cost estimate at on-demand prices (see ``DISCLAIMER``)."""
    prices = prices or load_prices()
    if stack.region is None:
        raise ValueError(f"stack {stack.name} names no region for its default AWS provider")
    ctx = _Context(stack=stack, prices=prices, region=stack.region)
    lines: list[CostLine] = []
    managed = sorted(stack.managed(), key=lambda r: (r.construct, r.address))
    for res in managed:
        pricer = _PRICERS.get(res.type)
        if pricer is not None:
            try:
                lines.extend(pricer(res, ctx))
            except MissingPriceError as error:  # left out of the total, named in the report
                ctx.missing[str(error)] = None
    for types, template in _USAGE_NOTES:
        for res in [r for r in managed if r.type in types]:
            ctx.note(res, template)
    for cluster in stack.of_type("aws_ecs_cluster"):
        for setting in cluster.attrs.get("setting") or []:
            if setting.get("name") == "containerInsights" and setting.get("value") != "disabled":
                ctx.note(
                    cluster,
                    f"ECS Container Insights ({setting.get('value')}): billed as custom metrics "
                    "and log ingestion, not included",
                )
    if managed:
        ctx.note(
            None,
            "Data transfer: out to the internet, {data_transfer_out_gb}/GB, and between AZs, "
            "{inter_az_gb}/GB each way, not included; account-level free tiers not deducted",
        )
    unpriced = sorted(
        {t for t, kind in classify(r.type for r in managed).items() if kind == "unknown"}
    )
    return CostReport(
        stack=stack.name,
        region=stack.region,
        lines=tuple(lines),
        usage=tuple(sorted(ctx.notes, key=_note_order)),
        unpriced=tuple(unpriced),
        missing=tuple(ctx.missing),
    )
