"""The API never lies: every answer matches what happened, under faults and abuse.

Each test reproduces a fault on the real servers (a frozen Redis, a deleted stream, a
database outage, a held row lock, slow and oversized clients) and checks that what the
producer and the consumer say is what the queue and the table then hold.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from appsupport import (
    DB_NAME,
    DEAD_STREAM,
    GROUP,
    STREAM,
    Proc,
    backlog_zero,
    db_values,
    drain,
    enqueue_values,
    http_json,
    start_consumer,
    wait_until,
)
from flask.testing import FlaskClient

from apps.common import contract, redisq
from apps.consumer.settings import load_settings as consumer_settings
from apps.consumer.worker import Consumer
from apps.devtools.servers import MariaDBServer, RedisServer, World, free_port, wait_port
from apps.producer import create_app, load_settings

JSON = {"Content-Type": "application/json"}


def client_for(env: dict[str, str], **overrides: str) -> FlaskClient:
    app = create_app(load_settings({**env, **overrides}))
    app.testing = True
    return app.test_client()


def post(client: FlaskClient, value: int, key: str | None = None) -> Any:
    headers = {contract.IDEMPOTENCY_HEADER: key} if key is not None else {}
    return client.post(
        "/count", data=json.dumps({"count": value}), content_type="application/json",
        headers=headers,
    )  # fmt: skip


def drain_with(env: dict[str, str]) -> None:
    consumer = Consumer(consumer_settings({**env, "BLOCK_MS": "50"}))
    try:
        drain(consumer)
    finally:
        consumer.close()


@contextlib.contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """Redis stopped mid-flight (SIGSTOP): connections stay open, nothing answers."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.proc.send_signal(signal.SIGCONT)


def serve_producer(spawn: Callable[..., Proc], env: dict[str, str], **extra: str) -> str:
    port = free_port()
    proc = spawn("apps.producer", {**env, "PORT": str(port), "BIND_HOST": "127.0.0.1", **extra})
    wait_port(port, 30, proc.popen)
    return f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------ 1. unknown outcomes


def test_frozen_queue_answer_says_unknown_and_a_retry_with_its_key_stores_once(
    env: dict[str, str], world: World, rclient: redis.Redis, maria: MariaDBServer
) -> None:
    client = client_for(
        env, REDIS_SOCKET_TIMEOUT_S="0.5", REDIS_CONNECT_TIMEOUT_S="0.5",
        ENQUEUE_ATTEMPTS="2", ENQUEUE_BACKOFF_MS="1",
    )  # fmt: skip
    assert post(client, 1).status_code == 202  # an open connection, as under load
    with frozen(world.redis):
        resp = post(client, 77)
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["outcome"] == "unknown"
    assert "may or may not" in body["error"]
    key = body["key"]
    assert resp.headers[contract.IDEMPOTENCY_HEADER] == key
    # Redis ran the command it had received when it resumed: the value is in the queue.
    assert wait_until(lambda: [f["count"] for _, f in rclient.xrange(STREAM)] == ["1", "77"], 5)
    retry = post(client, 77, key)
    assert retry.status_code == 202
    assert retry.get_json()["replayed"] is True
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert rclient.xlen(STREAM) == 2  # the retry added nothing
    drain_with(env)
    assert sorted(db_values(maria)) == [1, 77]


def test_queue_down_answer_is_definite_not_accepted(
    env: dict[str, str], rclient: redis.Redis
) -> None:
    dead = client_for(env, REDIS_URL=f"rediss://127.0.0.1:{free_port()}", ENQUEUE_BACKOFF_MS="1")
    resp = post(dead, 9, "order-9")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["outcome"] == "not_accepted"
    assert body["key"] == "order-9"
    assert resp.headers["Retry-After"] == "1"
    assert rclient.xlen(STREAM) == 0


# ------------------------------------------------------------------ 2. exact keys


def test_keys_that_differ_in_case_are_different_values(
    env: dict[str, str], rclient: redis.Redis, maria: MariaDBServer
) -> None:
    client = client_for(env)
    for value, key in ((1, "Order-42"), (2, "order-42"), (3, "ORDER-42")):
        resp = post(client, value, key)
        assert resp.status_code == 202
        assert resp.get_json()["replayed"] is False
    drain_with(env)
    assert sorted(db_values(maria)) == [1, 2, 3]


def test_key_reused_for_another_value_is_422_and_enqueues_nothing(
    env: dict[str, str], rclient: redis.Redis
) -> None:
    client = client_for(env)
    assert post(client, 5, "order-5").status_code == 202
    resp = post(client, 6, "order-5")
    assert resp.status_code == 422
    assert "already used for a different value" in resp.get_json()["error"]
    assert [f["count"] for _, f in rclient.xrange(STREAM)] == ["5"]
    again = post(client, 5, "order-5")  # the same value again is a replay
    assert again.status_code == 202
    assert again.get_json()["replayed"] is True
    assert rclient.xlen(STREAM) == 1


# ------------------------------------------------------------------ 3. the stream vanishes


@pytest.mark.parametrize("wipe", ["DEL", "FLUSHALL"])
def test_blocked_consumers_survive_the_stream_key_disappearing(
    consumer_env: dict[str, str], spawn: Callable[..., Proc], world: World,
    rclient: redis.Redis, maria: MariaDBServer, wipe: str,
) -> None:  # fmt: skip
    consumers = [start_consumer(spawn, consumer_env)[0] for _ in range(2)]
    assert wait_until(lambda: _group_consumers(rclient) == 2, 30)
    time.sleep(0.5)  # both blocked in XREADGROUP
    admin = world.redis.client()
    try:
        if wipe == "DEL":
            admin.delete(STREAM)
        else:
            admin.flushall()
    finally:
        admin.close()
    time.sleep(1.0)
    for proc in consumers:
        assert proc.popen.poll() is None, proc.logs()
    redisq.enqueue(rclient, STREAM, 31)
    assert wait_until(lambda: db_values(maria) == [31], 30)
    assert all(proc.popen.poll() is None for proc in consumers)


def _group_consumers(client: redis.Redis) -> int:
    try:
        return len(client.xinfo_consumers(STREAM, GROUP))
    except redis.ResponseError:
        return 0


# ------------------------------------------------------------------ 4. slow clients


def _half_sent(port: int, request: bytes, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        socks.append(s)
    return socks


def test_idle_half_sent_bodies_and_trickled_headers_do_not_take_the_producer_down(
    env: dict[str, str], spawn: Callable[..., Proc]
) -> None:
    base = serve_producer(spawn, env)
    port = int(base.rsplit(":", 1)[1])
    half_body = (
        b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"count": '
    )
    socks = _half_sent(port, half_body, 40)
    socks += _half_sent(port, b"GET /health HTTP/1.1\r\nHost: x\r\n", 40)
    stop = threading.Event()

    def trickle() -> None:  # Slowloris: one more header line now and then
        while not stop.wait(1.0):
            for s in socks[40:]:
                with contextlib.suppress(OSError):
                    s.sendall(b"X-Slow: 1\r\n")

    threading.Thread(target=trickle, daemon=True).start()
    try:
        answered = 0
        for _ in range(8):
            with contextlib.suppress(OSError):
                code, _ = http_json(f"{base}{contract.READINESS_PATH}", timeout_s=2)
                answered += code == 200
            time.sleep(0.5)
        code, body = http_json(f"{base}/count", data=b'{"count": 8}', headers=JSON, timeout_s=5)
    finally:
        stop.set()
        for s in socks:
            s.close()
    assert answered == 8
    assert code == 202, body


def test_bodies_that_stop_arriving_are_cut_off_at_the_deadline_freeing_their_slots(
    env: dict[str, str], spawn: Callable[..., Proc]
) -> None:
    """As many stalled bodies as the server takes connections: each is closed at the request
    deadline (the client sees the connection end, not an answer), and the slots serve again."""
    base = serve_producer(spawn, env, REQUEST_TIMEOUT_S="1", CONNECTION_LIMIT="10")
    port = int(base.rsplit(":", 1)[1])
    half_body = (
        b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"count": '
    )
    socks = _half_sent(port, half_body, 10)
    try:
        for s in socks:
            s.settimeout(8)
            assert s.recv(4096) == b""  # closed by the server within the deadline
    finally:
        for s in socks:
            s.close()
    code, body = http_json(f"{base}{contract.READINESS_PATH}", timeout_s=5)
    assert code == 200, body


# ------------------------------------------------------------------ 5. chunked bodies


def _chunked_post(port: int, body: bytes) -> tuple[int, bytes]:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(
            b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        for i in range(0, len(body), 4096):
            part = body[i : i + 4096]
            with contextlib.suppress(OSError):  # the server may answer and close early
                s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        with contextlib.suppress(OSError):
            s.sendall(b"0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def test_chunked_bodies_meet_the_same_size_limit(
    env: dict[str, str], spawn: Callable[..., Proc], rclient: redis.Redis
) -> None:
    base = serve_producer(spawn, env)
    port = int(base.rsplit(":", 1)[1])
    padded = b'{"count": 3, "pad": "' + b"x" * 2000 + b'"}'
    status, body = _chunked_post(port, padded)
    assert status == 413
    assert json.loads(body)["status"] == 413
    status, _ = _chunked_post(port, b'{"count": 4, "pad": "' + b"x" * 100_000 + b'"}')
    assert status == 413
    status, body = _chunked_post(port, b'{"count": 5}')
    assert status == 202, body
    assert [f["count"] for _, f in rclient.xrange(STREAM)] == ["5"]


def exchange(port: int, data: bytes, timeout_s: float = 5.0) -> tuple[list[int], bool]:
    """Send ``data`` on one connection; the status codes of every answer that came back, and
    whether the server closed the connection (False: still open after ``timeout_s``)."""
    received = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
    statuses = [int(m) for m in re.findall(rb"(?m)^HTTP/1\.[01] (\d{3}) ", received)]
    return statuses, closed


POST_HEAD = b"POST /count HTTP/1.1\r\nContent-Type: application/json\r\n"
HEALTH_REQUEST = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    "request_bytes",
    [
        # Content-Length and Transfer-Encoding both, then a second request on the connection
        POST_HEAD + b"Host: x\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'd\r\n{"count": 41}\r\n0\r\n\r\n' + HEALTH_REQUEST,
        POST_HEAD + b"Host: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 13\r\n\r\n"
        b'd\r\n{"count": 41}\r\n0\r\n\r\n' + HEALTH_REQUEST,
        # HTTP/1.0 frames by Content-Length only: a Transfer-Encoding there is a smuggling shape
        b"POST /count HTTP/1.0\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
        b'Transfer-Encoding: chunked\r\nContent-Length: 13\r\n\r\n{"count": 41}' + HEALTH_REQUEST,
        # HTTP/1.1 without Host, and with two
        POST_HEAD + b'Content-Length: 13\r\n\r\n{"count": 41}' + HEALTH_REQUEST,
        POST_HEAD
        + b'Host: a\r\nHost: b\r\nContent-Length: 13\r\n\r\n{"count": 41}'
        + HEALTH_REQUEST,
    ],
    ids=["cl-then-te", "te-then-cl", "http10-te", "no-host", "two-hosts"],
)
def test_ambiguous_framing_and_missing_host_are_400_and_close_the_connection(
    env: dict[str, str], spawn: Callable[..., Proc], rclient: redis.Redis, request_bytes: bytes
) -> None:
    """RFC 9112 3.2 and 6.1: one 400, the connection closed, nothing after it answered."""
    base = serve_producer(spawn, env)
    port = int(base.rsplit(":", 1)[1])
    statuses, closed = exchange(port, request_bytes)
    assert statuses == [400]
    assert closed
    assert rclient.xlen(STREAM) == 0
    # the same request well framed is accepted
    statuses, _ = exchange(
        port, POST_HEAD + b'Host: x\r\nContent-Length: 13\r\n\r\n{"count": 41}', 2
    )
    assert statuses == [202]


def test_http10_without_host_is_accepted(
    env: dict[str, str], spawn: Callable[..., Proc], rclient: redis.Redis
) -> None:
    """Host is required of HTTP/1.1 only (RFC 9112 3.2)."""
    base = serve_producer(spawn, env)
    port = int(base.rsplit(":", 1)[1])
    request_bytes = (
        b"POST /count HTTP/1.0\r\nContent-Type: application/json\r\n"
        b'Content-Length: 13\r\n\r\n{"count": 43}'
    )
    assert exchange(port, request_bytes) == ([202], True)
    assert rclient.xlen(STREAM) == 1


def test_deeply_nested_json_is_answered_400_by_the_served_producer(
    env: dict[str, str], spawn: Callable[..., Proc], rclient: redis.Redis
) -> None:
    base = serve_producer(spawn, env)
    code, body = http_json(f"{base}/count", data=b"[" * 990, headers=JSON)
    assert code == 400, body
    assert body["error"] == "request body is nested too deeply"
    assert rclient.xlen(STREAM) == 0


# ------------------------------------------------------------------ 6. readiness


def test_database_outage_keeps_the_producer_ready_and_values_are_stored_later(
    env: dict[str, str], maria: MariaDBServer, rclient: redis.Redis
) -> None:
    client = client_for(env, DB_CONNECT_TIMEOUT_S="1")
    maria.stop()
    try:
        ready = client.get(contract.READINESS_PATH)
        assert ready.status_code == 200
        health = client.get("/health")
        assert health.status_code == 503
        assert health.get_json()["database"]["reachable"] is False
        assert health.get_json()["accepting"] is True
        assert client.get("/count").status_code == 503
        for value in (61, 62, 63):
            assert post(client, value).status_code == 202
    finally:
        maria.start()
    drain_with(env)
    assert sorted(db_values(maria)) == [61, 62, 63]


def test_queue_outage_makes_the_producer_not_ready(env: dict[str, str]) -> None:
    dead = client_for(env, REDIS_URL=f"rediss://127.0.0.1:{free_port()}")
    resp = dead.get(contract.READINESS_PATH)
    assert resp.status_code == 503
    assert resp.get_json()["ready"] is False


# ------------------------------------------------------------------ 7. consumers


def test_dead_consumers_holding_nothing_are_pruned(
    consumer_env: dict[str, str], world: World, rclient: redis.Redis
) -> None:
    settings = consumer_settings(
        {**consumer_env, "BLOCK_MS": "50", "CONSUMER_PRUNE_IDLE_MS": "1000"}
    )
    live = Consumer(settings)
    admin = world.redis.client(decode_responses=True)
    try:
        live._ensure_group()
        redisq.enqueue(rclient, STREAM, 1)
        ((entry_id, _),) = live._read(">")  # the pruning consumer is in the group too...
        live.redis.xack(STREAM, GROUP, entry_id)  # ...holding nothing, and as idle
        admin.xgroup_createconsumer(STREAM, GROUP, "ghost-idle")
        redisq.enqueue(rclient, STREAM, 2)
        admin.xreadgroup(GROUP, "ghost-holding", {STREAM: ">"}, count=1)
        time.sleep(1.2)
        assert sorted(live.prune_consumers()) == ["ghost-idle"]
        names = {c["name"] for c in admin.xinfo_consumers(STREAM, GROUP)}
        # ghost-holding holds an entry (left for XAUTOCLAIM); the caller never prunes itself
        assert names == {"ghost-holding", settings.consumer_name}
    finally:
        admin.close()
        live.close()


def test_consumer_health_reports_a_batch_stalled_on_a_lock(
    consumer_env: dict[str, str], spawn: Callable[..., Proc], maria: MariaDBServer,
    rclient: redis.Redis,
) -> None:  # fmt: skip
    _, url = start_consumer(spawn, consumer_env, STALL_AFTER_S="1")
    assert wait_until(lambda: http_json(f"{url}/health")[1]["status"] == "ok", 30)
    holder = maria.root_connect(database=DB_NAME)
    try:
        with holder.cursor() as cur:  # an open transaction holds the key's index lock
            cur.execute("BEGIN")
            cur.execute("INSERT INTO counts (msg_key, value) VALUES ('held-key', 1)")
        rclient.xadd(STREAM, {redisq.FIELD_KEY: "held-key", redisq.FIELD_VALUE: "1"})
        assert wait_until(lambda: http_json(f"{url}/health")[1]["status"] == "stalled", 15)
        code, body = http_json(f"{url}/health")
        assert code == 200
        assert body["batch"]["stalled"] is True
        assert "waited" in body["message"]
    finally:
        holder.rollback()
        holder.close()
    assert wait_until(lambda: db_values(maria) == [1], 40)
    assert wait_until(lambda: http_json(f"{url}/health")[1]["status"] == "ok", 10)
    assert wait_until(lambda: backlog_zero(rclient), 10)


def _root_sql(maria: MariaDBServer, sql: str) -> list[tuple[Any, ...]]:
    conn = maria.root_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def _inserting(maria: MariaDBServer) -> bool:
    """Some session is in an INSERT that the trigger holds in SLEEP (the process list shows
    the trigger's statement, and its definer as the user)."""
    rows = _root_sql(
        maria,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
        "WHERE STATE = 'User sleep' AND INFO LIKE 'SET @held = SLEEP%'",
    )
    return bool(rows and int(rows[0][0]))


def _deferred(proc: Proc) -> bool:
    return any(
        "entries left pending: their rows are locked" in line["message"]
        for line in proc.log_lines()
    )


@pytest.mark.crash
def test_a_consumer_frozen_mid_transaction_does_not_stall_the_queue(
    consumer_env: dict[str, str], spawn: Callable[..., Proc], maria: MariaDBServer,
    rclient: redis.Redis,
) -> None:  # fmt: skip
    """One consumer frozen (SIGSTOP) while its transaction holds row locks, three times. The
    other reclaims its entries, cannot lock their rows within DB_LOCK_WAIT_S, leaves them
    pending and stores everything else meanwhile; none is dead-lettered for having waited;
    after the freeze every value is stored exactly once."""
    env = {**consumer_env, "DB_LOCK_WAIT_S": "1", "MAX_ATTEMPTS": "3"}
    expected: list[int] = []
    for trial in range(3):
        marker = 1_000_000 + trial
        held = [trial * 1000 + i for i in range(10)] + [marker]
        _root_sql(
            maria,
            "CREATE TRIGGER hold BEFORE INSERT ON counts FOR EACH ROW "
            f"IF NEW.value = {marker} THEN SET @held = SLEEP(3); END IF",
        )
        enqueue_values(rclient, held)  # one batch of the consumer about to freeze
        frozen_proc, _ = start_consumer(spawn, env)
        assert wait_until(lambda: _inserting(maria), 30, 0.02), frozen_proc.logs()
        frozen_proc.signal(signal.SIGSTOP)  # its transaction now holds the batch's rows
        frozen_at = time.monotonic()
        try:
            survivor, _ = start_consumer(spawn, env)
            reclaimed = wait_until(lambda p=survivor: p.logged("INFO", "reclaimed 11 "), 30)
            assert reclaimed, survivor.logs()
            others = [trial * 1000 + 500 + i for i in range(60)]
            enqueue_values(rclient, others)  # while the locked batch is tried again and again
            want = sorted(expected + others)
            stored_others = wait_until(lambda want=want: sorted(db_values(maria)) == want, 30)
            assert stored_others, f"the queue stalled behind the frozen consumer\n{survivor.logs()}"
            assert _deferred(survivor), survivor.logs()
            time.sleep(max(0.0, frozen_at + 8 - time.monotonic()))  # reclaimed again and again
            assert rclient.xlen(DEAD_STREAM) == 0, "an entry was dead-lettered for waiting"
        finally:
            frozen_proc.signal(signal.SIGCONT)
        expected += held + others
        assert wait_until(lambda: backlog_zero(rclient), 60), survivor.logs()
        assert sorted(db_values(maria)) == sorted(expected), "lost or duplicated values"
        _root_sql(maria, "DROP TRIGGER hold")
        for proc in (frozen_proc, survivor):
            proc.stop()
    assert rclient.xlen(DEAD_STREAM) == 0


def test_prune_bound_below_four_reads_is_refused(consumer_env: dict[str, str]) -> None:
    from apps.common.errors import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"^environment\.CONSUMER_PRUNE_IDLE_MS: got \d+, use at least 4 x BLOCK_MS",
    ):
        consumer_settings({**consumer_env, "BLOCK_MS": "2000", "CONSUMER_PRUNE_IDLE_MS": "5000"})


def test_pruning_when_the_stream_is_gone_does_not_stop_the_consumer(
    consumer_env: dict[str, str], world: World, rclient: redis.Redis, maria: MariaDBServer
) -> None:
    settings = consumer_settings(
        {**consumer_env, "BLOCK_MS": "50", "CONSUMER_PRUNE_IDLE_MS": "1000"}
    )
    consumer = Consumer(settings)
    admin = world.redis.client()
    try:
        consumer._ensure_group()
        admin.delete(STREAM)  # the stream vanishes between two reads
        consumer._next_prune = 0.0
        assert consumer.prune_consumers() == []
        consumer._group_ready = False  # as after NOGROUP: the loop recreates the group
        redisq.enqueue(rclient, STREAM, 12)
        drain(consumer)
        assert db_values(maria) == [12]
    finally:
        admin.close()
        consumer.close()


def test_a_refused_enqueue_is_definitely_not_accepted(
    env: dict[str, str], world: World, rclient: redis.Redis
) -> None:
    """An error reply that refuses the script before it runs (here NOPERM: an ACL from
    before this release, as during a deploy) is a definite "not accepted", not a 500."""
    admin = world.redis.client()
    user = world.queue_user
    try:
        admin.execute_command("ACL", "SETUSER", user.name, "-evalsha", "-eval")
        resp = post(client_for(env, ENQUEUE_BACKOFF_MS="1"), 14, "order-14")
        assert resp.status_code == 503
        assert resp.get_json()["outcome"] == "not_accepted"
        assert rclient.xlen(STREAM) == 0
    finally:
        admin.execute_command("ACL", "SETUSER", user.name, "+evalsha", "+eval")
        admin.close()


def test_read_body_limits_a_body_without_length(env: dict[str, str], rclient: redis.Redis) -> None:
    """A server that passes a chunked body through (no CONTENT_LENGTH) meets the same limit
    in the application (waitress de-chunks first; the served test above covers it)."""
    client = client_for(env)
    for body, expected in (
        (b'{"count": 2, "pad": "' + b"x" * 5000 + b'"}', 413),
        (b'{"count": 2}', 202),
    ):
        resp = client.post(
            "/count", input_stream=io.BytesIO(body), content_type="application/json",
            headers={"Transfer-Encoding": "chunked"},
        )  # fmt: skip
        assert resp.status_code == expected, resp.get_json()
    assert rclient.xlen(STREAM) == 1
