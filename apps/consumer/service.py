"""Consumer process: worker loop + /health and /metrics HTTP server + EMF metric lines."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, TextIO

import redis

from apps.common import db as dbmod
from apps.common import redisq
from apps.common.config import hostname
from apps.common.contract import (
    BACKLOG_METRIC,
    DEAD_LETTERED_METRIC,
    HEALTH_PATH,
    METRICS_DIMENSION,
    OLDEST_PENDING_AGE_METRIC,
    PROCESSED_METRIC,
)
from apps.consumer.settings import ConsumerSettings
from apps.consumer.worker import Consumer

log = logging.getLogger("apps.consumer")

FINAL_METRICS_S = 5.0
"""Of the stop bound (``STOP_TIMEOUT_S``), what is kept for the last metric figures."""


def emf_record(
    settings: ConsumerSettings,
    backlog: int | None,
    processed: int,
    dead_lettered: int,
    oldest_pending_age_s: float | None = None,
) -> dict[str, Any]:
    """One CloudWatch Embedded Metric Format record (names are part of the infra contract).

    ``backlog`` and ``oldest_pending_age_s`` are None when they could not be read: the
    record then leaves them out (no data for the interval, which an alarm can treat as
    breaching) instead of reporting 0."""
    values: list[tuple[str, str, float | int | None]] = [
        (BACKLOG_METRIC, "Count", backlog),
        (PROCESSED_METRIC, "Count", processed),
        (DEAD_LETTERED_METRIC, "Count", dead_lettered),
        (OLDEST_PENDING_AGE_METRIC, "Seconds", oldest_pending_age_s),
    ]
    present = [(name, unit, value) for name, unit, value in values if value is not None]
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": settings.metrics_namespace,
                    "Dimensions": [[METRICS_DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in present],
                }
            ],
        },
        METRICS_DIMENSION: settings.environment,
        **{name: value for name, _, value in present},
    }


class Service:
    def __init__(self, settings: ConsumerSettings, out: TextIO | None = None) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.consumer = Consumer(settings, self.stop)
        self.out = out or sys.stdout
        self.host = hostname()
        # Separate short-timeout client for metrics so they never wait on a blocked read.
        self.metrics_redis = redisq.make_redis(settings.redis, socket_timeout_s=2.0)
        self.http: ThreadingHTTPServer | None = None
        self._last_emitted = {"processed": 0, "dead_lettered": 0}

    # ------------------------------------------------------------------ state
    def depth(self) -> dict[str, int | None]:
        try:
            return self.consumer.queue_depth(self.metrics_redis)
        except redis.RedisError:
            return {"lag": None, "pending": None, "backlog": None}

    def oldest_pending_age(self) -> float | None:
        """The age of the group's oldest pending entry in seconds (0 when none), or None
        when it cannot be read."""
        try:
            return round(self.consumer.oldest_pending_age_s(self.metrics_redis), 3)
        except redis.RedisError:
            return None

    def health(self) -> tuple[int, dict[str, Any]]:
        """200 while the worker loop runs (a liveness check: ECS replaces the task on 503).
        ``status`` tells the rest: ``degraded`` (a dependency unreachable), ``stalled`` (the
        batch in hand has waited longer than STALL_AFTER_S, e.g. on a database lock)."""
        stats = self.consumer.stats
        now = time.monotonic()
        # A statement may block up to the database read timeout before the loop beats again.
        stale_after = max(
            30.0, 3 * self.settings.block_ms / 1000 + 10, dbmod.DEFAULT_READ_TIMEOUT_S + 10
        )
        alive = self._worker_alive() and now - stats.heartbeat < stale_after
        deps_ok = stats.redis_ok and stats.db_ok
        started = stats.batch_started
        batch_age = None if started is None else now - started
        stalled = batch_age is not None and batch_age > self.settings.stall_after_s
        if not alive:
            status, message = "unhealthy", "worker loop is not running"
        elif stalled:
            status = "stalled"
            message = (
                f"a batch of {stats.batch_entries} entries has waited {batch_age:.0f} s "
                "to be stored (a database lock or outage)"
            )
        elif not deps_ok:
            status, message = "degraded", "a dependency is unreachable; retrying"
        else:
            status, message = "ok", "consumer is running"
        body = {
            "status": status,
            "service": "consumer",
            "message": message,
            "hostname": self.host,
            "consumer": self.settings.consumer_name,
            "environment": self.settings.environment,
            "worker_alive": alive,
            "batch": {
                "in_progress": started is not None,
                "entries": stats.batch_entries if started is not None else 0,
                "age_s": None if batch_age is None else round(batch_age, 1),
                "stalled": stalled,
            },
            "redis": {"reachable": stats.redis_ok},
            "database": {"reachable": stats.db_ok},
        }
        return (200 if alive else 503), body

    def metrics(self) -> dict[str, Any]:
        return {
            **self.consumer.stats.snapshot(),
            **self.depth(),
            "oldest_pending_age_s": self.oldest_pending_age(),
            "hostname": self.host,
        }

    def _worker_alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    # ------------------------------------------------------------------ threads
    _worker: threading.Thread | None = None

    def emit_metrics(self) -> None:
        snap = self.consumer.stats.snapshot()
        depth = self.depth()
        processed = snap["processed"] - self._last_emitted["processed"]
        dead = snap["dead_lettered"] - self._last_emitted["dead_lettered"]
        self._last_emitted = {
            "processed": snap["processed"],
            "dead_lettered": snap["dead_lettered"],
        }
        backlog = depth["backlog"]
        if backlog is None:
            log.warning("queue depth unavailable; %s not emitted this interval", BACKLOG_METRIC)
        age = self.oldest_pending_age()
        if age is None:
            log.warning(
                "oldest pending entry unavailable; %s not emitted this interval",
                OLDEST_PENDING_AGE_METRIC,
            )
        record = emf_record(self.settings, backlog, processed, dead, oldest_pending_age_s=age)
        self.out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.out.flush()

    def _metrics_loop(self) -> None:
        while not self.stop.wait(self.settings.metrics_interval_s):
            try:
                self.emit_metrics()
            except Exception:
                log.exception("metrics emission failed")

    def start_http(self) -> int:
        service = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "consumer"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                if path in (HEALTH_PATH, f"/api{HEALTH_PATH}"):
                    code, body = service.health()
                elif path == "/metrics":
                    code, body = 200, service.metrics()
                elif path == "":
                    code, body = 200, {}
                else:
                    code, body = 404, {"error": "not found", "status": 404}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        self.http = ThreadingHTTPServer((self.settings.bind_host, self.settings.port), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, name="http", daemon=True).start()
        return int(self.http.server_address[1])

    _crashed = False

    def _run_worker(self) -> None:
        try:
            self.consumer.run()
        except Exception:
            log.exception("worker loop crashed")
            self._crashed = True
            self.consumer.close()

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d received: stopping", signum)
        self.stop.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        port = self.start_http()
        log.info("health and metrics on port %d", port)
        # A daemon thread: after a stop request the process waits for it for
        # STOP_TIMEOUT_S at most, whatever call to Redis or the database it is in.
        self._worker = threading.Thread(target=self._run_worker, name="worker", daemon=True)
        self._worker.start()
        metrics = threading.Thread(target=self._metrics_loop, name="metrics", daemon=True)
        metrics.start()
        while self._worker.is_alive() and not self.stop.is_set():
            self._worker.join(timeout=0.5)
        deadline = time.monotonic() + self.settings.stop_timeout_s
        self.stop.set()
        # Most of the bound for the worker's batch; the final figures and the HTTP server
        # get what is left, and at least a second.
        self._worker.join(timeout=max(deadline - time.monotonic() - FINAL_METRICS_S, 0.0))
        if self._worker.is_alive():
            log.warning(
                "worker still in a call to Redis or the database %.0f s after the stop "
                "request: exiting without it; its batch is not acknowledged and is "
                "delivered again", self.settings.stop_timeout_s - FINAL_METRICS_S,
            )  # fmt: skip
        final = threading.Thread(target=self._final_metrics, name="final-metrics", daemon=True)
        final.start()
        final.join(timeout=max(deadline - time.monotonic(), 1.0))
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        with contextlib.suppress(Exception):  # best effort on the way out
            self.metrics_redis.close()
        return 1 if self._crashed else 0

    def _final_metrics(self) -> None:
        with contextlib.suppress(Exception):  # best effort on the way out
            self.emit_metrics()
