"""The ``dev`` environment: two AZs, one NAT gateway, single-AZ database."""

from constructs_lib.options import NatGateways, QueueMode, Tier

from ._shared import network
from .config import (
    DatabaseConfig,
    EnvironmentConfig,
    QueueConfig,
    ServiceConfig,
    ServicesConfig,
)

CONFIG = EnvironmentConfig(
    name="dev",
    tier=Tier.DEVELOPMENT,
    network=network(10, az_count=2, nat_gateways=NatGateways.SINGLE),
    database=DatabaseConfig(
        instance_class="db.t4g.micro",
        multi_az=False,
        deletion_protection=False,
        backup_retention_days=1,
        final_snapshot=False,
    ),
    queue=QueueConfig(mode=QueueMode.SERVERLESS),
    services=ServicesConfig(
        producer=ServiceConfig(min_tasks=1, max_tasks=2),
        consumer=ServiceConfig(min_tasks=1, max_tasks=2),
        log_retention_days=14,
    ),
)
