"""Benchmarks: ``pipenv run python -m bench`` (prints figures, never fails on timing).

1. Consumer drain rate: the real consumer code (batched XREADGROUP -> one INSERT per batch ->
   COMMIT -> XACK/XDEL) versus the original design without its 5 s sleep (pop one value,
   insert one row, commit), on the same local redis-server and MariaDB in the same run.
2. Producer: POST /count requests/s and p50/p99 latency against the served producer.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from apps.common import contract, redisq
from apps.common.errors import ConfigError, env_error
from apps.consumer.settings import load_settings
from apps.consumer.worker import Consumer
from apps.devtools.servers import (
    MariaDBServer,
    RedisShape,
    World,
    free_port,
    start_world,
    wait_port,
)

ROOT = Path(__file__).resolve().parents[1]
DB = "bench"
STREAM = contract.QUEUE_STREAM
ENV_ERRORS: list[ConfigError] = []
"""Wrong ``BENCH_*`` variables, reported by :func:`main` (one line each) before any server
starts."""


def _count(name: str, default: int) -> int:
    """The whole number ``name`` sets (at least 1), else ``default`` with the error kept."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if raw.isdigit() and int(raw) >= 1:
        return int(raw)
    ENV_ERRORS.append(
        env_error(
            name, repr(raw), f"use a whole number of at least 1 or unset it (default {default})"
        )
    )
    return default


BATCHED_N = _count("BENCH_BATCHED_N", 100000)
BASELINE_N = _count("BENCH_BASELINE_N", 2000)
HTTP_REQUESTS = _count("BENCH_HTTP_REQUESTS", 4000)
HTTP_CLIENTS = _count("BENCH_HTTP_CLIENTS", 8)
HTTP_ROUNDS = _count("BENCH_HTTP_ROUNDS", 3)  # one round is noisy on 2 cores
TIME_CAP_S = 45.0  # per measurement; figures are computed from what finished


def reset(world: World) -> None:
    """An empty queue and a freshly provisioned database (schema + app user)."""
    admin = world.redis.client()
    admin.flushall()
    admin.close()
    world.provision_database(DB, drop=True)


def rows(maria: MariaDBServer) -> int:
    conn = maria.root_connect(DB)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM counts")
        row = cur.fetchone()
    conn.close()
    return int(row[0]) if row else 0


def env_for(world: World) -> dict[str, str]:
    """The services' settings: TLS to both servers, as the least-privilege app users."""
    return {**world.app_env(DB), "ENVIRONMENT": "bench"}


def bench_batched(world: World, client: redis.Redis) -> float:
    m = world.maria
    reset(world)
    pipe = client.pipeline(transaction=False)
    for v in range(BATCHED_N):
        pipe.xadd(STREAM, {"key": redisq.new_key(), "count": str(v), "ts": "0"})
    pipe.execute()
    settings = load_settings({**env_for(world), "BLOCK_MS": "100"})  # the service's batch size
    consumer = Consumer(settings)
    worker = threading.Thread(target=consumer.run)
    start = time.perf_counter()
    worker.start()
    deadline = start + TIME_CAP_S
    while consumer.stats.snapshot()["processed"] < BATCHED_N and time.perf_counter() < deadline:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    consumer.stop.set()
    worker.join(30)
    done = rows(m)
    return done / elapsed


def bench_one_at_a_time(world: World, client: redis.Redis) -> float:
    """The original consumer without its sleep: BLPOP one, INSERT one, COMMIT.

    ``client`` is the harness's admin user: the list is the original design's, outside
    the app user's ACL."""
    m = world.maria
    reset(world)
    pipe = client.pipeline(transaction=False)
    for v in range(BASELINE_N):
        pipe.rpush("bench_list", v)
    pipe.execute()
    conn = m.root_connect(DB)
    conn.autocommit(False)
    done = 0
    start = time.perf_counter()
    deadline = start + TIME_CAP_S
    with conn.cursor() as cur:
        while done < BASELINE_N and time.perf_counter() < deadline:
            item = client.blpop(["bench_list"], timeout=1)
            if item is None:
                break
            cur.execute(
                "INSERT INTO counts (msg_key, value) VALUES (%s, %s)",
                (redisq.new_key(), int(item[1])),
            )
            conn.commit()
            done += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return done / elapsed


def bench_producer(world: World, client: redis.Redis) -> dict[str, float]:
    reset(world)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_"))}
    env.update(env_for(world))
    env.update({"PORT": str(port), "BIND_HOST": "127.0.0.1", "LOG_LEVEL": "warning"})  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.producer"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    try:
        wait_port(port, 30, proc)  # type: ignore[arg-type]
        per_client = HTTP_REQUESTS // HTTP_CLIENTS
        deadline = time.perf_counter() + TIME_CAP_S

        def load(worker: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine: list[float] = []
            for i in range(per_client):
                if time.perf_counter() > deadline:
                    break
                body = json.dumps({"count": worker * 1_000_000 + i})
                t0 = time.perf_counter()
                try:
                    conn.request("POST", "/count", body, {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status == 202
                except OSError:
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                mine.append(time.perf_counter() - t0)
                if not ok:
                    with lock:
                        errors[0] += 1
            conn.close()
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=load, args=(w,)) for w in range(HTTP_CLIENTS)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(30)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "enqueued": int(client.xlen(STREAM)),
    }


def main() -> int:
    if ENV_ERRORS:
        for error in ENV_ERRORS:
            print(f"error: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        base = Path(tmp)
        world = start_world(base, RedisShape.CLUSTER)
        os.environ.update(world.secrets.runtime_env())  # the in-process consumer's "task"
        client = world.redis.client(world.queue_user, decode_responses=True)
        admin = world.redis.client(decode_responses=True)
        try:
            print(
                f"cpus={os.cpu_count()} redis cluster mode, TLS, ACL app user, AOF "
                "appendfsync=always; MariaDB TLS (verified), InnoDB flush at commit=1"
            )
            batched = bench_batched(world, client)
            batch = load_settings(env_for(world)).batch_size
            print(f"consumer (batched, real code, batch {batch}): {batched:,.0f} values/s "
                  f"over {BATCHED_N} values")  # fmt: skip
            single = bench_one_at_a_time(world, admin)
            print(f"one-at-a-time baseline (pop, insert, commit): {single:,.0f} values/s "
                  f"over {BASELINE_N} values")  # fmt: skip
            print(f"speed-up: {batched / single:.1f}x (target >= 20x)")
            runs = [bench_producer(world, client) for _ in range(HTTP_ROUNDS)]
            for prod in runs:
                print(
                    f"producer POST /count (waitress, 8 threads, {HTTP_CLIENTS} client "
                    f"threads, keep-alive): {prod['rps']:,.0f} req/s, p50 {prod['p50_ms']:.1f} "
                    f"ms, p99 {prod['p99_ms']:.1f} ms, {prod['requests']:.0f} requests, "
                    f"{prod['errors']:.0f} errors, {prod['enqueued']:.0f} enqueued"
                )
            median = statistics.median(r["rps"] for r in runs)
            print(f"producer median of {HTTP_ROUNDS} rounds: {median:,.0f} req/s")
        finally:
            client.close()
            admin.close()
            world.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
