"""Typed, frozen configuration of one environment, validated as it is built.

Every environment is an :class:`EnvironmentConfig`; environments differ only in values.
Building a config runs :func:`validate`, so an invalid configuration never reaches a
stack: the first wrong value raises :class:`~constructs_lib.errors.ConfigError` with a
message naming the environment, the field, the bad value and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from itertools import combinations

from constructs_lib.errors import ConfigError
from constructs_lib.options import NatGateways, QueueEngine, QueueMode, Tier

DEFAULT_REGION = "eu-central-1"

LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
    | {2922, 3288, 3653}
)
"""Retention periods CloudWatch Logs accepts."""

PRODUCTION_AZ_COUNT = 3
PRODUCTION_MIN_BACKUP_DAYS = 7
RDS_MAX_BACKUP_DAYS = 35

_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_NAME_MAX = 12
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass(frozen=True)
class NetworkConfig:
    """The VPC of one environment: one public and one private subnet per AZ."""

    vpc_cidr: str
    availability_zones: tuple[str, ...]
    """AZ names, explicitly (``eu-central-1a``); subnet lists follow the same order."""
    public_subnet_cidrs: tuple[str, ...]
    private_subnet_cidrs: tuple[str, ...]
    nat_gateways: NatGateways
    flow_log_retention_days: int = 30
    """Days VPC flow logs are kept. Unset: 30."""


@dataclass(frozen=True)
class DatabaseConfig:
    """RDS MySQL 8.0."""

    instance_class: str
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: int
    final_snapshot: bool
    """Take a final snapshot when the instance is deleted."""
    allocated_storage_gb: int = 20
    """Initial gp3 storage. Unset: 20 GiB (the RDS minimum)."""
    max_allocated_storage_gb: int = 100
    """Ceiling for storage autoscaling. Unset: 100 GiB."""
    engine_version: str = "8.0"
    """MySQL major version; minor versions are upgraded by RDS. Unset: 8.0."""
    database_name: str = "platform"
    """The application schema. Unset: ``platform``."""
    performance_insights: bool = False
    """Turn on Performance Insights (not offered on micro/small classes). Unset: off."""
    log_retention_days: int = 30
    """Days the exported MySQL logs are kept in CloudWatch. Unset: 30."""


@dataclass(frozen=True)
class QueueConfig:
    """The ElastiCache queue between producer and consumer."""

    mode: QueueMode
    engine: QueueEngine = QueueEngine.VALKEY
    """Unset: Valkey (Redis-protocol compatible, cheaper than Redis OSS on ElastiCache)."""
    node_type: str = "cache.t4g.micro"
    """Node class for ``REPLICATION_GROUP``; ignored by ``SERVERLESS``. Unset: cache.t4g.micro."""
    snapshot_retention_days: int = 1
    """Daily snapshots kept. Unset: 1."""


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything that differs between ``dev``, ``test``, ``stage`` and ``prod``."""

    name: str
    """Stack name and resource-name prefix: lower case, 2-12 characters."""
    tier: Tier
    network: NetworkConfig
    database: DatabaseConfig
    queue: QueueConfig
    region: str = DEFAULT_REGION
    """AWS region. Unset: eu-central-1 (the original design's region)."""
    extra_tags: dict[str, str] = field(default_factory=dict)
    """Tags added to the project's default tags on every resource. Unset: none."""

    def __post_init__(self) -> None:
        validate(self)

    @property
    def is_production(self) -> bool:
        return self.tier is Tier.PRODUCTION


def validate(config: EnvironmentConfig) -> None:
    """Raise :class:`ConfigError` on the first wrong value of ``config``."""
    _validate_name(config)
    _validate_region(config)
    _validate_network(config)
    _validate_database(config)
    if config.is_production:
        _validate_production(config)


def _fail(config: EnvironmentConfig, field_: str, got: object, fix: str) -> ConfigError:
    return ConfigError(config.name or "<unnamed>", field_, got, fix)


def _validate_name(config: EnvironmentConfig) -> None:
    name = config.name
    if not (2 <= len(name) <= _NAME_MAX and _NAME_RE.match(name)):
        raise _fail(
            config,
            "name",
            repr(name),
            f"use 2-{_NAME_MAX} lower-case letters, digits and single hyphens, starting with "
            "a letter (it prefixes S3, RDS and ALB names)",
        )


def _validate_region(config: EnvironmentConfig) -> None:
    if not _REGION_RE.match(config.region):
        raise _fail(config, "region", repr(config.region), "use an AWS region such as eu-central-1")


def _validate_network(config: EnvironmentConfig) -> None:
    net = config.network
    azs = net.availability_zones
    if len(azs) < 2:
        raise _fail(
            config,
            "network.availability_zones",
            len(azs),
            "name at least 2 (RDS subnet groups and load balancers need two AZs)",
        )
    duplicates = sorted({az for az in azs if azs.count(az) > 1})
    if duplicates:
        raise _fail(
            config,
            "network.availability_zones",
            ", ".join(azs),
            f"name each AZ once (repeated: {', '.join(duplicates)})",
        )
    for az in azs:
        if not re.fullmatch(re.escape(config.region) + r"[a-z]", az):
            raise _fail(
                config,
                "network.availability_zones",
                repr(az),
                f"name AZs of the environment's region, e.g. {config.region}a",
            )
    try:
        vpc = ipaddress.IPv4Network(net.vpc_cidr)
    except ValueError as err:
        raise _fail(
            config, "network.vpc_cidr", repr(net.vpc_cidr), f"use a network CIDR ({err})"
        ) from None
    if not 16 <= vpc.prefixlen <= 24:
        raise _fail(config, "network.vpc_cidr", net.vpc_cidr, "use a prefix between /16 and /24")
    nat_needs = len(azs) if net.nat_gateways is NatGateways.PER_AZ else 1
    if len(net.public_subnet_cidrs) < nat_needs:
        raise _fail(
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
            raise _fail(config, field_, len(cidrs), f"give one {kind} subnet per AZ ({len(azs)})")
        for cidr in cidrs:
            try:
                subnet = ipaddress.IPv4Network(cidr)
            except ValueError as err:
                raise _fail(config, field_, repr(cidr), f"use a network CIDR ({err})") from None
            if not subnet.subnet_of(vpc):
                raise _fail(config, field_, cidr, f"use a CIDR inside the VPC CIDR {net.vpc_cidr}")
            if subnet.prefixlen > 28:
                raise _fail(config, field_, cidr, "use a prefix of /28 or larger (AWS minimum)")
            subnets.append((field_, subnet))
    for (field_a, a), (_, b) in combinations(subnets, 2):
        if a.overlaps(b):
            raise _fail(config, field_a, f"{a} overlapping {b}", "give every subnet its own range")
    if net.flow_log_retention_days not in LOG_RETENTION_DAYS:
        raise _fail(
            config,
            "network.flow_log_retention_days",
            net.flow_log_retention_days,
            "use a CloudWatch Logs retention period (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)",
        )


def _validate_database(config: EnvironmentConfig) -> None:
    db = config.database
    if not 0 <= db.backup_retention_days <= RDS_MAX_BACKUP_DAYS:
        raise _fail(
            config,
            "database.backup_retention_days",
            db.backup_retention_days,
            f"use 0-{RDS_MAX_BACKUP_DAYS} days (the RDS range)",
        )
    if not 20 <= db.allocated_storage_gb <= 65536:
        raise _fail(
            config,
            "database.allocated_storage_gb",
            db.allocated_storage_gb,
            "use 20-65536 GiB (the RDS gp3 range)",
        )
    if db.max_allocated_storage_gb < db.allocated_storage_gb:
        raise _fail(
            config,
            "database.max_allocated_storage_gb",
            db.max_allocated_storage_gb,
            f"use at least allocated_storage_gb ({db.allocated_storage_gb})",
        )
    if not db.instance_class.startswith("db."):
        raise _fail(
            config, "database.instance_class", repr(db.instance_class), "use an RDS class (db.*)"
        )
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", db.database_name):
        raise _fail(
            config,
            "database.database_name",
            repr(db.database_name),
            "use letters, digits and underscores, starting with a letter (MySQL identifier)",
        )
    if db.log_retention_days not in LOG_RETENTION_DAYS:
        raise _fail(
            config,
            "database.log_retention_days",
            db.log_retention_days,
            "use a CloudWatch Logs retention period (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)",
        )
    if not 0 <= config.queue.snapshot_retention_days <= 35:
        raise _fail(
            config,
            "queue.snapshot_retention_days",
            config.queue.snapshot_retention_days,
            "use 0-35 days (the ElastiCache range)",
        )


def _validate_production(config: EnvironmentConfig) -> None:
    """The high-availability and data-safety rules of the production tier."""
    net, db = config.network, config.database
    azs = net.availability_zones
    if len(azs) < PRODUCTION_AZ_COUNT:
        raise _fail(
            config,
            "network.availability_zones",
            f"{len(azs)} ({', '.join(azs)})",
            f"a production environment needs {PRODUCTION_AZ_COUNT} (one NAT gateway per AZ)",
        )
    if net.nat_gateways is not NatGateways.PER_AZ:
        raise _fail(
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
            raise _fail(config, field_, False, f"set it to True: {fix}")
    if db.backup_retention_days < PRODUCTION_MIN_BACKUP_DAYS:
        raise _fail(
            config,
            "database.backup_retention_days",
            db.backup_retention_days,
            f"a production database keeps backups at least {PRODUCTION_MIN_BACKUP_DAYS} days",
        )
