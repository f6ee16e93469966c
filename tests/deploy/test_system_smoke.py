"""The seed systems' smoke tests (tools/deploy/system_smoke.py) against local stand-in
servers that answer as each system does through its load balancer or API Gateway, and the
AWS probes (target health, ECS services) against moto in server mode."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.deploy.conftest import REGION
from tools.deploy import system_smoke as smoke
from tools.deploy.plan import Context, DryRunner
from tools.deploy.systems import smoke_system

Answer = tuple[int, dict[str, str], bytes]
Handler = Callable[[str, dict[str, str]], Answer]
FAST = {"timeout_s": 1.5, "interval_s": 0.1}


def serve(answer: Handler) -> Iterator[str]:
    class Stand(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = answer(
                self.path, {k.lower(): v for k, v in self.headers.items()}
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stand)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stand_in() -> Iterator[Callable[[Handler], str]]:
    """Start a stand-in server answering with the given handler; stopped after the test."""
    servers: list[Iterator[str]] = []

    def start(answer: Handler) -> str:
        running = serve(answer)
        servers.append(running)
        return next(running)

    yield start
    for running in servers:
        next(running, None)


JSON = {"Content-Type": "application/json"}


# ------------------------------------------------------------------ Metabase


def metabase(ready: bool) -> Handler:
    def answer(path: str, headers: dict[str, str]) -> Answer:
        if path != "/api/health":
            return 404, {}, b"Not found."
        if ready:
            return 200, JSON, b'{"status":"ok"}'
        return 503, JSON, b'{"status":"initializing","progress":0.3}'

    return answer


def test_metabase_passes_when_health_says_ok(stand_in: Callable[[Handler], str]) -> None:
    result = smoke.metabase(stand_in(metabase(True)), **FAST)
    assert result.ok, result.error
    assert result.steps[0].startswith('health: GET /api/health -> {"status": "ok"} after 1 attempt')


def test_metabase_fails_while_it_initializes(stand_in: Callable[[Handler], str]) -> None:
    result = smoke.metabase(stand_in(metabase(False)), **FAST)
    assert not result.ok
    assert result.steps[-1].startswith("health: FAILED (")
    assert result.error is not None
    assert result.error.startswith("health: not passed within 1.5 s (")
    assert 'last: HTTP 503 {"status":"initializing","progress":0.3}: check the metabase' in (
        result.error
    )


# ------------------------------------------------------------------ Dekart

COGNITO = (
    "https://dekart-prod-123456789012.auth.eu-central-1.amazoncognito.com/oauth2/authorize"
    "?client_id=abc&redirect_uri=https%3A%2F%2Fdekart.acme.io%2Foauth2%2Fidpresponse"
    "&response_type=code&scope=openid+email"
)


def dekart(signed_in: bool) -> Handler:
    """The load balancer in front of Dekart: with sign-in, every unauthenticated request
    is redirected to Cognito; without, Dekart answers itself."""

    def answer(path: str, headers: dict[str, str]) -> Answer:
        if signed_in:
            return 302, {"Location": COGNITO}, b""
        if path == "/health":
            return 200, {}, b"ok"
        return 200, {"Content-Type": "text/html"}, b"<html>Dekart</html>"

    return answer


def healthy() -> str | None:
    return None


def test_dekart_passes_with_the_cognito_redirect_and_healthy_targets(
    stand_in: Callable[[Handler], str],
) -> None:
    result = smoke.dekart(stand_in(dekart(True)), cognito=True, targets=healthy, **FAST)
    assert result.ok, result.error
    assert result.steps[0].startswith(
        "sign-in: GET / -> 302 to https://dekart-prod-123456789012.auth.eu-central-1."
        "amazoncognito.com/oauth2/authorize after 1 attempt"
    )
    assert result.steps[1].startswith("targets: ok after 1 attempt")


def test_dekart_fails_when_the_application_answers_without_sign_in(
    stand_in: Callable[[Handler], str],
) -> None:
    result = smoke.dekart(stand_in(dekart(False)), cognito=True, targets=healthy, **FAST)
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("sign-in: not passed within 1.5 s")
    assert "last: HTTP 200 <html>Dekart</html>: the load balancer must send" in result.error


def test_dekart_fails_naming_the_unhealthy_targets(stand_in: Callable[[Handler], str]) -> None:
    result = smoke.dekart(
        stand_in(dekart(False)),
        cognito=False,
        targets=lambda: "targets not healthy (dekart-dev: unhealthy)",
        **FAST,
    )
    assert not result.ok
    assert result.steps[0].startswith("health: GET /health -> 200")
    assert result.steps[-1].startswith("targets: FAILED (")
    assert result.error is not None
    assert "last: targets not healthy (dekart-dev: unhealthy): check the dekart" in result.error


def load_balancer(elbv2: Any, name: str) -> str:
    """A load balancer with a listener forwarding to a target group; the group's ARN."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]
    group = elbv2.create_target_group(
        Name=f"{name}-tg", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    return str(group)


def test_the_target_probe_reads_target_health(aws: dict[str, Any]) -> None:
    group = load_balancer(aws["elbv2"], "dekart-dev-web")
    probe = smoke.targets_probe(aws["elbv2"], "dekart-dev-web")
    assert probe() == "no targets registered behind dekart-dev-web"
    aws["elbv2"].register_targets(TargetGroupArn=group, Targets=[{"Id": "10.0.0.7", "Port": 8080}])
    assert probe() is None


# ------------------------------------------------------------------ Metaflow


def metaflow(key: str, *, database: bool = True) -> Handler:
    """API Gateway in front of the metadata service: the API key or 403."""

    def answer(path: str, headers: dict[str, str]) -> Answer:
        if headers.get("x-api-key") != key:
            return 403, JSON, b'{"message":"Forbidden"}'
        if path == "/ping":
            return 200, {"Content-Type": "text/plain"}, b"pong"
        if path == "/flows" and database:
            return 200, JSON, b'[{"flow_id": "HelloFlow"}]'
        return 500, JSON, b'{"message": "Internal server error"}'

    return answer


def test_metaflow_passes_with_the_stacks_api_key(
    stand_in: Callable[[Handler], str], aws: dict[str, Any], outdir: Path
) -> None:
    """The key comes from the stack's output (its id) through API Gateway (moto)."""
    created = aws["apigateway"].create_api_key(name="metaflow-dev", value="k" * 30, enabled=True)
    base = stand_in(metaflow("k" * 30))
    ctx = Context(
        env="metaflow-dev",
        runner=DryRunner(io.StringIO()),
        outdir=outdir,
        region=REGION,
        session=boto3.session.Session(),
        system="metaflow",
        outputs={
            "METAFLOW_SERVICE_URL": f"{base}/",
            "api_gateway_rest_api_id_key_id": created["id"],
        },
    )
    result = smoke_system(ctx)
    assert result.ok, result.error
    assert [s.split(" after ")[0] for s in result.steps] == [
        "ping: GET /ping -> pong",
        "flows: GET /flows -> 1 flow(s)",
    ]


def test_metaflow_fails_on_a_wrong_key(stand_in: Callable[[Handler], str]) -> None:
    result = smoke.metaflow(stand_in(metaflow("right")), "wrong", **FAST)
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("ping: not passed within 1.5 s")
    assert 'last: HTTP 403 {"message":"Forbidden"}: a 403 is the API key' in result.error


def test_metaflow_fails_at_flows_when_the_database_is_unreachable(
    stand_in: Callable[[Handler], str],
) -> None:
    result = smoke.metaflow(stand_in(metaflow("k", database=False)), "k", **FAST)
    assert not result.ok
    assert result.steps[0].startswith("ping: GET /ping -> pong")
    assert result.error is not None
    assert result.error.startswith("flows: not passed within 1.5 s")


# ------------------------------------------------------------------ Panintelligence

LOGIN = b'<!DOCTYPE html><html><body><form id="login" action="/pi/auth">Login</form></body></html>'


def panintelligence(up: bool) -> Handler:
    def answer(path: str, headers: dict[str, str]) -> Answer:
        if up and path == "/pi/":
            return 200, {"Content-Type": "text/html;charset=UTF-8"}, LOGIN
        return 502, {"Content-Type": "text/html"}, b"<html>502 Bad Gateway</html>"

    return answer


def test_panintelligence_passes_with_the_login_page_and_steady_services(
    stand_in: Callable[[Handler], str],
) -> None:
    result = smoke.panintelligence(stand_in(panintelligence(True)), services=healthy, **FAST)
    assert result.ok, result.error
    assert result.steps[0].startswith("login page: GET /pi/ -> the login page after 1 attempt")


def test_panintelligence_fails_on_a_bad_gateway(stand_in: Callable[[Handler], str]) -> None:
    result = smoke.panintelligence(stand_in(panintelligence(False)), services=healthy, **FAST)
    assert not result.ok
    assert result.error is not None
    assert "last: HTTP 502 <html>502 Bad Gateway</html>: check the dashboard service" in (
        result.error
    )


def ecs_services(ecs: Any, running: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running))  # moto runs in this process
    ecs.create_cluster(clusterName="panintelligence-dev-cluster")
    ecs.register_task_definition(
        family="pi", containerDefinitions=[{"name": "pi", "image": "pi:1", "memory": 512}]
    )
    names = [f"panintelligence-dev-{s}" for s in ("dashboard", "pirana", "renderer", "scheduler")]
    for name in names:
        ecs.create_service(
            cluster="panintelligence-dev-cluster",
            serviceName=name,
            taskDefinition="pi",
            desiredCount=1,
        )
    return names


def test_the_services_probe_passes_when_all_four_are_steady(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ecs_services(aws["ecs"], 1, monkeypatch)
    assert smoke.services_probe(aws["ecs"], "panintelligence-dev-cluster", names)() is None


def test_the_services_probe_names_each_service_not_running(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ecs_services(aws["ecs"], 0, monkeypatch)
    problem = smoke.services_probe(aws["ecs"], "panintelligence-dev-cluster", names)()
    assert problem == "not steady (" + "; ".join(f"{n}: 0/1 running" for n in names) + ")"


def test_an_invalid_url_fails_without_raising() -> None:
    result = smoke.metabase("metabase.internal", **FAST)
    assert not result.ok
    assert result.steps == ("url: FAILED",)


def test_results_are_json_free_of_secrets(stand_in: Callable[[Handler], str]) -> None:
    """The API key never appears in what the deploy prints."""
    result = smoke.metaflow(stand_in(metaflow("s3cr3t-key")), "s3cr3t-key", **FAST)
    assert result.ok
    assert "s3cr3t-key" not in json.dumps([*result.steps, result.error])
