"""Choices shared by the environment configs and the constructs (no provider imports)."""

from collections.abc import Mapping, Sequence
from enum import Enum


class NatGateways(Enum):
    """How many NAT gateways the network runs."""

    SINGLE = "single"
    """One NAT gateway in the first AZ; every private subnet routes through it (cheap, not HA)."""
    PER_AZ = "per_az"
    """One NAT gateway per AZ; each private subnet routes through the one in its own AZ."""
    NONE = "none"
    """No NAT gateway: private subnets have no route to the internet and reach AWS only
    through VPC endpoints (``NetworkSettings.interface_endpoints`` plus the S3 gateway).
    For workloads that call nothing outside AWS."""


class QueueMode(Enum):
    """How the ElastiCache queue is deployed."""

    SERVERLESS = "serverless"
    """ElastiCache Serverless: multi-AZ by construction, scales itself, billed per use."""
    REPLICATION_GROUP = "replication_group"
    """A node-based replication group: one node per AZ, automatic failover when more than one."""
    SHARDED = "sharded"
    """A node-based cluster (cluster mode enabled) of ``QueueSettings.shards`` shards, each a
    primary and one replica per further AZ (ElastiCache places them over the subnets' AZs),
    with automatic failover. For a queue larger or
    busier than one node: the keys spread over the shards by hash slot (every key the apps
    use shares the hash tag of the stream, so one shard holds the stream; more shards serve
    more streams, not a faster one). The apps use a cluster-aware client
    (``REDIS_CLUSTER=on``), and their user may run CLUSTER SLOTS."""


class QueueEngine(Enum):
    """The ElastiCache engine behind the queue (both speak the Redis protocol)."""

    VALKEY = "valkey"
    REDIS = "redis"


class DatabaseEngine(Enum):
    """The RDS engine behind a :class:`~constructs_lib.database.Database`."""

    MYSQL = "mysql"
    POSTGRES = "postgres"
    MARIADB = "mariadb"

    @property
    def default_version(self) -> str:
        """The major version a database gets when its settings leave it unset (MariaDB:
        11.4, RDS's current long-term-support major, parameter group family ``mariadb11.4``)."""
        return {
            DatabaseEngine.MYSQL: "8.4",
            DatabaseEngine.POSTGRES: "17",
            DatabaseEngine.MARIADB: "11.4",
        }[self]

    @property
    def speaks_mysql(self) -> bool:
        """MySQL or MariaDB: the MySQL protocol, accounts and grants (pymysql talks to both)."""
        return self in (DatabaseEngine.MYSQL, DatabaseEngine.MARIADB)


class Deployment(Enum):
    """How ECS replaces a service's tasks with a new task definition."""

    ROLLING = "rolling"
    """Start new tasks beside the old ones (up to twice the count), then stop the old:
    no downtime; the two versions serve side by side for a while."""
    REPLACE = "replace"
    """Stop the old tasks first, then start the new ones: a short outage per deploy, for
    applications whose versions must never run side by side (one that migrates its
    database at start while the old version still serves)."""

    @property
    def percents(self) -> tuple[int, int]:
        """ECS's minimum healthy and maximum percent."""
        return {Deployment.ROLLING: (100, 200), Deployment.REPLACE: (0, 100)}[self]


class Tier(Enum):
    """What an environment is for; the production tier carries the high-availability rules."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


FARGATE_SIZES: Mapping[int, Sequence[int]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}
"""Valid Fargate CPU units and the memory sizes (MiB) each allows."""


class CpuArchitecture(Enum):
    """CPU of the Fargate tasks and Lambda functions; images must be built for it."""

    ARM64 = "ARM64"
    """Graviton: about 20 % cheaper than x86_64 on Fargate for the same vCPU and memory.
    Build with ``docker build --platform linux/arm64``."""
    X86_64 = "X86_64"

    @property
    def lambda_name(self) -> str:
        return self.value.lower()


CPU_ARCHITECTURE = CpuArchitecture.ARM64
"""One architecture for every task and function (README's ``docker build --platform``)."""


class DatabaseTransport(Enum):
    """Whether a :class:`~constructs_lib.database.Database` refuses plaintext connections."""

    TLS_REQUIRED = "tls_required"
    """The server refuses every connection without TLS (``require_secure_transport=1``,
    ``rds.force_ssl=1``) and the application's login requires TLS too."""
    TLS_OFFERED = "tls_offered"
    """The server offers TLS (clients that ask get it, verified against the RDS CAs if
    they check) but also admits plaintext connections (``require_secure_transport=0``,
    ``rds.force_ssl=0``), still only from the security groups granted. For a third-party
    application whose database client cannot be told to use TLS; config validation allows
    it only for a system whose vendor runs it that way (Panintelligence)."""

    @property
    def required(self) -> bool:
        return self is DatabaseTransport.TLS_REQUIRED


class RootFilesystem(Enum):
    """Whether a container may write to its image's filesystem."""

    READ_ONLY = "read_only"
    """Nothing in the image can change at run time: only the task volumes at
    ``writable_paths`` and mounted file systems are writable."""
    WRITABLE = "writable"
    """The container may write anywhere in its own filesystem (on the task's ephemeral
    storage, gone when the task stops), as Docker runs images by default. For a
    third-party image not yet shown to start on a read-only root."""


class WorkspaceRole(Enum):
    """What a Dekart user may do in its one shared workspace (``DEKART_DEFAULT_WORKSPACE_ROLE``,
    Dekart 0.23)."""

    ADMIN = "admin"
    """An editor who also manages the workspace: its name, its members and their roles, its
    user-defined connections (none here: Athena is the connection the environment gives)."""
    EDITOR = "editor"
    """Runs queries; creates, edits and forks their own maps. (With the Athena data source,
    Dekart 0.23 offers no sharing, so others' maps are not visible.)"""
    VIEWER = "viewer"
    """Makes and edits no map; re-runs a visible map's saved queries but changes none. With
    the Athena data source nothing can be shared with them: useful once sharing is."""


OAUTH_SCOPES = ("openid", "email")
"""What a load balancer's Cognito app client may ask for, and asks for: the user's identity
and e-mail address, nothing that lets a token change the user (no
``aws.cognito.signin.user.admin``)."""
CALLBACK_PATH = "/oauth2/idpresponse"
"""Where Cognito sends a signed-in user back to the load balancer (``https://<domain>``)."""
