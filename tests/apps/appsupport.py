"""Helpers shared by the application tests (imported as ``appsupport``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import redis

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` from the repo root does not put it on sys.path
    sys.path.insert(0, str(ROOT))

from apps.common import contract, redisq  # noqa: E402
from apps.consumer.worker import Consumer  # noqa: E402
from apps.devtools.servers import MariaDBServer, World, free_port, wait_port  # noqa: E402

DB_NAME = "apps_test"
STREAM = contract.QUEUE_STREAM
GROUP = contract.QUEUE_GROUP
DEAD_STREAM = contract.dead_letter_stream(STREAM)

TEST_TUNING = frozenset(
    {
        "BIND_HOST", "THREADS", "BATCH_SIZE", "BLOCK_MS", "CLAIM_IDLE_MS",
        "CLAIM_INTERVAL_MS", "METRICS_INTERVAL", "BACKOFF_MAX_S", "DB_CONNECT_TIMEOUT_S",
        "REDIS_SOCKET_TIMEOUT_S", "STATUS_TIMEOUT_S", "ENQUEUE_BACKOFF_MS",
    }
)  # fmt: skip
"""Variables the tests add to a task definition's environment: timing knobs the settings
read with production defaults (shorter here so that tests finish in seconds)."""
CONSUMER_TUNING = {
    "BATCH_SIZE": "50",
    "BLOCK_MS": "200",
    "CLAIM_IDLE_MS": "1000",
    "CLAIM_INTERVAL_MS": "300",
    "METRICS_INTERVAL": "0.5",
    "BACKOFF_MAX_S": "0.5",
    "DB_CONNECT_TIMEOUT_S": "2",
    "REDIS_SOCKET_TIMEOUT_S": "2",
}
"""The consumer's knobs in tests: small batches, quick reclaim, frequent metrics."""


@dataclass(frozen=True)
class TaskEnvironment:
    """One container's ``environment`` and ``secrets`` as the synthesized task definition
    gives them: ``values`` by name, and ``secrets`` as name -> (secret name, JSON key)."""

    container: str
    values: dict[str, str]
    secrets: dict[str, tuple[str, str]]
    secret_arns: dict[str, str]
    """Variables whose value is the ARN of a secret: name -> secret name."""

    @property
    def names(self) -> set[str]:
        return set(self.values) | set(self.secrets) | set(self.secret_arns)


_SECRET_REF = re.compile(r"^\$\{aws_secretsmanager_secret\.([^.}]+)\.arn\}:([A-Za-z0-9_]+)::$")
_SECRET_ARN = re.compile(r"^\$\{aws_secretsmanager_secret\.([^.}]+)\.arn\}$")


def task_environment(stack: dict[str, Any], container: str) -> TaskEnvironment:
    """Read ``container``'s environment from a synthesized stack's task definitions."""
    secrets_by_id = stack["resource"]["aws_secretsmanager_secret"]
    for task in stack["resource"]["aws_ecs_task_definition"].values():
        for definition in json.loads(task["container_definitions"]):
            if definition["name"] != container:
                continue
            values = {e["name"]: e["value"] for e in definition.get("environment", [])}
            arns = {}
            for name, value in list(values.items()):
                if match := _SECRET_ARN.match(value):
                    arns[name] = secrets_by_id[match[1]]["name"]
                    del values[name]
            secrets = {}
            for s in definition.get("secrets", []):
                match = _SECRET_REF.match(s["valueFrom"])
                assert match, f"{container}: unexpected secret reference {s['valueFrom']!r}"
                secrets[s["name"]] = (secrets_by_id[match[1]]["name"], match[2])
            return TaskEnvironment(container, values, secrets, arns)
    raise KeyError(f"no container {container!r} in the stack's task definitions")


def localize(task: TaskEnvironment, world: World, database: str) -> dict[str, str]:
    """The task's environment with every endpoint and credential pointed at ``world``.

    Names are the task definition's, exactly. Values that name an AWS endpoint, a file in
    the image, or a secret are replaced by their local counterparts; every other value
    (stream, TLS mode, environment, log level, ...) is the deployed one, unchanged.
    Fails on a name it does not know how to localize, so a new variable in a task
    definition cannot slip past the app tests.
    """
    local = world.app_env(database)
    endpoint = {
        "REDIS_URL", "REDIS_TLS_CA", "DB_HOST", "DB_PORT", "DB_NAME", "DB_TLS_CA",
    }  # fmt: skip
    per_test = {"PORT": str(free_port()), "CONSUMER_URL": "http://127.0.0.1:9"}
    out: dict[str, str] = {}
    for name, value in task.values.items():
        if name in endpoint:
            if name == "REDIS_URL":
                assert value.startswith("rediss://"), f"{task.container}: {name}={value!r}"
            out[name] = local[name]
        elif name in per_test:
            out[name] = per_test[name]
        else:
            assert "${" not in value, f"{task.container}: don't know how to localize {name}"
            out[name] = value
    credentials = {
        "queue": {"username": world.queue_user.name, "password": world.queue_user.password},
        "db": {"username": world.db_user, "password": world.db_password},
    }
    for name, (secret, key) in task.secrets.items():
        out[name] = credentials[_secret_kind(task, name, secret)][key]
    local_secret = {"queue": world.queue_secret, "db": world.db_secret}
    for name, secret in task.secret_arns.items():
        out[name] = local_secret[_secret_kind(task, name, secret)]
    if task.secret_arns:
        out.update(world.secrets.runtime_env())
    return out


RUNTIME_ENV = frozenset(
    {"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_REGION", "AWS_DEFAULT_REGION",
     "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
)  # fmt: skip
"""What the ECS runtime gives every task besides its definition (a region and the task
role's credentials), stood in for locally by :meth:`SecretsManager.runtime_env`."""


def _secret_kind(task: TaskEnvironment, name: str, secret: str) -> str:
    kind = "queue" if "/queue/" in secret else "db" if "/mysql/" in secret else None
    assert kind, f"{task.container}: {name} comes from an unknown secret {secret!r}"
    return kind


def db_values(maria: MariaDBServer, db_name: str = DB_NAME) -> list[int]:
    """The stored values, read as the master user (the harness, not the app)."""
    conn = maria.root_connect(db_name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT value FROM counts ORDER BY id")
            return [int(row[0]) for row in cur.fetchall()]
    finally:
        conn.close()


def db_rows(maria: MariaDBServer) -> int:
    try:
        conn = maria.root_connect(DB_NAME)
    except pymysql.err.OperationalError:
        return -1
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM counts")
            row = cur.fetchone()
            return int(row[0]) if row else 0
    finally:
        conn.close()


def enqueue_values(client: redis.Redis, values: list[int]) -> list[str]:
    """Enqueue through the producer's own enqueue function; returns the idempotency keys."""
    keys = []
    for v in values:
        keys.append(redisq.enqueue(client, STREAM, v).key)
    return keys


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 60.0, interval_s: float = 0.1
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def http_json(url: str, timeout_s: float = 5.0, data: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    req = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Proc:
    """A service run as a real subprocess (``python -m ...``)."""

    def __init__(self, module: str, env: dict[str, str], log_dir: Path, name: str,
                 args: list[str] | None = None) -> None:  # fmt: skip
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.out_path = log_dir / f"{name}.out"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_"))}
        full_env.update(env)
        full_env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as err, self.out_path.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", module, *(args or [])],
                cwd=ROOT, env=full_env, stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        return self.popen.wait(timeout_s)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def log_lines(self) -> list[dict[str, Any]]:
        """Every complete stderr line, parsed: the services log one JSON object per line (a
        last line still being written, or cut by a SIGKILL, is left out)."""
        text = self.log_path.read_text(errors="replace")
        lines = []
        for number, line in enumerate(text[: text.rfind("\n") + 1].splitlines()):
            try:
                lines.append(json.loads(line))
            except ValueError:
                raise AssertionError(
                    f"{self.name} stderr line {number + 1} is not JSON: {line!r}"
                ) from None
        return lines

    def logged(self, level: str, message_start: str) -> bool:
        """Some stderr line at ``level`` has a message starting with ``message_start``."""
        return any(
            line["level"] == level and line["message"].startswith(message_start)
            for line in self.log_lines()
        )

    def stdout_lines(self) -> list[str]:
        return self.out_path.read_text(errors="replace").splitlines()


def start_consumer(
    spawn: Callable[..., Proc], consumer_env: dict[str, str], **overrides: str
) -> tuple[Proc, str]:
    env = {**consumer_env, **overrides}
    if "PORT" in overrides:
        pass
    else:
        env["PORT"] = str(free_port())
    proc = spawn("apps.consumer", env)
    wait_port(int(env["PORT"]), timeout_s=30, proc=proc.popen)  # type: ignore[arg-type]
    return proc, f"http://127.0.0.1:{env['PORT']}"


def backlog_zero(client: redis.Redis) -> bool:
    try:
        groups = client.xinfo_groups(STREAM)
    except redis.RedisError:
        return False
    for g in groups:
        if g["name"] == GROUP:
            return (
                int(g["pending"]) == 0 and int(g.get("lag") or 0) == 0 and client.xlen(STREAM) == 0
            )
    return False


def drain(consumer: Consumer, rounds: int = 200) -> None:
    """Run the consumer loop steps until nothing is left (bounded)."""
    consumer._db()
    consumer._ensure_group()
    idle = 0
    for _ in range(rounds):
        consumer._next_claim = 0.0
        handled = consumer.step()
        idle = idle + 1 if handled == 0 else 0
        if idle >= 3:
            return


# --- the dead-letter replay, as the operator runs it --------------------------------------

QUEUE_VARS = ("REDIS_", "QUEUE_", "AWS_")
"""The replay is given only the queue's variables (and the task's AWS runtime): no DB_*."""


@dataclass(frozen=True)
class Run:
    code: int
    out: list[dict[str, Any]]
    err: str


def replay(env: dict[str, str], *args: str, timeout_s: float = 120) -> Run:
    """``python -m apps.consumer.replay ARGS`` with the queue part of ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", *QUEUE_VARS))}
    full.update({k: v for k, v in env.items() if k.startswith(QUEUE_VARS)})
    result = subprocess.run(
        [sys.executable, "-m", "apps.consumer.replay", *args], cwd=ROOT, env=full,
        capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    return Run(result.returncode, [json.loads(line) for line in result.stdout.splitlines()],
               result.stderr)  # fmt: skip


def reject_values(maria: MariaDBServer, condition: str) -> None:
    """The database refuses rows matching ``condition`` as a data error (the consumer then
    dead-letters them): a stand-in for a schema problem an operator can fix."""
    conn = maria.root_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TRIGGER poison BEFORE INSERT ON counts FOR EACH ROW "
                f"IF {condition} THEN SIGNAL SQLSTATE '22003' "
                "SET MYSQL_ERRNO = 1264, MESSAGE_TEXT = 'poison value'; END IF"
            )
    finally:
        conn.close()


def fix_cause(maria: MariaDBServer) -> None:
    conn = maria.root_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TRIGGER poison")
    finally:
        conn.close()
