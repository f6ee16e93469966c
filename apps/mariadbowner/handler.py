"""AWS Lambda entry point ``apps.mariadbowner.handler.handler``: the application's own
MariaDB user, with every privilege on its database and nothing else
(:func:`apps.mariadbowner.owner.ensure_owner`).

Environment (names from ``apps.common.contract.EnvVar``):

- ``MASTER_SECRET_ARN``: the RDS-managed master secret (JSON ``username``, ``password``);
- ``APP_SECRET_ARN``: the application's secret (JSON ``username``, ``password``): the
  user to create, and its password;
- ``DB_HOST``, ``DB_PORT`` (3306), ``DB_NAME`` (the application's database);
- ``DB_TLS_CA``: the CA bundle the server certificate must chain to (the RDS bundle in the
  package). The function's own connection is always TLS, verified, hostname included;
- ``DB_LOGIN_TLS``: ``required`` (unset) or ``optional``: whether the application's user
  must use TLS (``REQUIRE SSL``) or may not (``REQUIRE NONE``, a server that only offers it).

boto3 comes from the Lambda runtime and is imported lazily. Nothing logged or returned
holds a password.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from apps.dbowner.inputs import owner_inputs
from apps.mariadbowner.owner import Server, ensure_owner

log = logging.getLogger("apps.mariadbowner")
log.setLevel(logging.INFO)

MARIADB_PORT = 3306


def handler(event: Any, context: Any) -> dict[str, Any]:
    inputs = owner_inputs(MARIADB_PORT)
    master, app, database = inputs.master, inputs.app, inputs.database
    server = Server(inputs.host, inputs.port, inputs.ca_file)
    conn = server.connect(master.username, master.password)
    try:
        summary = ensure_owner(
            conn,
            server,
            master_user=master.username,
            user=app.username,
            password=app.password,
            database=database,
            require_tls=inputs.login_tls_required,
        )
    finally:
        conn.close()
    summary["status"] = "ok"
    log.info("database owner summary: %s", json.dumps(summary))
    return summary
