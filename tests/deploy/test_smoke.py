"""The deploy smoke test (tools/deploy/smoke.py) against the local platform.

Real servers, no mocks: a module-scoped world (TLS Redis in cluster mode, TLS MariaDB,
local Secrets Manager; apps.devtools.servers), the producer, the consumer and the frontend
dev server, which forwards ``/api/*`` to the producer as CloudFront does. The smoke test
talks only to the dev server's URL, as a deploy talks to ``https://<dist>.cloudfront.net``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from apps.devtools.servers import RedisShape, World, free_port, start_world, wait_port
from tests.apps.appsupport import Proc, db_values
from tools.deploy.smoke import SmokeResult, main, smoke_test

DB_NAME = "smoke_test"
_SEQUENCE = itertools.count(1)


def spawn(module: str, env: dict[str, str], log_dir: Path, args: list[str] | None = None) -> Proc:
    """The app tests' ``Proc``, with a name unique in ``log_dir``."""
    name = f"{module.rsplit('.', 1)[-1]}-{next(_SEQUENCE)}"
    return Proc(module, env, log_dir, name, args)


@dataclass
class Platform:
    world: World
    base_url: str
    """The dev server: static files plus ``/api/*`` forwarded to the producer."""
    consumer_port: int
    service_env: dict[str, str]
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)
    consumer: Proc | None = None

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.logs()}" for p in self.procs)

    def stored_values(self) -> list[int]:
        """What the counts table holds, read as the master user (the harness)."""
        return db_values(self.world.maria, DB_NAME)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("smoke-world"), RedisShape.CLUSTER)
    try:
        w.provision_database(DB_NAME)
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def platform(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The producer and the dev server in front of it; the consumer is per test."""
    log_dir = tmp_path_factory.mktemp("smoke-logs")
    # world.app_env includes the Secrets Manager runtime env (endpoint, region, credentials).
    service_env = {
        **world.app_env(DB_NAME),
        "ENVIRONMENT": "local",
        "BIND_HOST": "127.0.0.1",
        "METRICS_INTERVAL": "60",
    }
    consumer_port = free_port()
    producer_port = free_port()
    web_port = free_port()
    plat = Platform(world, f"http://127.0.0.1:{web_port}", consumer_port, service_env, log_dir)
    try:
        producer = spawn(
            "apps.producer",
            {
                **service_env,
                "PORT": str(producer_port),
                "CONSUMER_URL": f"http://127.0.0.1:{consumer_port}",
                "STATUS_TIMEOUT_S": "2",
            },
            log_dir,
        )
        plat.procs.append(producer)
        wait_port(producer_port, timeout_s=30, proc=producer.popen)
        web = spawn(
            "apps.frontend.devserver",
            {},
            log_dir,
            ["--port", str(web_port), "--api", f"http://127.0.0.1:{producer_port}"],
        )
        plat.procs.append(web)
        wait_port(web_port, timeout_s=30, proc=web.popen)
        yield plat
    finally:
        for proc in reversed(plat.procs):
            proc.stop()


@pytest.fixture
def consumer(platform: Platform) -> Iterator[Proc]:
    """The consumer for one test, SIGTERMed afterwards (later tests run without one)."""
    env = {
        **platform.service_env,
        "PORT": str(platform.consumer_port),
        "BLOCK_MS": "200",
        "BACKOFF_MAX_S": "0.5",
    }
    proc = spawn("apps.consumer", env, platform.log_dir)
    platform.procs.append(proc)
    platform.consumer = proc
    try:
        wait_port(platform.consumer_port, timeout_s=30, proc=proc.popen)
        yield proc
    finally:
        proc.stop()
        platform.consumer = None


def explain(result: SmokeResult, platform: Platform | None = None) -> str:
    text = "\n".join(result.steps) + f"\nerror: {result.error}"
    return text + ("\n" + platform.logs() if platform is not None else "")


def test_smoke_passes_and_the_value_is_stored(platform: Platform, consumer: Proc) -> None:
    value = 4_200_000_000_001
    result = smoke_test(platform.base_url, timeout_s=40, interval_s=0.2, value=value)

    assert result.ok, explain(result, platform)
    assert result.error is None
    checks = [step.split(":", 1)[0] for step in result.steps]
    assert checks == ["ready", "health", "count before", "post", "stored", "status"], checks
    assert "Idempotency-Key: smoke-4200000000001 -> 202" in result.steps[3]
    assert "status=ok" in result.steps[-1]
    assert platform.stored_values().count(value) == 1


def test_main_prints_each_step_and_exits_0(
    platform: Platform, consumer: Proc, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([platform.base_url, "--timeout", "40"])

    out = capsys.readouterr().out
    assert code == 0, out + platform.logs()
    lines = out.splitlines()
    assert [line.split(":", 1)[0] for line in lines[:6]] == [
        "ready", "health", "count before", "post", "stored", "status",
    ]  # fmt: skip
    assert lines[-1] == "smoke test passed"


def test_without_a_consumer_fails_at_the_storing_step(platform: Platform) -> None:
    # Never started in this test; when an earlier test ran one, it was SIGTERMed.
    assert platform.consumer is None
    value = 4_200_000_000_002

    result = smoke_test(platform.base_url, timeout_s=8, interval_s=0.3, value=value)

    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("storing: the consumer did not store the value"), explain(
        result, platform
    )
    assert "check the consumer service's logs" in result.error
    assert result.steps[-1].startswith("stored: FAILED (")
    # The producer side worked: ready, health and the POST passed before the failure.
    assert [step.split(":", 1)[0] for step in result.steps[:-1]] == [
        "ready", "health", "count before", "post",
    ], explain(result)  # fmt: skip
    assert value not in platform.stored_values()


def test_an_unhealthy_status_fails_and_reports_the_body(platform: Platform) -> None:
    # A consumer that stores values but is not where the producer looks for its health
    # (CONSUMER_URL): the value is stored, then /api/status says "degraded".
    port = free_port()
    proc = spawn("apps.consumer", {**platform.service_env, "PORT": str(port)}, platform.log_dir)
    platform.procs.append(proc)
    try:
        wait_port(port, timeout_s=30, proc=proc.popen)
        value = 4_200_000_000_003

        result = smoke_test(platform.base_url, timeout_s=30, interval_s=0.2, value=value)
    finally:
        proc.stop()

    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("status: GET /api/status -> status=degraded"), explain(
        result, platform
    )
    assert "consumer: healthy=False (unreachable:" in result.error
    assert '"consumer":{"url":"http://127.0.0.1:' in result.error  # the body is reported
    assert platform.stored_values().count(value) == 1


def test_a_rejected_post_fails_naming_the_status_and_body(platform: Platform) -> None:
    result = smoke_test(platform.base_url, timeout_s=8, interval_s=0.3, value=2**63)

    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("post: POST /api/count answered 422"), explain(result)
    assert "count must be an integer" in result.error


def test_an_unreachable_url_fails_at_readiness_without_raising() -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    result = smoke_test(base, timeout_s=1.5, interval_s=0.3)

    assert not result.ok
    assert result.error is not None
    assert result.error.startswith(f"readiness: {base}/api/ready did not answer 200"), result.error
    assert "no answer" in result.error
    assert len(result.steps) == 1
    assert result.steps[0].startswith("ready: FAILED (")


def test_main_exits_1_on_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([f"http://127.0.0.1:{free_port()}", "--timeout", "0.5"])

    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[0].startswith("ready: FAILED (")
    assert out.splitlines()[-1].startswith("smoke test failed: readiness: http://127.0.0.1:")


def test_an_invalid_url_fails_without_raising() -> None:
    result = smoke_test("cloudfront.net", timeout_s=1)

    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("url: invalid base URL")
    assert result.steps == ("url: FAILED",)
