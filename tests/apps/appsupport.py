"""Helpers shared by the application tests (imported as ``appsupport``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import redis

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` from the repo root does not put it on sys.path
    sys.path.insert(0, str(ROOT))

from apps.common import redisq  # noqa: E402
from apps.devtools.servers import MariaDBServer, free_port, wait_port  # noqa: E402

DB_NAME = "apps_test"
STREAM = "counts"
GROUP = "consumers"


def db_values(maria: MariaDBServer) -> list[int]:
    conn = maria.root_connect(DB_NAME)
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
        _eid, key = redisq.enqueue(client, STREAM, v)
        keys.append(key)
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
