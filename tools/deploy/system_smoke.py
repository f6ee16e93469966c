"""Smoke tests of the seed systems after a deploy (stdlib HTTP; AWS read through probes the
caller gives). Each check polls until it passes or the shared deadline passes, and the
result names the failing step, the last answer and what to check, as the platform's
(tools/deploy/smoke.py) does:

- Metabase: ``GET /api/health`` answers ``{"status": "ok"}`` through the load balancer.
- Dekart: an unauthenticated ``GET /`` is redirected to the Cognito sign-in (with
  sign-in; without it ``GET /health`` answers 200), and the target group's targets are
  healthy (the ELB API).
- Metaflow: ``GET /ping`` through API Gateway with the stack's API key answers ``pong``,
  and ``GET /flows`` answers a JSON list.
- Panintelligence: the dashboard's login page (``GET /pi/``) answers HTML, and all four
  services are steady (the ECS API).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools.deploy.smoke import BODY_PREVIEW, USER_AGENT, SmokeResult, _preview

REQUEST_TIMEOUT_S = 15.0

Probe = Callable[[], str | None]
"""Reads AWS: None when the condition holds, else what is wrong (polled)."""


@dataclass(frozen=True)
class Answer:
    status: int | None
    body: bytes
    headers: dict[str, str]
    reason: str = ""

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.reason})"
        return f"HTTP {self.status} {_preview(self.body, BODY_PREVIEW)}"

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the redirect itself is the answer


class _FailedError(Exception):
    pass


class Run:
    """One smoke test: the deadline, the HTTP client and the step lines."""

    def __init__(self, base_url: str, timeout_s: float, interval_s: float) -> None:
        self.base = base_url.strip().rstrip("/")
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.deadline = time.monotonic() + timeout_s
        self.steps: list[str] = []
        self.following = urllib.request.build_opener()
        self.stopping = urllib.request.build_opener(_NoRedirect)

    def get(
        self, path: str, headers: dict[str, str] | None = None, *, follow: bool = True
    ) -> Answer:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in run_checks
            self.base + path, headers={"User-Agent": USER_AGENT, **(headers or {})}
        )
        opener = self.following if follow else self.stopping
        timeout = max(1.0, min(REQUEST_TIMEOUT_S, self.deadline - time.monotonic()))
        try:
            with opener.open(request, timeout=timeout) as resp:
                return Answer(int(resp.status), resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, http.client.HTTPException):
                body = b""
            return Answer(exc.code, body, dict(exc.headers or {}))
        except urllib.error.URLError as exc:
            return Answer(None, b"", {}, str(exc.reason))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return Answer(None, b"", {}, f"{type(exc).__name__}: {exc}")

    def until(self, name: str, attempt: Callable[[], tuple[bool, str]], hint: str) -> None:
        """Poll ``attempt`` (ok, what it saw) until ok or the deadline."""
        started, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            ok, seen = attempt()
            if ok:
                self.steps.append(
                    f"{name}: {seen} after {attempts} attempt(s) "
                    f"({time.monotonic() - started:.1f} s)"
                )
                return
            left = self.deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(self.interval_s, left))
        raise _FailedError(
            f"{name}: not passed within {self.timeout_s:g} s ({attempts} attempt(s)); last: "
            f"{seen}: {hint}"
        )


def run_checks(
    base_url: str,
    checks: list[tuple[str, Callable[[Run], None]]],
    *,
    timeout_s: float,
    interval_s: float,
) -> SmokeResult:
    if not base_url.strip().startswith(("http://", "https://")):
        return SmokeResult(
            False, ("url: FAILED",), f"url: invalid base URL {base_url!r}: expected http(s)://"
        )
    run = Run(base_url, timeout_s, interval_s)
    for name, check in checks:
        started = time.monotonic()
        try:
            check(run)
        except _FailedError as exc:
            run.steps.append(f"{name}: FAILED ({time.monotonic() - started:.1f} s)")
            return SmokeResult(False, tuple(run.steps), str(exc))
        except Exception as exc:  # a bug here must not abort the deploy with a traceback
            run.steps.append(f"{name}: FAILED ({time.monotonic() - started:.1f} s)")
            return SmokeResult(
                False, tuple(run.steps), f"{name}: unexpected error {type(exc).__name__}: {exc}"
            )
    return SmokeResult(True, tuple(run.steps), None)


def probe_check(name: str, probe: Probe, hint: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        def attempt() -> tuple[bool, str]:
            problem = probe()
            return problem is None, problem or "ok"

        run.until(name, attempt, hint)

    return check


# ------------------------------------------------------------------ the systems


def metabase(base_url: str, *, timeout_s: float = 600.0, interval_s: float = 5.0) -> SmokeResult:
    def health(run: Run) -> None:
        def attempt() -> tuple[bool, str]:
            answer = run.get("/api/health")
            body = answer.json()
            ok = answer.status == 200 and isinstance(body, dict) and body.get("status") == "ok"
            return ok, ('GET /api/health -> {"status": "ok"}' if ok else answer.describe())

        run.until(
            "health",
            attempt,
            "check the metabase service (ECS events, target health, its log: a first start "
            "migrates the application database for minutes)",
        )

    return run_checks(base_url, [("health", health)], timeout_s=timeout_s, interval_s=interval_s)


def dekart(
    base_url: str,
    *,
    cognito: bool,
    targets: Probe,
    timeout_s: float = 300.0,
    interval_s: float = 5.0,
) -> SmokeResult:
    def sign_in(run: Run) -> None:
        def attempt() -> tuple[bool, str]:
            answer = run.get("/", follow=False)
            location = answer.headers.get("Location") or answer.headers.get("location") or ""
            ok = answer.status in (302, 303) and ".amazoncognito.com/oauth2/authorize" in location
            if ok:
                return True, f"GET / -> {answer.status} to {location.split('?', 1)[0]}"
            return False, answer.describe() + (f" Location: {location}" if location else "")

        run.until(
            "sign-in",
            attempt,
            "the load balancer must send an unauthenticated request to Cognito: check the "
            "HTTPS listener's authenticate-cognito action and the user pool's domain",
        )

    def health(run: Run) -> None:
        def attempt() -> tuple[bool, str]:
            answer = run.get("/health")
            return answer.status == 200, (
                "GET /health -> 200" if answer.status == 200 else answer.describe()
            )

        run.until("health", attempt, "check the dekart service's tasks and log")

    first = ("sign-in", sign_in) if cognito else ("health", health)
    hint = "check the dekart service's events and log (a task that fails /health is replaced)"
    return run_checks(
        base_url,
        [first, ("targets", probe_check("targets", targets, hint))],
        timeout_s=timeout_s,
        interval_s=interval_s,
    )


def metaflow(
    base_url: str, api_key: str | None, *, timeout_s: float = 300.0, interval_s: float = 5.0
) -> SmokeResult:
    headers = {"x-api-key": api_key} if api_key else {}

    def ping(run: Run) -> None:
        def attempt() -> tuple[bool, str]:
            answer = run.get("/ping", headers)
            ok = answer.status == 200 and answer.body.strip() == b"pong"
            return ok, ("GET /ping -> pong" if ok else answer.describe())

        run.until(
            "ping",
            attempt,
            "a 403 is the API key or the resource policy (is this machine's address in "
            "access_list_cidr_blocks?); a 5xx is the VPC link, the load balancer or the service",
        )

    def flows(run: Run) -> None:
        def attempt() -> tuple[bool, str]:
            answer = run.get("/flows", headers)
            body = answer.json()
            if answer.status == 200 and isinstance(body, list):
                return True, f"GET /flows -> {len(body)} flow(s)"
            return False, answer.describe()

        run.until(
            "flows",
            attempt,
            "the service answers but cannot read its database: check its log and the "
            "migration function's",
        )

    return run_checks(
        base_url.rstrip("/"),
        [("ping", ping), ("flows", flows)],
        timeout_s=timeout_s,
        interval_s=interval_s,
    )


def panintelligence(
    base_url: str, *, services: Probe, timeout_s: float = 900.0, interval_s: float = 10.0
) -> SmokeResult:
    def login_page(run: Run) -> None:
        def attempt() -> tuple[bool, str]:
            answer = run.get("/pi/")
            kind = answer.headers.get("Content-Type") or answer.headers.get("content-type") or ""
            text = answer.body.decode("utf-8", errors="replace").lower()
            ok = answer.status == 200 and "text/html" in kind and "login" in text
            return ok, ("GET /pi/ -> the login page" if ok else answer.describe())

        run.until(
            "login page",
            attempt,
            "check the dashboard service (ECS events, target health, its log: Tomcat and the "
            "schema checks take minutes on a first start)",
        )

    hint = "check the named service's ECS events and log"
    return run_checks(
        base_url,
        [("login page", login_page), ("services", probe_check("services", services, hint))],
        timeout_s=timeout_s,
        interval_s=interval_s,
    )


# ------------------------------------------------------------------ AWS probes


def targets_probe(elbv2: Any, load_balancer: str) -> Probe:
    """Every target of the load balancer's target groups healthy (at least one)."""

    def probe() -> str | None:
        found = elbv2.describe_load_balancers(Names=[load_balancer])["LoadBalancers"]
        groups = elbv2.describe_target_groups(LoadBalancerArn=found[0]["LoadBalancerArn"])
        states = []
        for group in groups["TargetGroups"]:
            health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
            states += [
                (group["TargetGroupName"], d["TargetHealth"]["State"])
                for d in health["TargetHealthDescriptions"]
            ]
        if not states:
            return f"no targets registered behind {load_balancer}"
        bad = [f"{name}: {state}" for name, state in states if state != "healthy"]
        return f"targets not healthy ({', '.join(bad)})" if bad else None

    return probe


def services_probe(ecs: Any, cluster: str, services: list[str]) -> Probe:
    """Each service steady: one completed deployment, running = desired > 0."""

    def probe() -> str | None:
        described = ecs.describe_services(cluster=cluster, services=services)
        problems = [f"{f['arn']}: {f.get('reason')}" for f in described.get("failures", [])]
        for service in described.get("services", []):
            name = service["serviceName"]
            running, desired = service.get("runningCount", 0), service.get("desiredCount", 0)
            rollouts = [d.get("rolloutState", "COMPLETED") for d in service.get("deployments", [])]
            if desired == 0 or running != desired:
                problems.append(f"{name}: {running}/{desired} running")
            elif len(rollouts) > 1 or any(r != "COMPLETED" for r in rollouts):
                problems.append(f"{name}: deployment {', '.join(rollouts)}")
        return f"not steady ({'; '.join(problems)})" if problems else None

    return probe
