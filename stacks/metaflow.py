"""The Metaflow metadata service on the construct library (``metaflow-dev``,
``metaflow-prod``): the ``metadata-service`` Terraform module's resources, held to this
project's standards (README, "Metaflow metadata service").

The service runs on Fargate behind an internal Network Load Balancer: port 80 to the API
(8080), 8082 to its migration server. The API Gateway REST API (optional, as in the module)
reaches the load balancer through a VPC link, requires the API key with a usage plan
(``enable_api_basic_auth``), and admits only the public ranges of
``access_list_cidr_blocks`` (its resource policy); the private ranges may call the load
balancer directly (its security group). After every deploy of a new image, a function in
the VPC asks the migration server to upgrade the schema when it is behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from cdktf import ITerraformDependable, TerraformOutput
from cdktf_cdktf_provider_aws.data_aws_security_group import DataAwsSecurityGroup
from cdktf_cdktf_provider_aws.lambda_invocation import LambdaInvocation
from constructs import Construct

from constructs_lib.alarms import HasAlarms
from constructs_lib.api_gateway import RestApi, RestApiProps
from constructs_lib.bucket import SecureBucket, SecureBucketProps
from constructs_lib.database import Database
from constructs_lib.migration import Bundle, vpc_function
from constructs_lib.network_load_balancer import (
    NetworkListener,
    NetworkLoadBalancer,
    NetworkLoadBalancerProps,
)
from constructs_lib.options import CpuArchitecture
from constructs_lib.policy import Statement
from constructs_lib.secrets import SecretRef
from constructs_lib.security import allow_tcp
from constructs_lib.service import ExtraPort
from environments.systems import MetaflowConfig

from .base import PROJECT_ROOT
from .system import RDS_CA_PATH, SystemStack

SERVICE_PORT = 8080
MIGRATION_PORT = 8082
LISTENER_PORT = 80
"""As the module: the load balancer's port 80 reaches the API, 8082 the migration server."""
HEALTH_PATH = "/ping"
"""Answers ``pong`` whenever the server runs (``/healthcheck`` also checks the database:
a database failover would then replace every task)."""
MIGRATE_BUNDLE = Bundle("metaflow-migrate", ("apps/metaflowmigrate", "apps/common"), (), data=())
MIGRATE_HANDLER = "apps.metaflowmigrate.handler.handler"
MIGRATE_TIMEOUT_S = 900


STARTUP_RETRIES = 60
"""Seconds (one try a second, ``MF_SERVICE_STARTUP_WAITTIME_SECONDS``) the image waits for
its own migration server at start (upstream ``services/data/service_configs.py``)."""


class MetaflowStack(SystemStack):
    """The metadata service, its load balancer, optional API Gateway and migration
    function, its PostgreSQL database (created, or an existing one) and its datastore."""

    config: MetaflowConfig
    port: ClassVar[int] = SERVICE_PORT
    health_check_path: ClassVar[str] = HEALTH_PATH
    container_user: ClassVar[str] = "10001:10001"
    """The user images/metaflow/Dockerfile adds (the upstream image runs as root)."""
    startup_grace_seconds: ClassVar[int] = 120
    """A first start on an empty database runs the migrations before serving."""
    cpu_architecture: ClassVar[CpuArchitecture] = CpuArchitecture.X86_64
    """The upstream image is published for amd64 only."""

    # --- data ---------------------------------------------------------------------------

    def data_step(self) -> None:
        """The database (created with its owner, or the existing one) and the datastore."""
        existing = self.config.existing_database
        if existing is None:
            super().data_step()
        else:
            host, port = existing.endpoint.rsplit(":", 1)
            self.db_host, self.db_port = host, port
        self._datastore()

    def _datastore(self) -> None:
        config, naming = self.config, self.naming
        datastore = config.datastore
        self.datastore_key_arn = datastore.kms_key_arn or self.key.arn
        if datastore.bucket_arn is None:
            self.datastore_bucket: SecureBucket | None = SecureBucket(
                self,
                "datastore",
                props=SecureBucketProps(
                    bucket_name=f"{naming.prefix}-datastore-{self.account_id}",
                    key=self.key,
                    force_destroy=not config.is_production,
                ),
            )
            self.datastore_bucket_arn = self.datastore_bucket.arn
        else:
            self.datastore_bucket = None
            self.datastore_bucket_arn = datastore.bucket_arn

    def start_after(self) -> list[ITerraformDependable]:
        return [] if self.config.existing_database else super().start_after()

    def admit_to_database(self) -> None:
        existing = self.config.existing_database
        if existing is None:
            super().admit_to_database()
            return
        if existing.security_group_id is None:
            return  # the operator admits metadata_service_security_group_id
        group = DataAwsSecurityGroup(self, "existing-database-sg", id=existing.security_group_id)
        self.service.requires(
            *allow_tcp(
                self,
                source=self.service,
                target=group,
                port=int(self.db_port),
                description="Metaflow metadata service to its existing database",
            )
        )

    def monitored_database(self) -> Database | None:
        return None if self.config.existing_database else self.database

    def alarmed(self) -> list[HasAlarms]:
        return [*super().alarmed(), *([self.api] if self.api else [])]

    # --- the front door ------------------------------------------------------------------

    def web_step(self) -> None:
        """The internal NLB (API and migration ports), and the API Gateway in front."""
        config, naming = self.config, self.naming
        self.nlb = NetworkLoadBalancer(
            self,
            "nlb",
            props=NetworkLoadBalancerProps(
                naming=naming,
                network=self.network,
                target_port=SERVICE_PORT,
                listener_port=LISTENER_PORT,
                health_check_path=HEALTH_PATH,
                ingress_cidrs=config.private_access_cidrs,
                extra_listeners=(
                    # Unauthenticated (PATCH /upgrade): only the migration function may call it.
                    NetworkListener(
                        port=MIGRATION_PORT,
                        target_port=MIGRATION_PORT,
                        health_check_path="/ping",
                        open_to_clients=False,
                    ),
                ),
                deletion_protection=config.is_production,
            ),
        )
        self.load_balancer = self.nlb
        self.api: RestApi | None = None
        if config.enable_api_gateway:
            self.api = RestApi(
                self,
                "api",
                props=RestApiProps(
                    naming=naming,
                    network_load_balancer=self.nlb,
                    key=self.key,
                    allowed_cidrs=config.public_access_cidrs,
                    require_api_key=config.enable_api_basic_auth,
                    access_logs=config.api_access_logs,
                    log_retention_days=config.log_retention_days,
                ),
            )
        self.url = self.api.url if self.api else self.nlb.internal_url

    # --- the service ---------------------------------------------------------------------

    def extra_ports(self) -> Sequence[ExtraPort]:
        return (ExtraPort(MIGRATION_PORT, self.nlb.target_groups[MIGRATION_PORT]),)

    def environment(self) -> Mapping[str, str]:
        existing = self.config.existing_database
        if existing is None:
            db = self.database
            host, port, name = db.endpoint_address, str(db.port), db.database_name
            user: dict[str, str] = {"MF_METADATA_DB_USER": self.db_credentials.username}
        else:
            host, port, name = self.db_host, self.db_port, self.config.database.database_name
            user = {}
        return {
            "MF_METADATA_DB_HOST": host,
            "MF_METADATA_DB_PORT": port,
            "MF_METADATA_DB_NAME": name,
            **user,
            # TLS verified against the RDS CAs (the module's default is "disable"; 2.4.6+
            # passes these to the server and to its migrations).
            "MF_METADATA_DB_SSL_MODE": "verify-full",
            "MF_METADATA_DB_SSL_ROOT_CERT_PATH": RDS_CA_PATH,
            "MF_METADATA_PORT": str(SERVICE_PORT),
            "MF_MIGRATION_PORT": str(MIGRATION_PORT),
            "MF_MIGRATION_ENDPOINTS_ENABLED": "1",
            # The image starts its migration server, then waits for its port before it
            # picks the service's version: upstream tries 5 times, 1 s apart, thin on
            # 0.5 vCPU while the server imports; a miss exits the task.
            "MF_SERVICE_STARTUP_RETRIES": str(STARTUP_RETRIES),
        }

    def secrets(self) -> Mapping[str, SecretRef]:
        existing = self.config.existing_database
        if existing is None:
            return {"MF_METADATA_DB_PSWD": self.db_credentials.field("password")}
        return {
            "MF_METADATA_DB_USER": SecretRef(existing.credentials_secret_arn, "username"),
            "MF_METADATA_DB_PSWD": SecretRef(existing.credentials_secret_arn, "password"),
        }

    def task_statements(self) -> Sequence[Statement]:
        """Read the datastore (as the module: objects and listing) and decrypt it through
        S3; nothing else."""
        bucket, region = self.datastore_bucket_arn, self.config.region
        return [
            Statement(sid="ListTheDatastore", actions=["s3:ListBucket"], resources=[bucket]),
            Statement(sid="ReadTheDatastore", actions=["s3:GetObject"], resources=[f"{bucket}/*"]),
            Statement(
                sid="DecryptTheDatastoreThroughS3",
                actions=["kms:Decrypt"],
                resources=[self.datastore_key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            ),
        ]

    def compute_step(self) -> None:
        """The service (the shared step), then the migration function run after it."""
        super().compute_step()
        self._migration()

    def _migration(self) -> None:
        network, naming, config = self.network, self.naming, self.config
        parts = vpc_function(
            Construct(self, "db-migrate"),
            name=naming.name("db-migrate"),
            description="Upgrades the metadata service's schema through its migration port",
            group_description="Metaflow schema migration function",
            handler=MIGRATE_HANDLER,
            project_root=PROJECT_ROOT,
            vpc_id=network.vpc.id,
            subnet_ids=network.private_subnet_ids,
            kms_key_arn=self.key.arn,
            account_id=network.account_id,
            statements=(),
            variables={
                "MIGRATION_URL": f"http://{self.nlb.dns_name}:{MIGRATION_PORT}",
                "MIGRATION_TIMEOUT_S": str(MIGRATE_TIMEOUT_S - 60),
            },
            log_retention_days=config.log_retention_days,
            timeout=MIGRATE_TIMEOUT_S,
            bundle=MIGRATE_BUNDLE,
        )
        self.migration_function = parts.function
        rules = self.nlb.allow_from(
            parts.security_group,
            description="schema migration function to the migration port",
            port=MIGRATION_PORT,
        )
        self.migration = LambdaInvocation(
            self,
            "migration-invocation",
            function_name=parts.function.function_name,
            input='{"action": "migrate"}',
            # Again whenever the image (a new service version) or the function changes.
            triggers={"image": config.image_tag, "bundle": parts.bundle_sha256},
            depends_on=[self.service.service, *rules],
        )

    # --- outputs, as the module's --------------------------------------------------------

    def outputs(self) -> None:
        api = self.api
        TerraformOutput(self, "METAFLOW_SERVICE_URL", value=api.url if api else "")
        TerraformOutput(self, "METAFLOW_SERVICE_INTERNAL_URL", value=f"http://{self.nlb.dns_name}/")
        TerraformOutput(
            self,
            "api_gateway_rest_api_id_key_id",
            value=(api.api_key_id or "") if api else "",
            description="The API key's id; fetch the key itself (METAFLOW_SERVICE_AUTH_KEY) "
            "with aws apigateway get-api-key --include-value",
        )
        TerraformOutput(self, "api_gateway_rest_api_id", value=api.rest_api_id if api else "")
        TerraformOutput(
            self,
            "metadata_service_security_group_id",
            value=self.service.security_group.id,
        )
        TerraformOutput(self, "metadata_svc_ecs_task_role_arn", value=self.service.task_role.arn)
        TerraformOutput(self, "migration_function_arn", value=self.migration_function.arn)
        TerraformOutput(self, "network_load_balancer_dns_name", value=self.nlb.dns_name)
        TerraformOutput(self, "repository_url", value=self.repository.url)
        TerraformOutput(self, "alarm_topic_arn", value=self.monitoring.topic.arn)
        if self.config.existing_database is None:
            TerraformOutput(
                self, "database_endpoint", value=self.database.endpoint_address, sensitive=True
            )
