"""A Fargate service: task definition, roles, logs, security group, discovery, scaling."""

from __future__ import annotations

import ipaddress
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cdktf import ITerraformDependable, TerraformResource
from cdktf_cdktf_provider_aws.appautoscaling_policy import AppautoscalingPolicy
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration as Tracking,
)
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecification as Custom,  # noqa: E501
)
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetrics as Query,  # noqa: E501
)
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStat as Stat,  # noqa: E501
)
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStatMetric as Metric,  # noqa: E501
)
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStatMetricDimensions as Dimension,  # noqa: E501
)
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification as Predefined,  # noqa: E501
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.cloudwatch_log_metric_filter import CloudwatchLogMetricFilter
from cdktf_cdktf_provider_aws.ecs_service import EcsService, EcsServiceLoadBalancer
from cdktf_cdktf_provider_aws.ecs_task_definition import (
    EcsTaskDefinition,
    EcsTaskDefinitionVolume,
    EcsTaskDefinitionVolumeEfsVolumeConfiguration,
    EcsTaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfig,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.service_discovery_service import (
    ServiceDiscoveryService,
    ServiceDiscoveryServiceDnsConfigDnsRecords,
)
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from apps.common.contract import HEALTH_PATH

from .alarms import Metric as AlarmMetric
from .cluster import Cluster
from .errors import ConfigError
from .file_system import FileSystemMount, absolute_directory
from .logs import log_group
from .options import (
    CPU_ARCHITECTURE,
    FARGATE_SIZES,
    CpuArchitecture,
    Deployment,
    RootFilesystem,
)
from .policy import Statement, assume_role_policy, policy_document, read_secrets
from .registry import ContainerRepository
from .secrets import GeneratedCredentials, SecretRef
from .security import Peer, RulePair, allow_https_to_aws, allow_tcp, security_group
from .settings import DEFAULT_LOG_RETENTION_DAYS, ServiceSettings

__all__ = [
    "ExtraPort",
    "FargateService",
    "FargateServiceProps",
    "FileSystemMount",
    "ServiceLoadBalancer",
    "ServiceMetrics",
    "ServiceSettings",
]


@dataclass(frozen=True)
class ExtraPort:
    """A further container port, optionally registered in a target group of the service's
    load balancer (a second listener, such as a migration or admin port)."""

    port: int
    target_group: LbTargetGroup | None = None
    """Register the tasks on ``port`` here and admit the load balancer on it. Unset: the
    port is only mapped (peers reach it through ``allow_from(..., port=)``)."""


class ServiceLoadBalancer(Protocol):
    """What a load-balanced service needs from its load balancer (``LoadBalancer``, the
    platform's internal one, and ``WebLoadBalancer``, a public one, both offer it)."""

    @property
    def security_group(self) -> SecurityGroup:
        """Admitted by the service on its port."""
        ...

    @property
    def target_group(self) -> LbTargetGroup:
        """Where the service registers its tasks (by IP)."""
        ...

    @property
    def forwarding(self) -> Sequence[TerraformResource]:
        """The listeners and rules that forward to ``target_group``: the service starts
        after them (ECS refuses a target group no load balancer uses)."""
        ...

    @property
    def request_count_label(self) -> str:
        """``<alb arn suffix>/<target group arn suffix>`` (``ALBRequestCountPerTarget``)."""
        ...


@dataclass(frozen=True)
class ServiceMetrics:
    """How CloudWatch names one ECS service's metrics: what scaling and alarms read."""

    service_name: str
    """ECS service name, e.g. ``pcp-dev-producer``."""
    cluster_name: str
    min_running_tasks: int
    """The service's lower bound: alarms fire when fewer tasks run."""

    @property
    def dimensions(self) -> dict[str, str]:
        """``ClusterName`` and ``ServiceName``: the dimensions of ``AWS/ECS`` and
        ``ECS/ContainerInsights`` metrics."""
        return {"ClusterName": self.cluster_name, "ServiceName": self.service_name}


@dataclass(frozen=True)
class FargateServiceProps:
    name: str
    """Service name (``producer``); also its container name and Cloud Map name."""
    cluster: Cluster
    """Runs here: the cluster's network (private subnets, one per AZ, where ECS spreads
    the tasks), namespace (Cloud Map A records), naming, key (decrypts the injected
    secrets, encrypts the log group) and account (the roles trust ECS only on its behalf)."""
    repository: ContainerRepository
    """The image comes from here; the execution role may pull from it and nothing else."""
    image_tag: str
    port: int
    """The container's HTTP port: health checks, load balancer, discovery."""
    settings: ServiceSettings
    """CPU, memory and task-count bounds."""
    command: Sequence[str] = ()
    """Unset: the image's default command."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Plain settings. Never credentials: those go in ``secrets``. Unset: none."""
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)
    """Variable name to a key of a Secrets Manager secret, injected at start. Unset: none."""
    credentials_secrets: Mapping[str, GeneratedCredentials] = field(default_factory=dict)
    """Variable name (``*_SECRET``) to a credentials secret the application reads itself
    at run time (and again after a rotation): the variable holds the secret's ARN and the
    task role may read that secret. Unset: none."""
    task_statements: Sequence[Statement] = ()
    """What the application itself calls in AWS. Unset: nothing (the task role has no policy)."""
    load_balancer: ServiceLoadBalancer | None = None
    """Register the tasks in its target group, admit it on ``port``, and start after its
    listeners forward. Unset: not load balanced."""
    health_check_path: str = HEALTH_PATH
    """Path the default container health check requests: liveness only, since ECS replaces
    tasks that fail it (dependency checks belong to the load balancer's readiness check).
    Only the default check reads it: leave it unset with ``health_check_command`` or
    ``container_health_check=False``. Unset: /health."""
    health_check_command: Sequence[str] | None = None
    """The container health check in ECS's form: ``("CMD", "<program>", "<arg>", ...)``
    (run directly) or ``("CMD-SHELL", "<command line>")`` (run by the image's ``/bin/sh``),
    e.g. ``("CMD-SHELL", "curl -fs http://127.0.0.1:3000/api/health || exit 1")``; exit
    status 0 is healthy. Run every 15 s with a 5 s timeout; 3 failures in a row make the
    task unhealthy and ECS replaces it. Unset: the project's checker, ``python -m
    apps.healthcheck http://127.0.0.1:<port><health_check_path>``, which only this
    project's images contain."""
    container_health_check: bool = True
    """False: the container has no health check. ECS then counts a running container as
    healthy, and a load-balanced service's tasks are judged (and replaced) by the target
    group's health check alone; a service without a load balancer is only restarted when
    its process exits. For images with nothing that can probe the port (a bare Go binary).
    Leave ``health_check_command`` unset then. Unset: checked."""
    startup_grace_seconds: int = 30
    """How long a new task's failing health checks do not count: the container check's
    ``startPeriod`` and, when load balanced, the service's grace period for the target
    group's check. A JVM that migrates its database at start (Metabase) needs minutes.
    Unset: 30 s; 0 to 300 (the ECS maximum for ``startPeriod``)."""
    writable_paths: Sequence[str] = ("/tmp",)  # noqa: S108 (task-scoped volumes)
    """Directories the container may write while its root filesystem stays read-only:
    each is a task-scoped volume (on the task's ephemeral storage, emptied when the task
    stops) named after the path (``/tmp`` is ``tmp``, ``/var/lib/app`` is
    ``var-lib-app``) and mounted read-write. ECS creates such a volume owned by root with
    mode 0755, unless the image declares the same path as a ``VOLUME``: then ECS copies
    the image's directory (contents, owner, mode) into it. So a non-root user can write a
    path only if its image declares it (this project's images declare ``/tmp`` with mode
    1777); for a third-party image that does not, push a thin derived image (``FROM
    <image>``, ``RUN mkdir -p <path> && chown <uid> <path>``, ``VOLUME ["<path>"]``).
    Absolute normalised paths, each once. Empty: nothing is writable. Unset: ``/tmp``."""
    file_system_mounts: Sequence[FileSystemMount] = ()
    """EFS access points mounted into the container (``FileSystemMount``), each a task
    volume ``efs-<path>`` (``/data`` is ``efs-data``) with transit encryption and IAM
    authorization through its access point: the task role may ``ClientMount`` (and
    ``ClientWrite`` unless ``read_only``) through that access point only, the file system
    admits the service on 2049 and grants the task role in its policy, and the service
    starts after those rules, the policy and the mount targets. Every file operation runs
    as the access point's POSIX user, whatever ``user`` is. Needs Fargate platform 1.4 or
    later (the service runs ``LATEST``). File systems in the cluster's network; container
    paths absolute, normalised, each once and none also in ``writable_paths``.
    Unset: none."""
    user: str | None = "10001"
    """The user the container runs as, ``<uid>`` or ``<uid>:<gid>`` (or a user name the
    image defines); never root (``0``, ``root``). This project's Dockerfiles create 10001;
    a third-party image needs the non-root UID its files are owned by. None: the image's
    own ``USER`` (which may be root), for a vendor's image not yet shown to run as another
    user. Unset: 10001."""
    root_filesystem: RootFilesystem = RootFilesystem.READ_ONLY
    """Unset: read-only (only ``writable_paths`` and mounted file systems are writable);
    ``WRITABLE`` for a vendor's image not yet shown to start on a read-only root."""
    deployment: Deployment = Deployment.ROLLING
    """How a new task definition replaces the running tasks. Unset: rolling (new tasks
    beside the old, no downtime)."""
    cpu_architecture: CpuArchitecture = CPU_ARCHITECTURE
    """The CPU the image is built for. Unset: the project's (ARM64, Graviton); a
    third-party image published for amd64 only needs ``X86_64``."""
    extra_ports: Sequence[ExtraPort] = ()
    """Container ports besides ``port``. Unset: none."""
    service_discovery: bool = True
    """Register the tasks in the cluster's Cloud Map namespace (A records) as
    ``<name>.<namespace>``, which :attr:`FargateService.url` gives. False: not registered
    (a service nothing in the VPC calls by name, e.g. one reached only through its load
    balancer); ``url`` and ``discovery_name`` then raise ``ConfigError``. Unset: registered."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Unset: 30 days."""
    stop_timeout_seconds: int = 30
    """Grace between SIGTERM and SIGKILL. Unset: 30 s (the Fargate maximum is 120)."""
    depends_on: Sequence[ITerraformDependable] = ()
    """Created before the ECS service (the schema migration, the queue user). Unset: only
    what the references imply."""


class FargateService(Construct):
    """One application service on Fargate, secure by default.

    - private subnets only, no public IP; a security group that admits nothing until
      :meth:`allow_from` and lets the task reach only AWS APIs over HTTPS (plus what
      ``Database.allow_from`` / ``Queue.allow_from`` add);
    - non-root user, read-only root filesystem (task-scoped volumes at ``writable_paths``,
      ``/tmp`` unless given, are writable; a vendor's image may keep its own user and a
      writable root, each asked for explicitly), a container health check (the project's
      checker unless ``health_check_command`` or ``container_health_check`` say
      otherwise), ``awslogs`` to its own encrypted log group;
    - environment variables for plain settings only; credentials reach the container only
      through ``secrets`` (ECS ``valueFrom``) or ``credentials_secrets`` (ARNs);
    - an execution role that may pull only its repository, write only its log group and
      read only its own secrets; a task role with only ``task_statements``;
    - deployment circuit breaker with rollback; registered in Cloud Map (A records)
      unless ``service_discovery`` is off;
    - :meth:`scale_on_cpu`, :meth:`scale_on_requests`, :meth:`scale_on_backlog_per_task` add
      target-tracking policies between ``settings.min_tasks`` and ``settings.max_tasks``
      (with ``min_tasks == max_tasks`` the scaling target pins the count and a policy
      has nothing to change).
    """

    def __init__(self, scope: Construct, id_: str, *, props: FargateServiceProps) -> None:
        super().__init__(scope, id_)
        self._validate(props)
        self.props = props
        cluster = props.cluster
        self.cluster = cluster
        self.name = props.name
        self.port = props.port
        self.service_name = cluster.naming.name(props.name)
        self.metrics = ServiceMetrics(self.service_name, cluster.name, props.settings.min_tasks)
        """What scaling policies and alarms read (``AWS/ECS``, Container Insights)."""

        self.log_group = log_group(
            self,
            "log-group",
            name=cluster.naming.path("ecs", props.name),
            retention_days=props.log_retention_days,
            kms_key_arn=cluster.key.arn,
        )
        self.security_group = security_group(
            self,
            name=self.service_name,
            description=f"{props.name} tasks",
            vpc_id=cluster.network.vpc.id,
        )
        self.egress_aws_apis = allow_https_to_aws(
            self,
            self.security_group,
            description="AWS APIs (ECR, Secrets Manager, CloudWatch) over HTTPS "
            + cluster.network.aws_api_path,
        )
        self._roles(props)
        self._mount_dependencies = self._admit_to_file_systems(props)
        self.task_definition = EcsTaskDefinition(
            self,
            "task-definition",
            family=self.service_name,
            cpu=str(props.settings.cpu),
            memory=str(props.settings.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform={
                "operating_system_family": "LINUX",
                "cpu_architecture": props.cpu_architecture.value,
            },
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            volume=[
                *(EcsTaskDefinitionVolume(name=name) for name in self.writable_volumes),
                *(_efs_volume(name, mount) for name, mount in self.file_system_volumes.items()),
            ]
            or None,
            container_definitions=json.dumps([self._container(props)]),
        )
        self.discovery: ServiceDiscoveryService | None = None
        """The Cloud Map service the tasks register in; None without ``service_discovery``."""
        if props.service_discovery:
            self.discovery = ServiceDiscoveryService(
                self,
                "discovery",
                name=props.name,
                dns_config={
                    "namespace_id": cluster.namespace.id,
                    "routing_policy": "MULTIVALUE",
                    "dns_records": [ServiceDiscoveryServiceDnsConfigDnsRecords(type="A", ttl=10)],
                },
                health_check_custom_config={"failure_threshold": 1},
            )
        self._service(props)
        self.scaling_target = AppautoscalingTarget(
            self,
            "scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{cluster.name}/{self.service.name}",
            min_capacity=props.settings.min_tasks,
            max_capacity=props.settings.max_tasks,
        )
        self.scaling_policies: dict[str, AppautoscalingPolicy] = {}
        if props.load_balancer is not None:
            self.allow_from(props.load_balancer, description=f"ALB to the {props.name} API")
            for extra in props.extra_ports:
                if extra.target_group is not None:
                    self.allow_from(
                        props.load_balancer,
                        description=f"load balancer to {props.name} port {extra.port}",
                        port=extra.port,
                    )

    @property
    def writable_volumes(self) -> dict[str, str]:
        """The task's volumes, by name, and the path each is mounted at (``writable_paths``)."""
        return {_volume_name(path): path for path in self.props.writable_paths}

    @property
    def file_system_volumes(self) -> dict[str, FileSystemMount]:
        """The task's EFS volumes, by name (``efs-<path>``), and what each mounts."""
        return {_efs_volume_name(m.container_path): m for m in self.props.file_system_mounts}

    @property
    def discovery_name(self) -> str:
        """How peers in the VPC reach the service: ``<name>.<namespace>``."""
        if self.discovery is None:
            raise ConfigError(
                self.node.path,
                "service_discovery",
                False,
                "register the service in Cloud Map to reach it by name",
            )
        return f"{self.name}.{self.cluster.namespace_name}"

    @property
    def url(self) -> str:
        """``http://<discovery name>:<port>``: the service's address inside the VPC."""
        return f"http://{self.discovery_name}:{self.port}"

    def _roles(self, props: FargateServiceProps) -> None:
        """The execution role (pull, log, injected secrets) and the task role (the app)."""
        cluster = props.cluster
        naming, key, region = cluster.naming, cluster.key.arn, cluster.network.region
        trust = assume_role_policy(
            "ecs-tasks.amazonaws.com", source_account=cluster.network.account_id
        )
        self.execution_role, self.task_role = (
            IamRole(
                self, f"{kind}-role", name=naming.name(props.name, kind), assume_role_policy=trust
            )
            for kind in ("execution", "task")
        )
        execution_statements = [
            *props.repository.pull_statements(),
            Statement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{self.log_group.arn}:*"],
            ),
        ]
        secret_arns = _by_variable({k: ref.arn for k, ref in props.secrets.items()})
        if secret_arns:
            execution_statements += read_secrets(secret_arns, kms_key_arn=key, region=region)
        self._policy(
            "execution-policy", self.execution_role, "pull-log-read-secrets", execution_statements
        )
        task_statements = list(props.task_statements)
        if props.credentials_secrets:
            task_statements += read_secrets(
                _by_variable({k: c.arn for k, c in props.credentials_secrets.items()}),
                kms_key_arn=key,
                region=region,
            )
        for mount in props.file_system_mounts:
            task_statements += mount.file_system.client_statements(
                mount.access_point, write=not mount.read_only
            )
        if task_statements:
            self._policy("task-policy", self.task_role, "application", task_statements)

    def _policy(self, id_: str, role: IamRole, name: str, statements: Sequence[Statement]) -> None:
        """``role``'s inline policy ``name``."""
        IamRolePolicy(
            self,
            id_,
            role=role.id,
            name=name,
            policy=policy_document(*statements),
        )

    def _service(self, props: FargateServiceProps) -> None:
        lb = props.load_balancer
        self.service = EcsService(
            self,
            "service",
            name=self.service_name,
            cluster=props.cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=props.settings.min_tasks,
            launch_type="FARGATE",
            platform_version="LATEST",
            # ECS rebalances across AZs only with room above the desired count (maximum
            # percent over 100); it refuses the setting with a REPLACE deployment.
            availability_zone_rebalancing=(
                "ENABLED" if props.deployment.percents[1] > 100 else "DISABLED"
            ),
            network_configuration={
                "subnets": list(props.cluster.network.private_subnet_ids),
                "security_groups": [self.security_group.id],
                "assign_public_ip": False,
            },
            deployment_circuit_breaker={"enable": True, "rollback": True},
            deployment_minimum_healthy_percent=props.deployment.percents[0],
            deployment_maximum_percent=props.deployment.percents[1],
            # A records with awsvpc: the task's IP is registered; no container/port needed.
            service_registries=(
                {"registry_arn": self.discovery.arn} if self.discovery is not None else None
            ),
            load_balancer=(
                [
                    EcsServiceLoadBalancer(
                        target_group_arn=lb.target_group.arn,
                        container_name=props.name,
                        container_port=props.port,
                    ),
                    *(
                        EcsServiceLoadBalancer(
                            target_group_arn=extra.target_group.arn,
                            container_name=props.name,
                            container_port=extra.port,
                        )
                        for extra in props.extra_ports
                        if extra.target_group is not None
                    ),
                ]
                if lb
                else None
            ),
            health_check_grace_period_seconds=props.startup_grace_seconds if lb else None,
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            enable_execute_command=False,
            lifecycle={"ignore_changes": ["desired_count"]},
            # `cdktf deploy` fails when the tasks never become healthy (crash loop, failing
            # health check), instead of reporting success while the circuit breaker rolls back.
            wait_for_steady_state=True,
            depends_on=[
                *props.depends_on,
                *(lb.forwarding if lb else ()),
                self.egress_aws_apis,
                *self._mount_dependencies,
            ],
        )

    # --- intent helpers ---------------------------------------------------------------

    def requires(self, *resources: TerraformResource) -> None:
        """Start the service only once ``resources`` exist: the security-group rules its
        tasks need at start (``Database.allow_from``, ``Queue.allow_from`` return them)."""
        self.service.depends_on = [
            *(self.service.depends_on or []),
            *(f"{r.terraform_resource_type}.{r.friendly_unique_id}" for r in resources),
        ]

    def allow_from(self, peer: Peer, *, description: str, port: int | None = None) -> RulePair:
        """Admit connections from ``peer`` to the service's port (or one of its
        ``extra_ports``)."""
        ports = [self.props.port, *(e.port for e in self.props.extra_ports)]
        if port is not None and port not in ports:
            raise ConfigError(self.node.path, "allow_from.port", port, f"use one of {ports}")
        return allow_tcp(
            self,
            source=peer,
            target=self.security_group,
            port=self.props.port if port is None else port,
            description=description,
        )

    def allow_to(
        self, destination: str, *, port: int, id_: str, description: str
    ) -> VpcSecurityGroupEgressRule:
        """Let the tasks connect to ``destination`` on TCP ``port``: an IPv4 CIDR or a
        security group id (``sg-...``, outside this stack; admit the tasks there too).
        For a destination built here use the destination's own ``allow_from``."""
        group = destination if destination.startswith("sg-") else None
        try:
            network = None if group else ipaddress.IPv4Network(destination)
        except ValueError:
            network = None
        if group is None and (network is None or network.prefixlen == 0):
            raise ConfigError(
                self.node.path,
                f"allow_to({id_}).destination",
                repr(destination),
                "give an IPv4 CIDR narrower than 0.0.0.0/0, or a security group id (sg-...)",
            )
        return VpcSecurityGroupEgressRule(
            self,
            id_,
            security_group_id=self.security_group.id,
            cidr_ipv4=None if group else destination,
            referenced_security_group_id=group,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
        )

    def count_log_lines(self, id_: str, *, pattern: str, namespace: str, name: str) -> AlarmMetric:
        """Count this service's log lines that match ``pattern`` (a CloudWatch Logs filter
        pattern over its JSON lines) as the metric ``namespace``/``name`` (0 when none
        match), and return that metric for an alarm."""
        CloudwatchLogMetricFilter(
            self,
            id_,
            name=self.cluster.naming.name(self.name, id_),
            log_group_name=self.log_group.name,
            pattern=pattern,
            metric_transformation={
                "name": name,
                "namespace": namespace,
                "value": "1",
                "default_value": "0",
            },
        )
        return (namespace, name, {})

    def scale_on_cpu(self, target_percent: int) -> AppautoscalingPolicy:
        """Keep average CPU near ``target_percent``."""
        return self._track(
            "cpu",
            target_percent,
            predefined=Predefined(predefined_metric_type="ECSServiceAverageCPUUtilization"),
        )

    def scale_on_requests(self, requests_per_task: int) -> AppautoscalingPolicy:
        """Keep requests per task through the service's load balancer near
        ``requests_per_task`` (per minute)."""
        lb = self.props.load_balancer
        if lb is None:
            raise ConfigError(
                self.node.path,
                "load_balancer",
                None,
                "give the service a load balancer before scaling on its requests",
            )
        resource_label = lb.request_count_label
        return self._track(
            "requests",
            requests_per_task,
            predefined=Predefined(
                predefined_metric_type="ALBRequestCountPerTarget", resource_label=resource_label
            ),
        )

    def scale_on_backlog_per_task(
        self,
        key: str,
        *,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, str],
        per_task: int,
    ) -> AppautoscalingPolicy:
        """Keep a backlog metric divided by the running tasks near ``per_task``.

        The backlog itself does not fall when tasks are added, so target tracking on it
        alone would over-scale; backlog per task does (AWS's "backlog per instance").
        Running tasks come from Container Insights (``ECS/ContainerInsights``).
        """
        running = self.metrics.dimensions
        return self._track(
            key,
            per_task,
            customized=Custom(
                metrics=[
                    Query(
                        id="backlog",
                        metric_stat=Stat(
                            metric=Metric(
                                namespace=namespace,
                                metric_name=metric_name,
                                dimensions=[
                                    Dimension(name=k, value=v)
                                    for k, v in sorted(dimensions.items())
                                ],
                            ),
                            stat="Average",
                        ),
                        return_data=False,
                    ),
                    Query(
                        id="tasks",
                        metric_stat=Stat(
                            metric=Metric(
                                namespace="ECS/ContainerInsights",
                                metric_name="RunningTaskCount",
                                dimensions=[
                                    Dimension(name=k, value=v) for k, v in sorted(running.items())
                                ],
                            ),
                            stat="Average",
                        ),
                        return_data=False,
                    ),
                    Query(
                        id="backlog_per_task",
                        expression="backlog / tasks",
                        label=f"{metric_name} per running task",
                        return_data=True,
                    ),
                ]
            ),
        )

    # --- internals ----------------------------------------------------------------------

    def _admit_to_file_systems(self, props: FargateServiceProps) -> list[ITerraformDependable]:
        """Admit the tasks to each mounted file system (security group once per file
        system, the task role granted per access point); what the service starts after."""
        waits_for: list[ITerraformDependable] = []
        for mount in props.file_system_mounts:
            for resource in mount.file_system.admit(
                self,
                role=self.task_role,
                access_point=mount.access_point,
                write=not mount.read_only,
                description=f"{props.name} tasks to EFS",
            ):
                if resource not in waits_for:
                    waits_for.append(resource)
        return waits_for

    def _track(
        self,
        key: str,
        target: int,
        *,
        predefined: Predefined | None = None,
        customized: Custom | None = None,
    ) -> AppautoscalingPolicy:
        policy = AppautoscalingPolicy(
            self,
            f"scale-on-{key}",
            name=self.cluster.naming.name(self.name, "scale", key),
            policy_type="TargetTrackingScaling",
            service_namespace=self.scaling_target.service_namespace,
            scalable_dimension=self.scaling_target.scalable_dimension,
            resource_id=self.scaling_target.resource_id,
            target_tracking_scaling_policy_configuration=Tracking(
                target_value=target,
                predefined_metric_specification=predefined,
                customized_metric_specification=customized,
                scale_in_cooldown=120,
                scale_out_cooldown=60,
            ),
        )
        self.scaling_policies[key] = policy
        return policy

    def _container(self, props: FargateServiceProps) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": props.name,
            "image": props.repository.image(props.image_tag),
            "essential": True,
            **({"user": props.user} if props.user is not None else {}),
            "readonlyRootFilesystem": props.root_filesystem is RootFilesystem.READ_ONLY,
            "portMappings": [
                {"containerPort": props.port, "protocol": "tcp", "name": props.name},
                *(
                    {"containerPort": e.port, "protocol": "tcp", "name": f"{props.name}-{e.port}"}
                    for e in props.extra_ports
                ),
            ],
            "environment": [
                {"name": k, "value": v}
                for k, v in sorted(
                    {
                        **props.environment,
                        **{k: c.arn for k, c in props.credentials_secrets.items()},
                    }.items()
                )
            ],
            "mountPoints": [
                *(
                    {"sourceVolume": name, "containerPath": path, "readOnly": False}
                    for name, path in self.writable_volumes.items()
                ),
                *(
                    {
                        "sourceVolume": name,
                        "containerPath": mount.container_path,
                        "readOnly": mount.read_only,
                    }
                    for name, mount in self.file_system_volumes.items()
                ),
            ],
            "healthCheck": {
                "command": list(
                    props.health_check_command
                    or (
                        "CMD",
                        "python",
                        "-m",
                        "apps.healthcheck",
                        f"http://127.0.0.1:{props.port}{props.health_check_path}",
                    )
                ),
                "interval": 15,
                "timeout": 5,
                "retries": 3,
                "startPeriod": props.startup_grace_seconds,
            },
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.log_group.name,
                    "awslogs-region": props.cluster.network.region,
                    "awslogs-stream-prefix": props.name,
                    "mode": "non-blocking",
                    "max-buffer-size": "25m",
                },
            },
            "linuxParameters": {"initProcessEnabled": True},
            "stopTimeout": props.stop_timeout_seconds,
        }
        if not props.container_health_check:
            del container["healthCheck"]
        if props.command:
            container["command"] = list(props.command)
        if props.secrets:
            container["secrets"] = [
                {"name": k, "valueFrom": ref.value_from} for k, ref in sorted(props.secrets.items())
            ]
        return container

    def _validate(self, props: FargateServiceProps) -> None:
        where = self.node.path
        size = props.settings
        ports = [props.port, *(e.port for e in props.extra_ports)]
        if len(set(ports)) != len(ports) or not all(1 <= p <= 65535 for p in ports):
            raise ConfigError(
                where, "extra_ports", ports, "give distinct TCP ports 1-65535, not the main port"
            )
        if props.load_balancer is None and any(e.target_group for e in props.extra_ports):
            raise ConfigError(
                where,
                "extra_ports",
                "a target group",
                "give the service its load_balancer too (it admits the load balancer)",
            )
        if size.memory not in FARGATE_SIZES.get(size.cpu, ()):
            allowed = FARGATE_SIZES.get(size.cpu)
            fix = (
                f"use one of {', '.join(map(str, allowed))} MiB for {size.cpu} CPU units"
                if allowed
                else f"use CPU units {', '.join(map(str, FARGATE_SIZES))}"
            )
            raise ConfigError(where, "cpu/memory", f"{size.cpu}/{size.memory}", fix)
        if not 1 <= size.min_tasks <= size.max_tasks:
            raise ConfigError(
                where,
                "settings",
                f"min {size.min_tasks}, max {size.max_tasks}",
                "use 1 <= min_tasks <= max_tasks",
            )
        uid = None if props.user is None else props.user.split(":", 1)[0]
        if uid is not None and (uid in ("", "root") or (uid.isdigit() and int(uid) == 0)):
            raise ConfigError(
                where,
                "user",
                props.user or '""',
                "run as a non-root UID, or None for the image's own user",
            )
        self._validate_health_check(props)
        self._validate_writable_paths(props)
        self._validate_file_system_mounts(props)
        unnamed = sorted(k for k in props.credentials_secrets if not k.endswith("_SECRET"))
        if unnamed:
            raise ConfigError(
                where, "credentials_secrets", ", ".join(unnamed), "name them *_SECRET"
            )
        leaked = sorted(k for k in props.environment if _looks_secret(k))
        if leaked:
            raise ConfigError(
                where,
                "environment",
                ", ".join(leaked),
                "pass credentials through `secrets` (Secrets Manager), not plain environment",
            )
        twice = sorted(set(props.secrets) & ({*props.environment} | {*props.credentials_secrets}))
        if twice:
            raise ConfigError(
                where, "secrets", ", ".join(twice), "set each variable in one place only"
            )

    def _validate_health_check(self, props: FargateServiceProps) -> None:
        where = self.node.path
        command = props.health_check_command
        if not 0 <= props.startup_grace_seconds <= 300:
            raise ConfigError(
                where, "startup_grace_seconds", props.startup_grace_seconds, "use 0 to 300"
            )
        if not props.container_health_check and command is not None:
            raise ConfigError(
                where,
                "health_check_command",
                list(command),
                "leave it unset when container_health_check is False",
            )
        if props.health_check_path != HEALTH_PATH and (
            command is not None or not props.container_health_check
        ):
            raise ConfigError(
                where,
                "health_check_path",
                props.health_check_path,
                "only the default health check requests it: leave it unset",
            )
        if command is None:
            return
        kind, *args = command or ("",)
        well_formed = (kind == "CMD" and bool(args) and all(args)) or (
            kind == "CMD-SHELL" and len(args) == 1 and bool(args[0].strip())
        )
        if not well_formed:
            raise ConfigError(
                where,
                "health_check_command",
                list(command),
                'give ("CMD", "<program>", "<arg>", ...) or ("CMD-SHELL", "<command line>")',
            )

    def _validate_writable_paths(self, props: FargateServiceProps) -> None:
        where = self.node.path
        for path in props.writable_paths:
            if (
                not path.startswith("/")
                or path.startswith("//")
                or path == "/"
                or posixpath.normpath(path) != path
            ):
                raise ConfigError(
                    where,
                    "writable_paths",
                    path or '""',
                    "give absolute normalised directories below / (e.g. /tmp, /plugins)",
                )
        by_volume: dict[str, list[str]] = {}
        for path in props.writable_paths:
            by_volume.setdefault(_volume_name(path), []).append(path)
        clashes = sorted(", ".join(paths) for paths in by_volume.values() if len(paths) > 1)
        if clashes:
            raise ConfigError(
                where,
                "writable_paths",
                "; ".join(clashes),
                "give each path once (paths that differ only in punctuation share a volume name)",
            )

    def _validate_file_system_mounts(self, props: FargateServiceProps) -> None:
        where, field_ = self.node.path, "file_system_mounts"
        network = props.cluster.network
        for mount in props.file_system_mounts:
            path = mount.container_path
            if not absolute_directory(path):
                raise ConfigError(
                    where,
                    field_,
                    path or '""',
                    "give absolute normalised container paths below / (e.g. /data)",
                )
            if mount.file_system.network is not network:
                raise ConfigError(
                    where,
                    field_,
                    f"{path}: {mount.file_system.node.path}",
                    "mount a file system of the cluster's network (its mount targets are "
                    "the only way in)",
                )
            if not mount.file_system.owns(mount.access_point):
                raise ConfigError(
                    where,
                    field_,
                    f"{path}: {mount.access_point.node.path}",
                    "give an access point of the mounted file system (FileSystem.access_point)",
                )
        paths = [m.container_path for m in props.file_system_mounts]
        twice = sorted({p for p in paths if paths.count(p) > 1 or p in props.writable_paths})
        if twice:
            raise ConfigError(
                where,
                field_,
                ", ".join(twice),
                "mount each container path once, and not also as a writable path",
            )
        by_volume: dict[str, list[str]] = {}
        for path in props.writable_paths:
            by_volume.setdefault(_volume_name(path), []).append(path)
        for path in paths:
            by_volume.setdefault(_efs_volume_name(path), []).append(path)
        clashes = sorted(", ".join(paths) for paths in by_volume.values() if len(paths) > 1)
        if clashes:
            raise ConfigError(
                where,
                field_,
                "; ".join(clashes),
                "give paths whose volume names differ (efs-<path>, with punctuation as -)",
            )


def _efs_volume(name: str, mount: FileSystemMount) -> EcsTaskDefinitionVolume:
    """The task volume ``name`` of ``mount``: its access point, over TLS, authorized as
    the task role."""
    return EcsTaskDefinitionVolume(
        name=name,
        efs_volume_configuration=EcsTaskDefinitionVolumeEfsVolumeConfiguration(
            file_system_id=mount.file_system.id,
            transit_encryption="ENABLED",
            authorization_config=(
                EcsTaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfig(
                    access_point_id=mount.access_point.id, iam="ENABLED"
                )
            ),
        ),
    )


def _efs_volume_name(path: str) -> str:
    """The EFS task volume mounted at ``path``: ``efs-`` and its :func:`_volume_name`."""
    return f"efs-{_volume_name(path)}"


def _looks_secret(name: str) -> bool:
    """Whether the variable ``name`` looks like it holds a credential: it contains
    PASSWORD, SECRET, TOKEN, PRIVATE_KEY, API_KEY or ACCESS_KEY, or has a word PASS,
    PASSWD or PWD (``MB_DB_PASS``, ``DB_PWD``; ``PWD`` alone is the working directory)."""
    upper = name.upper()
    if any(
        word in upper
        for word in ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY", "ACCESS_KEY")
    ):
        return True
    words = set(re.split(r"[^A-Z0-9]+", upper))
    return upper != "PWD" and bool({"PASS", "PASSWD", "PWD"} & words)


def _volume_name(path: str) -> str:
    """The task volume of the writable ``path``: ``/tmp`` is ``tmp``, ``/var/lib/x`` is
    ``var-lib-x`` (volume names allow letters, digits, ``-`` and ``_``)."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", path.strip("/"))


def _by_variable(arns: Mapping[str, str]) -> list[str]:
    """The ARNs once each, in the order the variables were given. (ARNs are unresolved
    tokens at synth time: sorting them would follow construct creation order, so a new
    construct elsewhere could reorder the policy.)"""
    return list(dict.fromkeys(arns.values()))
