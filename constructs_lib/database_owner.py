"""Deploy-time owner of a PostgreSQL or MariaDB application database: a Lambda in the VPC
that Terraform invokes during apply.

On PostgreSQL the function runs :func:`apps.pgowner.handler.handler`: with the RDS-managed
master secret it creates the login role named in the application's credentials secret (or
sets its password from it), creates the application database if missing, makes the role
its owner and revokes ``CONNECT``/``TEMPORARY`` on it from ``PUBLIC``.

On MariaDB it runs :func:`apps.mariadbowner.handler.handler`: it creates the database if
missing (utf8mb4) and the user ``'<username>'@'%'`` ``REQUIRE SSL`` (or sets its password
from the secret), grants it every database-level privilege the RDS master holds on that
database alone (RDS refuses the master ``GRANT ALL``: it lacks ``DELETE HISTORY``), and
revokes anything else the user holds.

An application (Metabase, Dekart, Panintelligence) then connects as that least-privilege
owner, never as the master user, with a password nothing rotates underneath it. Terraform
invokes the function again when its code or the credentials secret changes (write a new
secret version, then re-apply).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret import DataAwsSecretsmanagerSecret
from cdktf_cdktf_provider_aws.lambda_invocation import LambdaInvocation
from constructs import Construct

from apps.common.contract import LAMBDA_RDS_CA_BUNDLE, EnvVar
from apps.mariadbowner.names import database_problem, user_problem
from apps.pgowner.names import name_problem

from .database import Database
from .errors import ConfigError
from .migration import BUNDLED_DATA, Bundle, vpc_function
from .naming import Naming
from .options import DatabaseEngine
from .policy import read_secrets
from .secrets import GeneratedCredentials
from .settings import DEFAULT_LOG_RETENTION_DAYS

HANDLER = "apps.pgowner.handler.handler"
BUNDLE = Bundle(
    "pgowner",
    ("apps/common", "apps/dbowner", "apps/pgowner"),
    ("pg8000", "scramp", "asn1crypto", "dateutil", "six"),
    BUNDLED_DATA,
    metadata=("pg8000", "scramp"),
)
"""The PostgreSQL function's package: pg8000 and its pure-Python dependencies (pg8000 and
scramp read their version from their ``METADATA`` at import), and the RDS CA bundle."""
MARIADB_HANDLER = "apps.mariadbowner.handler.handler"
MARIADB_BUNDLE = Bundle(
    "mariadbowner", ("apps/common", "apps/dbowner", "apps/mariadbowner"), ("pymysql",)
)
"""The MariaDB function's package: pymysql (pure Python) and the RDS CA bundle."""


@dataclass(frozen=True)
class _Kind:
    """What differs between the engines' owner functions."""

    title: str
    function: str
    """The function's name after the prefix (``pcp-dev-pg-owner``)."""
    description: str
    handler: str
    bundle: Bundle
    user_problem: Callable[[str], str | None]
    database_problem: Callable[[str], str | None]


_KINDS = {
    DatabaseEngine.POSTGRES: _Kind(
        title="PostgreSQL",
        function="pg-owner",
        description="Creates the application's PostgreSQL role and database, owned by it",
        handler=HANDLER,
        bundle=BUNDLE,
        user_problem=name_problem,
        database_problem=name_problem,
    ),
    DatabaseEngine.MARIADB: _Kind(
        title="MariaDB",
        function="mariadb-owner",
        description="Creates the application's MariaDB user and database, granted to it alone",
        handler=MARIADB_HANDLER,
        bundle=MARIADB_BUNDLE,
        user_problem=user_problem,
        database_problem=database_problem,
    ),
}


@dataclass(frozen=True)
class DatabaseOwnerProps:
    naming: Naming
    project_root: Path
    """Repository root, where ``apps/`` lives."""
    database: Database
    """A PostgreSQL or MariaDB database: its application database (``database_name``) gets
    the owner. The function is admitted to it (``allow_from``) and reaches it over TLS
    verified against the RDS CA bundle; its key encrypts the function's logs and
    environment."""
    credentials: GeneratedCredentials
    """The owner's login (``username``, ``password``): the role (PostgreSQL) or user
    (MariaDB) the function creates or sets, and what the application connects with. Not
    the database's master user."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Unset: 30 days."""


class DatabaseOwner(Construct):
    """The owner function, its least-privilege role (read the two secrets, decrypt with the
    database's key), and its invocation on apply.

    ``ready`` is the invocation: a service that logs in as the owner starts after it
    (``depends_on=[owner.ready]``).
    """

    def __init__(self, scope: Construct, id_: str, *, props: DatabaseOwnerProps) -> None:
        super().__init__(scope, id_)
        database = props.database
        kind = _KINDS.get(database.engine)
        if kind is None:
            raise ConfigError(
                self.node.path,
                "database",
                f"a {database.engine.value} database",
                "give a PostgreSQL or MariaDB Database (DatabaseSettings(engine="
                "DatabaseEngine.POSTGRES or MARIADB)); a MySQL application user comes from "
                "SchemaMigration",
            )
        for field, name, problem in (
            (
                "credentials.username",
                props.credentials.username,
                kind.user_problem(props.credentials.username),
            ),
            (
                "database.database_name",
                database.database_name,
                kind.database_problem(database.database_name),
            ),
        ):
            if problem:
                raise ConfigError(self.node.path, field, repr(name), problem)
        if props.credentials.username == database.master_username:
            raise ConfigError(
                self.node.path,
                "credentials.username",
                repr(props.credentials.username),
                "name the application's own login, not the database's master user",
            )
        key = database.key.arn
        network = database.network
        secret_arn = props.credentials.arn
        parts = vpc_function(
            self,
            name=props.naming.name(kind.function),
            description=kind.description,
            group_description=f"{kind.title} database owner function",
            handler=kind.handler,
            project_root=props.project_root,
            vpc_id=network.vpc.id,
            subnet_ids=network.private_subnet_ids,
            kms_key_arn=key,
            account_id=network.account_id,
            statements=read_secrets(
                [database.master_secret_arn, secret_arn], kms_key_arn=key, region=network.region
            ),
            variables={
                EnvVar.MASTER_SECRET_ARN: database.master_secret_arn,
                EnvVar.APP_SECRET_ARN: secret_arn,
                EnvVar.DB_HOST: database.endpoint_address,
                EnvVar.DB_PORT: str(database.port),
                EnvVar.DB_NAME: database.database_name,
                EnvVar.DB_TLS_CA: LAMBDA_RDS_CA_BUNDLE,
                # A database that only offers TLS: the login may connect without it
                # (MariaDB's REQUIRE NONE; a PostgreSQL login follows rds.force_ssl).
                **({} if database.transport.required else {EnvVar.DB_LOGIN_TLS: "optional"}),
            },
            log_retention_days=props.log_retention_days,
            timeout=60,
            bundle=kind.bundle,
            egress_description=f"Secrets Manager over HTTPS {network.aws_api_path}",
        )
        self.log_group = parts.log_group
        self.security_group = parts.security_group
        self.role = parts.role
        self.function = parts.function
        self.bundle_sha256 = parts.bundle_sha256
        # Read on every plan: a new secret version (written outside Terraform, which
        # ignores the generated value after creation) changes the date and re-invokes.
        self.secret_state = DataAwsSecretsmanagerSecret(
            self, "secret-state", arn=secret_arn, depends_on=[props.credentials.version]
        )
        rules = database.allow_from(self, description=f"database owner function to {kind.title}")
        self.invocation = LambdaInvocation(
            self,
            "invocation",
            function_name=self.function.function_name,
            input=json.dumps({"action": "own"}),
            triggers={
                "bundle": self.bundle_sha256,
                "function": self.function.version,
                "secret": self.secret_state.last_changed_date,
            },
            # The invocation runs during the apply: the instance, the secret, the rules to
            # the database and the route to Secrets Manager must exist before it.
            depends_on=[
                database.instance,
                props.credentials.version,
                *network.private_default_routes,
                parts.egress_aws_apis,
                *rules,
            ],
        )
        self.ready = self.invocation
        """Done once the owner (role or user) and database exist with the secret's
        password."""
