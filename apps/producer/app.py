"""Flask application factory for the producer API."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pymysql
import redis
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from apps.common import contract, logs, redisq
from apps.common import db as dbmod
from apps.common.config import BIGINT_MAX, BIGINT_MIN, hostname
from apps.common.contract import HEALTH_PATH, IDEMPOTENCY_HEADER, READINESS_PATH
from apps.common.schema import COUNTS_TABLE
from apps.producer.settings import ProducerSettings

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("apps.producer")
access_log = logging.getLogger("apps.producer.access")

TRAIL_ENVIRON_KEY = "apps.producer.trail"
"""Where a request's :class:`Trail` travels in the WSGI environment."""

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": f"Content-Type, {IDEMPOTENCY_HEADER}",
    "Access-Control-Expose-Headers": f"{IDEMPOTENCY_HEADER}, Idempotent-Replayed, Retry-After",
    "Access-Control-Max-Age": "600",
}


class Backends:
    """Redis client (thread-safe pool) and one MySQL connection per thread."""

    def __init__(self, settings: ProducerSettings) -> None:
        self.settings = settings
        self._redis: redisq.RedisClient | None = None
        self._redis_lock = threading.Lock()
        self._local = threading.local()

    @property
    def redis(self) -> redisq.RedisClient:
        with self._redis_lock:
            if self._redis is None:
                self._redis = redisq.make_redis(self.settings.redis)
            return self._redis

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        """Run one read query on this thread's connection; reconnect once if it went away."""
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            try:
                if conn is None:
                    conn = dbmod.connect(self.settings.db, autocommit=True, read_timeout_s=5)
                    self._local.conn = conn
                with conn.cursor() as cur:
                    cur.execute(sql, args)
                    row: tuple[Any, ...] | None = cur.fetchone()
                    return row
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
                self._drop_conn()
                if attempt == 2:
                    raise
        return None  # pragma: no cover - loop always returns or raises

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()

    def redis_ok(self) -> tuple[bool, str | None]:
        try:
            redisq.ping_for(self.redis, self.settings.redis.stream)
            return True, None
        except redis.RedisError as exc:
            return False, str(exc)

    def db_ok(self) -> tuple[bool, str | None]:
        try:
            self.query("SELECT 1")
            return True, None
        except pymysql.err.MySQLError as exc:
            return False, str(exc)


def error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, "status": status, **extra}), status


class RequestRejectedError(Exception):
    """A POST /count request the producer refuses before it reaches the queue."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ProducerApi:
    """The route handlers, over one settings object and its backends."""

    def __init__(self, settings: ProducerSettings, backends: Backends) -> None:
        self.settings = settings
        self.backends = backends
        self.host = hostname()

    def health_body(self) -> tuple[dict[str, Any], bool]:
        r_ok, r_err = self.backends.redis_ok()
        d_ok, d_err = self.backends.db_ok()
        ok = r_ok and d_ok
        if ok:
            message = "producer is running"
        elif r_ok:
            message = "the database is unreachable: values are accepted and stored later"
        else:
            message = "the queue is unreachable: values are not accepted"
        body: dict[str, Any] = {
            "status": "ok" if ok else "unavailable",
            "service": "producer",
            "message": message,
            "hostname": self.host,
            "environment": self.settings.environment,
            "accepting": r_ok,
            "redis": {"reachable": r_ok, **({"error": r_err} if r_err else {})},
            "database": {"reachable": d_ok, **({"error": d_err} if d_err else {})},
        }
        return body, ok

    def index(self) -> Response:
        return Response(status=200)

    def health(self) -> tuple[Response, int]:
        body, ok = self.health_body()
        return jsonify(body), 200 if ok else 503

    def ready(self) -> tuple[Response, int]:
        """Readiness for the load balancer: what the write path needs (the queue) only."""
        r_ok, r_err = self.backends.redis_ok()
        body: dict[str, Any] = {"ready": r_ok, "hostname": self.host}
        if r_err:
            body["error"] = f"queue unreachable: {r_err}"
        return jsonify(body), 200 if r_ok else 503

    def status(self) -> tuple[Response, int]:
        producer, ok = self.health_body()
        consumer_url = self.settings.consumer_url
        consumer: dict[str, Any] = {"url": consumer_url, "reachable": False}
        if consumer_url is None:
            consumer["error"] = "CONSUMER_URL is not set"
        else:
            consumer.update(fetch_health(consumer_url, self.settings.status_timeout_s))
        overall = ok and bool(consumer.get("healthy"))
        return jsonify(
            {"status": "ok" if overall else "degraded", "producer": producer, "consumer": consumer}
        ), 200

    def get_count(self) -> tuple[Response, int]:
        try:
            row = self.backends.query(
                f"SELECT (SELECT COUNT(*) FROM `{COUNTS_TABLE}`), "  # noqa: S608
                f"(SELECT value FROM `{COUNTS_TABLE}` ORDER BY id DESC LIMIT 1)"
            )
        except pymysql.err.MySQLError as exc:
            log.warning("database query failed: %s", exc)
            return error(503, "database unavailable")
        count = int(row[0]) if row else 0
        latest = int(row[1]) if row and row[1] is not None else None
        return jsonify({"count": count, "latest": latest, "hostname": self.host}), 200

    def post_count(self) -> tuple[Response, int]:
        try:
            value = self.requested_value()
            key = requested_key()
        except RequestRejectedError as exc:
            return error(exc.status, exc.message)
        try:
            done = redisq.enqueue(
                self.backends.redis,
                self.settings.redis.stream,
                value,
                key=key,
                attempts=self.settings.enqueue_attempts,
                backoff_s=self.settings.enqueue_backoff_ms / 1000,
                ttl_s=self.settings.idempotency_ttl_s,
            )
        except redisq.KeyConflictError as exc:
            note_trail(idempotency_key=exc.key, value=value)
            return error(
                422,
                f"{IDEMPOTENCY_HEADER} {exc.key!r} was already used for a different value; "
                "use a new key for a new value",
                key=exc.key,
            )
        except redisq.EnqueueError as exc:
            note_trail(idempotency_key=exc.key, value=value)
            log.warning(
                "enqueue of value %d under key %s failed: %s", value, exc.key, exc,
                extra=logs.fields(idempotency_key=exc.key, value=value),
            )  # fmt: skip
            return enqueue_failed(exc)
        note_trail(
            idempotency_key=done.key,
            entry_id=done.entry_id,
            value=value,
            note=(
                f"value {value} already accepted as {done.entry_id} under key {done.key} (replayed)"
                if done.replayed
                else f"value {value} accepted as {done.entry_id} under key {done.key}"
            ),
        )
        return self.accepted(value, done), 202

    def requested_value(self) -> int:
        """The ``count`` of a POST /count body, or :class:`RequestRejectedError`."""
        limit = self.settings.max_body_bytes
        too_large = RequestRejectedError(413, f"request body larger than {limit} bytes")
        length = request.content_length
        if length is not None and length > limit:
            raise too_large
        if request.mimetype != "application/json":
            raise RequestRejectedError(415, "Content-Type must be application/json")
        raw = read_body(request.environ, limit)
        if raw is None:
            raise too_large
        try:
            payload = contract.parse_body(raw)
        except contract.BodyError as exc:
            raise RequestRejectedError(400, str(exc)) from None
        if "count" not in payload:
            raise RequestRejectedError(400, "missing field: count")
        value = payload["count"]
        if not redisq.valid_value(value):
            raise RequestRejectedError(
                400 if type(value) is not int else 422,
                f"count must be an integer between {BIGINT_MIN} and {BIGINT_MAX}",
            )
        return int(value)

    def accepted(self, value: int, done: redisq.Enqueued) -> Response:
        response = jsonify(
            {
                "status": "accepted",
                "message": (
                    f"value {value} was already accepted under this key"
                    if done.replayed
                    else f"value {value} added to the queue"
                ),
                "count": value,
                "id": done.entry_id,
                "key": done.key,
                "replayed": done.replayed,
                "hostname": self.host,
            }
        )
        response.headers[IDEMPOTENCY_HEADER] = done.key
        if done.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response


def requested_key() -> str | None:
    """The request's idempotency key, if any, or :class:`RequestRejectedError`."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not contract.valid_key(key):
        raise RequestRejectedError(
            400, f"{IDEMPOTENCY_HEADER} must be 1-64 characters of [A-Za-z0-9_.:-]"
        )
    return key


def enqueue_failed(exc: redisq.EnqueueError) -> tuple[Response, int]:
    """503 for a value the queue did not take, or may not have taken: retry with the key."""
    if exc.outcome_unknown:
        outcome = "unknown"
        message = (
            "the queue did not answer in time: the value may or may not have been "
            f"accepted; retry with the same {IDEMPOTENCY_HEADER} to store it once"
        )
    else:
        outcome = "not_accepted"
        message = "queue unavailable: the value was not accepted; retry later"
    response, code = error(503, message, outcome=outcome, key=exc.key)
    response.headers[IDEMPOTENCY_HEADER] = exc.key
    response.headers["Retry-After"] = "1"
    return response, code


@dataclass
class Trail:
    """What a request did with a value, for its access line."""

    idempotency_key: str | None = None
    entry_id: str | None = None
    value: int | None = None
    note: str | None = None
    """Said after the request line, e.g. which entry the value became."""


def note_trail(
    *,
    idempotency_key: str,
    entry_id: str | None = None,
    value: int | None = None,
    note: str | None = None,
) -> None:
    """Record on the current request what its access line carries besides the status."""
    trail = request.environ.get(TRAIL_ENVIRON_KEY)
    if isinstance(trail, Trail):
        trail.idempotency_key = idempotency_key
        trail.entry_id = entry_id
        trail.value = value
        trail.note = note


def log_access(
    method: str, path: str, status: int, duration_ms: float, trail: Trail | None = None
) -> None:
    """The access line of one request: ``path``, ``status``, ``duration_ms``, and for a
    POST /count the key (and the entry id and value once accepted)."""
    path = path[:256]
    duration = round(duration_ms, 2)
    trail = trail or Trail()
    note = trail.note or (f"key {trail.idempotency_key}" if trail.idempotency_key else None)
    access_log.info(
        "%s %s %d in %.1f ms%s", method, path, status, duration, f": {note}" if note else "",
        extra=logs.fields(
            path=path, status=status, duration_ms=duration,
            idempotency_key=trail.idempotency_key, entry_id=trail.entry_id, value=trail.value,
        ),
    )  # fmt: skip


class AccessLog:
    """WSGI middleware: one access line per request, when the application has answered
    (``duration_ms`` is from the call to the answer, not counting sending it)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        trail = Trail()
        environ[TRAIL_ENVIRON_KEY] = trail
        status = 500  # unless the application answers

        def recording(
            status_line: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            nonlocal status
            status = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info)

        try:
            return self.app(environ, recording)
        finally:
            log_access(
                str(environ.get("REQUEST_METHOD", "-")), str(environ.get("PATH_INFO", "")),
                status, (time.perf_counter() - started) * 1000, trail,
            )  # fmt: skip


def create_app(settings: ProducerSettings) -> Flask:
    app = Flask("apps.producer")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    backends = Backends(settings)
    app.extensions["backends"] = backends
    api = ProducerApi(settings, backends)

    @app.after_request
    def cors(response: Response) -> Response:
        response.headers.update(CORS_HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return error(exc.code or 500, exc.description or exc.name)

    routes: list[tuple[str, str, Callable[[], Any], str]] = [
        ("/", "index", api.index, "GET"),
        (HEALTH_PATH, "health", api.health, "GET"),
        (READINESS_PATH, "ready", api.ready, "GET"),
        ("/status", "status", api.status, "GET"),
        ("/count", "get_count", api.get_count, "GET"),
        ("/count", "post_count", api.post_count, "POST"),
    ]
    for prefix in ("", "/api"):
        for path, name, view, method in routes:
            app.add_url_rule(f"{prefix}{path}", f"{name}{prefix}", view, methods=[method])
    return app


def read_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """The request body, or None when it is longer than ``limit`` bytes.

    Reads ``wsgi.input`` itself so a chunked body (no Content-Length) meets the same limit
    as a declared one: at most ``limit + 1`` bytes are read either way.
    """
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH") or ""
    remaining = int(declared) if declared.isdigit() else limit + 1
    if remaining > limit + 1:
        return None
    parts: list[bytes] = []
    while remaining > 0:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    body = b"".join(parts)
    return None if len(body) > limit else body


def fetch_health(base_url: str, timeout_s: float) -> dict[str, Any]:
    """GET <base_url>/health with a short timeout; never raises."""
    url = f"{base_url}/health"
    if not url.startswith(("http://", "https://")):
        return {"reachable": False, "healthy": False, "error": "CONSUMER_URL must be http(s)"}
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - scheme checked
            code = resp.status
            body = resp.read(65536)
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read(65536)
    except (OSError, ValueError) as exc:
        return {"reachable": False, "healthy": False, "error": f"unreachable: {exc}"}
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    return {
        "reachable": True,
        "healthy": code == 200,
        "http_status": code,
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
        "health": parsed,
    }
