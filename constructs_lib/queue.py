"""The ElastiCache (Valkey / Redis OSS) queue between producer and consumer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
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
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from constructs import Construct

from .errors import ConfigError
from .naming import Naming
from .options import QueueEngine, QueueMode
from .secrets import GeneratedCredentials, GeneratedCredentialsProps
from .security import RulePair, allow_tcp

REDIS_PORT = 6379
DISABLED_DEFAULT_ACCESS = "off -@all"


@dataclass(frozen=True)
class QueueProps:
    naming: Naming
    vpc_id: str
    subnet_ids: Sequence[str]
    """Private subnets, one per AZ; a replication group places one node in each."""
    kms_key_arn: str
    app_access_string: str
    """The application user's ACL (ElastiCache access-string syntax): the keys and command
    categories the apps use, nothing more. The app tests give their local Redis user the
    same string (``apps.common.contract.queue_access_string``)."""
    availability_zones: Sequence[str] = ()
    """The AZ of each subnet, in order: a replication group pins one node in each
    (``preferred_cache_cluster_azs``). Unset: ElastiCache places the nodes."""
    mode: QueueMode = QueueMode.SERVERLESS
    """Unset: ElastiCache Serverless, as in the original design."""
    engine: QueueEngine = QueueEngine.VALKEY
    """Unset: Valkey."""
    node_type: str = "cache.t4g.micro"
    """Node class of a replication group. Unset: cache.t4g.micro."""
    snapshot_retention_days: int = 1
    """Unset: one daily snapshot kept."""
    log_retention_days: int = 30
    """Retention of the replication group's slow log. Unset: 30 days."""
    max_data_storage_gb: int = 5
    """Serverless storage ceiling. Unset: 5 GB."""
    max_ecpu_per_second: int = 5000
    """Serverless compute ceiling. Unset: 5000 ECPU/s."""
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
        if props.mode is QueueMode.REPLICATION_GROUP and len(props.subnet_ids) < 1:
            raise ConfigError(self.node.path, "subnet_ids", 0, "give at least one private subnet")
        if props.availability_zones and len(props.availability_zones) != len(props.subnet_ids):
            raise ConfigError(
                self.node.path,
                "availability_zones",
                list(props.availability_zones),
                f"give the AZ of each of the {len(props.subnet_ids)} subnets, in order",
            )
        naming = props.naming
        engine = props.engine.value
        self.mode = props.mode
        self.port = REDIS_PORT

        self.security_group = SecurityGroup(
            self,
            "security-group",
            name=naming.name("queue"),
            description="ElastiCache queue: 6379 from granted security groups only",
            vpc_id=props.vpc_id,
            tags={"Name": naming.name("queue")},
        )
        self.credentials = GeneratedCredentials(
            self,
            "app-credentials",
            props=GeneratedCredentialsProps(
                name=naming.path("queue", "app"),
                username="app",
                kms_key_arn=props.kms_key_arn,
                description="ElastiCache queue: application user",
                recovery_window_days=props.secret_recovery_window_days,
            ),
        )
        # Valkey user groups admit only password (or IAM) users, and every group needs a
        # user named "default": it is switched off, and its password is never handed out.
        self.default_user_credentials = GeneratedCredentials(
            self,
            "default-credentials",
            props=GeneratedCredentialsProps(
                name=naming.path("queue", "default-disabled"),
                username="default",
                kms_key_arn=props.kms_key_arn,
                description="ElastiCache queue: the disabled default user (never used)",
                recovery_window_days=props.secret_recovery_window_days,
            ),
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
            access_string=props.app_access_string,
            authentication_mode={"type": "password", "passwords": [self.credentials.password]},
            # Rotation (Secrets Manager) sets the passwords from then on; Terraform must not
            # put the first one back.
            lifecycle={"ignore_changes": ["authentication_mode"]},
        )
        app_user = self.app_user
        self.user_group = ElasticacheUserGroup(
            self,
            "user-group",
            user_group_id=naming.name("queue"),
            engine=engine,
            user_ids=[default_user.user_id, app_user.user_id],
        )

        self.serverless: ElasticacheServerlessCache | None = None
        self.replication_group: ElasticacheReplicationGroup | None = None
        if props.mode is QueueMode.SERVERLESS:
            self.serverless = ElasticacheServerlessCache(
                self,
                "serverless",
                name=naming.name("queue"),
                engine=engine,
                major_engine_version="8" if props.engine is QueueEngine.VALKEY else "7",
                description="Producer to consumer queue",
                kms_key_id=props.kms_key_arn,
                security_group_ids=[self.security_group.id],
                subnet_ids=list(props.subnet_ids),
                user_group_id=self.user_group.user_group_id,
                snapshot_retention_limit=props.snapshot_retention_days,
                daily_snapshot_time="01:00",
                cache_usage_limits=[
                    ElasticacheServerlessCacheCacheUsageLimits(
                        data_storage=[
                            ElasticacheServerlessCacheCacheUsageLimitsDataStorage(
                                maximum=props.max_data_storage_gb, unit="GB"
                            )
                        ],
                        ecpu_per_second=[
                            ElasticacheServerlessCacheCacheUsageLimitsEcpuPerSecond(
                                maximum=props.max_ecpu_per_second
                            )
                        ],
                    )
                ],
            )
            self.endpoint_address: str = self.serverless.endpoint.get(0).address
        else:
            nodes = len(props.subnet_ids)
            subnet_group = ElasticacheSubnetGroup(
                self,
                "subnet-group",
                name=naming.name("queue"),
                subnet_ids=list(props.subnet_ids),
                description="Private subnets of the queue",
            )
            self.slow_log_group = CloudwatchLogGroup(
                self,
                "slow-log",
                name=naming.path("queue", "slow-log"),
                retention_in_days=props.log_retention_days,
                kms_key_id=props.kms_key_arn,
            )
            self.replication_group = ElasticacheReplicationGroup(
                self,
                "replication-group",
                replication_group_id=naming.name("queue"),
                description="Producer to consumer queue",
                engine=engine,
                engine_version="8.0" if props.engine is QueueEngine.VALKEY else "7.1",
                node_type=props.node_type,
                num_cache_clusters=nodes,
                preferred_cache_cluster_azs=list(props.availability_zones) or None,
                automatic_failover_enabled=nodes > 1,
                multi_az_enabled=nodes > 1,
                port=REDIS_PORT,
                subnet_group_name=subnet_group.name,
                security_group_ids=[self.security_group.id],
                at_rest_encryption_enabled="true",
                transit_encryption_enabled=True,
                transit_encryption_mode="required",
                kms_key_id=props.kms_key_arn,
                user_group_ids=[self.user_group.user_group_id],
                snapshot_retention_limit=props.snapshot_retention_days,
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
            self.endpoint_address = self.replication_group.primary_endpoint_address

    @property
    def url(self) -> str:
        """``rediss://host:port`` (TLS); credentials come separately from the secret."""
        return f"rediss://{self.endpoint_address}:{self.port}"

    def allow_from(self, peer: SecurityGroup, *, description: str) -> RulePair:
        """Admit queue connections from ``peer`` (and let ``peer`` send them)."""
        return allow_tcp(
            self, source=peer, target=self.security_group, port=REDIS_PORT, description=description
        )
