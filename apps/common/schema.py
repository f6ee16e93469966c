"""The one place that defines the database schema.

``migrate(conn)`` is idempotent and safe to run concurrently (MySQL named lock). When the
recorded version is already current it runs no DDL at all, so a least-privilege user
(SELECT, INSERT only) can call it at start-up after the deploy-time migration.
"""

from __future__ import annotations

import logging
from typing import Any

import pymysql

log = logging.getLogger(__name__)

COUNTS_TABLE = "counts"
VERSION_TABLE = "schema_version"
APP_TABLES = (COUNTS_TABLE,)
LOCK_NAME = "apps.schema.migrate"
LOCK_TIMEOUT_S = 60

# Ordered migrations; version N is MIGRATIONS[N - 1]. Append only, never edit a released one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"""CREATE TABLE IF NOT EXISTS `{COUNTS_TABLE}` (
            id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
            msg_key VARCHAR(64) NOT NULL,
            value BIGINT NOT NULL,
            created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (id),
            UNIQUE KEY uq_counts_msg_key (msg_key)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    ),
    # 2: idempotency keys compare exactly. Version 1's utf8mb4 default collation is
    # case-insensitive, so `Order-42` and `order-42` were one key and the second value was
    # dropped. Keys are [A-Za-z0-9_.:-] (the API checks), so ascii_bin holds every stored
    # key unchanged. The column change rebuilds the table (MySQL and MariaDB copy it).
    (
        f"ALTER TABLE `{COUNTS_TABLE}` "
        "MODIFY msg_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_VERSION_DDL = f"""CREATE TABLE IF NOT EXISTS `{VERSION_TABLE}` (
    id TINYINT UNSIGNED NOT NULL,
    version INT NOT NULL,
    applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id)
) ENGINE=InnoDB"""

ER_NO_SUCH_TABLE = 1146


class MigrationError(RuntimeError):
    pass


def current_version(conn: pymysql.connections.Connection[Any]) -> int:
    """The recorded schema version, 0 when the version table does not exist yet."""
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT version FROM `{VERSION_TABLE}` WHERE id = 1")  # noqa: S608
            row = cur.fetchone()
    except pymysql.err.ProgrammingError as exc:
        if exc.args and exc.args[0] == ER_NO_SUCH_TABLE:
            return 0
        raise
    return int(row[0]) if row else 0


def migrate(
    conn: pymysql.connections.Connection[Any], target: int = SCHEMA_VERSION
) -> dict[str, int]:
    """Bring the connected database to ``target`` (unset: SCHEMA_VERSION; a lower one only
    to test an upgrade); returns ``{"from": a, "to": b}``."""
    if not 1 <= target <= SCHEMA_VERSION:
        raise MigrationError(f"target version {target} is not between 1 and {SCHEMA_VERSION}")
    before = current_version(conn)
    if before >= target:
        _end_read(conn)
        return {"from": before, "to": before}
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, %s)", (LOCK_NAME, LOCK_TIMEOUT_S))
        got = cur.fetchone()
        if not got or got[0] != 1:
            raise MigrationError(f"could not take the migration lock {LOCK_NAME!r}")
        try:
            version = current_version(conn)  # another process may have migrated meanwhile
            if version < target:
                cur.execute(_VERSION_DDL)
            while version < target:
                for statement in MIGRATIONS[version]:
                    cur.execute(statement)
                version += 1
                cur.execute(
                    f"INSERT INTO `{VERSION_TABLE}` (id, version) VALUES (1, %s) "  # noqa: S608
                    "ON DUPLICATE KEY UPDATE version = VALUES(version)",
                    (version,),
                )
                conn.commit()
                log.info("schema migrated to version %d", version)
        finally:
            cur.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
            cur.fetchall()
    _end_read(conn)
    return {"from": before, "to": version}


def _end_read(conn: pymysql.connections.Connection[Any]) -> None:
    # Close the read snapshot left open by SELECTs when autocommit is off.
    if not conn.get_autocommit():
        conn.commit()
