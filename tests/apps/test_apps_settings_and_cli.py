"""Settings, start-up failures, the health-check CLI and the served producer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from appsupport import ROOT, Proc, http_json

from apps.common.config import redact_url
from apps.common.errors import ConfigError
from apps.consumer.settings import load_settings as consumer_settings
from apps.devtools.servers import free_port, wait_port
from apps.producer.settings import load_settings as producer_settings

BASE = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DB_HOST": "db",
    "DB_NAME": "platform",
    "DB_USER": "app",
    "DB_PASSWORD": "pw",
}


@pytest.mark.parametrize("missing", ["REDIS_URL", "DB_HOST", "DB_NAME", "DB_USER", "DB_PASSWORD"])
@pytest.mark.parametrize("loader", [producer_settings, consumer_settings])
def test_missing_required_variable_is_named(missing: str, loader: Callable[..., object]) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        loader(env)


def test_defaults() -> None:
    p = producer_settings(BASE)
    c = consumer_settings(BASE)
    assert p.port == 5080
    assert c.port == 8081
    assert p.redis.stream == c.redis.stream == "{counts}"
    assert c.redis.dead_letter_stream == "{counts}:dead"
    assert p.db.port == 3306
    assert p.db.tls == "off"
    assert p.environment == "local"
    assert p.consumer_url is None
    assert c.metrics_namespace == "ProducerConsumer"
    assert c.db_migrate == "auto"


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"PORT": "abc"}, "PORT"),
        ({"DB_PORT": "70000"}, "DB_PORT"),
        ({"DB_TLS": "maybe"}, "DB_TLS"),
        ({"DB_TLS": "verify"}, "DB_TLS_CA"),
        ({"DB_TLS": "verify", "DB_TLS_CA": "/nonexistent/ca.pem"}, "DB_TLS_CA"),
        ({"BATCH_SIZE": "0"}, "BATCH_SIZE"),
    ],
)
def test_invalid_values_are_named(overrides: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        consumer_settings({**BASE, **overrides})


def test_secrets_not_in_repr() -> None:
    s = producer_settings(
        {**BASE, "REDIS_URL": "rediss://user:hunter2@cache:6379", "DB_PASSWORD": "hunter2"}
    )
    assert "hunter2" not in repr(s)
    assert redact_url("rediss://u:p@h:1/0") == "rediss://***@h:1/0"


@pytest.mark.parametrize("module", ["apps.producer", "apps.consumer"])
def test_service_refuses_to_start_without_config(module: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_"))}
    env.update({"REDIS_URL": "redis://127.0.0.1:1/0", "DB_NAME": "x", "DB_USER": "u"})
    env["DB_PASSWORD"] = ""
    result = subprocess.run(
        [sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "DB_HOST" in result.stderr


def test_healthcheck_cli(env: dict[str, str], spawn: Callable[..., Proc], tmp_path: Path) -> None:
    def run(url: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "apps.healthcheck", url], cwd=ROOT, timeout=30
        ).returncode

    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "tmp").mkdir()
    penv = {**env, "PORT": str(port), "BIND_HOST": "127.0.0.1",
            "HOME": str(home), "TMPDIR": str(tmp_path / "tmp")}  # fmt: skip
    producer = spawn("apps.producer", penv)
    wait_port(port, 30, producer.popen)
    assert run(f"http://127.0.0.1:{port}/health") == 0
    assert run(f"http://127.0.0.1:{port}/nope") == 1
    assert run(f"http://127.0.0.1:{free_port()}/health") == 1
    assert run("not-a-url") == 1
    # the server wrote nothing to disk (read-only root filesystem friendly)
    assert list(home.iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_served_producer_end_to_end(env: dict[str, str], spawn: Callable[..., Proc]) -> None:
    port = free_port()
    penv = {**env, "PORT": str(port), "BIND_HOST": "127.0.0.1"}
    producer = spawn("apps.producer", penv)
    wait_port(port, 30, producer.popen)
    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(base + "/") as resp:  # noqa: S310
        assert resp.status == 200
        assert resp.read() == b""
    code, body = http_json(
        base + "/count",
        data=json.dumps({"count": 5}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert code == 202
    assert body["id"]
    code, body = http_json(base + "/count", data=b"x" * 5000,
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert code == 413
    producer.signal(signal.SIGTERM)
    assert producer.wait(30) == 0


def test_docker_requirements_cover_the_dependency_closure() -> None:
    """The Dockerfiles install APP_PACKAGES with --no-deps: it must be closed under deps."""
    import importlib.metadata as md
    import re

    from packaging.markers import Marker

    from apps.devtools.lockreq import APP_PACKAGES, APP_ROOTS, requirements

    closure: set[str] = set()
    todo = list(APP_ROOTS)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in closure:
            continue
        closure.add(name)
        for req in md.requires(name) or []:
            spec, _, marker = req.partition(";")
            if marker and not Marker(marker).evaluate({"extra": ""}):
                continue
            todo.append(re.split(r"[ <>=!~\[(]", spec.strip())[0])
    assert closure <= set(APP_PACKAGES)
    text = requirements((ROOT / "Pipfile.lock").read_text())
    assert all("--hash=sha256:" in line for line in text.splitlines())


def test_an_invalid_value_names_the_variable_the_value_and_the_fix() -> None:
    """The apps raise the stacks' error type, in the same shape: where, field, value, fix."""
    from constructs_lib.errors import ConfigError as StackConfigError

    assert StackConfigError is ConfigError
    with pytest.raises(ConfigError, match=r"^environment\.DB_PORT: got 70000, use 1 to 65535$"):
        consumer_settings({**BASE, "DB_PORT": "70000"})
    with pytest.raises(ConfigError, match=r"^environment\.REDIS_URL: got nothing, set it"):
        consumer_settings({k: v for k, v in BASE.items() if k != "REDIS_URL"})
