"""The Metaflow metadata service's environments (``metaflow-dev``, ``metaflow-prod``):
the ``metadata-service`` module's inputs as typed fields
(``../shared/reference/003-metaflow-metadata-service.txt``; README maps each input).

Data only: the types and rules are :class:`environments.systems.MetaflowConfig`.
"""

from constructs_lib.options import DatabaseEngine, NatGateways, Tier
from constructs_lib.settings import ServiceSettings

from ._shared import development_database, network, production_database
from .systems import MetaflowConfig

IMAGE_TAG = "v2.5.1"
"""netflixoss/metaflow_metadata_service, mirrored with the RDS CA bundle added
(images/metaflow/Dockerfile). 2.4.6 is the first release whose database connection and
migrations honour MF_METADATA_DB_SSL_MODE (verify-full against RDS)."""
ACCESS = ("203.0.113.0/24", "172.16.0.0/12")
"""Replace with yours: the VPN's public egress range (may call the API Gateway endpoint)
and its private range (may call the internal load balancer directly)."""

DEV = MetaflowConfig(
    name="dev",
    tier=Tier.DEVELOPMENT,
    network=network(70, az_count=2, nat_gateways=NatGateways.SINGLE),
    database=development_database(DatabaseEngine.POSTGRES, "metaflow"),
    # The module's defaults: 512 CPU units, 1024 MiB, one task.
    service=ServiceSettings(min_tasks=1, max_tasks=1, cpu=512, memory=1024),
    image_tag=IMAGE_TAG,
    access_list_cidr_blocks=ACCESS,
    log_retention_days=14,
)

PROD = MetaflowConfig(
    name="prod",
    tier=Tier.PRODUCTION,
    network=network(71, az_count=3, nat_gateways=NatGateways.PER_AZ),
    database=production_database(DatabaseEngine.POSTGRES, "metaflow"),
    service=ServiceSettings(min_tasks=2, max_tasks=4, cpu=512, memory=1024),
    image_tag=IMAGE_TAG,
    access_list_cidr_blocks=ACCESS,
    log_retention_days=90,
)

ENVIRONMENTS = {c.stack_name: c for c in (DEV, PROD)}
