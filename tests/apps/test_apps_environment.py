"""The app processes in these tests get exactly what the task definitions give them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import redis
from appsupport import DB_NAME, RUNTIME_ENV, TEST_TUNING, localize, task_environment

from apps.consumer.settings import load_settings as load_consumer
from apps.devtools.servers import World
from apps.producer.settings import load_settings as load_producer

APPS = Path(__file__).resolve().parents[2] / "apps"


def test_producer_env_is_the_task_definitions(
    producer_env: dict[str, str], deployed_stack: dict[str, Any]
) -> None:
    assert set(producer_env) - RUNTIME_ENV == task_environment(deployed_stack, "producer").names


def test_consumer_env_is_the_task_definitions_plus_timing_knobs(
    consumer_env: dict[str, str], deployed_stack: dict[str, Any]
) -> None:
    names = task_environment(deployed_stack, "consumer").names
    assert names <= set(consumer_env)
    assert set(consumer_env) - names <= TEST_TUNING | RUNTIME_ENV


def test_timing_knobs_are_settings_the_apps_read() -> None:
    """Each knob the tests add exists in the apps' settings (with a production default)."""
    source = "\n".join(p.read_text() for p in APPS.rglob("*.py") if "devtools" not in p.parts)
    unread = {name for name in TEST_TUNING if not re.search(rf'"{name}"', source)}
    assert not unread


@pytest.mark.parametrize("container", ["producer", "consumer"])
def test_deployed_env_verifies_tls_as_the_app_user(
    container: str, deployed_stack: dict[str, Any], world: World, clean: None
) -> None:
    env = localize(task_environment(deployed_stack, container), world, DB_NAME)
    settings = (load_producer if container == "producer" else load_consumer)(env)
    assert settings.db.tls == "verify"
    assert settings.db.tls_ca == str(world.tls.ca)
    assert settings.db.credentials_secret == world.db_secret
    assert settings.db.credentials().get().username == world.db_user
    assert settings.redis.url.startswith("rediss://")
    assert settings.redis.tls_ca == str(world.tls.ca)
    assert settings.redis.credentials_secret == world.queue_secret
    login = settings.redis.credentials()
    assert login is not None
    assert login.get().username == world.queue_user.name


def test_nobody_can_act_as_the_default_user(world: World) -> None:
    """The local server's default user is off, as on ElastiCache: a connection that does not
    log in as a named user can run nothing (its permissive rules exist only for the
    append-only-file replay; see RedisServer._config)."""
    anonymous = world.redis.client(user=None)
    anonymous.connection_pool.connection_kwargs.pop("username", None)
    anonymous.connection_pool.connection_kwargs.pop("password", None)
    try:
        with pytest.raises(redis.AuthenticationError):
            anonymous.set("{counts}:x", "1")
        with pytest.raises(redis.AuthenticationError):
            anonymous.execute_command("AUTH", "default", "")
    finally:
        anonymous.close()
