"""The ``prod`` environment: highly available across three AZs."""

from dataclasses import replace

from constructs_lib.options import NatGateways, QueueMode, Tier
from constructs_lib.settings import DatabaseSettings, QueueSettings, ServiceSettings

from ._shared import network
from .config import EdgeConfig, EnvironmentConfig, ServicesConfig

CONFIG = EnvironmentConfig(
    name="prod",
    tier=Tier.PRODUCTION,
    network=replace(
        network(40, az_count=3, nat_gateways=NatGateways.PER_AZ), flow_log_retention_days=90
    ),
    # Deletion protection and a final snapshot are DatabaseSettings' defaults (and the
    # production rules require them).
    database=DatabaseSettings(
        instance_class="db.t4g.medium",
        multi_az=True,
        backup_retention_days=14,
        allocated_storage_gb=50,
        max_allocated_storage_gb=500,
        performance_insights=True,
        log_retention_days=90,
    ),
    queue=QueueSettings(
        mode=QueueMode.REPLICATION_GROUP,
        node_type="cache.t4g.small",
        snapshot_retention_days=7,
    ),
    services=ServicesConfig(
        producer=ServiceSettings(min_tasks=3, max_tasks=12, cpu=512, memory=1024),
        consumer=ServiceSettings(min_tasks=2, max_tasks=8, cpu=512, memory=1024),
        log_retention_days=90,
    ),
    edge=EdgeConfig(alb_deletion_protection=True, alb_access_logs=True),
)
