"""Panintelligence's environments (``panintelligence-dev``, ``panintelligence-prod``)
(``../shared/reference/001-panintelligence-ecs-terraform.txt``).

Data only: the types and rules are :class:`environments.systems.PanintelligenceConfig`.
"""

from dataclasses import replace

from constructs_lib.options import DatabaseEngine, DatabaseTransport, NatGateways, Tier
from constructs_lib.settings import DatabaseSettings, ServiceSettings

from ._shared import development_database, network, production_database
from .systems import PanintelligenceConfig, WebSettings

IMAGE_TAG = "2025_10.1"
"""The Panintelligence release all four services run (ghcr.io/pi-cr/*, mirrored into the
stack's repositories with the RDS CA bundle added: images/panintelligence/Dockerfile)."""

REPOSITORY_PARAMETERS = {"lower_case_table_names": "1", "sql_mode": "NO_AUTO_VALUE_ON_ZERO"}
"""What Panintelligence's own deployments set on the repository database (its queries
expect case-insensitive table names; lower_case_table_names can only be set on an empty
instance)."""


def _offered(database: DatabaseSettings) -> DatabaseSettings:
    """The repository offers TLS but admits plaintext: Panintelligence's deployments give
    the dashboard no TLS option (README: Panintelligence). Once a dev deploy shows its
    client uses TLS, drop this (TLS required, the default)."""
    return replace(database, transport=DatabaseTransport.TLS_OFFERED)


# Every service runs as Panintelligence runs its images (their own user, a writable root:
# ``runtime`` unset). Harden one setting at a time, in dev first:
#   runtime=ImageRuntime(user="10001:10001", root_filesystem=RootFilesystem.READ_ONLY)
DEV = PanintelligenceConfig(
    name="dev",
    tier=Tier.DEVELOPMENT,
    network=network(80, az_count=2, nat_gateways=NatGateways.SINGLE),
    database=_offered(
        development_database(DatabaseEngine.MARIADB, "dashboard", REPOSITORY_PARAMETERS)
    ),
    # The datasheet's dashboard: 1 vCPU, 2 GB.
    service=ServiceSettings(min_tasks=1, max_tasks=1, cpu=1024, memory=2048),
    image_tag=IMAGE_TAG,
    web=WebSettings(ingress_cidrs=("172.16.0.0/12",)),
    log_retention_days=14,
)

PROD = PanintelligenceConfig(
    name="prod",
    tier=Tier.PRODUCTION,
    network=network(81, az_count=3, nat_gateways=NatGateways.PER_AZ),
    database=_offered(
        production_database(DatabaseEngine.MARIADB, "dashboard", REPOSITORY_PARAMETERS)
    ),
    service=ServiceSettings(min_tasks=2, max_tasks=4, cpu=1024, memory=2048),
    renderer=ServiceSettings(min_tasks=2, max_tasks=2, cpu=2048, memory=4096),
    image_tag=IMAGE_TAG,
    # Replace with your own name and zone before deploying (the stack requests the
    # certificate and validates it there).
    web=WebSettings(
        domain_name="dashboard.example.com",
        hosted_zone_id="Z0EXAMPLE0PANINTEL",
        deletion_protection=True,
        access_logs=True,
    ),
    log_retention_days=90,
)

ENVIRONMENTS = {c.stack_name: c for c in (DEV, PROD)}
