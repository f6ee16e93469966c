"""Metabase on the construct library (``metabase-dev``, ``metabase-prod``).

What differs from the original (``../shared/reference/000-metabase-ecs-fargate.txt``) and
why is in the README's Metabase section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from constructs_lib.options import Deployment
from constructs_lib.secrets import SecretRef
from environments.systems import MetabaseConfig

from .system import RDS_CA_PATH, SystemStack

METABASE_PORT = 3000
HEALTH_PATH = "/api/health"


class MetabaseStack(SystemStack):
    """Metabase's service behind its load balancer, with PostgreSQL as its application
    database (``MB_DB_*``; the password from Secrets Manager as ``MB_DB_PASS``)."""

    config: MetabaseConfig
    port: ClassVar[int] = METABASE_PORT
    health_check_path: ClassVar[str] = HEALTH_PATH
    """200 once Metabase has started and reaches its application database."""
    container_user: ClassVar[str] = "2000:2000"
    """The image's ``metabase`` user: started as it, the entrypoint runs Metabase directly
    (as root it would first create the user, which a read-only root filesystem refuses)."""
    writable_paths: ClassVar[tuple[str, ...]] = ("/tmp", "/plugins")  # noqa: S108 (task volumes)
    """The JVM's temporary files, and the drivers Metabase unpacks at start."""
    startup_grace_seconds: ClassVar[int] = 300
    """A first start migrates the application database for minutes."""
    deployment: ClassVar[Deployment] = Deployment.REPLACE
    """A new version migrates the application database at start; Metabase's versions
    must not serve side by side, so a deploy stops the old tasks first (a short outage)."""

    def environment(self) -> Mapping[str, str]:
        db = self.database
        env = {
            "MB_DB_TYPE": "postgres",
            "MB_DB_HOST": db.endpoint_address,
            "MB_DB_PORT": str(db.port),
            "MB_DB_DBNAME": db.database_name,
            "MB_DB_USER": self.db_credentials.username,
            # The same database over TLS verified against the RDS CAs (the plain MB_DB_*
            # variables have no TLS option; Metabase hands this URI to the JDBC driver).
            # User and password stay in MB_DB_USER / MB_DB_PASS.
            "MB_DB_CONNECTION_URI": (
                f"jdbc:postgresql://{db.endpoint_address}:{db.port}/{db.database_name}"
                f"?sslmode=verify-full&sslrootcert={RDS_CA_PATH}"
            ),
            "JAVA_OPTS": f"-XX:MaxRAMPercentage={self.config.java_max_ram_percent}",
        }
        if self.config.web.domain_name:
            env["MB_SITE_URL"] = f"https://{self.config.web.domain_name}"
        return env

    def secrets(self) -> Mapping[str, SecretRef]:
        return {"MB_DB_PASS": self.db_credentials.field("password")}
