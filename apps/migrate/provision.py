"""Create the database, migrate it, and create/rotate the least-privilege application user."""

from __future__ import annotations

import re
from typing import Any

import pymysql

from apps.common.schema import APP_TABLES, VERSION_TABLE, migrate

IDENT = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")
USER = re.compile(r"^[A-Za-z0-9_.$-]{1,80}$")
HOST = re.compile(r"^[A-Za-z0-9_.%:-]{1,255}$")


def _ident(name: str) -> str:
    if not IDENT.match(name):
        raise ValueError(f"unsafe identifier {name!r}")
    return f"`{name}`"


def provision(
    conn: pymysql.connections.Connection[Any],
    *,
    database: str,
    app_user: str,
    app_password: str,
    app_host: str = "%",
) -> dict[str, Any]:
    """Idempotent. ``conn`` is a master (admin) connection without a default database.

    The app user gets SELECT, INSERT on the application tables and SELECT on the schema
    version table only: no DDL, no UPDATE/DELETE, nothing on other databases.
    ``ALTER USER ... IDENTIFIED BY`` makes a password rotation a re-run of this function.
    """
    if not USER.match(app_user) or not HOST.match(app_host):
        raise ValueError("unsafe user or host name")
    db = _ident(database)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4")
        cur.execute(f"USE {db}")
    result = migrate(conn)
    account = "%s@%s"
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY %s",
            (app_user, app_host, app_password),
        )
        cur.execute(f"ALTER USER {account} IDENTIFIED BY %s", (app_user, app_host, app_password))
        grants = []
        for table in APP_TABLES:
            cur.execute(
                f"GRANT SELECT, INSERT ON {db}.{_ident(table)} TO {account}", (app_user, app_host)
            )
            grants.append(f"SELECT, INSERT ON {database}.{table}")
        cur.execute(
            f"GRANT SELECT ON {db}.{_ident(VERSION_TABLE)} TO {account}", (app_user, app_host)
        )
        grants.append(f"SELECT ON {database}.{VERSION_TABLE}")
    conn.commit()
    return {
        "database": database,
        "schema_from": result["from"],
        "schema_to": result["to"],
        "app_user": app_user,
        "app_host": app_host,
        "grants": grants,
    }
