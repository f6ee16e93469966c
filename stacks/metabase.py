"""Metabase on the construct library (``metabase-dev``, ``metabase-prod``).

What differs from the original (``../shared/reference/000-metabase-ecs-fargate.txt``) and
why is in the README's Metabase section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

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

    def environment(self) -> Mapping[str, str]:
        db = self.database
        tls = f"sslmode=verify-full&sslrootcert={RDS_CA_PATH}"
        env = {
            "MB_DB_TYPE": "postgres",
            "MB_DB_HOST": db.endpoint_address,
            "MB_DB_PORT": str(db.port),
            "MB_DB_DBNAME": db.database_name,
            "MB_DB_USER": self.db_credentials.username,
            # The same database over TLS verified against the RDS CAs; user and password
            # stay in MB_DB_USER / MB_DB_PASS.
            "MB_DB_CONNECTION_URI": (
                f"postgres://{db.endpoint_address}:{db.port}/{db.database_name}?ssl=true&{tls}"
            ),
            "JAVA_OPTS": f"-XX:MaxRAMPercentage={self.config.java_max_ram_percent}",
        }
        if self.config.web.domain_name:
            env["MB_SITE_URL"] = f"https://{self.config.web.domain_name}"
        return env

    def secrets(self) -> Mapping[str, SecretRef]:
        return {"MB_DB_PASS": self.db_credentials.field("password")}
