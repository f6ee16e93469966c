"""The ElastiCache (Valkey / Redis OSS) queue between producer and consumer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdktf_cdktf_provider_aws.elasticache_replication_group import (
    ElasticacheReplicationGroup,
    ElasticacheReplicationGroupLogDeliveryConfiguration,
)
from cdktf_cdktf_provider_aws.elasticache_serverless_cache import (
    ElasticacheServerlessCache,
    ElasticacheServerlessCacheCacheUsageLimits,
    ElasticacheServerlessCacheCacheUsageLimitsDataStorage,
    ElasticacheServerlessCacheCacheUsageLimitsEcpuPerSecond,
)
from cdktf_cdktf_provider_aws.elasticache_subnet_group import ElasticacheSubnetGroup
from cdktf_cdktf_provider_aws.elasticache_user import ElasticacheUser
from cdktf_cdktf_provider_aws.elasticache_user_group import ElasticacheUserGroup
from constructs import Construct

from apps.common.contract import EnvVar, cluster_client_access

from .alarms import AlarmSpec, Watch
from .encryption import EncryptionKey
from .logs import log_group
from .naming import Naming
from .network import Network
from .options import QueueEngine, QueueMode
from .policy import Statement
from .secrets import GeneratedCredentials, GeneratedCredentialsProps, RotationTarget
from .security import Peer, RulePair, allow_tcp, security_group
from .settings import QueueSettings

__all__ = ["Queue", "QueueProps", "QueueSettings"]

REDIS_PORT = 6379
ELASTICACHE = "AWS/ElastiCache"
NODE_ALARMS = (
    (
        "evictions",
        "Evictions",
        Watch("Sum", 300, ">", 0),
        True,
        "evicted keys: stream entries may be gone. The queue's memory is full. Look at the "
        "backlog and the consumers, then the node type.",
    ),
    (
        "memory",
        "DatabaseMemoryUsagePercentage",
        Watch("Maximum", 300, ">", 80, evaluations=3),
        True,
        "used over 80 % of its memory for 15 minutes: writes will be refused (OOM) and the "
        "producer answers 503. Look at the backlog; drain it, or scale up.",
    ),
    (
        "cpu",
        "EngineCPUUtilization",
        Watch("Average", 300, ">", 80, evaluations=3),
        False,
        "had its engine thread over 80 % busy for 15 minutes. Look at the command rate "
        "(producer traffic, consumer batch size).",
    ),
    (
        "connections",
        "CurrConnections",
        Watch("Maximum", 300, ">", 1000, evaluations=3),
        False,
        "held over 1000 client connections for 15 minutes. Look at the services' task "
        "counts: they leak connections or run more than planned.",
    ),
)
"""Per replication-group node: ``(key suffix, metric, watch, breakage, what it means)``."""
DISABLED_DEFAULT_ACCESS = "off -@all"
_VERSIONS = {QueueEngine.VALKEY: "8.0", QueueEngine.REDIS: "7.1"}
"""The engine version of a node-based queue."""
_FAMILIES = {QueueEngine.VALKEY: "valkey8", QueueEngine.REDIS: "redis7"}
"""The parameter-group family of each version in :data:`_VERSIONS`."""


@dataclass(frozen=True)
class QueueProps:
    naming: Naming
    network: Network
    """Placed in its private subnets; a replication group pins one node in each AZ
    (``preferred_cache_cluster_azs``)."""
    key: EncryptionKey
    """Encrypts the cache, its snapshots, the credentials secret and the slow log."""
    app_access_string: str
    """The application user's ACL (ElastiCache access-string syntax): the keys and command
    categories the apps use, nothing more. The app tests give their local Redis user the
    same string (``apps.common.contract.queue_access_string``). A ``SHARDED`` queue adds
    what its clients' cluster-aware client needs (``CLUSTER_CLIENT_ACL``)."""
    settings: QueueSettings = field(default_factory=QueueSettings)
    """Unset: every :class:`QueueSettings` default (Valkey Serverless)."""
    secret_recovery_window_days: int = 7
    """Unset: a deleted credentials secret can be restored for 7 days."""


class Queue(Construct):
    """An encrypted (in transit and at rest), private, password-protected queue.

    Access control is ElastiCache RBAC: the ``default`` user is switched off and an
    application user authenticates with a generated password kept in Secrets Manager
    (``credentials``; ECS injects ``credentials.field("password")``). The security
    group admits 6379 only from groups granted with :meth:`allow_from`.
    """

    def __init__(self, scope: Construct, id_: str, *, props: QueueProps) -> None:
        super().__init__(scope, id_)
        naming = props.naming
        engine = props.settings.engine.value
        self._settings = props.settings
        self._name = naming.name("queue")
        """The queue's one name: cache or replication group, user group, security group,
        subnet group."""
        self._nodes = len(props.network.private_subnet_ids)
        """Nodes per shard: one in each AZ."""
        self.mode = props.settings.mode
        self.cluster_client = self.mode is QueueMode.SHARDED
        """Whether clients need a cluster-aware client (several shards, each owning a part
        of the hash slots): :meth:`connection_environment` says so, and the application
        user may run CLUSTER SLOTS."""
        self.port = REDIS_PORT

        self.security_group = security_group(
            self,
            name=self._name,
            description="ElastiCache queue: 6379 from granted security groups only",
            vpc_id=props.network.vpc.id,
        )
        self.credentials = self._credentials(
            props, "app-credentials", "app", "app", "application user"
        )
        # Valkey user groups admit only password (or IAM) users, and every group needs a
        # user named "default": it is switched off, and its password is never handed out.
        self.default_user_credentials = self._credentials(
            props,
            "default-credentials",
            "default-disabled",
            "default",
            "the disabled default user (never used)",
        )
        default_user = ElasticacheUser(
            self,
            "default-user",
            user_id=naming.name("queue", "default"),
            user_name="default",
            engine=engine,
            access_string=DISABLED_DEFAULT_ACCESS,
            authentication_mode={
                "type": "password",
                "passwords": [self.default_user_credentials.password],
            },
        )
        self.app_user = ElasticacheUser(
            self,
            "app-user",
            user_id=naming.name("queue", "app"),
            user_name=self.credentials.username,
            engine=engine,
            access_string=self._app_access(props.app_access_string),
            authentication_mode={"type": "password", "passwords": [self.credentials.password]},
            # Rotation (Secrets Manager) sets the passwords from then on; Terraform must not
            # put the first one back.
            lifecycle={"ignore_changes": ["authentication_mode"]},
        )
        app_user = self.app_user
        self.user_group = ElasticacheUserGroup(
            self,
            "user-group",
            user_group_id=self._name,
            engine=engine,
            user_ids=[default_user.user_id, app_user.user_id],
        )

        self.serverless: ElasticacheServerlessCache | None = None
        self.replication_group: ElasticacheReplicationGroup | None = None
        if props.settings.mode is QueueMode.SERVERLESS:
            self.endpoint_address: str = self._serverless(props, engine)
        else:
            self.endpoint_address = self._replication_group(props, engine)

    def _app_access(self, access: str) -> str:
        """The application user's access string: ``access``, plus CLUSTER SLOTS when the
        clients are cluster-aware (they cannot learn the topology without it)."""
        return cluster_client_access(access) if self.cluster_client else access

    @property
    def url(self) -> str:
        """``rediss://host:port`` (TLS); credentials come separately from the secret."""
        return f"rediss://{self.endpoint_address}:{self.port}"

    def alarms(self) -> list[AlarmSpec]:
        """The cache engine's alarms. Serverless: throttled commands and storage near the
        cache's ceiling (breakage), ECPU near it (capacity). A replication group, per node:
        evictions and memory (breakage: the queue loses or refuses entries), engine CPU
        and connections (capacity)."""
        if self.serverless is not None:
            return self._serverless_alarms()
        return [
            AlarmSpec(
                f"queue-{index}-{kind}",
                f"Node {node} {meaning}",
                (ELASTICACHE, metric, {"CacheClusterId": node}),
                watch,
                breakage=breakage,
            )
            for index, node in self.node_ids().items()
            for kind, metric, watch, breakage, meaning in NODE_ALARMS
        ]

    def node_ids(self) -> dict[str, str]:
        """A node-based queue's nodes as ElastiCache names them (their ``CacheClusterId``),
        by the index its alarms carry: ``1`` -> ``<group id>-001`` in a replication group,
        ``2-1`` -> ``<group id>-0002-001`` (shard 2, node 1) in a sharded one. Empty for
        Serverless."""
        if self.serverless is not None:
            return {}
        if not self.cluster_client:
            return {f"{n}": f"{self._name}-{n:03d}" for n in range(1, self._nodes + 1)}
        return {
            f"{shard}-{n}": f"{self._name}-{shard:04d}-{n:03d}"
            for shard in range(1, self._settings.shards + 1)
            for n in range(1, self._nodes + 1)
        }

    def _serverless_alarms(self) -> list[AlarmSpec]:
        dims = {"clusterId": self._name}  # Serverless publishes under clusterId
        storage = self._settings.max_data_storage_gb * 10**9
        ecpu_per_minute = self._settings.max_ecpu_per_second * 60
        return [
            AlarmSpec(
                "queue-throttled",
                "ElastiCache Serverless throttled commands in 3 of the last 5 minutes: the "
                "load grew faster than the cache scales, or it hit max_ecpu_per_second. The "
                "producer answers 503 meanwhile. Look at the ECPU graph and the limits.",
                (ELASTICACHE, "ThrottledCmds", dims),
                Watch("Sum", 60, ">", 0, evaluations=5, datapoints=3),
            ),
            AlarmSpec(
                "queue-storage",
                "The queue holds over 80 % of max_data_storage_gb: at the ceiling writes "
                "are refused. Look at the backlog (are the consumers draining?).",
                (ELASTICACHE, "BytesUsedForCache", dims),
                Watch("Maximum", 300, ">", storage * 0.8),
            ),
            AlarmSpec(
                "queue-ecpu",
                "ECPU use above 80 % of max_ecpu_per_second for 15 minutes: throttling is "
                "next. Look at the command rate for a runaway client, or raise the limit.",
                (ELASTICACHE, "ElastiCacheProcessingUnits", dims),
                Watch("Sum", 60, ">", ecpu_per_minute * 0.8, evaluations=15, datapoints=12),
                breakage=False,
            ),
        ]

    def connection_environment(self, *, ca_bundle: str) -> dict[str, str]:
        """The variables a client of the queue reads (``apps/common/contract.py``): the TLS
        URL, the CA bundle (a path in the client's image) its certificate chains to, and,
        for a sharded queue, ``REDIS_CLUSTER=on`` (unset means off)."""
        env: dict[str, str] = {EnvVar.REDIS_URL: self.url, EnvVar.REDIS_TLS_CA: ca_bundle}
        if self.cluster_client:
            env[EnvVar.REDIS_CLUSTER] = "on"
        return env

    def rotation_target(self) -> RotationTarget:
        """What rotating the application user's password needs: the user, the URL to check
        the new password against, and ModifyUser on that user only."""
        return RotationTarget(
            "elasticache",
            {EnvVar.QUEUE_USER_ID: self.app_user.user_id, EnvVar.REDIS_URL: self.url},
            [
                Statement(actions=["elasticache:ModifyUser"], resources=[self.app_user.arn]),
                # Read-only; whether AWS scopes it to a user ARN is unverified here, and a
                # refused describe would stop every rotation after ModifyUser succeeded.
                Statement(actions=["elasticache:DescribeUsers"], resources=["*"]),
            ],
        )

    def _credentials(
        self, props: QueueProps, id_: str, secret: str, username: str, purpose: str
    ) -> GeneratedCredentials:
        return GeneratedCredentials(
            self,
            id_,
            props=GeneratedCredentialsProps(
                name=props.naming.path("queue", secret),
                username=username,
                key=props.key,
                description=f"ElastiCache queue: {purpose}",
                recovery_window_days=props.secret_recovery_window_days,
            ),
        )

    def _serverless(self, props: QueueProps, engine: str) -> str:
        """An ElastiCache Serverless cache (cluster mode, multi-AZ); its endpoint."""
        self.serverless = ElasticacheServerlessCache(
            self,
            "serverless",
            name=self._name,
            engine=engine,
            major_engine_version="8" if props.settings.engine is QueueEngine.VALKEY else "7",
            description="Producer to consumer queue",
            kms_key_id=props.key.arn,
            security_group_ids=[self.security_group.id],
            subnet_ids=list(props.network.private_subnet_ids),
            user_group_id=self.user_group.user_group_id,
            snapshot_retention_limit=props.settings.snapshot_retention_days,
            daily_snapshot_time="01:00",
            cache_usage_limits=[
                ElasticacheServerlessCacheCacheUsageLimits(
                    data_storage=[
                        ElasticacheServerlessCacheCacheUsageLimitsDataStorage(
                            maximum=props.settings.max_data_storage_gb, unit="GB"
                        )
                    ],
                    ecpu_per_second=[
                        ElasticacheServerlessCacheCacheUsageLimitsEcpuPerSecond(
                            maximum=props.settings.max_ecpu_per_second
                        )
                    ],
                )
            ],
        )
        address: str = self.serverless.endpoint.get(0).address
        return address

    def _replication_group(self, props: QueueProps, engine: str) -> str:
        """A replication group with one node per AZ (failover with two or more), or for
        ``SHARDED`` that many nodes per shard; its primary (configuration) endpoint."""
        naming = props.naming
        subnet_group = ElasticacheSubnetGroup(
            self,
            "subnet-group",
            name=self._name,
            subnet_ids=list(props.network.private_subnet_ids),
            description="Private subnets of the queue",
        )
        self.slow_log_group = log_group(
            self,
            "slow-log",
            name=naming.path("queue", "slow-log"),
            retention_days=props.settings.log_retention_days,
            kms_key_arn=props.key.arn,
        )
        self.replication_group = ElasticacheReplicationGroup(
            self,
            "replication-group",
            replication_group_id=self._name,
            description="Producer to consumer queue",
            engine=engine,
            engine_version=_VERSIONS[props.settings.engine],
            node_type=props.settings.node_type,
            **self._topology(props),
            port=REDIS_PORT,
            subnet_group_name=subnet_group.name,
            security_group_ids=[self.security_group.id],
            at_rest_encryption_enabled="true",
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            kms_key_id=props.key.arn,
            user_group_ids=[self.user_group.user_group_id],
            snapshot_retention_limit=props.settings.snapshot_retention_days,
            snapshot_window="01:00-02:00",
            maintenance_window="sun:02:30-sun:03:30",
            auto_minor_version_upgrade="true",
            apply_immediately=False,
            log_delivery_configuration=[
                ElasticacheReplicationGroupLogDeliveryConfiguration(
                    destination=self.slow_log_group.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type="slow-log",
                )
            ],
        )
        group = self.replication_group
        address: str = (
            group.configuration_endpoint_address
            if self.cluster_client
            else group.primary_endpoint_address
        )
        return address

    def _topology(self, props: QueueProps) -> dict[str, Any]:
        """How many nodes, where, and whether the keys are sharded: one node per AZ, or
        for ``SHARDED`` a primary and a replica per further AZ in each shard, in cluster mode
        (whose default parameter group is the engine's ``cluster.on`` one)."""
        nodes = self._nodes
        if not self.cluster_client:
            return {
                "num_cache_clusters": nodes,
                "preferred_cache_cluster_azs": list(props.network.availability_zones) or None,
                "automatic_failover_enabled": nodes > 1,
                "multi_az_enabled": nodes > 1,
            }
        engine = props.settings.engine
        return {
            "cluster_mode": "enabled",
            "parameter_group_name": f"default.{_FAMILIES[engine]}.cluster.on",
            "num_node_groups": props.settings.shards,
            "replicas_per_node_group": nodes - 1,
            # Cluster mode needs automatic failover (a shard's replica takes over).
            "automatic_failover_enabled": True,
            "multi_az_enabled": nodes > 1,
        }

    def allow_from(self, peer: Peer, *, description: str) -> RulePair:
        """Admit queue connections from ``peer`` (and let ``peer`` send them)."""
        return allow_tcp(
            self, source=peer, target=self.security_group, port=REDIS_PORT, description=description
        )
