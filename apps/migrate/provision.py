"""Create the database, migrate it, and create/rotate the least-privilege application user."""

from __future__ import annotations

import re
from typing import Any

import pymysql

from apps.common.schema import APP_TABLES, VERSION_TABLE, migrate

IDENT = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")
USER = re.compile(r"^[A-Za-z0-9_.$-]{1,80}$")
HOST = re.compile(r"^[A-Za-z0-9_.%:-]{1,255}$")
CLONE_SUFFIX = "_clone"


def _ident(name: str) -> str:
    if not IDENT.match(name):
        raise ValueError(f"unsafe identifier {name!r}")
    return f"`{name}`"


def partner(user: str) -> str:
    """The other user of an alternating pair (``app`` <-> ``app_clone``).

    Rotation (``apps.rotate``) gives the next password to the user the services are not
    using, so the current login stays valid until the rotation after next."""
    return user.removesuffix(CLONE_SUFFIX) if user.endswith(CLONE_SUFFIX) else user + CLONE_SUFFIX


def grant_app_user(cur: Any, *, database: str, user: str, host: str = "%") -> list[str]:
    """The application's privileges, exactly: SELECT, INSERT on the application tables and
    SELECT on the schema version table. No DDL, no UPDATE/DELETE, nothing elsewhere."""
    if not USER.match(user) or not HOST.match(host):
        raise ValueError("unsafe user or host name")
    db = _ident(database)
    grants = []
    for table in APP_TABLES:
        cur.execute(f"GRANT SELECT, INSERT ON {db}.{_ident(table)} TO %s@%s", (user, host))
        grants.append(f"SELECT, INSERT ON {database}.{table}")
    cur.execute(f"GRANT SELECT ON {db}.{_ident(VERSION_TABLE)} TO %s@%s", (user, host))
    grants.append(f"SELECT ON {database}.{VERSION_TABLE}")
    return grants


def set_app_user(
    cur: Any, *, database: str, user: str, password: str, host: str = "%"
) -> list[str]:
    """Create ``user`` (or change its password) with the application's grants."""
    if not USER.match(user) or not HOST.match(host):
        raise ValueError("unsafe user or host name")
    cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password))
    cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))
    return grant_app_user(cur, database=database, user=user, host=host)


def user_exists(cur: Any, user: str, host: str = "%") -> bool:
    cur.execute("SELECT COUNT(*) FROM mysql.user WHERE user = %s AND host = %s", (user, host))
    row = cur.fetchone()
    return bool(row and row[0])


def provision(
    conn: pymysql.connections.Connection[Any],
    *,
    database: str,
    app_user: str,
    app_password: str,
    app_host: str = "%",
) -> dict[str, Any]:
    """Idempotent. ``conn`` is a master (admin) connection without a default database.

    ``app_user``/``app_password`` are the secret's current value: that user is created or
    set to that password. Its rotation partner, if rotation has created it, gets the same
    grants (a new table reaches both), and keeps its password.
    """
    if not USER.match(app_user) or not HOST.match(app_host):
        raise ValueError("unsafe user or host name")
    db = _ident(database)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4")
        cur.execute(f"USE {db}")
    result = migrate(conn)
    with conn.cursor() as cur:
        grants = set_app_user(
            cur, database=database, user=app_user, password=app_password, host=app_host
        )
        other = partner(app_user)
        if user_exists(cur, other, app_host):
            grant_app_user(cur, database=database, user=other, host=app_host)
    conn.commit()
    return {
        "database": database,
        "schema_from": result["from"],
        "schema_to": result["to"],
        "app_user": app_user,
        "app_host": app_host,
        "grants": grants,
    }
