"""The settings types of the constructs: what an environment chooses, one default each.

Each construct takes its settings object as it is (``Network(settings=...)``,
``Database(settings=...)``, ...) and the environments (``environments/``) build these same
objects, so a field and its default are written here and nowhere else. This module imports
no provider bindings: environments load it without cdktf.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .options import DatabaseEngine, DatabaseTransport, NatGateways, QueueEngine, QueueMode

DEFAULT_LOG_RETENTION_DAYS = 30
"""Days a construct's log group keeps events when its props leave it unset."""

EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
"""An alarm e-mail address: good enough to catch typos (missing ``@``, missing domain);
SNS confirms the rest."""

PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
"""What may reach an internal load balancer besides CloudFront: RFC 1918 ranges and the
shared address space many VPNs hand out (RFC 6598)."""


def allowed_cidr_problem(cidr: str) -> str | None:
    """Why ``cidr`` may not call the internal load balancer directly (the fix to give), or
    None when it may."""
    try:
        network = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        return "give IPv4 network CIDRs such as 10.20.0.0/16"
    if network.prefixlen == 0:
        return (
            "the allow-list must not admit the whole internet; leave it empty and go "
            "through CloudFront"
        )
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        return (
            "the load balancer is internal: only private ranges (a VPN or a peered network "
            "within " + ", ".join(map(str, PRIVATE_RANGES)) + ") can reach it; the internet "
            "goes through CloudFront"
        )
    return None


@dataclass(frozen=True)
class NetworkSettings:
    """Settings of :class:`~constructs_lib.network.Network`: one public and one private
    subnet per AZ."""

    vpc_cidr: str
    availability_zones: tuple[str, ...]
    """AZ names, explicitly (``eu-central-1a``); subnet lists follow the same order."""
    public_subnet_cidrs: tuple[str, ...]
    """One per AZ, in the order of ``availability_zones``."""
    private_subnet_cidrs: tuple[str, ...]
    """One per AZ, in the order of ``availability_zones``."""
    nat_gateways: NatGateways = NatGateways.PER_AZ
    """Unset: one NAT gateway per AZ."""
    flow_log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Days VPC flow logs are kept. Unset: 30."""
    interface_endpoints: tuple[str, ...] = ()
    """AWS services reached through interface endpoints in the private subnets, by the
    short name in ``com.amazonaws.<region>.<name>`` (``ecr.api``, ``ecr.dkr``, ``logs``,
    ``secretsmanager``, ``athena``). Unset: none; AWS APIs are reached through NAT (the
    S3 gateway endpoint always exists)."""


@dataclass(frozen=True)
class DatabaseSettings:
    """Settings of :class:`~constructs_lib.database.Database` (RDS MySQL, PostgreSQL or MariaDB).
    Unset fields take the safe choice: protected, backed up, snapshotted on delete."""

    engine: DatabaseEngine = DatabaseEngine.MYSQL
    """Unset: MySQL."""
    instance_class: str = "db.t4g.micro"
    """Unset: db.t4g.micro."""
    multi_az: bool = False
    """Unset: single-AZ (no standby)."""
    deletion_protection: bool = True
    """Unset: protected; an environment must opt out explicitly."""
    backup_retention_days: int = 7
    """Days of automated backups. Unset: 7."""
    final_snapshot: bool = True
    """Take a final snapshot ``<identifier>-final`` when the instance is deleted. Unset: taken."""
    allocated_storage_gb: int = 20
    """Initial gp3 storage. Unset: 20 GiB (the RDS minimum)."""
    max_allocated_storage_gb: int = 100
    """Ceiling for storage autoscaling. Unset: 100 GiB."""
    engine_version: str | None = None
    """Major version; minor versions are upgraded by RDS and the parameter group family
    follows (``mysql8.4``, ``postgres17``). Unset: the engine's
    ``DatabaseEngine.default_version`` (MySQL 8.4: 8.0 left RDS standard support on
    2026-07-31 and new 8.0 instances are billed Extended Support; PostgreSQL 17)."""

    database_name: str = "platform"
    """The application schema. Unset: ``platform``."""
    master_username: str = "dbadmin"
    """Unset: ``dbadmin``; its password is generated and rotated by RDS in Secrets Manager."""
    performance_insights: bool = False
    """Turn on Performance Insights (not offered on micro/small classes). Unset: off."""
    monitoring_interval_seconds: int = 60
    """Enhanced Monitoring granularity; 0 turns it off. Unset: 60 s."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Days the exported database logs are kept in CloudWatch. Unset: 30."""
    parameters: dict[str, str] = field(default_factory=dict)
    """Engine parameters an application requires besides the construct's own (which it
    may not override: TLS-only, character set, logging), applied at the next reboot
    (``pending-reboot``: static ones included; a new instance starts with them). Unset:
    none."""
    transport: DatabaseTransport = DatabaseTransport.TLS_REQUIRED
    """Whether plaintext connections are refused. Unset: TLS required (server and login);
    ``TLS_OFFERED`` only where config validation allows it (a vendor's client that cannot
    be told to use TLS)."""

    @property
    def version(self) -> str:
        """``engine_version``, or the engine's default when unset."""
        return self.engine_version or self.engine.default_version


@dataclass(frozen=True)
class QueueSettings:
    """Settings of :class:`~constructs_lib.queue.Queue` (ElastiCache)."""

    mode: QueueMode = QueueMode.SERVERLESS
    """Unset: ElastiCache Serverless, as in the original design."""
    engine: QueueEngine = QueueEngine.VALKEY
    """Unset: Valkey (Redis-protocol compatible, cheaper than Redis OSS on ElastiCache)."""
    node_type: str = "cache.t4g.micro"
    """Node class for ``REPLICATION_GROUP`` and ``SHARDED``; ignored by ``SERVERLESS``.
    Unset: cache.t4g.micro."""
    shards: int = 1
    """Shards (node groups) of a ``SHARDED`` queue, each with one node per AZ, at most 90
    nodes in all (ElastiCache's default quota); ignored by the other modes. A change
    reshards online at the next apply (the provider applies it immediately). Unset: 1 (the
    apps' keys share one slot; more shards serve other keys)."""
    snapshot_retention_days: int = 1
    """Daily snapshots kept. Unset: 1."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Retention of the replication group's slow log. Unset: 30 days."""
    max_data_storage_gb: int = 5
    """Serverless storage ceiling. Unset: 5 GB."""
    max_ecpu_per_second: int = 5000
    """Serverless compute ceiling. Unset: 5000 ECPU/s."""


@dataclass(frozen=True)
class ServiceSettings:
    """Size and task-count bounds of one :class:`~constructs_lib.service.FargateService`;
    the service starts at ``min_tasks``."""

    min_tasks: int
    max_tasks: int
    cpu: int = 256
    """Fargate CPU units. Unset: 256 (0.25 vCPU)."""
    memory: int = 512
    """MiB, one the CPU size allows. Unset: 512."""
