"""Dekart's environments (``dekart-dev``, ``dekart-prod``): maps over Athena
(``../shared/reference/002-dekart-ecs-terraform.md``).

Data only: the types and rules are :class:`environments.systems.DekartConfig`. The tasks
stay private and reach ECR, CloudWatch Logs, Secrets Manager and Athena through interface
endpoints and S3 through its gateway endpoint. Development (no sign-in) needs nothing
outside AWS and runs no NAT gateway; production's sign-in needs the load balancer's public
keys from the internet, through NAT (the README compares the costs).
"""

from dataclasses import replace

from constructs_lib.options import DatabaseEngine, NatGateways, Tier
from constructs_lib.settings import NetworkSettings, ServiceSettings

from ._shared import development_database, network, production_database
from .systems import AthenaSettings, CognitoSettings, DekartConfig, WebSettings

IMAGE_TAG = "0.23.2"
"""The Dekart release both environments run (mirrored into ECR with the RDS CA bundle
added: images/dekart/Dockerfile)."""
ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "athena")
"""What the tasks call: image pulls, logs, injected secrets, queries."""
ATHENA = AthenaSettings(
    # Replace with the Glue databases and data buckets Dekart may read.
    databases=("geodata",),
    data_buckets=("example-geodata-lake",),
)


def _network(
    second_octet: int, az_count: int, nat_gateways: NatGateways = NatGateways.NONE
) -> NetworkSettings:
    return replace(
        network(second_octet, az_count=az_count, nat_gateways=nat_gateways),
        interface_endpoints=ENDPOINTS,
    )


DEV = DekartConfig(
    name="dev",
    tier=Tier.DEVELOPMENT,
    network=_network(60, az_count=2),
    database=development_database(DatabaseEngine.POSTGRES, "dekart"),
    service=ServiceSettings(min_tasks=1, max_tasks=1, cpu=256, memory=512),
    image_tag=IMAGE_TAG,
    athena=ATHENA,
    # No domain: an internal load balancer over the VPN, without sign-in.
    web=WebSettings(ingress_cidrs=("172.16.0.0/12",)),
    log_retention_days=14,
)

PROD = DekartConfig(
    name="prod",
    tier=Tier.PRODUCTION,
    # Sign-in: Dekart checks every request's identity (DEKART_REQUIRE_AMAZON_OIDC) with the
    # load balancer's public keys, which are on the internet: a NAT gateway per AZ carries
    # that alone (AWS APIs stay on the endpoints).
    network=_network(61, az_count=3, nat_gateways=NatGateways.PER_AZ),
    database=production_database(DatabaseEngine.POSTGRES, "dekart"),
    # One task: Dekart does not scale horizontally.
    service=ServiceSettings(min_tasks=1, max_tasks=1, cpu=512, memory=1024),
    image_tag=IMAGE_TAG,
    athena=ATHENA,
    # Replace with your own name and zone before deploying; the stack requests the
    # certificate and validates it there, and creates the Cognito user pool.
    web=WebSettings(
        domain_name="dekart.example.com",
        hosted_zone_id="Z0EXAMPLE0DEKART",
        deletion_protection=True,
        access_logs=True,
    ),
    cognito=CognitoSettings(),
    log_retention_days=90,
)

ENVIRONMENTS = {c.stack_name: c for c in (DEV, PROD)}
