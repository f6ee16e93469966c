"""The synthesized S3 backend, exercised by Terraform itself against a local S3 (moto).

No provider is needed for this: each test writes only the stack's ``terraform.backend``
block (as synthesized) plus one output into a scratch directory, then runs
``terraform init`` and ``terraform apply``. This proves Terraform accepts the backend
(``use_lockfile`` included), writes each environment's state to its own key, encrypted,
and refuses to run while another holder has the lock.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ENVIRONMENT_STACKS, Synth

TERRAFORM = shutil.which("terraform")
pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
BUCKET = "pcp-terraform-state"
REGION = "eu-central-1"


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield url, client
    server.stop()


def workspace(tmp_path: Path, synth: Synth, stack: str, url: str) -> Path:
    """A directory holding the stack's backend block, pointed at the local S3."""
    backend = synth.stack(stack)["terraform"]["backend"]
    config = {"terraform": {"backend": backend}, "output": {"stack": {"value": stack}}}
    (tmp_path / "main.tf.json").write_text(json.dumps(config))
    (tmp_path / "local.s3.tfbackend").write_text(
        f'endpoints = {{ s3 = "{url}" }}\n'
        "use_path_style = true\n"
        "skip_credentials_validation = true\n"
        "skip_requesting_account_id = true\n"
        "skip_metadata_api_check = true\n"
        'access_key = "test"\n'
        'secret_key = "test"\n'
    )
    return tmp_path


def terraform(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM
    env = {
        **os.environ,
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [TERRAFORM, *args, "-input=false", "-no-color"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_state_lands_at_the_environment_key_encrypted(
    synth: Synth, s3: tuple[str, Any], tmp_path: Path, stack: str
) -> None:
    url, client = s3
    cwd = workspace(tmp_path, synth, stack, url)
    init = terraform(cwd, "init", "-backend-config=local.s3.tfbackend")
    assert init.returncode == 0, init.stderr
    apply = terraform(cwd, "apply", "-auto-approve")
    assert apply.returncode == 0, apply.stderr
    key = f"{stack}/terraform.tfstate"
    state = json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert state["outputs"]["stack"]["value"] == stack
    assert client.head_object(Bucket=BUCKET, Key=key)["ServerSideEncryption"] == "AES256"
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"{stack}/")["Contents"]}
    assert keys == {key}, "the lock file is released after the run"


def test_a_held_lock_stops_a_second_run(synth: Synth, s3: tuple[str, Any], tmp_path: Path) -> None:
    url, client = s3
    cwd = workspace(tmp_path, synth, "stage", url)
    assert terraform(cwd, "init", "-backend-config=local.s3.tfbackend").returncode == 0
    lock = "stage/terraform.tfstate.tflock"
    client.put_object(Bucket=BUCKET, Key=lock, Body=json.dumps({"ID": "another-run"}).encode())
    try:
        blocked = terraform(cwd, "apply", "-auto-approve", "-lock-timeout=1s")
    finally:
        client.delete_object(Bucket=BUCKET, Key=lock)
    assert blocked.returncode != 0
    assert "Error acquiring the state lock" in blocked.stderr
    assert "another-run" in blocked.stderr
