"""Fixtures for the application tests: real redis-server and MariaDB in temp dirs.

Servers are session-scoped (one of each, loopback ports picked at runtime); every test
starts from an empty Redis (FLUSHALL) and a freshly created, migrated database.
Helpers live in appsupport.py (a distinct module name, so no clash with other conftests).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from appsupport import DB_NAME, STREAM, Proc, free_port

from apps.common.schema import migrate
from apps.devtools.servers import MariaDBServer, RedisServer

__all__ = ["STREAM"]


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RedisServer, MariaDBServer]]:
    base = tmp_path_factory.mktemp("servers")
    r = RedisServer(base).start()
    try:
        m = MariaDBServer(base).start()
    except Exception:
        r.stop()
        raise
    yield r, m
    m.stop()
    r.stop()


@pytest.fixture
def redis_srv(servers: tuple[RedisServer, MariaDBServer]) -> RedisServer:
    return servers[0]


@pytest.fixture
def maria(servers: tuple[RedisServer, MariaDBServer]) -> MariaDBServer:
    return servers[1]


@pytest.fixture
def clean(servers: tuple[RedisServer, MariaDBServer]) -> None:
    """Empty Redis and a fresh, migrated database for every test."""
    r, m = servers
    if not r.running:  # a crash test may have left it down
        r.start()
    if not m.running:
        m.start()
    client = redis.Redis.from_url(r.url)
    client.flushall()
    client.close()
    conn = m.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
            cur.execute(f"CREATE DATABASE `{DB_NAME}`")
            cur.execute(f"USE `{DB_NAME}`")
        migrate(conn)
    finally:
        conn.close()


@pytest.fixture
def env(servers: tuple[RedisServer, MariaDBServer], clean: None) -> dict[str, str]:
    """Service environment (what ECS would inject), pointing at the test servers."""
    r, m = servers
    return {
        "REDIS_URL": r.url,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(m.port),
        "DB_NAME": DB_NAME,
        "DB_USER": "root",
        "DB_PASSWORD": "",
        "QUEUE_STREAM": STREAM,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "info",
    }


@pytest.fixture
def rclient(redis_srv: RedisServer, clean: None) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_srv.url, decode_responses=True)
    yield client
    with contextlib.suppress(redis.RedisError):
        client.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    procs: list[Proc] = []
    counter = [0]

    def _spawn(module: str, env: dict[str, str], args: list[str] | None = None) -> Proc:
        counter[0] += 1
        p = Proc(module, env, tmp_path, f"{module.rsplit('.', 1)[-1]}-{counter[0]}", args)
        procs.append(p)
        return p

    yield _spawn
    for p in procs:
        p.stop()


@pytest.fixture
def consumer_env(env: dict[str, str]) -> dict[str, str]:
    """Consumer tuned for tests: small batches, quick reclaim, frequent metrics."""
    return {
        **env,
        "PORT": str(free_port()),
        "BIND_HOST": "127.0.0.1",
        "BATCH_SIZE": "50",
        "BLOCK_MS": "200",
        "CLAIM_IDLE_MS": "1000",
        "CLAIM_INTERVAL_MS": "300",
        "METRICS_INTERVAL": "0.5",
        "BACKOFF_MAX_S": "0.5",
        "DB_CONNECT_TIMEOUT_S": "2",
        "REDIS_SOCKET_TIMEOUT_S": "2",
    }
