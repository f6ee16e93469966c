"""RDS MySQL, MariaDB or PostgreSQL in private subnets, reachable only from granted security
groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.db_instance import DbInstance
from cdktf_cdktf_provider_aws.db_parameter_group import (
    DbParameterGroup,
    DbParameterGroupParameter,
)
from cdktf_cdktf_provider_aws.db_subnet_group import DbSubnetGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from apps.common.contract import DB_SERVER_PARAMETERS, EnvVar

from .alarms import AlarmSpec, Watch
from .encryption import EncryptionKey
from .errors import ConfigError
from .logs import log_group
from .naming import Naming
from .network import Network
from .options import DatabaseEngine
from .policy import assume_role_policy, read_secrets
from .secrets import RotationTarget
from .security import Peer, RulePair, allow_tcp, security_group
from .settings import DatabaseSettings

__all__ = ["Database", "DatabaseProps", "DatabaseSettings"]

MYSQL_PORT = 3306
POSTGRES_PORT = 5432
RDS_NAMESPACE = "AWS/RDS"
LOG_EXPORTS = ("error", "slowquery")
"""MySQL logs exported to CloudWatch Logs (``general`` is off: it logs every statement;
``audit`` needs an option group)."""
MARIADB_LOG_EXPORTS = ("error", "slowquery")
"""MariaDB logs exported to CloudWatch Logs, as MySQL's (``general`` logs every statement;
``audit`` needs an option group with the MariaDB Audit Plugin)."""
POSTGRES_LOG_EXPORTS = ("postgresql", "upgrade")
"""PostgreSQL logs exported to CloudWatch Logs: the server log and major-upgrade logs."""

PARAMETERS = {
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_0900_ai_ci",
    "require_secure_transport": "1",
    "slow_query_log": "1",
    "long_query_time": "1",
    "log_output": "FILE",
    **DB_SERVER_PARAMETERS,
}
"""Server parameters: utf8mb4 throughout, TLS-only connections, slow query log on, and the
platform's session limits (``contract.DB_SERVER_PARAMETERS``, dynamic): an abandoned
session (a task frozen or cut off mid-transaction) ends after 5 idle minutes, releasing
its row locks, instead of MySQL's 8 hours; a lock wait lasts 10 s instead of 50. MariaDB's
group (Panintelligence) keeps the engine's defaults: its Java pools were never tested
against an idle cut-off."""
MARIADB_PARAMETERS = {
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_unicode_ci",
    "require_secure_transport": "1",
    "slow_query_log": "1",
    "long_query_time": "1",
    "log_output": "FILE",
}
"""MariaDB's counterparts of :data:`PARAMETERS`: utf8mb4 (``utf8mb4_unicode_ci``: MariaDB
has no ``utf8mb4_0900_ai_ci``), TLS-only connections (``require_secure_transport``,
MariaDB 10.5+; a DB instance parameter group takes it as ``1``), slow query log to the
file CloudWatch exports."""
POSTGRES_PARAMETERS = {
    "rds.force_ssl": "1",
    "password_encryption": "scram-sha-256",
    "log_min_duration_statement": "1000",
    "log_connections": "1",
    "log_disconnections": "1",
}
"""Server parameters (all dynamic): TLS-only connections (``require_secure_transport``'s
PostgreSQL counterpart), SCRAM password hashes, and in the ``postgresql`` log statements
slower than 1000 ms, logins and logouts."""

MEMORY_GIB = {
    f"db.{family}.{size}": gib
    for family in ("t4g", "m6g", "m7g", "r6g", "r7g")
    for size, gib in (("micro", 1), ("small", 2), ("medium", 4), ("large", 8), ("xlarge", 16))
}
"""Memory of the classes this project uses (the r-families have twice this; near enough
for the connection estimate, which errs low)."""
MYSQL_BYTES_PER_CONNECTION = 12_582_880
"""RDS MySQL's and MariaDB's default ``max_connections`` is
``{DBInstanceClassMemory/12582880}``."""
POSTGRES_BYTES_PER_CONNECTION = 9_531_392
POSTGRES_MAX_CONNECTIONS = 5000
"""RDS PostgreSQL's default ``max_connections`` is
``LEAST({DBInstanceClassMemory/9531392},5000)``."""
FREEABLE_MEMORY_ALARM_BYTES = 64 * 1024**2

ENHANCED_MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass(frozen=True)
class _Engine:
    """What differs between the engines a :class:`Database` builds."""

    name: str
    """RDS's engine name, also in the physical names (``pcp-dev-mysql``) and the parameter
    group family (``mysql8.4``, ``mariadb11.4``)."""
    title: str
    port: int
    log_exports: tuple[str, ...]
    parameters: Mapping[str, str]
    tls_parameter: str
    """The parameter that refuses plaintext connections (``1``) or admits them (``0``)."""
    parameters_description: str
    subnets_description: str
    bytes_per_connection: int
    connections_cap: int | None
    connections_hint: str
    memory_hint: str


_ENGINES = {
    DatabaseEngine.MYSQL: _Engine(
        name="mysql",
        title="MySQL",
        port=MYSQL_PORT,
        log_exports=LOG_EXPORTS,
        parameters=PARAMETERS,
        tls_parameter="require_secure_transport",
        parameters_description="utf8mb4, TLS-only connections, slow query log",
        subnets_description="Private subnets of the platform database",
        bytes_per_connection=MYSQL_BYTES_PER_CONNECTION,
        connections_cap=None,
        connections_hint="Look at the consumers' and producers' task counts and connection reuse.",
        memory_hint="Look at connections and the slow query log; move to a larger class.",
    ),
    DatabaseEngine.MARIADB: _Engine(
        name="mariadb",
        title="MariaDB",
        port=MYSQL_PORT,
        log_exports=MARIADB_LOG_EXPORTS,
        parameters=MARIADB_PARAMETERS,
        tls_parameter="require_secure_transport",
        parameters_description="MariaDB: utf8mb4, TLS-only connections, slow query log",
        subnets_description="Private subnets of the MariaDB database",
        bytes_per_connection=MYSQL_BYTES_PER_CONNECTION,
        connections_cap=None,
        connections_hint="Look at the services' task counts and connection pool sizes.",
        memory_hint="Look at connections and the slow query log; move to a larger class.",
    ),
    DatabaseEngine.POSTGRES: _Engine(
        name="postgres",
        title="PostgreSQL",
        port=POSTGRES_PORT,
        log_exports=POSTGRES_LOG_EXPORTS,
        parameters=POSTGRES_PARAMETERS,
        tls_parameter="rds.force_ssl",
        parameters_description="PostgreSQL: TLS-only connections, SCRAM passwords, "
        "slow statement and connection logs",
        subnets_description="Private subnets of the PostgreSQL database",
        bytes_per_connection=POSTGRES_BYTES_PER_CONNECTION,
        connections_cap=POSTGRES_MAX_CONNECTIONS,
        connections_hint="Look at the services' task counts and connection pool sizes.",
        memory_hint="Look at connections and the slow statements in the postgresql log; "
        "move to a larger class.",
    ),
}


_Monitoring = tuple[str | None, list[ITerraformDependable]]
"""Enhanced Monitoring's role ARN (None when off) and what the instance waits for."""


@dataclass(frozen=True)
class DatabaseProps:
    naming: Naming
    network: Network
    """Placed in its private subnets (two AZs or more)."""
    key: EncryptionKey
    """Encrypts storage, the managed master secret, Performance Insights and the logs."""
    settings: DatabaseSettings = field(default_factory=DatabaseSettings)
    """The engine (MySQL, MariaDB or PostgreSQL), its major version, size and protection.
    Unset: every :class:`DatabaseSettings` default (MySQL, protected, backed up)."""


class Database(Construct):
    """An encrypted, private RDS MySQL, MariaDB or PostgreSQL instance, TLS-only (unless
    ``settings.transport`` is ``TLS_OFFERED``: TLS offered, plaintext admitted).

    No password ever appears in code or in the synthesized configuration: RDS generates
    the master password and keeps it in Secrets Manager (``master_secret_arn``). The
    security group has no rules until :meth:`allow_from` grants a peer. Physical names
    carry the engine (``<prefix>-mysql``, ``<prefix>-mariadb``, ``<prefix>-postgres``).
    """

    def __init__(self, scope: Construct, id_: str, *, props: DatabaseProps) -> None:
        super().__init__(scope, id_)
        engine = self._validate(props)
        naming, settings = props.naming, props.settings
        self._engine = engine
        self.engine = settings.engine
        self.transport = settings.transport
        self.network = props.network
        self.key = props.key
        self.identifier = naming.name(engine.name)

        self.security_group = security_group(
            self,
            name=naming.name(engine.name),
            description=f"RDS {engine.title}: {engine.port} from granted security groups only",
            vpc_id=props.network.vpc.id,
        )
        self.subnet_group = DbSubnetGroup(
            self,
            "subnet-group",
            name=naming.name(engine.name),
            subnet_ids=list(props.network.private_subnet_ids),
            description=engine.subnets_description,
        )
        self.parameter_group = self._parameter_group(naming, settings)
        self.log_groups = [
            log_group(
                self,
                f"log-{kind}",
                name=f"/aws/rds/instance/{self.identifier}/{kind}",
                retention_days=settings.log_retention_days,
                kms_key_arn=props.key.arn,
            )
            for kind in engine.log_exports
        ]
        self.instance = self._instance(props, self._monitoring_role(props))
        self.port = engine.port
        self.database_name = settings.database_name
        self.master_username = settings.master_username
        self.instance_class = settings.instance_class
        self.endpoint_address: str = self.instance.address
        self.master_secret_arn: str = self.instance.master_user_secret.get(0).secret_arn

    def _validate(self, props: DatabaseProps) -> _Engine:
        azs = props.network.availability_zones
        if len(azs) < 2:
            raise ConfigError(
                self.node.path, "network", len(azs), "give a network of 2 or more AZs"
            )
        engine = _ENGINES[props.settings.engine]
        overridden = sorted(set(props.settings.parameters) & set(engine.parameters))
        if overridden:
            raise ConfigError(
                self.node.path,
                "settings.parameters",
                ", ".join(overridden),
                "leave the construct's own parameters (TLS-only, character set, logs) alone",
            )
        return engine

    def _parameter_group(self, naming: Naming, settings: DatabaseSettings) -> DbParameterGroup:
        """The engine's parameters (the TLS one as ``settings.transport`` says), then the
        application's own."""
        engine = self._engine
        required = settings.transport.required
        family = f"{engine.name}{settings.version}"
        own = {
            k: (v if k != engine.tls_parameter or required else "0")
            for k, v in engine.parameters.items()
        }
        return DbParameterGroup(
            self,
            "parameter-group",
            # A prefix, not a name: create_before_destroy needs the replacement to coexist.
            name_prefix=naming.name(engine.name, family.replace(".", "-")) + "-",
            family=family,
            # The same description whatever the transport: it forces a new group, and a
            # new group's parameters wait for the instance's reboot, while the TLS
            # parameter alone is dynamic and applies at once in place.
            description=engine.parameters_description,
            parameter=[
                *(DbParameterGroupParameter(name=k, value=v) for k, v in own.items()),
                # An application's own: some are static, applied at the (first) reboot.
                *(
                    DbParameterGroupParameter(name=k, value=v, apply_method="pending-reboot")
                    for k, v in sorted(settings.parameters.items())
                ),
            ],
            lifecycle={"create_before_destroy": True},
        )

    def _monitoring_role(self, props: DatabaseProps) -> _Monitoring:
        """Enhanced Monitoring's role (when on) and what the instance waits for: its log
        groups and the role's policy."""
        waits_for: list[ITerraformDependable] = list(self.log_groups)
        if not props.settings.monitoring_interval_seconds:
            return None, waits_for
        role = IamRole(
            self,
            "monitoring-role",
            name=props.naming.name("rds-monitoring"),
            assume_role_policy=assume_role_policy(
                "monitoring.rds.amazonaws.com", source_account=props.network.account_id
            ),
        )
        # RDS checks the role's permissions when it enables Enhanced Monitoring.
        waits_for.append(
            IamRolePolicyAttachment(
                self, "monitoring-policy", role=role.name, policy_arn=ENHANCED_MONITORING_POLICY
            )
        )
        return role.arn, waits_for

    def _instance(self, props: DatabaseProps, monitoring: _Monitoring) -> DbInstance:
        engine, settings = self._engine, props.settings
        monitoring_role_arn, waits_for = monitoring
        return DbInstance(
            self,
            "instance",
            identifier=self.identifier,
            engine=engine.name,
            engine_version=settings.version,
            auto_minor_version_upgrade=True,
            instance_class=settings.instance_class,
            db_name=settings.database_name,
            username=settings.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=props.key.arn,
            # Off: nothing logs in with IAM tokens (the apps use rotated passwords over TLS).
            iam_database_authentication_enabled=False,
            allocated_storage=settings.allocated_storage_gb,
            max_allocated_storage=settings.max_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=props.key.arn,
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=self.parameter_group.name,
            publicly_accessible=False,
            multi_az=settings.multi_az,
            deletion_protection=settings.deletion_protection,
            backup_retention_period=settings.backup_retention_days,
            backup_window="02:00-03:00",
            maintenance_window="sun:03:30-sun:04:30",
            copy_tags_to_snapshot=True,
            skip_final_snapshot=not settings.final_snapshot,
            final_snapshot_identifier=f"{self.identifier}-final"
            if settings.final_snapshot
            else None,
            enabled_cloudwatch_logs_exports=list(engine.log_exports),
            performance_insights_enabled=settings.performance_insights,
            performance_insights_kms_key_id=props.key.arn
            if settings.performance_insights
            else None,
            performance_insights_retention_period=7 if settings.performance_insights else None,
            monitoring_interval=settings.monitoring_interval_seconds,
            monitoring_role_arn=monitoring_role_arn,
            apply_immediately=False,
            depends_on=waits_for,
        )

    @property
    def max_connections(self) -> int:
        """The engine's RDS default ``max_connections`` for the instance class (1 GiB when
        the class is not in :data:`MEMORY_GIB`)."""
        gib = MEMORY_GIB.get(self.instance_class, 1)
        estimate = gib * 1024**3 // self._engine.bytes_per_connection
        cap = self._engine.connections_cap
        return estimate if cap is None else min(estimate, cap)

    def alarms(self) -> list[AlarmSpec]:
        """Connections near the class's limit, and memory running out (capacity warnings;
        CPU and free storage are Observability's own alarms). ``ReplicaLag`` does not
        apply: the instance has no read replica (Multi-AZ's standby is not one)."""
        db = {"DBInstanceIdentifier": self.identifier}
        limit = int(self.max_connections * 0.8)
        return [
            AlarmSpec(
                "db-connections",
                f"More than {limit} connections (80 % of max_connections for "
                f"{self.instance_class}) for 15 minutes: new logins will soon be refused. "
                + self._engine.connections_hint,
                (RDS_NAMESPACE, "DatabaseConnections", db),
                Watch("Maximum", 300, ">", limit, evaluations=3),
                breakage=False,
            ),
            AlarmSpec(
                "db-freeable-memory",
                "Less than 64 MiB of freeable memory for 15 minutes: the instance swaps or "
                "is killed. " + self._engine.memory_hint,
                (RDS_NAMESPACE, "FreeableMemory", db),
                Watch("Minimum", 300, "<", FREEABLE_MEMORY_ALARM_BYTES, evaluations=3),
                breakage=False,
            ),
        ]

    def connection_environment(self, *, ca_bundle: str) -> dict[str, str]:
        """The variables a client of the schema reads (``apps/common/contract.py``): host,
        port, schema, and TLS verified against ``ca_bundle`` (a path in the client's image).
        MySQL or MariaDB (the contract's clients speak the MySQL protocol)."""
        if not self.engine.speaks_mysql:
            raise ConfigError(
                self.node.path,
                "settings.engine",
                self.engine.value,
                "connection_environment is MySQL's and MariaDB's; give a PostgreSQL client "
                "endpoint_address, port and database_name in its own variables, and its login "
                "from DatabaseOwner's credentials",
            )
        return {
            EnvVar.DB_HOST: self.endpoint_address,
            EnvVar.DB_PORT: str(self.port),
            EnvVar.DB_NAME: self.database_name,
            EnvVar.DB_TLS: "verify",
            EnvVar.DB_TLS_CA: ca_bundle,
        }

    def rotation_target(self, *, ca_bundle: str) -> RotationTarget:
        """What rotating an application user's password needs: the master secret (to set
        the alternate user's password) and the schema, over TLS verified against
        ``ca_bundle`` (a path in the rotation function's package). MySQL only: the
        alternating users get the platform schema's grants."""
        self._require_mysql(
            "rotation_target",
            f"{self._engine.title} logins are not rotated: DatabaseOwner sets the owner's "
            "password from its secret on deploy (write a new secret version, then re-apply)",
        )
        return RotationTarget(
            "mysql",
            {
                EnvVar.MASTER_SECRET_ARN: self.master_secret_arn,
                **self.connection_environment(ca_bundle=ca_bundle),
            },
            read_secrets(
                [self.master_secret_arn], kms_key_arn=self.key.arn, region=self.network.region
            ),
        )

    def allow_from(self, peer: Peer, *, description: str) -> RulePair:
        """Admit connections to the engine's port from ``peer`` (and let ``peer`` send them)."""
        return allow_tcp(
            self, source=peer, target=self.security_group, port=self.port, description=description
        )

    def _require_mysql(self, method: str, fix: str) -> None:
        if self.engine is not DatabaseEngine.MYSQL:
            raise ConfigError(
                self.node.path, "settings.engine", self.engine.value, f"{method} is MySQL's; {fix}"
            )
