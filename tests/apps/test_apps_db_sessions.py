"""The apps' database sessions (apps/common/db.py) against the TLS-only MariaDB: a bounded
lock wait, and a session the server ends when it goes quiet, releasing its locks."""

from __future__ import annotations

import time

import pymysql
import pytest
from appsupport import DB_NAME

from apps.common import contract
from apps.common import db as dbmod
from apps.common.config import Env, load_db
from apps.devtools.servers import MariaDBServer


def test_the_local_server_has_the_parameter_groups_session_limits(maria: MariaDBServer) -> None:
    conn = maria.root_connect()
    try:
        with conn.cursor() as cur:
            for name, value in contract.DB_SERVER_PARAMETERS.items():
                cur.execute(f"SELECT @@GLOBAL.{name}")
                assert cur.fetchone() == (int(value),), name
    finally:
        conn.close()


def test_an_app_session_has_a_bounded_lock_wait_and_idle_time(env: dict[str, str]) -> None:
    conn = dbmod.connect(load_db(Env(env)))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@SESSION.innodb_lock_wait_timeout, @@SESSION.wait_timeout")
            assert cur.fetchone() == (contract.DB_LOCK_WAIT_S, contract.DB_IDLE_TIMEOUT_S)
    finally:
        conn.close()


def test_a_lock_wait_ends_after_db_lock_wait_s(env: dict[str, str], maria: MariaDBServer) -> None:
    holder = maria.root_connect(DB_NAME)
    conn = dbmod.connect(load_db(Env({**env, "DB_LOCK_WAIT_S": "1"})))
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO counts (msg_key, value) VALUES ('locked', 1)")
        with conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as caught:
            cur.execute("INSERT IGNORE INTO counts (msg_key, value) VALUES ('locked', 1)")
        assert dbmod.is_lock_wait_timeout(caught.value)
    finally:
        holder.rollback()
        holder.close()
        conn.close()


def test_the_server_ends_a_quiet_session_and_releases_its_locks(
    env: dict[str, str], maria: MariaDBServer
) -> None:
    """A task frozen or cut off mid-transaction: its session sends nothing more."""
    abandoned = dbmod.connect(load_db(Env({**env, "DB_IDLE_TIMEOUT_S": "2"})))
    with abandoned.cursor() as cur:
        cur.execute("INSERT INTO counts (msg_key, value) VALUES ('abandoned', 1)")  # no commit
    time.sleep(4)
    other = maria.root_connect(DB_NAME)
    try:
        with other.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
            cur.execute("INSERT INTO counts (msg_key, value) VALUES ('abandoned', 2)")
            cur.execute("SELECT value FROM counts WHERE msg_key = 'abandoned'")
            assert cur.fetchall() == ((2,),)
    finally:
        other.close()
    with pytest.raises(pymysql.err.OperationalError):
        abandoned.commit()
