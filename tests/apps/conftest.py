"""Fixtures for the application tests: real redis-server and MariaDB, shaped like AWS.

The session ``world`` runs every app test twice, once per shape the stacks deploy:

- ``cluster``: cluster-mode Redis with every slot on one node, as the ElastiCache
  Serverless cache of dev/test/stage; the services get the ``dev`` task definitions'
  environment;
- ``primary``: a plain primary, as prod's replication group; the services get the
  ``prod`` task definitions' environment.

Both speak only TLS with a CA generated here, the ``default`` user is off, and the app
user has exactly the access string the Queue construct gives ElastiCache. MariaDB requires
TLS, and the services connect as the least-privilege user the migration provisions,
verifying the server certificate (``DB_TLS=verify``). Every test starts from an empty
Redis and a freshly provisioned database. Helpers live in appsupport.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from appsupport import (
    CONSUMER_TUNING,
    DB_NAME,
    STREAM,
    TEST_TUNING,
    Proc,
    free_port,
    localize,
    task_environment,
)

from apps.common import credentials
from apps.consumer.worker import Consumer
from apps.devtools.servers import MariaDBServer, RedisServer, RedisShape, World, start_world

__all__ = ["STREAM", "TEST_TUNING"]

SHAPE_STACK = {RedisShape.CLUSTER: "dev", RedisShape.PRIMARY: "prod"}
"""Which environment's task definitions each Redis shape stands in for."""
SHAPE_QUEUE = {
    RedisShape.CLUSTER: "aws_elasticache_serverless_cache",
    RedisShape.PRIMARY: "aws_elasticache_replication_group",
}


@pytest.fixture(scope="session", params=list(RedisShape), ids=lambda s: s.value)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    shape: RedisShape = request.param
    w = start_world(tmp_path_factory.mktemp(f"world-{shape.value}"), shape)
    yield w
    w.stop()


@pytest.fixture(scope="session")
def deployed_stack(world: World, synth: Any) -> dict[str, Any]:
    """The synthesized stack whose queue has the world's Redis shape."""
    stack: dict[str, Any] = synth.stack(SHAPE_STACK[world.redis.shape])
    assert stack["resource"].get(SHAPE_QUEUE[world.redis.shape]), (
        f"{SHAPE_STACK[world.redis.shape]} no longer deploys {SHAPE_QUEUE[world.redis.shape]}"
    )
    return stack


@pytest.fixture
def redis_srv(world: World) -> RedisServer:
    return world.redis


@pytest.fixture
def maria(world: World) -> MariaDBServer:
    return world.maria


@pytest.fixture
def clean(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty Redis, a freshly provisioned database (schema + app user) and un-rotated
    credentials for every test. In-process apps see the world's Secrets Manager through
    the same variables as the app processes (:meth:`SecretsManager.runtime_env`)."""
    if not world.redis.running:  # a crash test may have left it down
        world.redis.start()
    if not world.maria.running:
        world.maria.start()
    admin = world.redis.client()
    try:
        admin.flushall()
    finally:
        admin.close()
    world.reset_credentials()
    world.provision_database(DB_NAME, drop=True)
    for name, value in world.secrets.runtime_env().items():
        monkeypatch.setenv(name, value)
    credentials.forget()


def _service_env(world: World, stack: dict[str, Any], container: str) -> dict[str, str]:
    return localize(task_environment(stack, container), world, DB_NAME)


@pytest.fixture
def producer_env(world: World, deployed_stack: dict[str, Any], clean: None) -> dict[str, str]:
    """Exactly the producer task definition's variables, pointed at the test servers."""
    return _service_env(world, deployed_stack, "producer")


@pytest.fixture
def env(producer_env: dict[str, str]) -> dict[str, str]:
    """The producer's environment; the connection settings every service shares."""
    return {k: v for k, v in producer_env.items() if k not in {"CONSUMER_URL"}}


@pytest.fixture
def rclient(world: World, clean: None) -> Iterator[redis.Redis]:
    """A client as the application user (so a test cannot do what the apps may not)."""
    client = world.redis.client(world.queue_user, decode_responses=True)
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
def consumer_env(world: World, deployed_stack: dict[str, Any], clean: None) -> dict[str, str]:
    """The consumer task definition's variables, plus timing knobs (``TEST_TUNING``) for
    small batches, quick reclaim and frequent metrics."""
    return {
        **_service_env(world, deployed_stack, "consumer"),
        "PORT": str(free_port()),
        "BIND_HOST": "127.0.0.1",
        **CONSUMER_TUNING,
    }


@pytest.fixture
def cenv(env: dict[str, str]) -> dict[str, str]:
    """A consumer's environment for in-process tests: small batches, quick reclaim, three
    attempts before a message is dead-lettered."""
    return {
        **env,
        "PORT": "0",
        "BIND_HOST": "127.0.0.1",
        "BATCH_SIZE": "20",
        "BLOCK_MS": "50",
        "CLAIM_IDLE_MS": "100",
        "CLAIM_INTERVAL_MS": "100",
        "MAX_ATTEMPTS": "3",
        "BACKOFF_MAX_S": "0.2",
        "CONSUMER_NAME": "c1",
    }


@pytest.fixture
def consumer(cenv: dict[str, str]) -> Iterator[Consumer]:
    """An in-process consumer (not running its loop) on ``cenv``."""
    from apps.consumer.settings import load_settings as consumer_settings

    c = Consumer(consumer_settings(cenv))
    yield c
    c.close()
