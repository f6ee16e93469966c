"""Every user error of ``make deploy`` / ``make destroy`` is one line naming the step, the
cause and the fix, exit status 2, no traceback: an unknown ENV, absent or expired
credentials, a denied call (AWS's error code), throttling (retried with backoff first), a
missing CLI. AWS is moto in server mode; where moto cannot answer as AWS does (an expired
token, throttling, a denied call), a stand-in endpoint answers with AWS's own error
documents for that one service (``AWS_ENDPOINT_URL_<SERVICE>``)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploysupport import ACCOUNT, Recorder, SystemRecorder, run_system
from tools.deploy import __main__ as deploy
from tools.deploy.plan import Runner, StepError

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
IDENTITY = (
    f'<GetCallerIdentityResponse xmlns="{STS_NS}"><GetCallerIdentityResult>'
    f"<Arn>arn:aws:iam::{ACCOUNT}:user/deployer</Arn><UserId>AIDAEXAMPLE</UserId>"
    f"<Account>{ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata>"
    "<RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
)
Reply = tuple[int, dict[str, str], str]


def sts_error(code: str, message: str, status: int = 400) -> Reply:
    body = (
        f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>1</RequestId></ErrorResponse>"
    )
    return status, {"Content-Type": "text/xml"}, body


class Endpoint:
    """A stand-in for one AWS service's endpoint: ``replies`` answers the n-th request."""

    def __init__(self, replies: Callable[[int], Reply]) -> None:
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.requests += 1
                status, headers, body = replies(endpoint.requests)
                data = body.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Callable[[Callable[[int], Reply]], Endpoint]]:
    started: list[Endpoint] = []

    def start(replies: Callable[[int], Reply]) -> Endpoint:
        started.append(Endpoint(replies))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def run_platform(argv: list[str], runner: Runner | None, outdir: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = deploy.main(argv, runner=runner, out=out, outdir=outdir)
    return code, out.getvalue()


def assert_one_line(code: int, out: str, expected: str) -> None:
    assert code == 2
    assert "Traceback" not in out
    assert out.splitlines()[-1] == expected
    assert [line for line in out.splitlines() if line.startswith("error:")] == [expected]


@pytest.mark.parametrize("action", ["deploy", "destroy"])
def test_an_unknown_env_names_the_valid_choices(action: str) -> None:
    out = io.StringIO()
    code = deploy.main([action, "no-such-env"], out=out)
    assert_one_line(
        code,
        out.getvalue(),
        f"error: {action}: unknown environment 'no-such-env'; choose one of dev, test, stage, "
        "prod, metabase-dev, metabase-prod, dekart-dev, dekart-prod, metaflow-dev, "
        "metaflow-prod, panintelligence-dev, panintelligence-prod",
    )


def test_absent_credentials(outdir: Path, no_credentials: None) -> None:
    code, out = run_platform(["deploy", "dev", "--auto-approve"], None, outdir)
    assert_one_line(
        code,
        out,
        "error: deploy dev: step 'credentials' failed: no AWS credentials found; fix: set "
        "AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and AWS_REGION",
    )


def test_expired_credentials(
    aws: dict[str, Any],
    outdir: Path,
    endpoint: Callable[[Callable[[int], Reply]], Endpoint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sts = endpoint(
        lambda n: sts_error("ExpiredToken", "The security token included in the request is expired")
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    recorder = SystemRecorder(outdir)
    code, out = run_system(["destroy", "metabase-dev", "--auto-approve"], recorder, outdir)
    assert_one_line(
        code,
        out,
        "error: destroy metabase-dev: step 'credentials' failed: the AWS credentials have "
        "expired (ExpiredToken: The security token included in the request is expired); fix: "
        "refresh them (aws sso login, or new keys) and re-run",
    )
    assert recorder.calls == []


def test_a_denied_call_names_the_aws_error_code_and_the_permission(
    aws: dict[str, Any],
    outdir: Path,
    endpoint: Callable[[Callable[[int], Reply]], Endpoint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = (
        f"User: arn:aws:iam::{ACCOUNT}:user/deployer is not authorized to perform: "
        f"ecr:DescribeRepositories on resource: arn:aws:ecr:eu-central-1:{ACCOUNT}:repository/"
        "pcp/dev/consumer because no identity-based policy allows the ecr:DescribeRepositories "
        "action"
    )
    ecr = endpoint(
        lambda n: (
            400,
            {
                "Content-Type": "application/x-amz-json-1.1",
                "x-amzn-ErrorType": "AccessDeniedException",
            },
            json.dumps({"__type": "AccessDeniedException", "message": message}),
        )
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", ecr.url)
    code, out = run_platform(["deploy", "dev", "--auto-approve"], Recorder(aws, outdir), outdir)
    assert_one_line(
        code,
        out,
        "error: deploy dev: step 'repositories' failed: AWS denied DescribeRepositories "
        f"(AccessDeniedException: {message}); fix: allow ecr:DescribeRepositories to the "
        "identity you deploy with (or use one that has it), then re-run",
    )


def test_throttling_is_retried_with_backoff_then_succeeds(
    aws: dict[str, Any],
    outdir: Path,
    endpoint: Callable[[Callable[[int], Reply]], Endpoint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sts = endpoint(
        lambda n: sts_error("Throttling", "Rate exceeded") if n <= 2 else (200, {}, IDENTITY)
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    code, out = run_system(["deploy", "metabase-dev", "--dry-run"], None, outdir)
    assert code == 0, out
    assert sts.requests == 3
    assert f"account {ACCOUNT} (arn:aws:iam::{ACCOUNT}:user/deployer)" in out


def test_throttling_that_persists_is_reported_after_the_retries(
    aws: dict[str, Any],
    outdir: Path,
    endpoint: Callable[[Callable[[int], Reply]], Endpoint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sts = endpoint(lambda n: sts_error("Throttling", "Rate exceeded"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    code, out = run_system(["deploy", "metabase-dev", "--auto-approve"], None, outdir)
    assert sts.requests == 3
    assert_one_line(
        code,
        out,
        "error: deploy metabase-dev: step 'credentials' failed: AWS throttled "
        "GetCallerIdentity (Throttling: Rate exceeded) after 3 attempts with backoff; fix: "
        "wait a minute and re-run (every step resumes), or raise AWS_MAX_ATTEMPTS",
    )


def test_a_missing_cli(aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cdktf and terraform recorded; docker run for real, on a PATH without it."""

    class DockerForReal(Recorder):
        def __call__(self, step: str, argv: Any, **kwargs: Any) -> str:
            if argv[0] == "docker":
                return Runner.__call__(self, step, argv, **kwargs)
            return super().__call__(step, argv, **kwargs)

    monkeypatch.setenv("PATH", "/nonexistent")
    code, out = run_platform(
        ["deploy", "dev", "--auto-approve"], DockerForReal(aws, outdir), outdir
    )
    assert_one_line(
        code,
        out,
        "error: deploy dev: step 'images' failed: docker is not installed; fix: install Docker "
        "(with buildx for --platform) and start its engine",
    )


def test_a_failing_cli_is_one_line_with_its_last_output_line(tmp_path: Path) -> None:
    script = tmp_path / "terraform"
    script.write_text(
        "#!/bin/sh\necho 'Initializing...'\necho 'Error: No valid credential'\nexit 1\n"
    )
    script.chmod(0o755)
    with pytest.raises(StepError) as caught:
        Runner(io.StringIO(), tmp_path)("repositories", [str(script), "init"])
    assert str(caught.value) == (
        "step 'repositories' failed: `terraform init` exited 1 (its output is above; last "
        "line: Error: No valid credential); fix: read the output above; every step is "
        "idempotent, so re-run `make deploy` after fixing it"
    )


def test_a_profile_that_does_not_exist(
    outdir: Path, no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "acme-prod")
    code, out = run_platform(["deploy", "dev", "--auto-approve"], None, outdir)
    assert_one_line(
        code,
        out,
        "error: deploy dev: step 'credentials' failed: the AWS profile 'acme-prod' does not "
        "exist; fix: set AWS_PROFILE to a profile of ~/.aws/config (aws configure "
        "list-profiles), or unset it",
    )
