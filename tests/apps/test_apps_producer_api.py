"""Producer API contract against real Redis and MariaDB (Flask test client, in process)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from appsupport import STREAM, Proc, db_values, start_consumer, wait_until
from flask.testing import FlaskClient

from apps.common import redisq
from apps.common.config import BIGINT_MAX, BIGINT_MIN
from apps.devtools.servers import MariaDBServer, free_port
from apps.producer import create_app, load_settings


def make_client(env: dict[str, str], **overrides: str) -> FlaskClient:
    app = create_app(load_settings({**env, **overrides}))
    app.testing = True
    return app.test_client()


@pytest.fixture
def client(env: dict[str, str]) -> FlaskClient:
    return make_client(env)


def post(client: FlaskClient, body: Any, path: str = "/count", **kw: Any) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    kw.setdefault("content_type", "application/json")
    return client.post(path, data=data, **kw)


def stream_len(rclient: redis.Redis) -> int:
    return int(rclient.xlen(STREAM))  # 0 when the stream does not exist


def test_index_is_empty_200(client: FlaskClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.data == b""


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_post_enqueues_with_idempotency_key(
    client: FlaskClient, rclient: redis.Redis, prefix: str
) -> None:
    resp = post(client, {"count": 1700000000}, f"{prefix}/count")
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["count"] == 1700000000
    entries = rclient.xrange(STREAM)
    assert len(entries) == 1
    entry_id, fields = entries[0]
    assert body["id"] == entry_id
    assert fields[redisq.FIELD_KEY] == body["key"]
    assert fields[redisq.FIELD_VALUE] == "1700000000"


@pytest.mark.parametrize("value", [BIGINT_MIN, -1, 0, BIGINT_MAX])
def test_bigint_range_accepted(client: FlaskClient, rclient: redis.Redis, value: int) -> None:
    assert post(client, {"count": value}).status_code == 202
    assert rclient.xrange(STREAM)[0][1]["count"] == str(value)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ("{}", "application/json", 400),
        ('{"value": 3}', "application/json", 400),
        ('{"count": "12"}', "application/json", 400),
        ('{"count": 1.5}', "application/json", 400),
        ('{"count": 2.0}', "application/json", 400),
        ('{"count": true}', "application/json", 400),
        ('{"count": null}', "application/json", 400),
        (f'{{"count": {BIGINT_MAX + 1}}}', "application/json", 422),
        (f'{{"count": {BIGINT_MIN - 1}}}', "application/json", 422),
        ('{"count": 5}', "text/plain", 415),
        ("count=5", "application/x-www-form-urlencoded", 415),
        ('{"count": 5, "pad": "' + "x" * 2000 + '"}', "application/json", 413),
    ],
)
def test_bad_input_is_rejected_and_enqueues_nothing(
    client: FlaskClient, rclient: redis.Redis, body: str, content_type: str, status: int
) -> None:
    resp = client.post("/count", data=body, content_type=content_type)
    assert resp.status_code == status
    assert resp.is_json
    assert resp.get_json()["error"]
    assert stream_len(rclient) == 0


def test_missing_content_type_is_415(client: FlaskClient, rclient: redis.Redis) -> None:
    resp = client.post("/count", data='{"count": 1}')
    assert resp.status_code == 415
    assert stream_len(rclient) == 0


def test_client_idempotency_key_is_used(client: FlaskClient, rclient: redis.Redis) -> None:
    resp = post(client, {"count": 7}, headers={"Idempotency-Key": "order-42"})
    assert resp.get_json()["key"] == "order-42"
    bad = post(client, {"count": 7}, headers={"Idempotency-Key": "bad key!"})
    assert bad.status_code == 400
    assert stream_len(rclient) == 1


def test_get_count_reports_rows_and_latest(
    client: FlaskClient, maria: MariaDBServer, env: dict[str, str]
) -> None:
    empty = client.get("/count").get_json()
    assert empty["count"] == 0
    assert empty["latest"] is None
    assert empty["hostname"]
    conn = maria.root_connect(env["DB_NAME"])
    with conn.cursor() as cur:
        cur.execute("INSERT INTO counts (msg_key, value) VALUES ('a', 5), ('b', -3)")
    conn.close()
    for path in ("/count", "/api/count"):
        body = client.get(path).get_json()
        assert body["count"] == 2
        assert body["latest"] == -3


def test_health_ok(client: FlaskClient) -> None:
    for path in ("/health", "/api/health"):
        resp = client.get(path)
        assert resp.status_code == 200
        body = resp.get_json()
        assert body["redis"]["reachable"] is True
        assert body["database"]["reachable"] is True
        assert body["hostname"]


def test_health_503_when_redis_down(env: dict[str, str], rclient: redis.Redis) -> None:
    dead = make_client(env, REDIS_URL=f"rediss://127.0.0.1:{free_port()}", ENQUEUE_BACKOFF_MS="1")
    resp = dead.get("/health")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["redis"]["reachable"] is False
    assert body["database"]["reachable"] is True
    # POST is refused cleanly after bounded retries, nothing half-accepted
    resp = post(dead, {"count": 9})
    assert resp.status_code == 503
    assert "error" in resp.get_json()
    assert stream_len(rclient) == 0


def test_health_and_count_503_when_db_down(env: dict[str, str]) -> None:
    dead = make_client(env, DB_PORT=str(free_port()), DB_CONNECT_TIMEOUT_S="1")
    resp = dead.get("/health")
    assert resp.status_code == 503
    assert resp.get_json()["database"]["reachable"] is False
    resp = dead.get("/count")
    assert resp.status_code == 503
    assert resp.is_json


def test_cors_headers_and_preflight(client: FlaskClient) -> None:
    resp = client.get("/count")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    pre = client.options(
        "/api/count",
        headers={
            "Origin": "https://example.invalid",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )
    assert pre.status_code in (200, 204)
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in pre.headers["Access-Control-Allow-Headers"]
    # errors carry CORS headers too, so the browser can read them
    bad = post(client, "nope")
    assert bad.headers["Access-Control-Allow-Origin"] == "*"


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    resp = client.get("/nope")
    assert resp.status_code == 404
    assert resp.is_json


def test_status_without_consumer_url(client: FlaskClient) -> None:
    body = client.get("/status").get_json()
    assert body["status"] == "degraded"
    assert body["consumer"]["reachable"] is False
    assert "CONSUMER_URL" in body["consumer"]["error"]


def test_status_consumer_unreachable(env: dict[str, str]) -> None:
    c = make_client(env, CONSUMER_URL=f"http://127.0.0.1:{free_port()}", STATUS_TIMEOUT_S="0.5")
    resp = c.get("/api/status")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["producer"]["status"] == "ok"
    assert body["consumer"]["reachable"] is False
    assert "unreachable" in body["consumer"]["error"]


def test_status_consumer_reachable_and_end_to_end(
    env: dict[str, str],
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
    maria: MariaDBServer,
) -> None:
    _proc, url = start_consumer(spawn, consumer_env)
    c = make_client(env, CONSUMER_URL=url + "/")
    body = c.get("/status").get_json()
    assert body["consumer"]["reachable"] is True
    assert body["consumer"]["health"]["service"] == "consumer"
    assert body["status"] == "ok"
    assert post(c, {"count": 123}).status_code == 202
    assert wait_until(lambda: c.get("/count").get_json()["count"] == 1, 30)
    assert c.get("/count").get_json()["latest"] == 123
    assert db_values(maria) == [123]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"count": 1, "count": 2}', "'count' more than once"),
        (b'{"count": 1, "note": "a", "note": "b"}', "'note' more than once"),
        (b'{"count": 3, "x": {"y": 1, "y": 1}}', "'y' more than once"),
    ],
)
def test_a_name_given_twice_is_400_naming_the_ambiguity(
    client: FlaskClient, rclient: redis.Redis, body: bytes, says: str
) -> None:
    """JSON leaves a repeated name's meaning open; Python's parser keeps the last one."""
    resp = post(client, body)
    assert resp.status_code == 400
    assert says in resp.get_json()["error"]
    assert "ambiguous" in resp.get_json()["error"]
    assert stream_len(rclient) == 0


@pytest.mark.parametrize(
    "body", [b"[" * 990, b'{"count": 1, "x": ' + b"[" * 1500 + b"]" * 1500 + b"}"]
)
def test_deeply_nested_json_is_400_not_500(
    env: dict[str, str], rclient: redis.Redis, body: bytes
) -> None:
    """Nesting past the parser's recursion limit, inside the size limit, is a bad body."""
    resp = post(make_client(env, MAX_BODY_BYTES="4096"), body)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "request body is nested too deeply"
    assert stream_len(rclient) == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_400(
    client: FlaskClient, rclient: redis.Redis, constant: str
) -> None:
    resp = post(client, f'{{"count": {constant}}}')
    assert resp.status_code == 400
    assert constant.lstrip("-") in resp.get_json()["error"]
    assert stream_len(rclient) == 0


def test_waitress_error_answers_are_logged_before_they_leave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 413 or 400 that waitress answers itself gets its access line before the answer is
    written: a client that sends its next request on receiving it must not see that
    request's line come first (the trail's order is the requests' order)."""
    from types import SimpleNamespace

    from apps.producer import server

    events: list[str] = []
    monkeypatch.setattr(server, "log_access", lambda *args: events.append("logged"))
    task = server._JsonErrorTask.__new__(server._JsonErrorTask)
    task.request = SimpleNamespace(
        error=SimpleNamespace(code=413, reason="Request Entity Too Large", body="too big"),
        command="POST",
        path="/count",
    )
    task.response_headers = []
    task.set_close_on_finish = lambda: None  # type: ignore[method-assign]
    task.write = lambda data: events.append("written")  # type: ignore[method-assign]
    task.execute()
    assert events == ["logged", "written"]
