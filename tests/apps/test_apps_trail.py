"""The trail of a value in the services' JSON logs, and the oldest-pending-age metric.

One accepted POST carries the same ``idempotency_key`` and ``entry_id`` in the producer's
access line, in the stream entry and in the consumer's "stored" line, and the table row
has that key and value. Every stderr line of both services is one JSON object with the
contract's fields (:class:`apps.common.contract.LogField`).
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from appsupport import (
    DB_NAME,
    DEAD_STREAM,
    ROOT,
    STREAM,
    Proc,
    backlog_zero,
    drain,
    enqueue_values,
    http_json,
    start_consumer,
    wait_until,
)

from apps.common import logs
from apps.common.contract import IDEMPOTENCY_HEADER, OLDEST_PENDING_AGE_METRIC, LogField
from apps.consumer.service import Service
from apps.consumer.settings import load_settings as consumer_settings
from apps.devtools.servers import MariaDBServer, World, free_port, wait_port
from apps.producer import create_app
from apps.producer import load_settings as producer_settings

BASE_FIELDS = {LogField.TIME, LogField.LEVEL, LogField.SERVICE, LogField.LOGGER, LogField.MESSAGE}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def serve_producer(spawn: Callable[..., Proc], env: dict[str, str]) -> tuple[Proc, str]:
    port = free_port()
    proc = spawn("apps.producer", {**env, "PORT": str(port), "BIND_HOST": "127.0.0.1"})
    wait_port(port, 30, proc.popen)
    return proc, f"http://127.0.0.1:{port}"


def post(base: str, value: int, key: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers[IDEMPOTENCY_HEADER] = key
    return http_json(f"{base}/count", data=json.dumps({"count": value}).encode(), headers=headers)


def stored_rows(maria: MariaDBServer, key: str) -> list[tuple[str, int]]:
    conn = maria.root_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT msg_key, value FROM counts WHERE msg_key = %s", (key,))
            return [(str(k), int(v)) for k, v in cur.fetchall()]
    finally:
        conn.close()


def stored_lines(proc: Proc, key: str) -> list[tuple[dict[str, Any], int]]:
    """The consumer's "stored" lines naming ``key``, with the key's index in their lists."""
    return [
        (line, i)
        for line in proc.log_lines()
        if line[LogField.LOGGER] == "apps.consumer"
        and isinstance(line.get(LogField.IDEMPOTENCY_KEY), list)
        for i, k in enumerate(line[LogField.IDEMPOTENCY_KEY])
        if k == key
    ]


def emf_records(proc: Proc) -> list[dict[str, Any]]:
    text = proc.out_path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


# ------------------------------------------------------------------ the trail, real processes


def test_one_post_is_traced_from_the_producer_through_the_stream_to_the_table(
    env: dict[str, str],
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
    rclient: redis.Redis,
    maria: MariaDBServer,
) -> None:
    producer, base = serve_producer(spawn, env)
    key, value = f"trail-{uuid.uuid4().hex[:12]}", 4242
    status, body = post(base, value, key)
    assert status == 202, body
    entry_id = body["id"]
    status, replay = post(base, value, key)  # a client retry: nothing new is enqueued
    assert (status, replay["id"], replay["replayed"]) == (202, entry_id, True)

    # The producer: one access line per request, each carrying the key, entry id and value.
    accepted = [line for line in producer.log_lines() if line.get(LogField.IDEMPOTENCY_KEY) == key]
    assert [
        (line[LogField.PATH], line[LogField.STATUS], line[LogField.ENTRY_ID], line[LogField.VALUE])
        for line in accepted
    ] == [("/count", 202, entry_id, value)] * 2
    assert all(line[LogField.SERVICE] == "producer" for line in accepted)
    assert all(line[LogField.DURATION_MS] >= 0 for line in accepted)
    assert "replayed" not in accepted[0][LogField.MESSAGE]
    assert "replayed" in accepted[1][LogField.MESSAGE]

    # The stream entry: the same id, carrying the same key.
    ((stream_id, fields),) = rclient.xrange(STREAM)
    assert (stream_id, fields["key"], fields["count"]) == (entry_id, key, str(value))

    # The consumer: one "stored" line names the key, with the same entry id and value.
    consumer, _ = start_consumer(spawn, consumer_env)
    assert wait_until(lambda: stored_rows(maria, key) == [(key, value)], 30), consumer.logs()
    assert wait_until(lambda: bool(stored_lines(consumer, key)), 10), consumer.logs()
    ((line, i),) = stored_lines(consumer, key)
    assert (line[LogField.SERVICE], line[LogField.LEVEL]) == ("consumer", "INFO")
    assert line[LogField.ENTRY_ID][i] == entry_id
    assert line[LogField.VALUE][i] == value
    assert entry_id in line[LogField.MESSAGE]

    # Nothing pending any more: the consumer's metric line says 0.
    assert wait_until(lambda: backlog_zero(rclient), 10)
    assert wait_until(
        lambda: any(r.get(OLDEST_PENDING_AGE_METRIC) == 0 for r in emf_records(consumer)[-2:]),
        10,
    ), consumer.stdout_lines()[-3:]


def _raw_request(port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_every_stderr_line_of_both_services_is_json_with_the_contract_fields(
    env: dict[str, str],
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
    rclient: redis.Redis,
    world: World,
) -> None:
    producer, base = serve_producer(spawn, env)
    consumer, _ = start_consumer(spawn, consumer_env)
    port = int(base.rsplit(":", 1)[1])
    json_type = {"Content-Type": "application/json"}
    requests = [  # method, path, body, headers, status
        ("GET", "/", b"", {}, 200),
        ("GET", "/health", b"", {}, 200),
        ("GET", "/api/count", b"", {}, 200),
        ("GET", "/nope", b"", {}, 404),
        ("POST", "/count", b"not json", json_type, 400),
        ("POST", "/count", b"x" * 20_000, json_type, 413),  # waitress's own limit
        ("OPTIONS", "/api/count", b"", {"Origin": "https://example.org"}, 200),
        ("POST", "/count", b'{"count": 7}', json_type, 202),
    ]
    for method, path, body, headers, status in requests:
        assert _raw_request(port, method, path, body, headers) == status, (method, path)
    bad_id = rclient.xadd(STREAM, {"key": "bad-1", "count": "x", "ts": "0"})
    assert wait_until(lambda: rclient.xlen(DEAD_STREAM) == 1 and backlog_zero(rclient), 20)
    for proc in (producer, consumer):
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.logs()

    raw = producer.log_path.read_text() + consumer.log_path.read_text()
    for secret in (world.queue_user.password, world.db_password):
        assert secret not in raw
    for proc, service in ((producer, "producer"), (consumer, "consumer")):
        lines = proc.log_lines()  # every line parses
        assert lines, service
        assert len(lines) == len(proc.log_path.read_text().splitlines())
        for line in lines:
            assert line.keys() >= BASE_FIELDS, line
            assert line[LogField.SERVICE] == service
            assert line[LogField.LEVEL] in LEVELS
            assert ISO_UTC.match(line[LogField.TIME]), line
            assert abs(datetime.fromisoformat(line[LogField.TIME]).timestamp() - time.time()) < 300
            assert isinstance(line[LogField.MESSAGE], str)
        assert datetime.fromisoformat(lines[0][LogField.TIME]).tzinfo == UTC

    # One access line per request, in order, with path, status and duration.
    access = [line for line in producer.log_lines() if LogField.STATUS in line]
    assert [(line[LogField.PATH], line[LogField.STATUS]) for line in access] == [
        (path, status) for _method, path, _body, _headers, status in requests
    ]
    for line, (method, path, *_rest) in zip(access, requests, strict=True):
        assert line[LogField.MESSAGE].startswith(f"{method} {path} ")
        assert isinstance(line[LogField.DURATION_MS], int | float)
    assert {LogField.IDEMPOTENCY_KEY, LogField.ENTRY_ID, LogField.VALUE} <= access[-1].keys()

    # The dead letter: entry id, key and reason.
    (dead,) = [line for line in consumer.log_lines() if line.get(LogField.ENTRY_ID) == bad_id]
    assert dead[LogField.LEVEL] == "WARNING"
    assert dead[LogField.IDEMPOTENCY_KEY] == "bad-1"
    assert dead[logs.REASON].startswith("malformed: count is not an integer")


# ------------------------------------------------------------------ in process


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The JSON lines the ``apps`` loggers write while the test runs."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter("test"))
    logger = logging.getLogger("apps")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_refused_enqueue_is_logged_with_its_key(
    env: dict[str, str], json_log: io.StringIO
) -> None:
    app = create_app(
        producer_settings(
            {**env, "REDIS_URL": f"rediss://127.0.0.1:{free_port()}", "ENQUEUE_BACKOFF_MS": "1"}
        )
    )
    response = app.test_client().post(
        "/count", data='{"count": 9}', content_type="application/json",
        headers={IDEMPOTENCY_HEADER: "order-9"},
    )  # fmt: skip
    assert response.status_code == 503
    lines = parsed(json_log)
    (failed,) = [line for line in lines if line[LogField.LEVEL] == "WARNING"]
    assert (failed[LogField.IDEMPOTENCY_KEY], failed[LogField.VALUE]) == ("order-9", 9)
    assert "order-9" in failed[LogField.MESSAGE]
    (access,) = [line for line in lines if LogField.STATUS in line]
    assert (access[LogField.STATUS], access[LogField.IDEMPOTENCY_KEY]) == (503, "order-9")
    assert LogField.ENTRY_ID not in access


def test_the_oldest_pending_entry_ages_until_it_is_acknowledged(
    env: dict[str, str], rclient: redis.Redis
) -> None:
    """Age = now - the oldest pending id's time, read as the app user (XPENDING is in
    ``+@stream``; TIME is refused, so the consumer's clock is the other end)."""
    with pytest.raises(redis.exceptions.NoPermissionError):
        rclient.time()
    out = io.StringIO()
    settings = consumer_settings({**env, "PORT": "0", "BLOCK_MS": "50", "CONSUMER_NAME": "c1"})
    service = Service(settings, out=out)
    consumer = service.consumer
    try:
        consumer._ensure_group()
        assert service.oldest_pending_age() == 0  # nothing at all
        enqueue_values(rclient, [1])
        assert service.oldest_pending_age() == 0  # in the stream, never delivered: lag
        assert len(consumer._read(">")) == 1  # delivered, not acknowledged
        first = service.oldest_pending_age()
        assert first is not None
        assert 0 <= first < 5
        time.sleep(1.5)
        second = service.oldest_pending_age()
        assert second is not None
        assert 1.4 <= second - first < 5
        service.emit_metrics()
        record = json.loads(out.getvalue().splitlines()[-1])
        assert record[OLDEST_PENDING_AGE_METRIC] >= second
        assert {"Name": OLDEST_PENDING_AGE_METRIC, "Unit": "Seconds"} in record["_aws"][
            "CloudWatchMetrics"
        ][0]["Metrics"]
        assert service.metrics()["oldest_pending_age_s"] >= second

        drain(consumer)  # re-reads its own pending entry, stores and acknowledges it
        assert backlog_zero(rclient)
        assert service.oldest_pending_age() == 0
        service.emit_metrics()
        assert json.loads(out.getvalue().splitlines()[-1])[OLDEST_PENDING_AGE_METRIC] == 0
    finally:
        consumer.close()
        service.metrics_redis.close()


def test_metrics_that_cannot_be_read_are_left_out_not_zero(
    env: dict[str, str], rclient: redis.Redis
) -> None:
    out = io.StringIO()
    service = Service(consumer_settings({**env, "PORT": "0"}), out=out)
    try:
        service.metrics_redis.close()
        service.metrics_redis = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
        service.emit_metrics()
    finally:
        service.consumer.close()
        service.metrics_redis.close()
    record = json.loads(out.getvalue())
    names = [m["Name"] for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert names == ["MessagesProcessed", "MessagesDeadLettered"]
    assert "QueueBacklog" not in record
    assert OLDEST_PENDING_AGE_METRIC not in record


# ------------------------------------------------------------------ the formatter


def test_a_line_is_one_json_object_with_the_trail_fields_and_no_password() -> None:
    formatter = logs.JsonFormatter("producer")
    logger = logging.getLogger("apps.test")
    try:
        raise ValueError("connect to rediss://app:s3cret@cache:6379 failed")
    except ValueError:
        record = logger.makeRecord(
            "apps.test", logging.ERROR, __file__, 1, "failed for %s", ("k-1",),
            sys.exc_info(), extra=logs.fields(idempotency_key="k-1", entry_id="1-0", value=3),
        )  # fmt: skip
    text = formatter.format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line[LogField.SERVICE] == "producer"
    assert line[LogField.MESSAGE] == "failed for k-1"
    assert (line[LogField.IDEMPOTENCY_KEY], line[LogField.ENTRY_ID], line[LogField.VALUE]) == (
        "k-1", "1-0", 3,
    )  # fmt: skip
    assert "Traceback" in line[logs.EXCEPTION]
    assert "s3cret" not in text
    assert "rediss://app:***@cache:6379" in line[logs.EXCEPTION]
    assert logs.fields(status=200) == {LogField.STATUS: 200}
    assert logs.iso_time(0.5) == "1970-01-01T00:00:00.500Z"


def test_uncaught_exceptions_are_json_lines_too() -> None:
    script = (
        "import threading\n"
        "from apps.common import logs\n"
        "logs.setup('info', 'consumer')\n"
        "t = threading.Thread(target=lambda: 1 / 0, name='worker')\n"
        "t.start(); t.join()\n"
        "raise RuntimeError('at the top')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line[LogField.LEVEL], line[LogField.MESSAGE]) for line in lines] == [
        ("ERROR", "uncaught exception in thread worker: division by zero"),
        ("CRITICAL", "uncaught exception: at the top"),
    ]
    assert all("Traceback" in line[logs.EXCEPTION] for line in lines)
