"""Post-deploy smoke test through an environment's public URL (stdlib only).

``python -m tools.deploy.smoke https://<dist>.cloudfront.net [--timeout S]`` checks the
whole write path the way a user reaches it: CloudFront forwards ``/api/*`` to the load
balancer and the producer; the producer enqueues; the consumer stores into the database.

1. ``GET /api/ready`` until 200 (the producer can reach the queue), then ``GET
   /api/health`` (its JSON ``status``; a 503 there is reported, not fatal);
2. ``POST /api/count`` with a unique value and ``Idempotency-Key: smoke-<value>``,
   retried with the same key while the producer answers 503 with ``outcome`` ``unknown``
   or ``not_accepted`` (the API stores a value once per key);
3. ``GET /api/count`` until ``latest`` is the value (the consumer stored it), then ``GET
   /api/status`` must say ``ok`` (producer and consumer healthy).

Everything shares one deadline (``timeout_s`` from the start). :func:`smoke_test` never
raises for HTTP or network errors and prints nothing: it returns a :class:`SmokeResult`
whose ``steps`` (one line per check, with timing; ``<check>: FAILED`` last on failure)
the caller prints, and whose ``error`` names the failed step, the cause and what to check.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from apps.common.contract import IDEMPOTENCY_HEADER

RETRYABLE_OUTCOMES = frozenset({"unknown", "not_accepted"})
REQUEST_TIMEOUT_S = 15.0
"""Upper bound for one request (CloudFront's origin timeout is 30 s)."""
BODY_PREVIEW = 300
STATUS_BODY_PREVIEW = 2000
"""/api/status bodies are reported (nearly) whole: they say which service is unhealthy."""
USER_AGENT = "deploy-smoke-test/1"


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    steps: tuple[str, ...]
    """One human line per check, with timing."""
    error: str | None


@dataclass(frozen=True)
class _Response:
    """An HTTP answer (any status) or, with ``status`` None, why there was none."""

    status: int | None
    body: bytes
    reason: str = ""

    def json(self) -> dict[str, Any] | None:
        try:
            parsed: Any = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None
        return parsed if isinstance(parsed, dict) else None

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.reason})"
        return f"HTTP {self.status} {_preview(self.body)}"


class _CheckFailedError(Exception):
    """A check failed: ``error`` is the message for the caller."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _preview(body: bytes, limit: int = BODY_PREVIEW) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else text[:limit] + "..."


def _elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f} s"


class _Run:
    """One smoke test: the shared deadline, the HTTP client and the step lines."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        interval_s: float,
        value: int,
        opener: urllib.request.OpenerDirector,
    ) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.value = value
        self.opener = opener
        self.deadline = time.monotonic() + timeout_s
        self.steps: list[str] = []
        self.before: tuple[int, int | None] | None = None
        """``(count, latest)`` of GET /api/count before the POST, when it answered."""

    # ------------------------------------------------------------------ plumbing

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> _Response:
        """One request; never raises (network errors become ``status=None``)."""
        data = None if payload is None else json.dumps(payload).encode()
        all_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        timeout = max(1.0, min(REQUEST_TIMEOUT_S, self.remaining()))
        req = urllib.request.Request(  # noqa: S310 - the scheme is checked in smoke_test
            self.base_url + path, data=data, headers=all_headers, method=method
        )
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                return _Response(int(resp.status), resp.read())
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, http.client.HTTPException):
                body = b""
            return _Response(exc.code, body)
        except urllib.error.URLError as exc:
            return _Response(None, b"", str(exc.reason))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return _Response(None, b"", f"{type(exc).__name__}: {exc}")

    def pause(self) -> bool:
        """Sleep before the next attempt (the last one at the deadline); False once the
        deadline has passed."""
        left = self.remaining()
        if left <= 0:
            return False
        time.sleep(min(self.interval_s, left))
        return True

    # ------------------------------------------------------------------ checks

    def ready(self) -> None:
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            resp = self.request("GET", "/api/ready")
            if resp.status == 200:
                self.steps.append(
                    f"ready: GET /api/ready -> 200 after {attempts} attempt(s) "
                    f"({_elapsed(started)})"
                )
                return
            if not self.pause():
                break
        if resp.status is None:
            hint = (
                "check the URL, that the CloudFront distribution is deployed and that its "
                "origin (the load balancer) accepts connections"
            )
        else:
            hint = (
                "check the producer service (ECS service events, target group health, task "
                "logs) and that it can reach the queue"
            )
        raise _CheckFailedError(
            f"readiness: {self.base_url}/api/ready did not answer 200 within "
            f"{self.timeout_s:g} s ({attempts} attempt(s)); last: {resp.describe()}: {hint}"
        )

    def health(self) -> None:
        started = time.monotonic()
        resp = self.request("GET", "/api/health")
        body = resp.json()
        if resp.status == 200 and body is not None:
            self.steps.append(
                f"health: GET /api/health -> 200 status={body.get('status')} ({_elapsed(started)})"
            )
            return
        # Not fatal: readiness (the queue) is what the write path needs, and the next
        # steps find out whether values are stored.
        if body is not None:
            detail = f"{resp.status} status={body.get('status')}: {body.get('message')}"
        else:
            detail = resp.describe()
        self.steps.append(
            f"health: GET /api/health -> {detail} (not fatal: /api/ready is 200) "
            f"({_elapsed(started)})"
        )

    def count_before(self) -> None:
        """The count before the POST (to tell the smoke value from others); not fatal."""
        started = time.monotonic()
        resp = self.request("GET", "/api/count")
        seen = _read_count(resp)
        if seen is None:
            self.steps.append(
                f"count before: GET /api/count -> {resp.describe()} (not fatal) "
                f"({_elapsed(started)})"
            )
        else:
            self.steps.append(
                f"count before: GET /api/count -> count={seen[0]} latest={seen[1]} "
                f"({_elapsed(started)})"
            )
        self.before = seen

    def post(self) -> None:
        key = f"smoke-{self.value}"
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            resp = self.request(
                "POST", "/api/count", {"count": self.value}, {IDEMPOTENCY_HEADER: key}
            )
            body = resp.json()
            if resp.status == 202:
                replayed = ""
                if body is not None and body.get("replayed"):
                    replayed = " (replayed: already accepted under this key)"
                self.steps.append(
                    f"post: POST /api/count count={self.value} {IDEMPOTENCY_HEADER}: {key} "
                    f"-> 202 after {attempts} attempt(s){replayed} ({_elapsed(started)})"
                )
                return
            # 503 + outcome unknown/not_accepted, or no answer at all: retrying with the
            # same key stores the value at most once (the API's idempotency contract).
            retryable = resp.status is None or (
                resp.status == 503
                and body is not None
                and body.get("outcome") in RETRYABLE_OUTCOMES
            )
            if not retryable:
                raise _CheckFailedError(
                    f"post: POST /api/count answered {resp.status} (expected 202): "
                    f"{_preview(resp.body)}: check the producer service's logs"
                )
            if not self.pause():
                break
        raise _CheckFailedError(
            f"post: POST /api/count was not accepted within {self.timeout_s:g} s "
            f"({attempts} attempt(s) with {IDEMPOTENCY_HEADER} {key}); last: "
            f"{resp.describe()}: check the producer service's logs and the queue it writes to"
        )

    def stored(self) -> None:
        before = self.before
        started = time.monotonic()
        polls = 0
        while True:
            polls += 1
            resp = self.request("GET", "/api/count")
            seen = _read_count(resp)
            if seen is not None and seen[1] == self.value:
                was = "" if before is None else f" (was {before[0]})"
                self.steps.append(
                    f"stored: GET /api/count -> latest={self.value} count={seen[0]}{was} "
                    f"after {polls} poll(s) ({_elapsed(started)})"
                )
                return
            if not self.pause():
                break
        if seen is None:
            last = resp.describe()
        else:
            last = f"count={seen[0]} latest={seen[1]}"
            if before is not None and seen[0] > before[0]:
                last += f", count grew from {before[0]}: other values were stored meanwhile"
        raise _CheckFailedError(
            f"storing: the consumer did not store the value {self.value} within "
            f"{self.timeout_s:g} s (waited {_elapsed(started)} after the POST, {polls} poll(s) "
            f"of GET /api/count; last: {last}): check the consumer service's logs and tasks, "
            "its queue backlog, and that it can reach the database"
        )

    def status(self) -> None:
        started = time.monotonic()
        while True:
            resp = self.request("GET", "/api/status")
            body = resp.json()
            if resp.status == 200 and body is not None:
                break
            if not self.pause():
                raise _CheckFailedError(
                    f"status: GET /api/status did not answer within {self.timeout_s:g} s; "
                    f"last: {resp.describe()}: check the producer service's logs"
                )
        status = body.get("status")
        if status == "ok":
            self.steps.append(f"status: GET /api/status -> status=ok ({_elapsed(started)})")
            return
        producer = _mapping(body.get("producer"))
        consumer = _mapping(body.get("consumer"))
        health = _mapping(consumer.get("health"))
        producer_says = f"producer: status={producer.get('status')}"
        if producer.get("status") != "ok":
            producer_says += f" ({producer.get('message')})"
        consumer_says = f"consumer: healthy={consumer.get('healthy')}"
        if health:
            consumer_says += f" status={health.get('status')} ({health.get('message')})"
        if consumer.get("error"):
            consumer_says += f" ({consumer.get('error')})"
        raise _CheckFailedError(
            f"status: GET /api/status -> status={status}, expected ok ({producer_says}; "
            f"{consumer_says}): check the unhealthy service's ECS tasks and logs; body: "
            f"{_preview(resp.body, STATUS_BODY_PREVIEW)}"
        )


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read_count(resp: _Response) -> tuple[int, int | None] | None:
    """``(count, latest)`` from a GET /api/count answer, or None."""
    body = resp.json()
    if resp.status != 200 or body is None:
        return None
    count, latest = body.get("count"), body.get("latest")
    if type(count) is not int or not (latest is None or type(latest) is int):
        return None
    return count, latest


def smoke_test(
    base_url: str,
    *,
    timeout_s: float = 180.0,
    interval_s: float = 3.0,
    value: int | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> SmokeResult:
    """Run the smoke test against ``base_url`` (``https://<dist>.cloudfront.net``).

    ``timeout_s`` bounds the whole test; ``interval_s`` is the pause between polls and
    retries; ``value`` defaults to the epoch in milliseconds (unique per run); ``opener``
    defaults to :func:`urllib.request.build_opener` (proxies from the environment).
    """
    base = base_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        error = f"url: invalid base URL {base_url!r}: expected http(s)://host (the CloudFront URL)"
        return SmokeResult(False, ("url: FAILED",), error)
    run = _Run(
        base,
        timeout_s=timeout_s,
        interval_s=interval_s,
        value=time.time_ns() // 1_000_000 if value is None else value,
        opener=opener or urllib.request.build_opener(),
    )
    checks = (
        ("ready", run.ready),
        ("health", run.health),
        ("count before", run.count_before),
        ("post", run.post),
        ("stored", run.stored),
        ("status", run.status),
    )
    for name, check in checks:
        started = time.monotonic()
        try:
            check()
        except _CheckFailedError as exc:
            run.steps.append(f"{name}: FAILED ({_elapsed(started)})")
            return SmokeResult(False, tuple(run.steps), exc.error)
        except Exception as exc:  # a bug here must not abort the deploy script with a traceback
            run.steps.append(f"{name}: FAILED ({_elapsed(started)})")
            error = f"{name}: unexpected error {type(exc).__name__}: {exc}"
            return SmokeResult(False, tuple(run.steps), error)
    return SmokeResult(True, tuple(run.steps), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.deploy.smoke",
        description="Smoke-test a deployed environment through its public (CloudFront) URL.",
    )
    parser.add_argument("base_url", help="e.g. https://d111111abcdef8.cloudfront.net")
    parser.add_argument(
        "--timeout", type=float, default=180.0, metavar="S",
        help="overall deadline in seconds (default: 180)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    result = smoke_test(args.base_url, timeout_s=args.timeout)
    for step in result.steps:
        print(step)
    if result.ok:
        print("smoke test passed")
        return 0
    print(f"smoke test failed: {result.error}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
