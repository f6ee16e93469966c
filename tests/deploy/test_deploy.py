"""``make deploy`` / ``make destroy`` orchestration against moto in server mode (STS, S3,
ECR, RDS, CloudWatch Logs over HTTP, as boto3 sees AWS). Only the two external CLIs are
replaced, by a recording stub that does to moto what they would do to AWS: the CDKTF/
Terraform CLI creates the state bucket and the repositories, Docker pushes an image."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import BUCKET, REGION
from tests.deploy.deploysupport import Recorder
from tests.support import IMAGE_TAG
from tools.deploy import __main__ as deploy
from tools.deploy.plan import Runner, StepError

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class FakeSmoke:
    ok: bool
    steps: tuple[str, ...]
    error: str | None


def run(argv: list[str], recorder: Recorder, outdir: Path, smoked: list[str]) -> tuple[int, str]:
    out = io.StringIO()

    def smoke(url: str) -> FakeSmoke:
        smoked.append(url)
        return FakeSmoke(True, ("ready 200", "POST 202", "stored"), None)

    code = deploy.main(argv, runner=recorder, out=out, smoke=smoke, outdir=outdir)
    return code, out.getvalue()


def short(calls: list[str]) -> list[str]:
    """Each call as `<tool> <subcommand>[ <what>]`, enough to check the order."""
    result = []
    for call in calls:
        words = call.split()
        if words[0] == "docker" and words[1] in ("build", "push"):
            service = "producer" if "producer" in call else "consumer"
            result.append(f"docker {words[1]} {service}")
        elif words[0] == "terraform":
            result.append(f"terraform {'init' if 'init' in words else 'apply'}")
        else:
            result.append(" ".join(words[:3]) if words[1] == "deploy" else " ".join(words[:2]))
    return result


IMAGES = [
    "docker login",
    "docker build producer",
    "docker push producer",
    "docker build consumer",
    "docker push consumer",
]
FIRST_DEPLOY = [
    "cdktf deploy bootstrap",
    "cdktf synth",
    "terraform init",
    "terraform apply",
    *IMAGES,
    "cdktf deploy dev",
]


def test_first_deploy_runs_every_step_in_order_then_smoke_tests(
    aws: dict[str, Any], outdir: Path
) -> None:
    recorder, smoked = Recorder(aws, outdir), []
    code, out = run(["deploy", "dev", "--auto-approve"], recorder, outdir, smoked)
    assert code == 0, out
    assert short(recorder.calls) == FIRST_DEPLOY
    assert smoked == ["https://d1.cloudfront.net"]
    assert "account 123456789012" in out
    assert re.search(r"\[7/7\] smoke test\n(    .*\n)+    done in [\d.]+ s", out)
    push = next(c for c in recorder.calls if c.startswith("docker build"))
    assert "--platform linux/arm64" in push  # the task definitions' architecture


def test_second_deploy_skips_what_exists(aws: dict[str, Any], outdir: Path) -> None:
    assert run(["deploy", "dev", "--auto-approve"], Recorder(aws, outdir), outdir, [])[0] == 0
    again = Recorder(aws, outdir)
    code, out = run(["deploy", "dev", "--auto-approve"], again, outdir, [])
    assert code == 0, out
    assert short(again.calls) == ["cdktf synth", "cdktf deploy dev"]
    assert "producer, consumer already in ECR" in out


def test_a_failure_mid_way_resumes_where_it_stopped(aws: dict[str, Any], outdir: Path) -> None:
    failing = Recorder(aws, outdir, fail_once="docker push")
    code, out = run(["deploy", "dev", "--auto-approve"], failing, outdir, [])
    assert code == 2
    assert "step 'images' failed" in out
    assert short(failing.calls)[-1] == "docker push producer"
    resumed = Recorder(aws, outdir)
    code, out = run(["deploy", "dev", "--auto-approve"], resumed, outdir, [])
    assert code == 0, out
    assert short(resumed.calls) == ["cdktf synth", *IMAGES, "cdktf deploy dev"]


def test_a_failed_smoke_test_fails_the_deploy(aws: dict[str, Any], outdir: Path) -> None:
    out = io.StringIO()
    code = deploy.main(
        ["deploy", "dev", "--auto-approve"],
        runner=Recorder(aws, outdir),
        out=out,
        smoke=lambda url: FakeSmoke(False, ("ready 200",), "the value was not stored in 180 s"),
        outdir=outdir,
    )
    assert code == 2
    assert "step 'smoke test' failed: the value was not stored" in out.getvalue()


def test_destroy_refuses_a_protected_prod_database(aws: dict[str, Any], outdir: Path) -> None:
    aws["rds"].create_db_instance(
        DBInstanceIdentifier="pcp-prod-mysql",
        DBInstanceClass="db.t4g.medium",
        Engine="mysql",
        MasterUsername="admin",
        MasterUserPassword="password1234",
        AllocatedStorage=20,
        DeletionProtection=True,
    )
    recorder = Recorder(aws, outdir)
    code, out = run(["destroy", "prod", "--auto-approve"], recorder, outdir, [])
    assert code == 2
    assert "pcp-prod-mysql has deletion protection on" in out
    assert "--no-deletion-protection" in out
    assert not any("destroy" in c for c in recorder.calls)


def test_destroy_empties_buckets_says_what_it_keeps_then_destroys(
    aws: dict[str, Any], outdir: Path
) -> None:
    stack = json.loads((outdir / "stacks" / "prod" / "cdk.tf.json").read_text())
    buckets = [
        b["bucket"].replace("${data.aws_caller_identity.caller.account_id}", "123456789012")
        for b in stack["resource"]["aws_s3_bucket"].values()
        if "bucket" in b and not b.get("force_destroy")
    ]
    assert buckets  # prod's access-log bucket is not force_destroy
    for bucket in buckets:
        aws["s3"].create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        aws["s3"].put_object(Bucket=bucket, Key="log", Body=b"x")
    prod = json.loads((outdir / "stacks" / "prod" / "cdk.tf.json").read_text())
    repos = [
        r["name"]
        for r in prod["resource"]["aws_ecr_repository"].values()
        if not r.get("force_delete")
    ]
    assert repos  # prod's repositories keep their images unless emptied
    for repo in repos:
        aws["ecr"].create_repository(repositoryName=repo)
        aws["ecr"].put_image(
            repositoryName=repo,
            imageTag="v1",
            imageManifest=json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"digest": "sha256:1"},
                }
            ),
        )
    recorder = Recorder(aws, outdir)
    code, out = run(["destroy", "prod", "--auto-approve"], recorder, outdir, [])
    assert code == 0, out  # no protected database exists in this account
    for repo in repos:
        assert aws["ecr"].list_images(repositoryName=repo)["imageIds"] == []
    assert "keeps: RDS final snapshot pcp-prod-mysql-final" in out
    assert short(recorder.calls) == ["cdktf synth", "cdktf destroy"]
    for bucket in buckets:
        assert aws["s3"].list_object_versions(Bucket=bucket).get("Versions") is None


def platform_dry_run(outdir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    """``deploy dev --dry-run`` without a state bucket named: the printed command lines
    (``$ ...``) and the whole output, ``cdktf.out`` standing for ``outdir``."""
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("TF_STATE_BUCKET", raising=False)
    out = io.StringIO()
    assert deploy.main(["deploy", "dev", "--dry-run"], out=out, outdir=outdir) == 0
    text = out.getvalue().replace(str(outdir), "cdktf.out")
    printed = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("$ ")]
    return printed, text


def test_dry_run_without_credentials_prints_the_documented_sequence(
    outdir: Path, monkeypatch: pytest.MonkeyPatch, no_credentials: None
) -> None:
    printed, text = platform_dry_run(outdir, monkeypatch)
    assert printed == documented_sequence(IMAGE_TAG)
    assert "no credentials: a dry run assumes nothing exists yet" in text


def test_dry_run_under_terrain_prints_the_cdktn_commands_it_runs(
    outdir: Path, monkeypatch: pytest.MonkeyPatch, no_credentials: None
) -> None:
    """``ENGINE=terrain`` runs ``cdktn``; the printed commands say so (they said cdktf)."""
    monkeypatch.setenv("ENGINE", "terrain")
    printed, _ = platform_dry_run(outdir, monkeypatch)
    expected = [line.replace(" cdktf ", " cdktn ") for line in documented_sequence(IMAGE_TAG)]
    assert printed == [line.replace("cdktf deploy", "cdktn deploy") for line in expected]
    assert not [line for line in printed if "cdktf " in line]


def documented_sequence(tag: str) -> list[str]:
    """The commands README's "What `make deploy` does" lists, with this run's tag."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### What `make deploy` does", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [
        line.replace("<tag>", tag)
        for line in block.splitlines()
        if line and not line.startswith("#")
    ]


def test_declining_the_confirmation_changes_nothing(aws: dict[str, Any], outdir: Path) -> None:
    recorder, out = Recorder(aws, outdir), io.StringIO()
    code = deploy.main(["deploy", "dev"], runner=recorder, out=out, outdir=outdir,
                       confirm=lambda prompt: False)  # fmt: skip
    assert code == 2
    assert "not confirmed" in out.getvalue()
    assert "AUTO_APPROVE=1" in out.getvalue()
    assert recorder.calls == []
    assert "Buckets" not in aws["s3"].list_buckets() or not aws["s3"].list_buckets()["Buckets"]


def test_no_credentials_is_an_error_naming_the_fix(outdir: Path, no_credentials: None) -> None:
    out = io.StringIO()
    assert deploy.main(["deploy", "dev", "--auto-approve"], out=out, outdir=outdir) == 2
    assert "step 'credentials' failed: no AWS credentials found" in out.getvalue()
    assert "fix: set AWS_PROFILE" in out.getvalue()


def test_a_missing_cli_and_a_denied_push_name_their_fix(tmp_path: Path) -> None:
    runner = Runner(io.StringIO(), ROOT)
    with pytest.raises(StepError, match="docker-missing-here is not installed"):
        runner("images", ["docker-missing-here", "build", "."])
    script = tmp_path / "docker"
    script.write_text(
        "#!/bin/sh\necho 'denied: not authorized to perform ecr:PutImage' >&2\nexit 1\n"
    )
    script.chmod(0o755)
    with pytest.raises(StepError, match="ecr:PutImage") as caught:
        runner("images", [str(script), "push", "x/y:z"])
    assert "step 'images' failed" in str(caught.value)
    assert "fix: the role may not push to this repository" in str(caught.value)


def test_another_environment_synthesizes_with_the_review_alarm_address(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every synth builds prod too, which must name an alarm target: a dev deploy supplies
    the address that can never receive mail; a prod deploy without one is refused."""
    monkeypatch.delenv("PCP_ALARM_EMAIL", raising=False)
    monkeypatch.delenv("PCP_ALARM_TOPIC_ARN", raising=False)
    recorder = Recorder(aws, outdir)
    code, out = run(["deploy", "dev", "--auto-approve"], recorder, outdir, [])
    assert code == 0, out
    cdktf = [
        env
        for call, env in zip(recorder.calls, recorder.envs, strict=True)
        if call.startswith("cdktf")
    ]
    assert cdktf
    assert all(env["PCP_ALARM_EMAIL"] == "alarms@example.invalid" for env in cdktf)
    assert all(env["IMAGE_TAG"] == IMAGE_TAG and env["TF_STATE_BUCKET"] == BUCKET for env in cdktf)
    refused = Recorder(aws, outdir)
    code, out = run(["deploy", "prod", "--auto-approve"], refused, outdir, [])
    assert code == 2
    assert "prod needs an alarm target" in out
    assert refused.calls == []


def test_images_go_to_the_stacks_region_whatever_aws_region_says(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    recorder = Recorder(aws, outdir)
    code, out = run(["deploy", "dev", "--auto-approve"], recorder, outdir, [])
    assert code == 0, out
    pushes = [c for c in recorder.calls if c.startswith("docker push")]
    assert len(pushes) == 2
    assert all(".dkr.ecr.eu-central-1.amazonaws.com/" in c for c in pushes)
    again = Recorder(aws, outdir)
    assert run(["deploy", "dev", "--auto-approve"], again, outdir, [])[0] == 0
    assert not [c for c in again.calls if c.startswith("docker")]


def test_uncommitted_changes_are_refused_without_an_explicit_tag(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Tags are immutable and an existing tag is not rebuilt: uncommitted code must not be
    pushed under the commit's tag."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f").write_text("1")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    (repo / "f").write_text("2")
    monkeypatch.delenv("IMAGE_TAG", raising=False)
    monkeypatch.setattr(deploy, "ROOT", repo)
    recorder = Recorder(aws, outdir)
    code, out = run(["deploy", "dev", "--auto-approve"], recorder, outdir, [])
    assert code == 2
    assert "uncommitted changes" in out
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("engine", "cli"), [("", "cdktf"), ("terrain", "cdktn"), (" terrain ", "cdktn")]
)
def test_deploy_drives_the_selected_engines_cli(
    engine: str, cli: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ENGINE=terrain make deploy`` builds the stacks with CDK Terrain and drives them with
    its own CLI (cdktn), the project's copy when installed."""
    from tools.deploy.plan import Context, Runner

    monkeypatch.setenv("ENGINE", engine)
    ctx = Context(env="dev", runner=Runner(io.StringIO(), tmp_path), root=tmp_path)
    assert ctx.cdktf == cli
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / cli).write_text("")
    assert ctx.cdktf == str(tmp_path / "node_modules" / ".bin" / cli)
