"""Metabase's environments (``metabase-dev``, ``metabase-prod``), in eu-west-1 as the
original deployment (``../shared/reference/000-metabase-ecs-fargate.txt``).

Data only: the types and rules are :class:`environments.systems.MetabaseConfig`.
"""

from constructs_lib.options import DatabaseEngine, NatGateways, Tier
from constructs_lib.settings import ServiceSettings

from ._shared import development_database, network, production_database
from .systems import MetabaseConfig, WebSettings

REGION = "eu-west-1"
IMAGE_TAG = "v0.63.13"
"""The Metabase release both environments run (the image is mirrored into ECR with the
RDS CA bundle added: images/metabase/Dockerfile)."""

DEV = MetabaseConfig(
    name="dev",
    tier=Tier.DEVELOPMENT,
    region=REGION,
    network=network(50, az_count=3, nat_gateways=NatGateways.SINGLE, region=REGION),
    database=development_database(DatabaseEngine.POSTGRES, "metabase"),
    service=ServiceSettings(min_tasks=1, max_tasks=1, cpu=512, memory=1024),
    image_tag=IMAGE_TAG,
    # No domain: an internal load balancer, reached over the VPN.
    web=WebSettings(ingress_cidrs=("172.16.0.0/12",)),
    log_retention_days=14,
)

PROD = MetabaseConfig(
    name="prod",
    tier=Tier.PRODUCTION,
    region=REGION,
    network=network(51, az_count=3, nat_gateways=NatGateways.PER_AZ, region=REGION),
    database=production_database(DatabaseEngine.POSTGRES, "metabase"),
    service=ServiceSettings(min_tasks=2, max_tasks=4, cpu=512, memory=1024),
    image_tag=IMAGE_TAG,
    # Replace with your own name, zone and certificate before deploying.
    web=WebSettings(
        domain_name="metabase.example.com",
        hosted_zone_id="Z0EXAMPLE0METABASE",
        certificate_arn="arn:aws:acm:eu-west-1:123456789012:certificate/metabase-example",
        deletion_protection=True,
        access_logs=True,
    ),
    log_retention_days=90,
)

ENVIRONMENTS = {c.stack_name: c for c in (DEV, PROD)}
