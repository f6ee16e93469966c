"""AWS Lambda entry point ``apps.pgowner.handler.handler``: the application's own
PostgreSQL login role, owner of its database (:func:`apps.pgowner.owner.ensure_owner`).

Environment (names from ``apps.common.contract.EnvVar``):

- ``MASTER_SECRET_ARN``: the RDS-managed master secret (JSON ``username``, ``password``);
- ``APP_SECRET_ARN``: the application's secret (JSON ``username``, ``password``): the
  role to create, and its password;
- ``DB_HOST``, ``DB_PORT`` (5432), ``DB_NAME`` (the application's database);
- ``DB_TLS_CA``: the CA bundle the server certificate must chain to (the RDS bundle in the
  package). TLS is always on and verified, hostname included; there is no other mode.

boto3 comes from the Lambda runtime and is imported lazily. Nothing logged or returned
holds a password.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from apps.dbowner.inputs import owner_inputs
from apps.pgowner.owner import MAINTENANCE_DATABASE, Server, ensure_owner

log = logging.getLogger("apps.pgowner")
log.setLevel(logging.INFO)

POSTGRES_PORT = 5432


def handler(event: Any, context: Any) -> dict[str, Any]:
    inputs = owner_inputs(POSTGRES_PORT)
    master, app, database = inputs.master, inputs.app, inputs.database
    server = Server.verified(inputs.host, inputs.port, inputs.ca_file)
    conn = server.connect(master.username, master.password, MAINTENANCE_DATABASE)
    try:
        summary = ensure_owner(
            conn, server, role=app.username, password=app.password, database=database
        )
    finally:
        conn.close()
    summary["status"] = "ok"
    log.info("database owner summary: %s", json.dumps(summary))
    return summary
