"""The ``prod`` environment: highly available across three AZs."""

from constructs_lib.options import NatGateways, QueueMode, Tier
from constructs_lib.settings import DatabaseSettings, QueueSettings, ServiceSettings

from ._shared import network
from .config import EdgeConfig, EnvironmentConfig, ServicesConfig

CONFIG = EnvironmentConfig(
    name="prod",
    tier=Tier.PRODUCTION,
    network=network(40, az_count=3, nat_gateways=NatGateways.PER_AZ, flow_log_retention_days=90),
    database=DatabaseSettings(
        instance_class="db.t4g.medium",
        multi_az=True,
        deletion_protection=True,
        backup_retention_days=14,
        final_snapshot=True,
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
