"""Fixtures of the deploy tests: moto in server mode (AWS's APIs over HTTP, as boto3 sees
AWS), a copy of the session's synth per test, and a machine without credentials."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from apps.devtools.servers import free_port
from tests.support import IMAGE_TAG, Synth

REGION = "eu-central-1"
BUCKET = "pcp-test-state"
SERVICES = ("s3", "ecr", "rds", "secretsmanager", "route53", "acm", "apigateway", "elbv2", "ecs")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Credentials and endpoint for boto3; moto's state reset for each test; a Docker
    config without logins; clients by service (in ``REGION``)."""
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "TF_STATE_BUCKET": BUCKET,
        "IMAGE_TAG": IMAGE_TAG,
        "DOCKER_CONFIG": str(tmp_path / "docker"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "PCP_ALARM_EMAIL", "PCP_ALARM_TOPIC_ARN", "PI_ASSETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"))  # noqa: S310
    return {service: boto3.client(service, region_name=REGION) for service in SERVICES}


@pytest.fixture
def outdir(synth: Synth, tmp_path: Path) -> Path:
    copy = tmp_path / "cdktf.out"
    shutil.copytree(synth.outdir, copy)
    return copy


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credential source boto3 could find (environment, files, instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_ENDPOINT_URL", "PCP_ALARM_EMAIL", "PCP_ALARM_TOPIC_ARN",
                 "PI_ASSETS_DIR"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("IMAGE_TAG", IMAGE_TAG)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))


@pytest.fixture(autouse=True)
def cdktf_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deploy tool drives the CLI of the engine ``ENGINE`` selects (``cdktn`` under
    ``terrain``; test_deploy.py tests that choice); every other test records one CLI name,
    ``cdktf``, whichever engine the suite runs under (CI runs it under both)."""
    monkeypatch.delenv("ENGINE", raising=False)
