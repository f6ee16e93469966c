"""One environment's stack, composed in named steps: network, data, edge, compute,
monitoring. Each step builds constructs from the environment's settings and hands them to
the next; the constructs take each other (``FargateService(cluster=...)``) and wire their
own requirements (security-group rules, key grants, start order).
"""

from __future__ import annotations

from cdktf import TerraformOutput
from constructs import Construct

from apps.common.contract import (
    BACKLOG_METRIC,
    CONSUMER_PORT,
    HEALTH_PATH,
    LAMBDA_RDS_CA_BUNDLE,
    METRICS_NAMESPACE,
    PRODUCER_PORT,
    QUEUE_STREAM,
    RDS_CA_BUNDLE,
    READINESS_PATH,
    SYSTEM_CA_BUNDLE,
    EnvVar,
    metric_dimensions,
    queue_access_string,
)
from constructs_lib.alarms import AlarmSet
from constructs_lib.firewall import EdgeFirewall, EdgeFirewallProps
from constructs_lib.frontend import Frontend, FrontendProps
from constructs_lib.load_balancer import LoadBalancer, LoadBalancerProps
from constructs_lib.migration import SchemaMigration, SchemaMigrationProps
from constructs_lib.naming import Naming
from constructs_lib.observability import Edge, Observability, ObservabilityProps
from constructs_lib.queue import Queue, QueueProps
from constructs_lib.registry import ContainerRepository, ContainerRepositoryProps
from constructs_lib.rotation import CredentialRotation, CredentialRotationProps
from constructs_lib.secrets import GeneratedCredentials, GeneratedCredentialsProps, RotationTarget
from constructs_lib.service import FargateService, FargateServiceProps
from constructs_lib.settings import ServiceSettings
from environments.config import EnvironmentConfig
from environments.release import Release
from environments.state import StateConfig

from .base import PROJECT_ROOT, ProjectStack, provider

SITE_DIR = PROJECT_ROOT / "apps" / "frontend" / "static"


class PlatformStack(ProjectStack):
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
        super().__init__(
            scope,
            id_,
            naming=Naming(config.name),
            region=config.region,
            extra_tags=config.extra_tags,
        )
        self.config = config
        self.release = release
        self.keep_state(state)
        # Deleted secrets stay restorable for 30 days in production, none elsewhere.
        self.recovery_days = 30 if config.is_production else 0

        self.network_step()
        self.data_step()
        self.edge_step()
        self.compute_step()
        self.monitoring_step()
        self.outputs()

    def network_step(self) -> None:
        """The environment's key and its VPC."""
        self.key, self.network = self.key_and_network(self.config.region, self.config.network)

    def data_step(self) -> None:
        """MySQL with its schema migration, the queue, and their credential rotations."""
        config, naming = self.config, self.naming
        self.database = self.environment_database(self.network, self.key, config.database)
        self.queue = Queue(
            self,
            "queue",
            props=QueueProps(
                naming=naming,
                network=self.network,
                key=self.key,
                app_access_string=queue_access_string(QUEUE_STREAM),
                settings=config.queue,
                secret_recovery_window_days=self.recovery_days,
            ),
        )
        self.db_credentials = self._credentials(
            "db-app-credentials",
            ("mysql", "app"),
            username="app",
            description="MySQL: least-privilege application user",
        )
        self.migration = SchemaMigration(
            self,
            "migration",
            props=SchemaMigrationProps(
                naming=naming,
                project_root=PROJECT_ROOT,
                database=self.database,
                app_credentials=self.db_credentials,
                log_retention_days=config.services.log_retention_days,
            ),
        )
        self._rotations()

    def edge_step(self) -> None:
        """The internal load balancer, and CloudFront with its firewall in front of it."""
        self.origin_secret = self._credentials(
            "origin-secret",
            ("edge", "origin-verify"),
            username="cloudfront",
            description="Header value CloudFront sends and the ALB requires",
            letters_and_digits_only=True,
        )
        self.load_balancer = self._load_balancer()
        self.firewall = self._firewall()
        self.frontend = self._frontend()

    def _load_balancer(self) -> LoadBalancer:
        """Internal: CloudFront reaches it by its VPC origin (and ``allowed_cidrs``)."""
        naming, edge = self.naming, self.config.edge
        return LoadBalancer(
            self,
            "load-balancer",
            props=LoadBalancerProps(
                naming=naming,
                network=self.network,
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
                    f"{naming.prefix}-alb-logs-{self.account_id}" if edge.alb_access_logs else None
                ),
            ),
        )

    def _firewall(self) -> EdgeFirewall:
        """The web ACL and its logs: CloudFront-scoped, so in us-east-1."""
        config, naming = self.config, self.naming
        us_east_1 = provider(
            self,
            "aws-us-east-1",
            alias="us_east_1",
            naming=naming,
            region="us-east-1",
            extra_tags=config.extra_tags,
        )
        edge_key = self.encryption_key(
            "edge-key",
            "us-east-1",
            f"{naming.prefix}: edge logs (us-east-1)",
            alias_suffix="edge",
            provider=us_east_1,
        )
        return EdgeFirewall(
            self,
            "firewall",
            props=EdgeFirewallProps(
                naming=naming,
                provider=us_east_1,
                log_key=edge_key,
                log_retention_days=config.services.log_retention_days,
            ),
        )

    def _frontend(self) -> Frontend:
        """The site bucket and the distribution that serves it and the API."""
        config, naming, edge = self.config, self.naming, self.config.edge
        # The frontend objects get a key of their own: its policy names this distribution,
        # which (through the origin secret) already depends on the environment key.
        self.frontend_key = self.encryption_key(
            "frontend-key",
            config.region,
            f"{naming.prefix}: frontend objects (read by CloudFront)",
            alias_suffix="frontend",
            log_group_services=False,
        )
        return Frontend(
            self,
            "frontend",
            props=FrontendProps(
                naming=naming,
                bucket_name=f"{naming.prefix}-frontend-{self.account_id}",
                site_dir=str(SITE_DIR),
                api=self.load_balancer,
                origin_secret_header_value=self.origin_secret.password,
                key=self.frontend_key,
                aliases=(edge.domain_name,) if edge.domain_name else (),
                acm_certificate_arn=edge.cloudfront_certificate_arn,
                hosted_zone_id=edge.hosted_zone_id,
                firewall=self.firewall,
            ),
        )

    def compute_step(self) -> None:
        """The repositories, the cluster, the consumer and the producer, and their scaling."""
        config, naming, services = self.config, self.naming, self.config.services
        self.repositories = {
            name: ContainerRepository(
                self,
                f"{name}-repository",
                props=ContainerRepositoryProps(
                    naming=naming,
                    service=name,
                    key=self.key,
                    force_delete=not config.is_production,
                ),
            )
            for name in ("producer", "consumer")
        }
        self.cluster = self.environment_cluster(
            self.network,
            self.key,
            namespace=f"{config.name}.{naming.project}.internal",
            log_retention_days=services.log_retention_days,
        )
        self.consumer = self._service(
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
            liveness_path=HEALTH_PATH,
        )
        self.producer = self._service(
            "producer",
            services.producer,
            PRODUCER_PORT,
            {EnvVar.CONSUMER_URL: self.consumer.url},
            # "/" answers whenever the process serves; /ready (the queue reachable) is the
            # load balancer's readiness check, so a queue outage stops traffic to the tasks
            # without ECS replacing them all.
            liveness_path="/",
            load_balancer=self.load_balancer,
        )
        self.consumer.allow_from(self.producer, description="producer reads the consumer's health")
        self.producer.scale_on_cpu(services.producer_cpu_target_percent)
        self.producer.scale_on_requests(services.producer_requests_per_task)
        self.consumer.scale_on_backlog_per_task(
            "backlog",
            namespace=METRICS_NAMESPACE,
            metric_name=BACKLOG_METRIC,
            dimensions=metric_dimensions(config.name),
            per_task=services.consumer_backlog_target,
        )

    def monitoring_step(self) -> None:
        """Alarms on every service, the load balancer, the database and the queue, routed
        to the environment's topic, and the dashboard."""
        config = self.config
        self.observability = Observability(
            self,
            "observability",
            props=ObservabilityProps(
                naming=self.naming,
                account_id=self.account_id,
                region=config.region,
                key=self.key,
                services=[self.producer, self.consumer],
                load_balancer=self.load_balancer,
                database=self.database,
                queue=self.queue,
                edge=Edge(self.frontend, self.firewall),
                alarm_set=AlarmSet.for_tier(config.tier),
                alarm_email=config.alarm_email,
                alarm_topic_arn=config.alarm_topic_arn,
            ),
        )

    def outputs(self) -> None:
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

    # --- parts the steps share ------------------------------------------------------------

    def _service(
        self,
        name: str,
        settings: ServiceSettings,
        port: int,
        environment: dict[str, str],
        *,
        liveness_path: str,
        load_balancer: LoadBalancer | None = None,
    ) -> FargateService:
        """One application service with the environment both services read; it starts after
        the schema migration, once the queue user holds this release's access string
        (``apps/common/contract.py``) and the rules to MySQL and the queue exist."""
        services = self.config.services
        # The services read their credentials from the secrets at run time (and again
        # after a rotation), so the task definitions carry the secrets' ARNs, not values.
        common: dict[str, str] = {
            EnvVar.ENVIRONMENT: self.config.name,
            **self.queue.connection_environment(ca_bundle=SYSTEM_CA_BUNDLE),
            EnvVar.QUEUE_STREAM: QUEUE_STREAM,
            **self.database.connection_environment(ca_bundle=RDS_CA_BUNDLE),
            EnvVar.LOG_LEVEL: "info",
        }
        service = FargateService(
            self,
            name,
            props=FargateServiceProps(
                name=name,
                cluster=self.cluster,
                repository=self.repositories[name],
                image_tag=self.release.image_tag,
                port=port,
                settings=settings,
                environment={**common, EnvVar.PORT: str(port), **environment},
                credentials_secrets={
                    EnvVar.REDIS_CREDENTIALS_SECRET: self.queue.credentials,
                    EnvVar.DB_CREDENTIALS_SECRET: self.db_credentials,
                },
                load_balancer=load_balancer,
                health_check_path=liveness_path,
                log_retention_days=services.log_retention_days,
                depends_on=(self.migration.invocation, self.queue.app_user),
            ),
        )
        service.requires(
            *self.database.allow_from(service, description=f"{name} to MySQL"),
            *self.queue.allow_from(service, description=f"{name} to the queue"),
        )
        return service

    def _rotations(self) -> None:
        """Rotation schedules for the app's MySQL and queue credentials."""
        database, queue = self.database, self.queue
        self.db_rotation = self._rotation(
            "db-rotation",
            "rotate-db",
            self.db_credentials,
            database.rotation_target(ca_bundle=LAMBDA_RDS_CA_BUNDLE),
        )
        self.db_rotation.start_after(
            *database.allow_from(self.db_rotation, description="credential rotation to MySQL"),
            self.migration.invocation,  # the first user and the schema exist
        )
        self.queue_rotation = self._rotation(
            "queue-rotation", "rotate-queue", queue.credentials, queue.rotation_target()
        )
        self.queue_rotation.start_after(
            *queue.allow_from(self.queue_rotation, description="credential rotation to the queue")
        )

    def _rotation(
        self, id_: str, name: str, credentials: GeneratedCredentials, target: RotationTarget
    ) -> CredentialRotation:
        return CredentialRotation(
            self,
            id_,
            props=CredentialRotationProps(
                naming=self.naming,
                name=name,
                project_root=PROJECT_ROOT,
                network=self.network,
                credentials=credentials,
                target=target,
                log_retention_days=self.config.services.log_retention_days,
            ),
        )

    def _credentials(
        self,
        id_: str,
        path: tuple[str, ...],
        *,
        username: str,
        description: str,
        letters_and_digits_only: bool = False,
    ) -> GeneratedCredentials:
        return GeneratedCredentials(
            self,
            id_,
            props=GeneratedCredentialsProps(
                name=self.naming.path(*path),
                username=username,
                key=self.key,
                description=description,
                recovery_window_days=self.recovery_days,
                letters_and_digits_only=letters_and_digits_only,
            ),
        )
