"""Schema migration and least-privilege user provisioning against the real MariaDB."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
import redis
from appsupport import Proc, db_values, enqueue_values, start_consumer, wait_until

from apps.common.schema import SCHEMA_VERSION, current_version, migrate
from apps.devtools.servers import MariaDBServer, World
from apps.migrate import provision

FRESH_DB = "apps_provision"


@pytest.fixture
def master(maria: MariaDBServer) -> Iterator[pymysql.connections.Connection[Any]]:
    conn = maria.root_connect()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{FRESH_DB}`")
        cur.execute("DROP USER IF EXISTS 'app'@'%'")
    conn.autocommit(False)
    yield conn
    conn.close()


def app_connect(maria: MariaDBServer, password: str) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host="127.0.0.1", port=maria.port, user="app", password=password, database=FRESH_DB,
        autocommit=True, ssl=maria.tls.client_context() if maria.tls else None,
    )  # fmt: skip


def test_provision_fresh_then_idempotent(
    master: pymysql.connections.Connection[Any], maria: MariaDBServer
) -> None:
    first = provision(master, database=FRESH_DB, app_user="app", app_password="pw-1")
    assert first["schema_from"] == 0
    assert first["schema_to"] == SCHEMA_VERSION
    again = provision(master, database=FRESH_DB, app_user="app", app_password="pw-1")
    assert again["schema_from"] == again["schema_to"] == SCHEMA_VERSION
    json.dumps(again)  # JSON-able summary for the Lambda
    with master.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert {r[0] for r in cur.fetchall()} == {"counts", "schema_version"}


def test_app_user_least_privilege_and_rotation(
    master: pymysql.connections.Connection[Any], maria: MariaDBServer
) -> None:
    provision(master, database=FRESH_DB, app_user="app", app_password="pw-1")
    conn = app_connect(maria, "pw-1")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO counts (msg_key, value) VALUES ('k', 1)")
        cur.execute("SELECT COUNT(*) FROM counts")
        assert cur.fetchone() == (1,)
        assert current_version(conn) == SCHEMA_VERSION
        assert migrate(conn) == {"from": SCHEMA_VERSION, "to": SCHEMA_VERSION}  # no DDL
        for forbidden in (
            "DROP TABLE counts",
            "CREATE TABLE t (x INT)",
            "DELETE FROM counts",
            "UPDATE counts SET value = 2",
            "INSERT INTO schema_version (id, version) VALUES (2, 9)",
            "CREATE DATABASE other",
        ):
            with pytest.raises(pymysql.err.OperationalError) as exc:
                cur.execute(forbidden)
            assert exc.value.args[0] in (1142, 1044, 1045, 1227), forbidden
    conn.close()
    # rotation: re-run with a new password; the old one stops working
    provision(master, database=FRESH_DB, app_user="app", app_password="pw-2")
    with pytest.raises(pymysql.err.OperationalError):
        app_connect(maria, "pw-1")
    app_connect(maria, "pw-2").close()


def test_consumer_starts_as_app_user_after_deploy_migration(
    world: World,
    master: pymysql.connections.Connection[Any],
    maria: MariaDBServer,
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
    rclient: redis.Redis,
) -> None:
    provision(master, database=FRESH_DB, app_user="app", app_password="s3cret")
    world.secrets.put(world.db_secret, "app", "s3cret")  # what the migration's secret holds
    env = {**consumer_env, "DB_NAME": FRESH_DB}
    proc, _ = start_consumer(spawn, env)
    enqueue_values(rclient, [1, 2, 3])

    def stored() -> list[int]:
        conn = maria.root_connect(FRESH_DB)
        with conn.cursor() as cur:
            cur.execute("SELECT value FROM counts ORDER BY value")
            rows = [int(r[0]) for r in cur.fetchall()]
        conn.close()
        return rows

    assert wait_until(lambda: stored() == [1, 2, 3], 30), proc.logs()
    assert db_values(maria) == []  # the per-test database was not touched


def test_lambda_handler_reads_secrets_and_provisions(
    master: pymysql.connections.Connection[Any],
    world: World,
    deployed_stack: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler with the synthesized function's variables: secrets from the world's
    Secrets Manager, TLS verified against the world's CA (in AWS: the RDS CA bundle)."""
    (function,) = [
        f
        for f in deployed_stack["resource"]["aws_lambda_function"].values()
        if f["handler"] == "apps.migrate.handler.handler"
    ]
    deployed = function["environment"]["variables"]
    world.secrets.put("/local/mysql/master", "root", "")
    app_arn = world.secrets.put("/local/mysql/provision", "app", "from-secret")
    local = {
        "MASTER_SECRET_ARN": "/local/mysql/master",
        "APP_SECRET_ARN": app_arn,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(world.maria.port),
        "DB_NAME": FRESH_DB,
        "DB_TLS": deployed["DB_TLS"],
        "DB_TLS_CA": str(world.tls.ca),
    }
    assert set(local) == set(deployed)
    for key, value in {**local, **world.secrets.runtime_env()}.items():
        monkeypatch.setenv(key, value)
    from apps.migrate.handler import handler

    summary = handler({}, None)
    assert summary["status"] == "ok"
    assert summary["schema_to"] == SCHEMA_VERSION
    assert summary["app_user"] == "app"
    json.dumps(summary)
    app_connect(world.maria, "from-secret").close()


def test_lambda_handler_names_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MASTER_SECRET_ARN", raising=False)
    from apps.common.errors import ConfigError
    from apps.migrate.handler import handler

    with pytest.raises(ConfigError, match="MASTER_SECRET_ARN"):
        handler({}, None)


def test_upgrade_to_version_2_makes_idempotency_keys_case_sensitive(
    master: pymysql.connections.Connection[Any],
) -> None:
    with master.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{FRESH_DB}`")
        cur.execute(f"USE `{FRESH_DB}`")
    assert migrate(master, target=1) == {"from": 0, "to": 1}
    insert = "INSERT IGNORE INTO counts (msg_key, value) VALUES (%s, %s)"
    with master.cursor() as cur:
        cur.execute(insert, ("Order-42", 1))
        cur.execute(insert, ("order-42", 2))
        assert cur.rowcount == 0  # version 1: one key to the collation, the value dropped
    master.commit()
    assert migrate(master) == {"from": 1, "to": SCHEMA_VERSION}
    with master.cursor() as cur:
        cur.execute(insert, ("order-42", 2))
        cur.execute(insert, ("ORDER-42", 3))
        cur.execute(insert, ("Order-42", 4))  # still the same key as the stored one
        cur.execute("SELECT msg_key, value FROM counts ORDER BY value")
        assert cur.fetchall() == (("Order-42", 1), ("order-42", 2), ("ORDER-42", 3))
        cur.execute(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'counts' AND COLUMN_NAME = 'msg_key'",
            (FRESH_DB,),
        )
        assert cur.fetchone() == ("ascii_bin",)
    master.commit()


def test_migrate_refuses_a_target_it_does_not_know(
    master: pymysql.connections.Connection[Any],
) -> None:
    from apps.common.schema import MigrationError

    with pytest.raises(MigrationError, match="between 1 and"):
        migrate(master, target=SCHEMA_VERSION + 1)
