"""AWS Lambda entry point ``apps.mariadbowner.handler.handler``: the application's own
MariaDB user, with every privilege on its database and nothing else
(:func:`apps.mariadbowner.owner.ensure_owner`).

Environment (names from ``apps.common.contract.EnvVar``):

- ``MASTER_SECRET_ARN``: the RDS-managed master secret (JSON ``username``, ``password``);
- ``APP_SECRET_ARN``: the application's secret (JSON ``username``, ``password``): the
  user to create, and its password;
- ``DB_HOST``, ``DB_PORT`` (3306), ``DB_NAME`` (the application's database);
- ``DB_TLS_CA``: the CA bundle the server certificate must chain to (the RDS bundle in the
  package). TLS is always on and verified, hostname included; there is no other mode.

boto3 comes from the Lambda runtime and is imported lazily. Nothing logged or returned
holds a password.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from apps.common.config import Env
from apps.common.contract import EnvVar
from apps.common.credentials import Credentials, SecretCredentials
from apps.common.errors import ConfigError, env_error
from apps.mariadbowner.owner import Server, ensure_owner

log = logging.getLogger("apps.mariadbowner")
log.setLevel(logging.INFO)

MARIADB_PORT = 3306


def _secret(arn: str, name: str) -> Credentials:
    try:
        return SecretCredentials(arn).get()
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            "secret", name, "a value", 'store JSON {"username": ..., "password": ...}'
        ) from None


def handler(event: Any, context: Any) -> dict[str, Any]:
    env = Env(os.environ)
    master_arn = env.required(EnvVar.MASTER_SECRET_ARN)
    app_arn = env.required(EnvVar.APP_SECRET_ARN)
    host = env.required(EnvVar.DB_HOST)
    port = env.integer(EnvVar.DB_PORT, MARIADB_PORT, minimum=1, maximum=65535)
    database = env.required(EnvVar.DB_NAME)
    ca_file = env.required(EnvVar.DB_TLS_CA)
    if not os.path.isfile(ca_file):
        raise env_error(EnvVar.DB_TLS_CA, repr(ca_file), "give the path of a CA bundle file")
    master = _secret(master_arn, EnvVar.MASTER_SECRET_ARN)
    app = _secret(app_arn, EnvVar.APP_SECRET_ARN)
    server = Server(host, port, ca_file)
    conn = server.connect(master.username, master.password)
    try:
        summary = ensure_owner(
            conn,
            server,
            master_user=master.username,
            user=app.username,
            password=app.password,
            database=database,
        )
    finally:
        conn.close()
    summary["status"] = "ok"
    log.info("database owner summary: %s", json.dumps(summary))
    return summary
