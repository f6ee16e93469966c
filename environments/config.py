"""Typed, frozen configuration of one environment, validated as it is built.

Every environment is an :class:`EnvironmentConfig`; environments differ only in values.
The parts a construct takes are that construct's own settings types
(:mod:`constructs_lib.settings`): a field and its default are written once, there.
Building a config runs :func:`validate`, so an invalid configuration never reaches a
stack: the first wrong value raises :class:`~constructs_lib.errors.ConfigError` with a
message naming the environment, the field, the bad value and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from itertools import combinations
from typing import Protocol

from constructs_lib.errors import ConfigError
from constructs_lib.options import FARGATE_SIZES, NatGateways, QueueMode, Tier
from constructs_lib.settings import (
    DEFAULT_LOG_RETENTION_DAYS,
    EMAIL_ADDRESS,
    DatabaseSettings,
    NetworkSettings,
    QueueSettings,
    ServiceSettings,
    allowed_cidr_problem,
)

DEFAULT_REGION = "eu-central-1"

LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
    | {2922, 3288, 3653}
)
"""Retention periods CloudWatch Logs accepts."""


@dataclass(frozen=True)
class Bounds:
    """An inclusive range a number must fall in, and what it counts."""

    low: int
    high: int
    unit: str


RDS_BACKUPS = Bounds(0, 35, "days (the RDS range)")
SERVERLESS_STORAGE = Bounds(1, 5000, "GB (the ElastiCache Serverless range)")
SERVERLESS_ECPU = Bounds(1000, 15_000_000, "ECPU/s (the ElastiCache Serverless range)")
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
"""Enhanced Monitoring intervals RDS accepts (0: off)."""
RDS_STORAGE = Bounds(20, 65536, "GiB (the RDS gp3 range)")
CACHE_SNAPSHOTS = Bounds(0, 35, "days (the ElastiCache range)")
CACHE_SHARDS = Bounds(1, 500, "shards (the ElastiCache range)")
CACHE_NODE_QUOTA = 90
"""Nodes one ElastiCache cluster may have by default (AWS raises it to 500 on request)."""

PRODUCTION_AZ_COUNT = 3
PRODUCTION_MIN_BACKUP_DAYS = 7
PRODUCTION_MIN_TASKS = 2

_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_NAME_MAX = 12
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_SNS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
DOMAIN_NAME = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$")
"""A lower-case DNS name (every environment's and seed system's domains)."""


class Checked(Protocol):
    """What the shared checks read from a config: the platform's environments and every
    seed system's (:mod:`environments.systems`) are checked by the same functions."""

    @property
    def where(self) -> str:
        """How errors name the config: ``prod``, ``metabase-prod``."""
        ...

    @property
    def name(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def network(self) -> NetworkSettings: ...

    @property
    def database(self) -> DatabaseSettings: ...

    @property
    def alarm_email(self) -> str | None: ...

    @property
    def alarm_topic_arn(self) -> str | None: ...


@dataclass(frozen=True)
class ServicesConfig:
    """The producer and consumer services and how they scale."""

    producer: ServiceSettings
    consumer: ServiceSettings
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Days the environment's logs are kept: containers, the migration and rotation
    functions, WAF and Container Insights. Unset: 30."""
    producer_cpu_target_percent: int = 60
    """Producer scales out above this average CPU. Unset: 60 %."""
    producer_requests_per_task: int = 1000
    """Producer scales out above this many ALB requests per task per minute. Unset: 1000."""
    consumer_backlog_target: int = 5000
    """Queue backlog per running consumer task that target tracking aims for: one task
    drains tens of thousands of values per second, so a few seconds' worth each.
    Unset: 5000 messages per task."""


@dataclass(frozen=True)
class EdgeConfig:
    """How the platform meets the internet: CloudFront in front, the ALB behind it."""

    domain_name: str | None = None
    """Serve the frontend at this name (CloudFront alias) and the ALB origin at
    ``origin.<domain_name>`` over HTTPS. Unset: the ``*.cloudfront.net`` name, and
    CloudFront reaches the internal ALB through its VPC origin over HTTP, on AWS's
    network (the ALB admits only CloudFront's VPC origins and ``allowed_cidrs``, and
    checks a secret origin header)."""
    hosted_zone_id: str | None = None
    """Route 53 zone of ``domain_name``; required with it."""
    alb_certificate_arn: str | None = None
    """ACM certificate in the environment's region for ``origin.<domain_name>``."""
    cloudfront_certificate_arn: str | None = None
    """ACM certificate in us-east-1 for ``domain_name`` (CloudFront's requirement)."""
    allowed_cidrs: tuple[str, ...] = ()
    """Private ranges (a VPN or a peered network: within 10/8, 172.16/12, 192.168/16 or
    100.64/10) that may call the internal ALB directly, e.g. for smoke tests. The ALB has
    no public address, so internet ranges are refused. Unset: only CloudFront reaches it."""
    alb_deletion_protection: bool = False
    """Unset: the ALB can be destroyed."""
    alb_access_logs: bool = False
    """Keep ALB access logs in an S3 bucket. Unset: off."""


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything that differs between ``dev``, ``test``, ``stage`` and ``prod``."""

    name: str
    """Stack name and resource-name prefix: lower case, 2-12 characters."""
    tier: Tier
    network: NetworkSettings
    database: DatabaseSettings
    queue: QueueSettings
    services: ServicesConfig
    edge: EdgeConfig = field(default_factory=EdgeConfig)
    """Unset: CloudFront's own name, no custom domain, no direct ALB access."""
    alarm_email: str | None = None
    """Subscribe this address to the environment's alarm topic. Unset: no subscription.
    The production tier needs this or ``alarm_topic_arn`` (or ``PCP_ALARM_EMAIL`` /
    ``PCP_ALARM_TOPIC_ARN`` at synth time, see :mod:`environments.alarms`)."""
    alarm_topic_arn: str | None = None
    """An existing SNS topic (paging, chat) that every alarm also notifies. Unset: none."""
    region: str = DEFAULT_REGION
    """AWS region. Unset: eu-central-1 (the original design's region)."""
    extra_tags: dict[str, str] = field(default_factory=dict)
    """Tags added to the project's default tags on every resource. Unset: none."""

    def __post_init__(self) -> None:
        validate(self)

    @property
    def is_production(self) -> bool:
        return self.tier is Tier.PRODUCTION

    @property
    def where(self) -> str:
        """The stack name: errors start with it."""
        return self.name

    @property
    def config_file(self) -> str:
        return f"environments/{self.name}.py"


def validate(config: EnvironmentConfig) -> None:
    """Raise :class:`ConfigError` on the first wrong value of ``config``."""
    _validate_name(config)
    _validate_region(config)
    _validate_network(config)
    _validate_database(config)
    _validate_queue(config)
    _validate_services(config)
    _validate_alarm_target(config)
    _validate_edge(config)
    if config.is_production:
        _validate_production(config)


def fail(config: Checked, field_: str, got: object, fix: str) -> ConfigError:
    """The error for ``field_`` of ``config``, to raise."""
    return ConfigError(config.where or "<unnamed>", field_, got, fix)


def check_common(config: Checked, *, database_tls_optional: bool = False) -> None:
    """The checks every config shares: name, region, network, database, alarm target.
    ``database_tls_optional``: the database may admit plaintext connections
    (``DatabaseTransport.TLS_OFFERED``); unset: refused."""
    _validate_name(config)
    _validate_region(config)
    _validate_network(config)
    _validate_database(config, tls_optional=database_tls_optional)
    _validate_alarm_target(config)


def check_range(config: Checked, field_: str, value: int, bounds: Bounds) -> None:
    """``value`` within ``bounds``, else the error naming ``field_``."""
    if not bounds.low <= value <= bounds.high:
        raise fail(config, field_, value, f"use {bounds.low}-{bounds.high} {bounds.unit}")


def check_retention(config: Checked, field_: str, days: int) -> None:
    """``days`` is a retention period CloudWatch Logs accepts."""
    if days not in LOG_RETENTION_DAYS:
        raise fail(
            config,
            field_,
            days,
            "use a CloudWatch Logs retention period (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)",
        )


def _validate_name(config: Checked) -> None:
    name = config.name
    if not (2 <= len(name) <= _NAME_MAX and _NAME_RE.match(name)):
        raise fail(
            config,
            "name",
            repr(name),
            f"use 2-{_NAME_MAX} lower-case letters, digits and single hyphens, starting with "
            "a letter (it prefixes S3, RDS and ALB names)",
        )


def _validate_region(config: Checked) -> None:
    if not _REGION_RE.match(config.region):
        raise fail(config, "region", repr(config.region), "use an AWS region such as eu-central-1")


def _validate_network(config: Checked) -> None:
    net = config.network
    azs = net.availability_zones
    if len(azs) < 2:
        raise fail(
            config,
            "network.availability_zones",
            len(azs),
            "name at least 2 (RDS subnet groups and load balancers need two AZs)",
        )
    duplicates = sorted({az for az in azs if azs.count(az) > 1})
    if duplicates:
        raise fail(
            config,
            "network.availability_zones",
            ", ".join(azs),
            f"name each AZ once (repeated: {', '.join(duplicates)})",
        )
    for az in azs:
        if not re.fullmatch(re.escape(config.region) + r"[a-z]", az):
            raise fail(
                config,
                "network.availability_zones",
                repr(az),
                f"name AZs of the environment's region, e.g. {config.region}a",
            )
    try:
        vpc = ipaddress.IPv4Network(net.vpc_cidr)
    except ValueError as err:
        raise fail(
            config, "network.vpc_cidr", repr(net.vpc_cidr), f"use a network CIDR ({err})"
        ) from None
    if not 16 <= vpc.prefixlen <= 24:
        raise fail(config, "network.vpc_cidr", net.vpc_cidr, "use a prefix between /16 and /24")
    nat_needs = {NatGateways.PER_AZ: len(azs), NatGateways.SINGLE: 1, NatGateways.NONE: 0}[
        net.nat_gateways
    ]
    if len(net.public_subnet_cidrs) < nat_needs:
        raise fail(
            config,
            "network.public_subnet_cidrs",
            len(net.public_subnet_cidrs),
            f"NAT gateways {net.nat_gateways.name} need {nat_needs} public subnet(s), "
            "one per NAT gateway",
        )
    subnets: list[tuple[str, ipaddress.IPv4Network]] = []
    for kind in ("public", "private"):
        cidrs: tuple[str, ...] = getattr(net, f"{kind}_subnet_cidrs")
        field_ = f"network.{kind}_subnet_cidrs"
        if len(cidrs) != len(azs):
            raise fail(config, field_, len(cidrs), f"give one {kind} subnet per AZ ({len(azs)})")
        for cidr in cidrs:
            try:
                subnet = ipaddress.IPv4Network(cidr)
            except ValueError as err:
                raise fail(config, field_, repr(cidr), f"use a network CIDR ({err})") from None
            if not subnet.subnet_of(vpc):
                raise fail(config, field_, cidr, f"use a CIDR inside the VPC CIDR {net.vpc_cidr}")
            if subnet.prefixlen > 28:
                raise fail(config, field_, cidr, "use a prefix of /28 or larger (AWS minimum)")
            subnets.append((field_, subnet))
    for (field_a, a), (_, b) in combinations(subnets, 2):
        if a.overlaps(b):
            raise fail(config, field_a, f"{a} overlapping {b}", "give every subnet its own range")
    check_retention(config, "network.flow_log_retention_days", net.flow_log_retention_days)


def _validate_database(config: Checked, *, tls_optional: bool = False) -> None:
    db = config.database
    if not db.transport.required and not tls_optional:
        raise fail(
            config,
            "database.transport",
            db.transport.name,
            "use DatabaseTransport.TLS_REQUIRED: only a system whose vendor's client "
            "cannot use TLS (Panintelligence) may admit plaintext connections",
        )
    check_range(config, "database.backup_retention_days", db.backup_retention_days, RDS_BACKUPS)
    check_range(config, "database.allocated_storage_gb", db.allocated_storage_gb, RDS_STORAGE)
    if db.monitoring_interval_seconds not in MONITORING_INTERVALS:
        raise fail(
            config,
            "database.monitoring_interval_seconds",
            db.monitoring_interval_seconds,
            f"use one of {', '.join(map(str, MONITORING_INTERVALS))} (0 turns it off)",
        )
    if db.max_allocated_storage_gb < db.allocated_storage_gb:
        raise fail(
            config,
            "database.max_allocated_storage_gb",
            db.max_allocated_storage_gb,
            f"use at least allocated_storage_gb ({db.allocated_storage_gb})",
        )
    if not db.instance_class.startswith("db."):
        raise fail(
            config, "database.instance_class", repr(db.instance_class), "use an RDS class (db.*)"
        )
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", db.database_name):
        raise fail(
            config,
            "database.database_name",
            repr(db.database_name),
            "use letters, digits and underscores, starting with a letter (an SQL identifier)",
        )
    check_retention(config, "database.log_retention_days", db.log_retention_days)


def _validate_queue(config: EnvironmentConfig) -> None:
    queue = config.queue
    check_range(
        config, "queue.snapshot_retention_days", queue.snapshot_retention_days, CACHE_SNAPSHOTS
    )
    check_range(config, "queue.max_data_storage_gb", queue.max_data_storage_gb, SERVERLESS_STORAGE)
    check_range(config, "queue.max_ecpu_per_second", queue.max_ecpu_per_second, SERVERLESS_ECPU)
    check_retention(config, "queue.log_retention_days", queue.log_retention_days)
    if queue.mode is QueueMode.SHARDED:
        check_range(config, "queue.shards", queue.shards, CACHE_SHARDS)
        nodes = queue.shards * len(config.network.availability_zones)
        if nodes > CACHE_NODE_QUOTA:
            raise fail(
                config,
                "queue.shards",
                f"{queue.shards} ({nodes} nodes: one per AZ in each shard)",
                f"use at most {CACHE_NODE_QUOTA} nodes, ElastiCache's default quota per "
                "cluster (after AWS raises it, raise CACHE_NODE_QUOTA too)",
            )
        if queue.snapshot_retention_days < 1:
            raise fail(
                config,
                "queue.snapshot_retention_days",
                "0",
                "keep at least 1 day for a sharded queue (the provider cannot turn "
                "snapshots on later in cluster mode: it names a snapshotting node that "
                "does not exist)",
            )


def _validate_services(config: EnvironmentConfig) -> None:
    for name in ("producer", "consumer"):
        service: ServiceSettings = getattr(config.services, name)
        field_ = f"services.{name}"
        if not 1 <= service.min_tasks <= service.max_tasks:
            raise fail(
                config,
                f"{field_}.min_tasks/max_tasks",
                f"{service.min_tasks}/{service.max_tasks}",
                "use 1 <= min_tasks <= max_tasks",
            )
        allowed = FARGATE_SIZES.get(service.cpu)
        if allowed is None:
            raise fail(
                config, f"{field_}.cpu", service.cpu, f"use {', '.join(map(str, FARGATE_SIZES))}"
            )
        if service.memory not in allowed:
            raise fail(
                config,
                f"{field_}.memory",
                service.memory,
                f"use one of {', '.join(map(str, allowed))} MiB with {service.cpu} CPU units",
            )
    check_retention(config, "services.log_retention_days", config.services.log_retention_days)


def _validate_alarm_target(config: Checked) -> None:
    email = config.alarm_email
    if email is not None and not EMAIL_ADDRESS.match(email):
        raise fail(config, "alarm_email", repr(email), "use an e-mail address or leave it unset")
    topic = config.alarm_topic_arn
    if topic is not None and not _SNS_ARN_RE.match(topic):
        raise fail(
            config,
            "alarm_topic_arn",
            repr(topic),
            "use an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>) or leave it unset",
        )


def _validate_edge(config: EnvironmentConfig) -> None:
    edge = config.edge
    for cidr in edge.allowed_cidrs:
        problem = allowed_cidr_problem(cidr)
        if problem:
            raise fail(config, "edge.allowed_cidrs", repr(cidr), problem)
    if edge.domain_name is None:
        extras = [
            f
            for f in ("hosted_zone_id", "alb_certificate_arn", "cloudfront_certificate_arn")
            if getattr(edge, f)
        ]
        if extras:
            raise fail(config, f"edge.{extras[0]}", "set", "set edge.domain_name too, or unset it")
        return
    if not DOMAIN_NAME.match(edge.domain_name):
        raise fail(config, "edge.domain_name", repr(edge.domain_name), "use a DNS name")
    if not edge.hosted_zone_id:
        raise fail(config, "edge.hosted_zone_id", None, "name the Route 53 zone of domain_name")
    for field_, region in (
        ("alb_certificate_arn", config.region),
        ("cloudfront_certificate_arn", "us-east-1"),
    ):
        arn = getattr(edge, field_)
        if not arn or not arn.startswith(f"arn:aws:acm:{region}:"):
            raise fail(
                config,
                f"edge.{field_}",
                repr(arn),
                f"use an ACM certificate ARN in {region} (arn:aws:acm:{region}:...)",
            )


def _validate_production(config: EnvironmentConfig) -> None:
    """The high-availability and data-safety rules of the production tier."""
    check_production_data(config)
    net = config.network
    if net.nat_gateways is not NatGateways.PER_AZ:
        raise fail(
            config,
            "network.nat_gateways",
            net.nat_gateways.name,
            "a production environment needs PER_AZ (no single NAT gateway to lose)",
        )
    for name in ("producer", "consumer"):
        service: ServiceSettings = getattr(config.services, name)
        if service.min_tasks < PRODUCTION_MIN_TASKS:
            raise fail(
                config,
                f"services.{name}.min_tasks",
                service.min_tasks,
                f"a production service runs at least {PRODUCTION_MIN_TASKS} tasks "
                "(one AZ can fail)",
            )
    for field_, ok in (
        ("alb_deletion_protection", config.edge.alb_deletion_protection),
        ("alb_access_logs", config.edge.alb_access_logs),
    ):
        if not ok:
            raise fail(
                config, f"edge.{field_}", False, "set it to True in a production environment"
            )


def check_production_data(config: Checked) -> None:
    """The production tier's rules for every system: three AZs, and a multi-AZ database
    that is protected, snapshotted on delete and backed up for a week or more."""
    net, db = config.network, config.database
    azs = net.availability_zones
    if len(azs) < PRODUCTION_AZ_COUNT:
        raise fail(
            config,
            "network.availability_zones",
            f"{len(azs)} ({', '.join(azs)})",
            f"a production environment needs {PRODUCTION_AZ_COUNT} (one AZ can fail)",
        )
    if net.nat_gateways is NatGateways.SINGLE:
        raise fail(
            config,
            "network.nat_gateways",
            net.nat_gateways.name,
            "a production environment needs PER_AZ (no single NAT gateway to lose)",
        )
    checks: tuple[tuple[str, bool, str], ...] = (
        ("database.multi_az", db.multi_az, "a production database must be multi-AZ"),
        (
            "database.deletion_protection",
            db.deletion_protection,
            "a production database needs deletion protection",
        ),
        (
            "database.final_snapshot",
            db.final_snapshot,
            "a production database needs a final snapshot on delete",
        ),
    )
    for field_, ok, fix in checks:
        if not ok:
            raise fail(config, field_, False, f"set it to True: {fix}")
    if db.backup_retention_days < PRODUCTION_MIN_BACKUP_DAYS:
        raise fail(
            config,
            "database.backup_retention_days",
            db.backup_retention_days,
            f"a production database keeps backups at least {PRODUCTION_MIN_BACKUP_DAYS} days",
        )
