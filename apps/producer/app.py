"""Flask application factory for the producer API."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pymysql
import redis
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from apps.common import db as dbmod
from apps.common import redisq
from apps.common.config import BIGINT_MAX, BIGINT_MIN, hostname
from apps.common.schema import COUNTS_TABLE
from apps.producer.settings import ProducerSettings

log = logging.getLogger("apps.producer")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key",
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
            self.redis.ping()
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


def create_app(settings: ProducerSettings) -> Flask:
    app = Flask("apps.producer")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    backends = Backends(settings)
    app.extensions["backends"] = backends
    host = hostname()

    @app.after_request
    def cors(response: Response) -> Response:
        response.headers.update(CORS_HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return error(exc.code or 500, exc.description or exc.name)

    def health_body() -> tuple[dict[str, Any], bool]:
        r_ok, r_err = backends.redis_ok()
        d_ok, d_err = backends.db_ok()
        ok = r_ok and d_ok
        body: dict[str, Any] = {
            "status": "ok" if ok else "unavailable",
            "service": "producer",
            "message": "producer is running" if ok else "a dependency is unreachable",
            "hostname": host,
            "environment": settings.environment,
            "redis": {"reachable": r_ok, **({"error": r_err} if r_err else {})},
            "database": {"reachable": d_ok, **({"error": d_err} if d_err else {})},
        }
        return body, ok

    def index() -> Response:
        return Response(status=200)

    def health() -> tuple[Response, int]:
        body, ok = health_body()
        return jsonify(body), 200 if ok else 503

    def status() -> tuple[Response, int]:
        producer, ok = health_body()
        consumer: dict[str, Any] = {"url": settings.consumer_url, "reachable": False}
        if settings.consumer_url is None:
            consumer["error"] = "CONSUMER_URL is not set"
        else:
            consumer.update(fetch_health(settings.consumer_url, settings.status_timeout_s))
        overall = ok and bool(consumer.get("healthy"))
        return jsonify(
            {"status": "ok" if overall else "degraded", "producer": producer, "consumer": consumer}
        ), 200

    def get_count() -> tuple[Response, int]:
        try:
            row = backends.query(
                f"SELECT (SELECT COUNT(*) FROM `{COUNTS_TABLE}`), "  # noqa: S608
                f"(SELECT value FROM `{COUNTS_TABLE}` ORDER BY id DESC LIMIT 1)"
            )
        except pymysql.err.MySQLError as exc:
            log.warning("database query failed: %s", exc)
            return error(503, "database unavailable")
        count = int(row[0]) if row else 0
        latest = int(row[1]) if row and row[1] is not None else None
        return jsonify({"count": count, "latest": latest, "hostname": host}), 200

    def post_count() -> tuple[Response, int]:
        length = request.content_length
        if length is not None and length > settings.max_body_bytes:
            return error(413, f"request body larger than {settings.max_body_bytes} bytes")
        if request.mimetype != "application/json":
            return error(415, "Content-Type must be application/json")
        raw = request.get_data(cache=True)
        if len(raw) > settings.max_body_bytes:
            return error(413, f"request body larger than {settings.max_body_bytes} bytes")
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return error(400, "request body is not valid JSON")
        if not isinstance(payload, dict):
            return error(400, "request body must be a JSON object")
        if "count" not in payload:
            return error(400, "missing field: count")
        value = payload["count"]
        if not redisq.valid_value(value):
            return error(
                400 if type(value) is not int else 422,
                f"count must be an integer between {BIGINT_MIN} and {BIGINT_MAX}",
            )
        key = request.headers.get("Idempotency-Key")
        if key is not None and not redisq.KEY_PATTERN.match(key):
            return error(400, "Idempotency-Key must be 1-64 characters of [A-Za-z0-9_.:-]")
        try:
            entry_id, msg_key = redisq.enqueue(
                backends.redis,
                settings.redis.stream,
                value,
                key=key,
                attempts=settings.enqueue_attempts,
                backoff_s=settings.enqueue_backoff_ms / 1000,
            )
        except redisq.EnqueueError as exc:
            log.warning("enqueue failed: %s", exc)
            return error(503, "queue unavailable, value not accepted; retry later")
        return jsonify(
            {
                "status": "accepted",
                "message": f"value {value} added to the queue",
                "count": value,
                "id": entry_id,
                "key": msg_key,
                "hostname": host,
            }
        ), 202

    for prefix in ("", "/api"):
        app.add_url_rule(f"{prefix}/", f"index{prefix}", index, methods=["GET"])
        app.add_url_rule(f"{prefix}/health", f"health{prefix}", health, methods=["GET"])
        app.add_url_rule(f"{prefix}/status", f"status{prefix}", status, methods=["GET"])
        app.add_url_rule(f"{prefix}/count", f"get_count{prefix}", get_count, methods=["GET"])
        app.add_url_rule(f"{prefix}/count", f"post_count{prefix}", post_count, methods=["POST"])
    return app


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
