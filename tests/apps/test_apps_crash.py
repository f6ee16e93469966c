"""Crash tests: the real consumer process (``python -m apps.consumer``) against real
servers that get killed and restarted. Every accepted value must be stored exactly once."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import redis
from appsupport import (
    GROUP,
    STREAM,
    Proc,
    backlog_zero,
    db_rows,
    db_values,
    enqueue_values,
    http_json,
    start_consumer,
    wait_until,
)

from apps.common import redisq
from apps.devtools.servers import MariaDBServer, RedisServer, World

pytestmark = pytest.mark.crash


def assert_drained_exactly_once(
    rclient: redis.Redis, maria: MariaDBServer, accepted: list[int], procs: list[Proc]
) -> None:
    done = wait_until(lambda: backlog_zero(rclient) and db_rows(maria) >= len(accepted), 120, 0.2)
    logs = "\n".join(p.logs() for p in procs)
    assert done, f"not drained: rows={db_rows(maria)} of {len(accepted)}\n{logs}"
    stored = Counter(db_values(maria))
    expected = Counter(accepted)
    missing = expected - stored
    extra = stored - expected
    assert not missing, f"lost {sum(missing.values())} values"
    assert not extra, f"{sum(extra.values())} duplicated/unexpected values"


def test_sigkill_mid_batch_and_restart(
    rclient: redis.Redis,
    maria: MariaDBServer,
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
) -> None:
    values = list(range(3000))
    enqueue_values(rclient, values)
    procs = []
    for threshold in (200, 1200, 2000):
        proc, _url = start_consumer(spawn, consumer_env)
        procs.append(proc)
        assert wait_until(lambda t=threshold: db_rows(maria) >= t, 60, 0.01), proc.logs()
        proc.signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    final, _ = start_consumer(spawn, consumer_env)
    assert_drained_exactly_once(rclient, maria, values, [*procs, final])


def test_sigterm_exits_zero_and_loses_nothing(
    rclient: redis.Redis,
    maria: MariaDBServer,
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
) -> None:
    values = list(range(-1000, 1000))
    enqueue_values(rclient, values)
    proc, _ = start_consumer(spawn, consumer_env)
    assert wait_until(lambda: db_rows(maria) >= 100, 60, 0.01)
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.logs()
    assert any(
        line["level"] == "INFO" and re.fullmatch(r"consumer \S+ stopped", line["message"])
        for line in proc.log_lines()
    ), proc.logs()
    for line in proc.stdout_lines():  # stdout carries only EMF records
        assert "_aws" in json.loads(line)
    final, _ = start_consumer(spawn, consumer_env)
    assert_drained_exactly_once(rclient, maria, values, [proc, final])
    final.signal(signal.SIGTERM)
    assert final.wait(30) == 0


def test_two_consumers_share_the_work(
    rclient: redis.Redis,
    maria: MariaDBServer,
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
) -> None:
    values = list(range(4000))
    a, url_a = start_consumer(spawn, consumer_env)
    b, url_b = start_consumer(spawn, consumer_env)
    enqueue_values(rclient, values)
    assert_drained_exactly_once(rclient, maria, values, [a, b])
    processed = [http_json(f"{u}/metrics")[1]["processed"] for u in (url_a, url_b)]
    assert sum(processed) >= len(values)
    print(f"work split between two consumers: {processed}")


def _feed(
    client: redis.Redis, values: list[int], accepted: list[int], stop: threading.Event
) -> None:
    """Enqueue one by one with the producer's enqueue; remember what was accepted."""
    for v in values:
        if stop.is_set():
            return
        try:
            redisq.enqueue(client, STREAM, v, attempts=1)
            accepted.append(v)
        except redisq.EnqueueError:
            time.sleep(0.01)


def _feed_through_a_restart(
    client: redis.Redis,
    values: list[int],
    maria: MariaDBServer,
    server: MariaDBServer | RedisServer,
) -> list[int]:
    """Feed ``values`` while ``server`` is killed (SIGKILL) and restarted once 300 rows are
    stored; returns the values the queue accepted."""
    accepted: list[int] = []
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(client, values, accepted, stop))
    feeder.start()
    try:
        assert wait_until(lambda: db_rows(maria) >= 300, 60, 0.01)
        server.kill()
        time.sleep(1.0)
        server.start()
        feeder.join(120)
    finally:
        stop.set()
        feeder.join(10)
    return accepted


def test_mariadb_restart_mid_stream(
    rclient: redis.Redis,
    maria: MariaDBServer,
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
) -> None:
    proc, _ = start_consumer(spawn, consumer_env)
    values = list(range(3000))
    # InnoDB crash recovery on the restart
    accepted = _feed_through_a_restart(rclient, values, maria, maria)
    assert len(accepted) == len(values)  # Redis stayed up: everything was accepted
    assert_drained_exactly_once(rclient, maria, accepted, [proc])
    assert proc.logged("WARNING", "database unavailable")


def test_redis_restart_with_aof_mid_stream(
    world: World,
    maria: MariaDBServer,
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
) -> None:
    redis_srv = world.redis
    proc, url = start_consumer(spawn, consumer_env)
    feed_client = redis_srv.client(world.queue_user, decode_responses=True, socket_timeout=2)
    values = list(range(10_000, 13_000))
    # appendfsync always keeps every write Redis acknowledged before the SIGKILL
    accepted = _feed_through_a_restart(feed_client, values, maria, redis_srv)
    rclient = redis_srv.client(world.queue_user, decode_responses=True)
    # A value whose XADD reply was lost in the kill may still have been stored: it was not
    # "accepted", so it may appear at most once; every accepted value must appear exactly once.
    done = wait_until(lambda: backlog_zero(rclient) and db_rows(maria) >= len(accepted), 120, 0.2)
    assert done, _state(rclient, maria, url, len(accepted)) + proc.logs()
    stored = Counter(db_values(maria))
    assert all(n == 1 for n in stored.values()), "duplicates stored"
    assert not Counter(accepted) - stored, "accepted values lost"
    assert set(stored) <= set(values)
    assert len(stored) - len(accepted) <= 1
    assert proc.logged("WARNING", "redis unavailable")
    rclient.close()
    feed_client.close()


def _state(client: redis.Redis, maria: MariaDBServer, url: str, accepted: int) -> str:
    """What a failed wait saw: the group, the table and the consumer's own view."""
    parts = [f"accepted={accepted} rows={db_rows(maria)}"]
    for name, probe in (
        ("groups", lambda: client.xinfo_groups(STREAM)),
        ("xlen", lambda: client.xlen(STREAM)),
        ("consumers", lambda: client.xinfo_consumers(STREAM, GROUP)),
        ("health", lambda: http_json(f"{url}/health")),
        ("metrics", lambda: http_json(f"{url}/metrics")),
    ):
        try:
            parts.append(f"{name}={probe()}")
        except Exception as exc:  # a diagnostic, never the failure itself
            parts.append(f"{name}: {exc!r}")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------ SIGTERM whatever happens

STOP_BOUND_S = 25
"""What a stopping consumer must stay under: ECS's default stop timeout is 30 s."""
PRODUCTION_TIMING = {
    "BLOCK_MS": "2000", "REDIS_SOCKET_TIMEOUT_S": "5", "DB_CONNECT_TIMEOUT_S": "5",
    "BACKOFF_MAX_S": "5", "METRICS_INTERVAL": "60",
}  # fmt: skip
"""The settings' defaults for what the tests otherwise shorten: the stop bound must hold
with the timeouts a task runs with."""


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a server stopped or partitioned
    mid-handshake): every connect succeeds, every read waits for its timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def stops_within_bound(proc: Proc) -> bool:
    proc.signal(signal.SIGTERM)
    try:
        proc.wait(STOP_BOUND_S)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_sigterm_stops_the_consumer_while_redis_never_answers(
    consumer_env: dict[str, str], spawn: Callable[..., Proc]
) -> None:
    """Redis accepts and then says nothing (the reconnect waits in a TLS handshake)."""
    with black_hole() as port:
        env = {**consumer_env, **PRODUCTION_TIMING, "REDIS_URL": f"rediss://127.0.0.1:{port}"}
        proc, _ = start_consumer(spawn, env)
        assert wait_until(lambda: proc.logged("WARNING", "redis unavailable"), 60), proc.logs()
        assert stops_within_bound(proc), f"still running after SIGTERM\n{proc.logs()}"
    assert proc.logged("INFO", "signal 15 received")


def test_sigterm_stops_the_consumer_while_redis_is_frozen(
    consumer_env: dict[str, str], spawn: Callable[..., Proc], redis_srv: RedisServer,
    rclient: redis.Redis,
) -> None:  # fmt: skip
    """Redis frozen (SIGSTOP) while the consumer runs: its reads time out, it reconnects."""
    proc, url = start_consumer(spawn, {**consumer_env, **PRODUCTION_TIMING})
    assert wait_until(lambda: http_json(f"{url}/health")[1]["status"] == "ok", 30)
    assert redis_srv.proc is not None
    redis_srv.proc.send_signal(signal.SIGSTOP)
    try:
        assert wait_until(lambda: proc.logged("WARNING", "redis unavailable"), 60), proc.logs()
        assert stops_within_bound(proc), f"still running after SIGTERM\n{proc.logs()}"
    finally:
        redis_srv.proc.send_signal(signal.SIGCONT)


def test_sigterm_stops_the_consumer_while_the_database_never_answers(
    consumer_env: dict[str, str], spawn: Callable[..., Proc], rclient: redis.Redis
) -> None:
    """The database accepts and then says nothing (a partition): the login waits on it."""
    enqueue_values(rclient, [1, 2, 3])
    with black_hole() as port:
        proc, _ = start_consumer(spawn, {**consumer_env, **PRODUCTION_TIMING, "DB_PORT": str(port)})
        time.sleep(3)  # in its first login, which reads for up to the read timeout
        assert stops_within_bound(proc), f"still running after SIGTERM\n{proc.logs()}"
