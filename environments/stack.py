"""The stacks: wiring of the constructs for the bootstrap and for each environment.

This is the one place where constructs meet; the constructs themselves never reach
into each other. Importing this module loads the AWS provider bindings (slow).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cdktf import (
    ITerraformDependable,
    LocalBackend,
    S3Backend,
    TerraformOutput,
    TerraformStack,
)
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from apps.common.contract import (
    BACKLOG_METRIC,
    CONSUMER_PORT,
    LAMBDA_RDS_CA_BUNDLE,
    METRICS_NAMESPACE,
    PRODUCER_PORT,
    QUEUE_STREAM,
    RDS_CA_BUNDLE,
    READINESS_PATH,
    SYSTEM_CA_BUNDLE,
    EnvVar,
    queue_access_string,
)
from constructs_lib.bucket import SecureBucket, SecureBucketProps
from constructs_lib.cluster import Cluster, ClusterProps
from constructs_lib.database import Database, DatabaseProps
from constructs_lib.encryption import EncryptionKey, EncryptionKeyProps, ServiceAccess
from constructs_lib.firewall import EdgeFirewall, EdgeFirewallProps
from constructs_lib.frontend import Frontend, FrontendProps
from constructs_lib.load_balancer import LoadBalancer, LoadBalancerProps
from constructs_lib.migration import SchemaMigration, SchemaMigrationProps
from constructs_lib.naming import Naming
from constructs_lib.network import Network, NetworkProps
from constructs_lib.observability import Observability, ObservabilityProps, ServiceMetrics
from constructs_lib.policy import Statement, read_secrets
from constructs_lib.queue import Queue, QueueProps
from constructs_lib.registry import ContainerRepository, ContainerRepositoryProps
from constructs_lib.rotation import CredentialRotation, CredentialRotationProps
from constructs_lib.secrets import GeneratedCredentials, GeneratedCredentialsProps
from constructs_lib.service import FargateService, FargateServiceProps, Scaling

from .config import EnvironmentConfig, ServiceConfig
from .release import Release
from .state import StateConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SITE_DIR = PROJECT_ROOT / "apps" / "frontend" / "static"

TERRAFORM_VERSION = ">= 1.10, < 2.0"
"""1.10 brought S3-native state locking (``use_lockfile``)."""
AWS_PROVIDER_VERSION = "~> 6.25.0"
"""The provider release the prebuilt bindings (cdktf-cdktf-provider-aws 21.22.1) describe."""


def _base(stack: TerraformStack, naming: Naming, region: str, extra_tags: dict[str, str]) -> None:
    """Provider with default tags and the version constraints every stack declares."""
    AwsProvider(stack, "aws", region=region, default_tags=[{"tags": _tags(naming, extra_tags)}])
    stack.add_override("terraform.required_version", TERRAFORM_VERSION)
    stack.add_override("terraform.required_providers.aws.version", AWS_PROVIDER_VERSION)


def _tags(naming: Naming, extra_tags: dict[str, str]) -> dict[str, str]:
    return {**naming.default_tags(), **extra_tags}


class BootstrapStack(TerraformStack):
    """Creates the remote-state bucket. Its own state stays local.."""

    def __init__(self, scope: Construct, id_: str, *, state: StateConfig) -> None:
        super().__init__(scope, id_)
        naming = Naming("state")
        _base(self, naming, state.region, {})
        # Relative to where Terraform runs (cdktf.out/stacks/bootstrap): the project root,
        # so the file survives `rm -rf cdktf.out` and no machine's absolute path is baked in.
        LocalBackend(self, path="../../../terraform.bootstrap.tfstate")
        identity = DataAwsCallerIdentity(self, "caller")
        key = EncryptionKey(
            self,
            "state-key",
            props=EncryptionKeyProps(
                naming=naming,
                account_id=identity.account_id,
                region=state.region,
                description="Terraform remote state",
                log_group_services=False,
            ),
        )
        self.bucket = SecureBucket(
            self,
            "state-bucket",
            props=SecureBucketProps(bucket_name=state.bucket, kms_key_arn=key.arn),
        )
        TerraformOutput(self, "state_bucket", value=self.bucket.bucket.bucket)


class PlatformStack(TerraformStack):
    """Everything one environment runs, in its own state file."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: EnvironmentConfig,
        state: StateConfig,
        release: Release,
    ) -> None:
        release.validate_for(config)  # before anything is built
        super().__init__(scope, id_)
        self.config = config
        naming = Naming(config.name)
        _base(self, naming, config.region, config.extra_tags)
        S3Backend(
            self,
            bucket=state.bucket,
            key=state.key(config.name),
            region=state.region,
            encrypt=True,
        )
        # cdktf 0.21's S3Backend predates S3-native locking: set it directly.
        self.add_override("terraform.backend.s3.use_lockfile", True)

        identity = DataAwsCallerIdentity(self, "caller")
        account_id = identity.account_id
        self.key = EncryptionKey(
            self,
            "key",
            props=EncryptionKeyProps(
                naming=naming,
                account_id=account_id,
                region=config.region,
                description=f"{naming.prefix}: data at rest",
                # CloudWatch alarms publish to the KMS-encrypted alarm topic; CloudFront
                # (this environment's distribution only) is added once it exists.
                services=(
                    ServiceAccess(
                        "cloudwatch.amazonaws.com",
                        actions=("kms:Decrypt", "kms:GenerateDataKey"),
                    ),
                ),
            ),
        )
        net = config.network
        self.network = Network(
            self,
            "network",
            props=NetworkProps(
                naming=naming,
                account_id=account_id,
                region=config.region,
                vpc_cidr=net.vpc_cidr,
                availability_zones=net.availability_zones,
                public_subnet_cidrs=net.public_subnet_cidrs,
                private_subnet_cidrs=net.private_subnet_cidrs,
                nat_gateways=net.nat_gateways,
                flow_log_retention_days=net.flow_log_retention_days,
                flow_log_kms_key_arn=self.key.arn,
            ),
        )
        db = config.database
        self.database = Database(
            self,
            "database",
            props=DatabaseProps(
                naming=naming,
                account_id=account_id,
                vpc_id=self.network.vpc.id,
                subnet_ids=self.network.private_subnet_ids,
                kms_key_arn=self.key.arn,
                instance_class=db.instance_class,
                multi_az=db.multi_az,
                deletion_protection=db.deletion_protection,
                backup_retention_days=db.backup_retention_days,
                final_snapshot=db.final_snapshot,
                allocated_storage_gb=db.allocated_storage_gb,
                max_allocated_storage_gb=db.max_allocated_storage_gb,
                engine_version=db.engine_version,
                database_name=db.database_name,
                performance_insights=db.performance_insights,
                log_retention_days=db.log_retention_days,
            ),
        )
        queue = config.queue
        self.queue = Queue(
            self,
            "queue",
            props=QueueProps(
                naming=naming,
                vpc_id=self.network.vpc.id,
                subnet_ids=self.network.private_subnet_ids,
                kms_key_arn=self.key.arn,
                app_access_string=queue_access_string(QUEUE_STREAM),
                availability_zones=net.availability_zones,
                mode=queue.mode,
                engine=queue.engine,
                node_type=queue.node_type,
                snapshot_retention_days=queue.snapshot_retention_days,
                secret_recovery_window_days=30 if config.is_production else 0,
            ),
        )
        self._services(naming, account_id, release)
        self._outputs()

    def _services(self, naming: Naming, account_id: str, release: Release) -> None:
        """ECR, ECS services, migration, load balancer, frontend, scaling, alarms."""
        config = self.config
        services = config.services
        edge = config.edge
        recovery_days = 30 if config.is_production else 0

        self.db_credentials = GeneratedCredentials(
            self,
            "db-app-credentials",
            props=GeneratedCredentialsProps(
                name=naming.path("mysql", "app"),
                username="app",
                kms_key_arn=self.key.arn,
                description="MySQL: least-privilege application user",
                recovery_window_days=recovery_days,
            ),
        )
        self.origin_secret = GeneratedCredentials(
            self,
            "origin-secret",
            props=GeneratedCredentialsProps(
                name=naming.path("edge", "origin-verify"),
                username="cloudfront",
                kms_key_arn=self.key.arn,
                description="Header value CloudFront sends and the ALB requires",
                recovery_window_days=recovery_days,
                letters_and_digits_only=True,
            ),
        )
        self.migration = SchemaMigration(
            self,
            "migration",
            props=SchemaMigrationProps(
                naming=naming,
                project_root=PROJECT_ROOT,
                vpc_id=self.network.vpc.id,
                subnet_ids=self.network.private_subnet_ids,
                kms_key_arn=self.key.arn,
                region=config.region,
                account_id=account_id,
                db_host=self.database.endpoint_address,
                db_port=self.database.port,
                db_name=self.database.database_name,
                master_secret_arn=self.database.master_secret_arn,
                app_secret_arn=self.db_credentials.arn,
                depends_on=[
                    self.database.instance,
                    self.db_credentials.version,
                    *self.network.private_default_routes,
                ],
                log_retention_days=services.log_retention_days,
            ),
        )
        # The invocation runs during the apply: the rules must exist before it.
        migration_rules = self.database.allow_from(
            self.migration.security_group, description="schema migration to MySQL"
        )
        self.migration.run_after(*migration_rules)

        self.repositories = {
            name: ContainerRepository(
                self,
                f"{name}-repository",
                props=ContainerRepositoryProps(
                    naming=naming,
                    service=name,
                    kms_key_arn=self.key.arn,
                    force_delete=not config.is_production,
                ),
            )
            for name in ("producer", "consumer")
        }
        self.cluster = Cluster(
            self,
            "cluster",
            props=ClusterProps(
                naming=naming,
                vpc_id=self.network.vpc.id,
                kms_key_arn=self.key.arn,
                namespace_name=f"{config.name}.{naming.project}.internal",
                log_retention_days=services.log_retention_days,
            ),
        )
        self.load_balancer = LoadBalancer(
            self,
            "load-balancer",
            props=LoadBalancerProps(
                naming=naming,
                vpc_id=self.network.vpc.id,
                subnet_ids=self.network.private_subnet_ids,  # internal: CloudFront VPC origin
                target_port=PRODUCER_PORT,
                # Readiness is what the write path needs (the queue): a database outage
                # keeps the tasks in service, POSTs queue up and are stored later.
                health_check_path=READINESS_PATH,
                allowed_cidrs=edge.allowed_cidrs,
                origin_secret_header_value=self.origin_secret.password,
                certificate_arn=edge.alb_certificate_arn,
                domain_name=f"origin.{edge.domain_name}" if edge.domain_name else None,
                hosted_zone_id=edge.hosted_zone_id,
                deletion_protection=edge.alb_deletion_protection,
                access_logs_bucket_name=(
                    f"{naming.prefix}-alb-logs-{account_id}" if edge.alb_access_logs else None
                ),
            ),
        )

        self._rotations(naming, account_id)
        # The services read their credentials from the secrets at run time (and again
        # after a rotation), so the task definitions carry the secrets' ARNs, not values.
        common_env: dict[str, str] = {
            EnvVar.ENVIRONMENT: config.name,
            EnvVar.REDIS_URL: self.queue.url,
            EnvVar.REDIS_TLS_CA: SYSTEM_CA_BUNDLE,
            EnvVar.QUEUE_STREAM: QUEUE_STREAM,
            EnvVar.DB_HOST: self.database.endpoint_address,
            EnvVar.DB_PORT: str(self.database.port),
            EnvVar.DB_NAME: self.database.database_name,
            EnvVar.DB_TLS: "verify",
            EnvVar.DB_TLS_CA: RDS_CA_BUNDLE,
            EnvVar.LOG_LEVEL: "info",
        }
        credentials: dict[str, GeneratedCredentials] = {
            EnvVar.REDIS_CREDENTIALS_SECRET: self.queue.credentials,
            EnvVar.DB_CREDENTIALS_SECRET: self.db_credentials,
        }
        namespace = self.cluster.namespace_name

        def service(
            name: str,
            sizing: ServiceConfig,
            port: int,
            environment: dict[str, str],
            liveness_path: str,
            target_group_arn: str | None = None,
            depends_on: tuple[ITerraformDependable, ...] = (),
        ) -> FargateService:
            repository = self.repositories[name]
            built = FargateService(
                self,
                name,
                props=FargateServiceProps(
                    naming=naming,
                    name=name,
                    cluster_arn=self.cluster.cluster.arn,
                    cluster_name=self.cluster.name,
                    vpc_id=self.network.vpc.id,
                    subnet_ids=self.network.private_subnet_ids,
                    image=repository.image(release.image_tag),
                    image_repository_arn=repository.arn,
                    port=port,
                    kms_key_arn=self.key.arn,
                    region=config.region,
                    account_id=account_id,
                    namespace_id=self.cluster.namespace.id,
                    scaling=Scaling(sizing.min_tasks, sizing.max_tasks),
                    cpu=sizing.cpu,
                    memory=sizing.memory,
                    environment={**common_env, EnvVar.PORT: str(port), **environment},
                    credentials_secrets=credentials,
                    target_group_arn=target_group_arn,
                    health_check_path=liveness_path,
                    log_retention_days=services.log_retention_days,
                    # New tasks start after the schema migration and after the queue user
                    # holds this release's access string (apps/common/contract.py).
                    depends_on=(self.migration.invocation, self.queue.app_user, *depends_on),
                ),
            )
            built.discovery_name = f"{name}.{namespace}"
            built.requires(
                *self.database.allow_from(built.security_group, description=f"{name} to MySQL"),
                *self.queue.allow_from(built.security_group, description=f"{name} to the queue"),
            )
            return built

        self.consumer = service(
            "consumer",
            services.consumer,
            CONSUMER_PORT,
            {
                EnvVar.METRICS_NAMESPACE: METRICS_NAMESPACE,
                EnvVar.METRICS_INTERVAL: "60",
                EnvVar.DB_MIGRATE: "auto",
            },
            # /health is 503 only when the worker loop died or hung (a dependency outage
            # reports "degraded" with 200): a liveness check.
            liveness_path="/health",
        )
        self.producer = service(
            "producer",
            services.producer,
            PRODUCER_PORT,
            {EnvVar.CONSUMER_URL: f"http://{self.consumer.discovery_name}:{CONSUMER_PORT}"},
            # "/" answers whenever the process serves; /ready (the queue reachable) is the
            # load balancer's readiness check, so a queue outage stops traffic to the tasks
            # without ECS replacing them all.
            liveness_path="/",
            target_group_arn=self.load_balancer.target_group.arn,
            depends_on=tuple(self.load_balancer.forwarding),
        )
        self.producer.allow_from(
            self.load_balancer.security_group, description="ALB to the producer API"
        )
        self.consumer.allow_from(
            self.producer.security_group, description="producer reads the consumer's health"
        )

        self.producer.scale_on_cpu(services.producer_cpu_target_percent)
        self.producer.scale_on_requests(
            f"{self.load_balancer.arn_suffix}/{self.load_balancer.target_group_arn_suffix}",
            services.producer_requests_per_task,
        )
        self.consumer.scale_on_backlog_per_task(
            "backlog",
            namespace=METRICS_NAMESPACE,
            metric_name=BACKLOG_METRIC,
            dimensions={"Environment": config.name},
            per_task=services.consumer_backlog_target,
        )

        # CloudFront-scoped resources (the web ACL) live in us-east-1.
        us_east_1 = AwsProvider(
            self,
            "aws-us-east-1",
            alias="us_east_1",
            region="us-east-1",
            default_tags=[{"tags": _tags(naming, config.extra_tags)}],
        )
        edge_key = EncryptionKey(
            self,
            "edge-key",
            props=EncryptionKeyProps(
                naming=naming,
                account_id=account_id,
                region="us-east-1",
                description=f"{naming.prefix}: edge logs (us-east-1)",
                provider=us_east_1,
                alias_suffix="edge",
            ),
        )
        self.firewall = EdgeFirewall(
            self,
            "firewall",
            props=EdgeFirewallProps(
                naming=naming,
                provider=us_east_1,
                log_kms_key_arn=edge_key.arn,
                log_retention_days=services.log_retention_days,
            ),
        )
        # The frontend objects get a key of their own: its policy names this distribution,
        # which (through the origin secret) already depends on the environment key.
        self.frontend_key = EncryptionKey(
            self,
            "frontend-key",
            props=EncryptionKeyProps(
                naming=naming,
                account_id=account_id,
                region=config.region,
                description=f"{naming.prefix}: frontend objects (read by CloudFront)",
                log_group_services=False,
                alias_suffix="frontend",
            ),
        )
        self.frontend = Frontend(
            self,
            "frontend",
            props=FrontendProps(
                naming=naming,
                bucket_name=f"{naming.prefix}-frontend-{account_id}",
                site_dir=str(SITE_DIR),
                api_origin=self.load_balancer.vpc_origin,
                api_origin_domain=self.load_balancer.origin_domain,
                origin_secret_header_value=self.origin_secret.password,
                kms_key_arn=self.frontend_key.arn,
                aliases=(edge.domain_name,) if edge.domain_name else (),
                acm_certificate_arn=edge.cloudfront_certificate_arn,
                hosted_zone_id=edge.hosted_zone_id,
                web_acl_arn=self.firewall.arn,
            ),
        )

        # CloudFront reads the KMS-encrypted frontend objects, for this distribution only.
        self.frontend_key.allow_service(
            ServiceAccess(
                "cloudfront.amazonaws.com",
                actions=("kms:Decrypt",),
                source_arn=self.frontend.distribution_arn,
            )
        )

        self.observability = Observability(
            self,
            "observability",
            props=ObservabilityProps(
                naming=naming,
                account_id=account_id,
                region=config.region,
                kms_key_arn=self.key.arn,
                cluster_name=self.cluster.name,
                services=[
                    ServiceMetrics(self.producer.service_name, services.producer.min_tasks),
                    ServiceMetrics(self.consumer.service_name, services.consumer.min_tasks),
                ],
                load_balancer_arn_suffix=self.load_balancer.arn_suffix,
                target_group_arn_suffix=self.load_balancer.target_group_arn_suffix,
                db_instance_identifier=self.database.identifier,
                queue_metric_namespace=METRICS_NAMESPACE,
                queue_metric_environment=config.name,
                alarm_email=config.alarm_email,
                alarm_topic_arn=config.alarm_topic_arn,
            ),
        )

    def _rotations(self, naming: Naming, account_id: str) -> None:
        """Rotation schedules for the app's MySQL and queue credentials."""
        config = self.config

        def props(
            name: str,
            credentials: GeneratedCredentials,
            target: str,
            variables: dict[str, str],
            statements: Sequence[Statement],
        ) -> CredentialRotationProps:
            return CredentialRotationProps(
                naming=naming,
                name=name,
                project_root=PROJECT_ROOT,
                vpc_id=self.network.vpc.id,
                subnet_ids=self.network.private_subnet_ids,
                kms_key_arn=self.key.arn,
                region=config.region,
                account_id=account_id,
                credentials=credentials,
                target=target,
                variables=variables,
                statements=statements,
                log_retention_days=config.services.log_retention_days,
            )

        self.db_rotation = CredentialRotation(
            self,
            "db-rotation",
            props=props(
                "rotate-db",
                self.db_credentials,
                "mysql",
                {
                    EnvVar.MASTER_SECRET_ARN: self.database.master_secret_arn,
                    EnvVar.DB_HOST: self.database.endpoint_address,
                    EnvVar.DB_PORT: str(self.database.port),
                    EnvVar.DB_NAME: self.database.database_name,
                    EnvVar.DB_TLS: "verify",
                    EnvVar.DB_TLS_CA: LAMBDA_RDS_CA_BUNDLE,
                },
                read_secrets(
                    [self.database.master_secret_arn],
                    kms_key_arn=self.key.arn,
                    region=config.region,
                ),
            ),
        )
        self.db_rotation.start_after(
            *self.database.allow_from(
                self.db_rotation.security_group, description="credential rotation to MySQL"
            ),
            self.migration.invocation,  # the first user and the schema exist
        )
        self.queue_rotation = CredentialRotation(
            self,
            "queue-rotation",
            props=props(
                "rotate-queue",
                self.queue.credentials,
                "elasticache",
                {
                    EnvVar.QUEUE_USER_ID: self.queue.app_user.user_id,
                    EnvVar.REDIS_URL: self.queue.url,
                },
                [
                    Statement(
                        actions=["elasticache:ModifyUser"], resources=[self.queue.app_user.arn]
                    ),
                    # Read-only; whether AWS scopes it to a user ARN is unverified here, and a
                    # refused describe would stop every rotation after ModifyUser succeeded.
                    Statement(actions=["elasticache:DescribeUsers"], resources=["*"]),
                ],
            ),
        )
        self.queue_rotation.start_after(
            *self.queue.allow_from(
                self.queue_rotation.security_group, description="credential rotation to the queue"
            )
        )

    def _outputs(self) -> None:
        TerraformOutput(self, "vpc_id", value=self.network.vpc.id)
        TerraformOutput(self, "cloudfront_url", value=self.frontend.url)
        TerraformOutput(self, "alb_dns_name", value=self.load_balancer.dns_name)
        for name, repository in self.repositories.items():
            TerraformOutput(self, f"{name}_repository_url", value=repository.url)
        TerraformOutput(self, "service_discovery_namespace", value=self.cluster.namespace_name)
        TerraformOutput(self, "queue_endpoint", value=self.queue.endpoint_address)
        TerraformOutput(
            self, "database_endpoint", value=self.database.endpoint_address, sensitive=True
        )
        TerraformOutput(self, "alarm_topic_arn", value=self.observability.topic.arn)
        TerraformOutput(self, "migration_function", value=self.migration.function.function_name)
