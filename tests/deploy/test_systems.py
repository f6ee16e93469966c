"""``make deploy`` / ``make destroy`` of the seed systems' stacks against moto in server
mode, with the cdktf, terraform and docker CLIs recorded (tests/deploy/deploysupport.py)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.deploy.conftest import REGION
from tests.deploy.deploysupport import (
    ACCOUNT,
    ROOT,
    SYSTEM_DEV,
    SYSTEM_STACKS,
    FakeSmoke,
    SystemRecorder,
    run_system,
    short,
)
from tests.support import Synth
from tools.deploy.preflight import operator_secrets

PLATFORM = {
    "metabase-dev": "linux/arm64",
    "dekart-dev": "linux/arm64",
    "metaflow-dev": "linux/amd64",
    "panintelligence-dev": "linux/amd64",
}
"""What each stack's task definitions say (cpu_architecture), not what the tool assumes."""
IMAGES = {
    "metabase-dev": ["metabase"],
    "dekart-dev": ["dekart"],
    "metaflow-dev": ["metaflow"],
    "panintelligence-dev": ["dashboard", "pirana", "renderer", "scheduler"],
}
UPSTREAM = {
    "dashboard": "server",
    "pirana": "pirana",
    "renderer": "renderer",
    "scheduler": "scheduler",
}


def prepare(stack: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What the operator provides before a first deploy (the preflight's list)."""
    if stack.startswith("dekart-"):
        secrets = boto3.client("secretsmanager", region_name=REGION)
        env = stack.split("-", 1)[1]
        for name in ("license-key", "mapbox-token"):
            secrets.create_secret(Name=f"/dekart/{env}/{name}", SecretString="value")
    if stack.startswith("metaflow-"):
        boto3.client("apigateway", region_name=REGION).update_account(
            patchOperations=[
                {
                    "op": "replace",
                    "path": "/cloudwatchRoleArn",
                    "value": f"arn:aws:iam::{ACCOUNT}:role/apigateway-cloudwatch",
                }
            ]
        )
    if stack.startswith("panintelligence-"):
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=f"/panintelligence/{stack.split('-', 1)[1]}/licence", SecretString="licence"
        )
        assets = tmp_path / "assets"
        (assets / "themes").mkdir(parents=True)
        (assets / "themes" / "site.css").write_text("body {}")
        (assets / "images").mkdir()
        (assets / "images" / "logo.svg").write_text("<svg/>")
        monkeypatch.setenv("PI_ASSETS_DIR", str(assets))
        docker = Path(tmp_path / "docker")
        docker.mkdir(exist_ok=True)
        (docker / "config.json").write_text(json.dumps({"auths": {"ghcr.io": {"auth": "eA=="}}}))


def first_deploy(stack: str) -> list[str]:
    pushes = [c for s in IMAGES[stack] for c in (f"docker build {s}", f"docker push {s}")]
    return [
        "cdktf synth",
        "cdktf deploy bootstrap",
        "terraform init",
        "terraform apply",
        "docker login",
        *pushes,
        f"cdktf deploy {stack}",
    ]


@pytest.mark.parametrize("stack", SYSTEM_DEV)
def test_first_deploy_runs_the_steps_in_order_then_a_second_skips_what_exists(
    stack: str,
    aws: dict[str, Any],
    outdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    prepare(stack, monkeypatch, tmp_path)
    smoked: list[str] = []

    def smoke(ctx: Any) -> FakeSmoke:
        smoked.append(str(ctx.outputs.get("url")))
        return FakeSmoke(True, ("health: ok",), None)

    recorder = SystemRecorder(outdir, outputs={"url": "https://system.test"})
    code, out = run_system(["deploy", stack, "--auto-approve"], recorder, outdir, smoke=smoke)

    assert code == 0, out
    assert short(recorder.calls) == first_deploy(stack)
    assert smoked == ["https://system.test"]
    system = stack.split("-", 1)[0]
    builds = [c for c in recorder.calls if c.startswith("docker build")]
    for build, service in zip(builds, IMAGES[stack], strict=True):
        assert f"--platform {PLATFORM[stack]} " in build
        assert f" -f images/{system}/Dockerfile " in build
        if system == "panintelligence":
            assert f"--build-arg SERVICE={UPSTREAM[service]} --build-arg RELEASE=2025_10.1" in build
    synths = [
        e for c, e in zip(recorder.calls, recorder.envs, strict=True) if c.startswith("cdktf")
    ]
    assert all(e["SYSTEMS"] == system for e in synths)
    assert re.search(r"\[\d/\d\] smoke test\n(    .*\n)+    done in [\d.]+ s", out)

    again = SystemRecorder(outdir, outputs={"url": "https://system.test"})
    code, out = run_system(["deploy", stack, "--auto-approve"], again, outdir, smoke=smoke)

    assert code == 0, out
    assert short(again.calls) == ["cdktf synth", f"cdktf deploy {stack}"]
    assert f"{', '.join(IMAGES[stack])} already in ECR" in out


def test_panintelligence_uploads_its_assets_before_the_full_apply_once(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prepare("panintelligence-dev", monkeypatch, tmp_path)
    recorder = SystemRecorder(outdir)
    code, out = run_system(["deploy", "panintelligence-dev", "--auto-approve"], recorder, outdir)
    assert code == 0, out
    bucket = f"panintelligence-dev-assets-{ACCOUNT}"
    keys = sorted(o["Key"] for o in aws["s3"].list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["dashboard/images/logo.svg", "dashboard/themes/site.css"]
    assert out.index("(uploaded 2 files)") < out.index("[8/9] deploy\n")
    code, out = run_system(
        ["deploy", "panintelligence-dev", "--auto-approve"], SystemRecorder(outdir), outdir
    )
    assert code == 0, out
    assert f"s3://{bucket}/dashboard/ holds the assets" in out


def test_a_failed_system_smoke_test_fails_the_deploy_naming_the_step(
    aws: dict[str, Any], outdir: Path
) -> None:
    logs = boto3.client("logs", region_name="eu-west-1")  # metabase-dev's region
    group = "/metabase/dev/ecs/metabase"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="metabase/1")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="metabase/1",
        logEvents=[
            {"timestamp": now + i, "message": f"line {i}: Database migration in progress"}
            for i in range(30)
        ],
    )
    failing = FakeSmoke(False, ("health: FAILED (300.0 s)",), "health: not passed within 300 s")
    code, out = run_system(
        ["deploy", "metabase-dev", "--auto-approve"],
        SystemRecorder(outdir),
        outdir,
        smoke=lambda ctx: failing,
    )
    assert code == 2
    assert "    health: FAILED (300.0 s)" in out
    tail = out.split(f"    last lines of {group}:\n", 1)[1].splitlines()[:20]
    assert tail == [f"      line {i}: Database migration in progress" for i in range(10, 30)]
    assert out.splitlines()[-1] == (
        "error: deploy metabase-dev: step 'smoke test' failed: health: not passed within "
        "300 s; fix: read the service logs above; re-run `make deploy` once fixed"
    )


@pytest.mark.parametrize("stack", SYSTEM_STACKS)
def test_dry_run_without_credentials_prints_the_commands_and_the_placeholders(
    stack: str, outdir: Path, no_credentials: None
) -> None:
    code, out = run_system(["deploy", stack, "--dry-run"], None, outdir)
    assert "Traceback" not in out
    printed = [line.strip()[2:] for line in out.splitlines() if line.strip().startswith("$ ")]
    system = stack.split("-", 1)[0]
    assert printed[0] == f"SYSTEMS={system} cdktf synth"
    assert printed[-1].startswith(f"SYSTEMS={system} cdktf deploy {stack} --auto-approve")
    assert any(p.startswith("docker build --platform linux/") for p in printed)
    placeholders = [line for line in out.splitlines() if "error: preflight: placeholder" in line]
    if stack in ("metabase-prod", "dekart-prod", "panintelligence-prod"):
        assert placeholders, out
        assert all(".py (PROD.web." in line for line in placeholders)
    else:
        assert placeholders == []
    blocking = [line for line in out.splitlines() if line.startswith("error: preflight:")]
    assert code == (2 if blocking else 0), out
    if blocking:
        assert out.splitlines()[-1].startswith(f"error: deploy {stack}: preflight found ")


def test_destroy_refuses_a_protected_load_balancer(aws: dict[str, Any], outdir: Path) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    arn = aws["elbv2"].create_load_balancer(Name="dekart-prod-web", Subnets=subnets)[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    aws["elbv2"].modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}]
    )
    recorder = SystemRecorder(outdir)
    code, out = run_system(["destroy", "dekart-prod", "--auto-approve"], recorder, outdir)
    assert code == 2
    assert out.splitlines()[-1] == (
        "error: destroy dekart-prod: step 'protection' failed: the load balancer "
        "dekart-prod-web has deletion protection on; fix: lift it deliberately: `aws elbv2 "
        f"modify-load-balancer-attributes --region {REGION} --load-balancer-arn {arn} "
        "--attributes Key=deletion_protection.enabled,Value=false`, then run `make destroy` again"
    )
    assert short(recorder.calls) == ["cdktf synth"]


def test_destroy_says_what_it_keeps_and_empties_the_buckets(
    aws: dict[str, Any], outdir: Path
) -> None:
    buckets = [f"panintelligence-prod-{b}-{ACCOUNT}" for b in ("assets", "alb-logs")]
    for bucket in buckets:
        aws["s3"].create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        aws["s3"].put_object(Bucket=bucket, Key="dashboard/themes/a.css", Body=b"x")
    recorder = SystemRecorder(outdir)
    code, out = run_system(["destroy", "panintelligence-prod", "--auto-approve"], recorder, outdir)
    assert code == 0, out
    assert "keeps: RDS final snapshot panintelligence-prod-mariadb-final" in out
    assert (
        "keeps: the file system's backups (AWS Backup vault aws/efs/automatic-backup-vault" in out
    )
    for bucket in buckets:
        assert aws["s3"].list_object_versions(Bucket=bucket).get("Versions") is None
    assert recorder.calls[1:] == ["cdktf destroy panintelligence-prod --auto-approve"]
    assert recorder.envs[-1]["SYSTEMS"] == "panintelligence"


def test_under_terrain_the_printed_commands_name_cdktn(
    outdir: Path, no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ENGINE=terrain`` runs ``cdktn``; the synth, deploy and destroy lines say so."""
    monkeypatch.setenv("ENGINE", "terrain")
    printed = {}
    for action in ("deploy", "destroy"):
        _, out = run_system([action, "metabase-dev", "--dry-run"], None, outdir)
        printed[action] = [
            line.strip()[2:]
            for line in out.splitlines()
            if line.strip().startswith("$ ") and " cdkt" in line
        ]
    assert printed["deploy"][0] == "SYSTEMS=metabase cdktn synth"
    assert printed["deploy"][-1].startswith(
        "SYSTEMS=metabase cdktn deploy metabase-dev --auto-approve"
    )
    assert printed["destroy"] == [
        "SYSTEMS=metabase cdktn synth",
        "SYSTEMS=metabase cdktn destroy metabase-dev --auto-approve",
    ]


def test_destroy_refuses_a_protected_user_pool(aws: dict[str, Any], outdir: Path) -> None:
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = cognito.create_user_pool(PoolName="dekart-prod-users", DeletionProtection="ACTIVE")
    pool_id = pool["UserPool"]["Id"]
    recorder = SystemRecorder(outdir)
    code, out = run_system(["destroy", "dekart-prod", "--auto-approve"], recorder, outdir)
    assert code == 2
    assert out.splitlines()[-1] == (
        "error: destroy dekart-prod: step 'protection' failed: the user pool dekart-prod-users "
        f"({pool_id}) has deletion protection on (it holds the users' accounts); fix: lift it "
        "deliberately in the Cognito console (the pool's Settings, Deletion protection: "
        "update-user-pool would reset the pool's other settings), then run `make destroy` again"
    )
    assert short(recorder.calls) == ["cdktf synth"]
    cognito.update_user_pool(UserPoolId=pool_id, DeletionProtection="INACTIVE")
    code, out = run_system(
        ["destroy", "dekart-prod", "--auto-approve"], SystemRecorder(outdir), outdir
    )
    assert code == 0, out


def test_a_dry_run_destroy_of_a_protected_stack_says_what_guards_it(
    outdir: Path, no_credentials: None
) -> None:
    code, out = run_system(["destroy", "metabase-prod", "--dry-run"], None, outdir)
    assert code == 2
    assert "Traceback" not in out
    assert out.splitlines()[-1] == (
        "error: destroy metabase-prod: step 'protection' failed: metabase-prod-postgres is "
        "deletion-protected in this environment; fix: lift it deliberately first (with "
        "credentials, make destroy prints the command), then destroy"
    )


def test_the_readme_names_every_stack_and_every_secret_the_stacks_read(synth: Synth) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Deploying a system\n", 1)[1].split("\n## ", 1)[0]
    for stack in SYSTEM_STACKS:
        assert f"`{stack}`" in section
        for name in operator_secrets(synth.stack(stack)):
            env = stack.split("-", 1)[1]
            assert f"`{name.replace(f'/{env}/', '/<env>/')}`" in section, name
    assert "(docs/deploy-manual.md)" in section
    assert (ROOT / "docs" / "deploy-manual.md").exists()
