"""Builders for the values environments share, so each environment file states only its own."""

from constructs_lib.options import DatabaseEngine, NatGateways, QueueMode, Tier
from constructs_lib.settings import (
    DatabaseSettings,
    NetworkSettings,
    QueueSettings,
    ServiceSettings,
)

from .config import DEFAULT_REGION, EnvironmentConfig, ServicesConfig


def network(
    second_octet: int,
    az_count: int,
    nat_gateways: NatGateways,
    *,
    region: str = DEFAULT_REGION,
) -> NetworkSettings:
    """A ``10.<second_octet>.0.0/16`` VPC with /24 public and /20 private subnets per AZ.

    Public subnets only hold the load balancer and NAT gateways; private subnets hold
    every task, database and cache node, hence the larger ranges.
    """
    base = f"10.{second_octet}"
    letters = "abcdef"[:az_count]
    return NetworkSettings(
        vpc_cidr=f"{base}.0.0/16",
        availability_zones=tuple(f"{region}{letter}" for letter in letters),
        public_subnet_cidrs=tuple(f"{base}.{i}.0/24" for i in range(az_count)),
        private_subnet_cidrs=tuple(f"{base}.{16 * (i + 1)}.0/20" for i in range(az_count)),
        nat_gateways=nat_gateways,
    )


def development(name: str, second_octet: int, *, max_tasks: int = 2) -> EnvironmentConfig:
    """A development-tier environment: two AZs, one NAT gateway, one small database,
    serverless queue, one task per service scaling to ``max_tasks``."""
    return EnvironmentConfig(
        name=name,
        tier=Tier.DEVELOPMENT,
        network=network(second_octet, az_count=2, nat_gateways=NatGateways.SINGLE),
        database=DatabaseSettings(
            instance_class="db.t4g.micro",
            multi_az=False,
            deletion_protection=False,
            backup_retention_days=1,
            final_snapshot=False,
        ),
        queue=QueueSettings(mode=QueueMode.SERVERLESS),
        services=ServicesConfig(
            producer=ServiceSettings(min_tasks=1, max_tasks=max_tasks),
            consumer=ServiceSettings(min_tasks=1, max_tasks=max_tasks),
            log_retention_days=14,
        ),
    )


def development_database(
    engine: DatabaseEngine, name: str, parameters: dict[str, str] | None = None
) -> DatabaseSettings:
    """A seed system's development database: one small single-AZ instance, disposable
    (no deletion protection, no final snapshot, one day of backups)."""
    return DatabaseSettings(
        engine=engine,
        database_name=name,
        instance_class="db.t4g.micro",
        deletion_protection=False,
        backup_retention_days=1,
        final_snapshot=False,
        parameters=dict(parameters or {}),
    )


def production_database(
    engine: DatabaseEngine, name: str, parameters: dict[str, str] | None = None
) -> DatabaseSettings:
    """A seed system's production database: Multi-AZ db.t4g.medium, two weeks of backups,
    Performance Insights, 90 days of logs (protected and snapshotted by default)."""
    return DatabaseSettings(
        engine=engine,
        database_name=name,
        instance_class="db.t4g.medium",
        multi_az=True,
        backup_retention_days=14,
        performance_insights=True,
        log_retention_days=90,
        parameters=dict(parameters or {}),
    )
