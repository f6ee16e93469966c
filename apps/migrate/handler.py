"""AWS Lambda entry point ``apps/migrate/handler.py:handler`` (``apps.migrate.handler.handler``).

Environment: MASTER_SECRET_ARN, APP_SECRET_ARN (Secrets Manager JSON secrets with keys
``username`` and ``password``), DB_HOST, DB_PORT (3306), DB_NAME, optional DB_TLS
(``required`` default; ``verify`` with DB_TLS_CA), APP_USER_HOST (``%``).
boto3 comes from the Lambda runtime and is imported lazily.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from apps.common.config import Env
from apps.common.contract import EnvVar
from apps.common.db import raw_connect
from apps.common.errors import ConfigError
from apps.migrate.provision import provision

log = logging.getLogger("apps.migrate")
log.setLevel(logging.INFO)


def _secret(client: Any, arn: str, name: str) -> tuple[str, str]:
    raw = client.get_secret_value(SecretId=arn)["SecretString"]
    try:
        data = json.loads(raw)
        return str(data["username"]), str(data["password"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            "secret", name, "a value", 'store JSON {"username": ..., "password": ...}'
        ) from None


def handler(event: Any, context: Any) -> dict[str, Any]:
    import boto3  # provided by the Lambda runtime

    env = Env(os.environ)
    master_arn = env.required(EnvVar.MASTER_SECRET_ARN)
    app_arn = env.required(EnvVar.APP_SECRET_ARN)
    host = env.required(EnvVar.DB_HOST)
    database = env.required(EnvVar.DB_NAME)
    port = env.integer(EnvVar.DB_PORT, 3306, minimum=1, maximum=65535)
    tls = env.choice(EnvVar.DB_TLS, "required", ("required", "verify", "off"))
    client = boto3.client("secretsmanager")
    master_user, master_password = _secret(client, master_arn, "MASTER_SECRET_ARN")
    app_user, app_password = _secret(client, app_arn, "APP_SECRET_ARN")
    conn = raw_connect(
        host=host,
        port=port,
        user=master_user,
        password=master_password,
        database=None,
        tls="verify" if tls == "verify" else ("off" if tls == "off" else "required"),
        tls_ca=env.optional(EnvVar.DB_TLS_CA),
        connect_timeout_s=10,
        autocommit=False,
        # A migration may copy the table (version 2 does): let a statement run as long as
        # the function may (its timeout), not the services' 30 s.
        read_timeout_s=None,
    )
    try:
        summary = provision(
            conn,
            database=database,
            app_user=app_user,
            app_password=app_password,
            app_host=env.string("APP_USER_HOST", "%"),
        )
    finally:
        conn.close()
    summary["status"] = "ok"
    log.info("migration summary: %s", json.dumps(summary))
    return summary
