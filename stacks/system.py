"""What every seed system's stack is made of, in named steps: network, data, web,
compute, monitoring. A system (``stacks/metabase.py``, ``stacks/dekart.py``) says what its
container needs: port, health check, environment, secrets, AWS permissions.

The application connects to its own PostgreSQL database as its own login role (created
and kept in step with its Secrets Manager secret by :class:`DatabaseOwner` on every
deploy), over TLS verified against the RDS CA bundle its image carries
(``images/<system>/Dockerfile``). The password reaches the container only through ECS
``secrets`` (``valueFrom``) and never rotates under a running task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from cdktf import ITerraformDependable, TerraformOutput
from constructs import Construct

from constructs_lib.alarms import AlarmSet, HasAlarms
from constructs_lib.certificate import Certificate, CertificateProps
from constructs_lib.database import Database
from constructs_lib.database_owner import DatabaseOwner, DatabaseOwnerProps
from constructs_lib.firewall import EdgeFirewall, EdgeFirewallProps, WafScope
from constructs_lib.monitoring import Monitoring, MonitoringProps
from constructs_lib.naming import Naming
from constructs_lib.options import CPU_ARCHITECTURE, CpuArchitecture, Deployment, RootFilesystem
from constructs_lib.policy import Statement
from constructs_lib.registry import ContainerRepository, ContainerRepositoryProps
from constructs_lib.secrets import GeneratedCredentials, GeneratedCredentialsProps, SecretRef
from constructs_lib.service import (
    ExtraPort,
    FargateService,
    FargateServiceProps,
    FileSystemMount,
    ServiceLoadBalancer,
)
from constructs_lib.settings import ServiceSettings
from constructs_lib.web_load_balancer import (
    CognitoAuthentication,
    WebLoadBalancer,
    WebLoadBalancerProps,
)
from environments.state import StateConfig
from environments.systems import SystemConfig

from .base import PROJECT_ROOT, ProjectStack

RDS_CA_PATH = "/etc/ssl/rds/rds-ca-bundle.pem"
"""Where ``images/<system>/Dockerfile`` puts the RDS CA bundle in the image."""
CPU_TARGET_PERCENT = 60


class Entry(ServiceLoadBalancer, HasAlarms, Protocol):
    """The load balancer in front of a system's service: a ``WebLoadBalancer`` (users'
    browsers) or a ``NetworkLoadBalancer`` (Metaflow's API Gateway and VPC clients)."""

    @property
    def dns_name(self) -> str: ...


"""A horizontally scaling system adds tasks above this average CPU."""


@dataclass(frozen=True)
class ContainerRuntime:
    """How a system's containers run (:meth:`SystemStack.container_runtime`)."""

    user: str | None
    """``uid:gid``; None: the image's own user."""
    root_filesystem: RootFilesystem
    writable_paths: tuple[str, ...]
    """The load-balanced service's task volumes (the system's other services get
    ``/tmp`` on a read-only root, nothing on a writable one)."""

    @property
    def private_writable_paths(self) -> tuple[str, ...]:
        """The other services' task volumes."""
        return ("/tmp",) if self.root_filesystem is RootFilesystem.READ_ONLY else ()  # noqa: S108


class SystemStack(ProjectStack):
    """One environment of one seed system, in its own state file (``<system>-<env>``)."""

    load_balancer: Entry
    url: str
    """Where users reach the system."""

    port: ClassVar[int]
    """The container's HTTP port."""
    health_check_path: ClassVar[str]
    """What the load balancer asks to decide a task is ready. The images have no health
    command of their own that ignores the database, so the load balancer's check is the
    only one (``container_health_check=False``): ECS replaces a task that fails it."""
    container_user: ClassVar[str | None]
    """The image's non-root ``uid:gid``."""
    writable_paths: ClassVar[tuple[str, ...]] = ("/tmp",)  # noqa: S108 (a task volume)
    """Task volumes over the read-only root filesystem (the image declares them)."""
    startup_grace_seconds: ClassVar[int] = 60
    """How long a starting task's failed health checks are ignored."""
    deployment: ClassVar[Deployment] = Deployment.ROLLING
    cpu_architecture: ClassVar[CpuArchitecture] = CPU_ARCHITECTURE
    """The CPU the upstream image is published for."""
    service_name: ClassVar[str | None] = None
    """The load-balanced service's name. Unset: the system's."""
    service_discovery: ClassVar[bool] = False
    """Register the service in Cloud Map (other services of the system call it)."""
    sticky_sessions_seconds: ClassVar[int | None] = None
    """Keep a browser on one task (sessions in the task's memory). Unset: no stickiness."""

    def __init__(self, scope: Construct, *, config: SystemConfig, state: StateConfig) -> None:
        super().__init__(
            scope,
            config.stack_name,
            naming=Naming(config.name, project=config.system),
            region=config.region,
            extra_tags=config.extra_tags,
        )
        self.config = config
        self.keep_state(state)
        # Deleted secrets stay restorable for 30 days in production, none elsewhere.
        self.recovery_days = 30 if config.is_production else 0
        self.network_step()
        self.data_step()
        self.web_step()
        self.compute_step()
        self.data_sources_step()
        self.monitoring_step()
        self.outputs()

    # --- what a system says about its container (overridden) -----------------------------

    def environment(self) -> Mapping[str, str]:
        """The container's plain settings."""
        return {}

    def secrets(self) -> Mapping[str, SecretRef]:
        """The container's credentials, injected by ECS from Secrets Manager."""
        return {}

    def task_statements(self) -> Sequence[Statement]:
        """What the application calls in AWS."""
        return ()

    def extra_ports(self) -> Sequence[ExtraPort]:
        """Container ports besides ``port`` (a migration port)."""
        return ()

    def file_system_mounts(self) -> Sequence[FileSystemMount]:
        """Shared file systems the service mounts."""
        return ()

    def container_runtime(self) -> ContainerRuntime:
        """How every container of the system runs. Unset: ``container_user`` on a read-only
        root with ``writable_paths`` (the load-balanced service's) or ``/tmp`` (others)."""
        return ContainerRuntime(self.container_user, RootFilesystem.READ_ONLY, self.writable_paths)

    def data_sources_reached_by(self) -> list[FargateService]:
        """The services that connect to the configured data sources: the application's."""
        return [self.service]

    def start_after(self) -> list[ITerraformDependable]:
        """What the service starts after: its database owner."""
        return [self.db_owner.ready]

    def admit_to_database(self) -> None:
        """Let the service reach its database (and start only once it may)."""
        self.service.requires(
            *self.database.allow_from(
                self.service, description=f"{self.config.system} to its database"
            )
        )

    def monitored_database(self) -> Database | None:
        """The database the alarms watch."""
        return self.database

    def services(self) -> list[FargateService]:
        """Every service of the system (the alarms cover each)."""
        return [self.service]

    def alarmed(self) -> list[HasAlarms]:
        """The constructs whose own alarms go to the topic besides the service's and the
        database's: the load balancer."""
        return [self.load_balancer]

    def authentication(self) -> CognitoAuthentication | None:
        """Sign-in the load balancer enforces before a request reaches the application."""
        return None

    # --- the steps ------------------------------------------------------------------------

    def network_step(self) -> None:
        """The environment's key and its VPC."""
        self.key, self.network = self.key_and_network(self.config.region, self.config.network)

    def data_step(self) -> None:
        """PostgreSQL, the application's login role and its database owned by it."""
        config, naming, system = self.config, self.naming, self.config.system
        self.database = self.environment_database(self.network, self.key, config.database)
        self.db_credentials = GeneratedCredentials(
            self,
            "db-owner-credentials",
            props=GeneratedCredentialsProps(
                name=naming.path(config.database.engine.value, system),
                username=system,
                key=self.key,
                description=f"{system}'s own database login, owner of its database",
                recovery_window_days=self.recovery_days,
            ),
        )
        self.db_owner = DatabaseOwner(
            self,
            "db-owner",
            props=DatabaseOwnerProps(
                naming=naming,
                project_root=PROJECT_ROOT,
                database=self.database,
                credentials=self.db_credentials,
                log_retention_days=config.log_retention_days,
            ),
        )

    def web_step(self) -> None:
        """The load balancer users reach: HTTPS on the internet with a domain (the
        certificate requested and validated by DNS unless given), else internal."""
        naming, web = self.naming, self.config.web
        certificate_arn = web.certificate_arn
        self.certificate: Certificate | None = None
        if web.domain_name and certificate_arn is None and web.hosted_zone_id:
            self.certificate = Certificate(
                self,
                "certificate",
                props=CertificateProps(
                    domain_name=web.domain_name, hosted_zone_id=web.hosted_zone_id
                ),
            )
            certificate_arn = self.certificate.arn
        self.firewall: EdgeFirewall | None = None
        if web.public and web.firewall:
            self.firewall = EdgeFirewall(
                self,
                "firewall",
                props=EdgeFirewallProps(
                    naming=naming,
                    provider=None,
                    log_key=self.key,
                    scope=WafScope.REGIONAL,
                    name="web",
                    log_retention_days=self.config.log_retention_days,
                    # Saving a dashboard or a map, or uploading a file, sends more than the
                    # common rule set's 8 KB body limit: counted, not blocked.
                    count_only=("SizeRestrictions_BODY",),
                ),
            )
        web_load_balancer = WebLoadBalancer(
            self,
            "load-balancer",
            props=WebLoadBalancerProps(
                naming=naming,
                network=self.network,
                target_port=self.port,
                health_check_path=self.health_check_path,
                certificate_arn=certificate_arn,
                domain_name=web.domain_name,
                hosted_zone_id=web.hosted_zone_id,
                authentication=self.authentication(),
                ingress_cidrs=web.ingress_cidrs or None,
                deletion_protection=web.deletion_protection,
                access_logs_bucket_name=(
                    f"{naming.prefix}-alb-logs-{self.account_id}" if web.access_logs else None
                ),
                web_acl_arn=self.firewall.arn if self.firewall else None,
                sticky_sessions_seconds=self.sticky_sessions_seconds,
            ),
        )
        self.web_load_balancer = web_load_balancer
        self.load_balancer = web_load_balancer
        self.url = web_load_balancer.url

    def compute_step(self) -> None:
        """The image repository, the cluster and the service, admitted to the database."""
        config, system = self.config, self.config.system
        name = self.service_name or system
        self.cluster = self.environment_cluster(
            self.network,
            self.key,
            namespace=f"{config.name}.{system}.internal",
            log_retention_days=config.log_retention_days,
        )
        self.repository, self.service = self.image_service(
            name,
            repository_id="repository",
            port=self.port,
            settings=config.service,
            environment=dict(self.environment()),
            secrets=dict(self.secrets()),
            task_statements=tuple(self.task_statements()),
            load_balancer=self.load_balancer,
            depends_on=self.start_after(),
            writable_paths=self.container_runtime().writable_paths,
            deployment=self.deployment,
            extra_ports=tuple(self.extra_ports()),
            file_system_mounts=tuple(self.file_system_mounts()),
            service_discovery=self.service_discovery,
        )
        self.admit_to_database()
        if config.service.max_tasks > config.service.min_tasks:
            self.service.scale_on_cpu(CPU_TARGET_PERCENT)

    def data_sources_step(self) -> None:
        """An egress rule per configured data source from each service that queries them."""
        for service in self.data_sources_reached_by():
            for source in self.config.data_sources:
                service.allow_to(
                    source.cidr or source.security_group_id or "",
                    port=source.port,
                    id_=f"data-source-{source.name}",
                    description=f"data source {source.name}",
                )

    def image_service(
        self,
        name: str,
        *,
        repository_id: str,
        port: int,
        settings: ServiceSettings,
        **options: Any,
    ) -> tuple[ContainerRepository, FargateService]:
        """A service of the system's pinned release, and the repository its image comes
        from, with what every upstream image here shares: the cluster, the tag, no container
        health check (the load balancer's or none), the image's user, start-up grace and
        CPU; ``options`` are the rest of its :class:`FargateServiceProps`."""
        config, runtime = self.config, self.container_runtime()
        repository = ContainerRepository(
            self,
            repository_id,
            props=ContainerRepositoryProps(
                naming=self.naming,
                service=name,
                key=self.key,
                force_delete=not config.is_production,
            ),
        )
        service = FargateService(
            self,
            name,
            props=FargateServiceProps(
                name=name,
                cluster=self.cluster,
                repository=repository,
                image_tag=config.image_tag,
                port=port,
                settings=settings,
                log_retention_days=config.log_retention_days,
                container_health_check=False,
                user=runtime.user,
                root_filesystem=runtime.root_filesystem,
                startup_grace_seconds=self.startup_grace_seconds,
                cpu_architecture=self.cpu_architecture,
                **options,
            ),
        )
        return repository, service

    def monitoring_step(self) -> None:
        """Alarms on the service, the database and the load balancer, to the topic."""
        config = self.config
        self.monitoring = Monitoring(
            self,
            "monitoring",
            props=MonitoringProps(
                naming=self.naming,
                account_id=self.account_id,
                region=config.region,
                key=self.key,
                services=self.services(),
                database=self.monitored_database(),
                alarmed=self.alarmed(),
                alarm_set=AlarmSet.for_tier(config.tier),
                alarm_email=config.alarm_email,
                alarm_topic_arn=config.alarm_topic_arn,
                # Production must name a target (environments/alarms.py); elsewhere the
                # topic may have no subscriber yet.
                allow_no_target=not config.is_production,
            ),
        )

    def outputs(self) -> None:
        TerraformOutput(self, "url", value=self.url)
        TerraformOutput(self, "alb_dns_name", value=self.load_balancer.dns_name)
        TerraformOutput(self, "repository_url", value=self.repository.url)
        TerraformOutput(
            self, "database_endpoint", value=self.database.endpoint_address, sensitive=True
        )
        TerraformOutput(self, "alarm_topic_arn", value=self.monitoring.topic.arn)
