"""What the seed systems' deploy tests share: a recorder standing in for the cdktf,
terraform and docker CLIs (doing to moto what they would do to AWS), and helpers to run
``python -m tools.deploy`` in-process."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tests.deploy.conftest import BUCKET, REGION
from tools.deploy import __main__ as deploy
from tools.deploy.plan import (
    Context,
    Runner,
    StepError,
    display,
    repository_names,
    stack_region,
)
from tools.deploy.preflight import Finding

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
SYSTEM_DEV = ("metabase-dev", "dekart-dev", "metaflow-dev", "panintelligence-dev")
SYSTEM_STACKS = (
    *SYSTEM_DEV,
    "metabase-prod",
    "dekart-prod",
    "metaflow-prod",
    "panintelligence-prod",
)


@dataclass(frozen=True)
class FakeSmoke:
    ok: bool
    steps: tuple[str, ...]
    error: str | None


class RecordingRunner(Runner):
    """What both recorders share: every call's line (as shown) and environment kept in
    order, and the one call named by ``fail_once`` failed once."""

    fail_once: str | None

    def __post_init__(self) -> None:
        super().__init__(io.StringIO(), ROOT)
        self.calls: list[str] = []
        self.envs: list[dict[str, str]] = []

    def record(self, step: str, argv: Any, env: dict[str, str] | None) -> list[str]:
        """Record the call (or fail it, once); its words."""
        line = display(argv, ROOT)
        self.calls.append(line)
        self.envs.append(dict(env or {}))
        if self.fail_once and self.fail_once in line:
            self.fail_once = None
            raise StepError(step, f"`{line}` failed (simulated)", "re-run")
        return list(argv)


@dataclass
class SystemRecorder(RecordingRunner):
    """Stands in for the CLIs; records every call. ``terraform apply -target=...``
    creates the targeted repositories and buckets in the stack's region, ``docker push``
    puts the image, ``cdktf deploy bootstrap`` makes the state bucket, ``cdktf deploy
    <stack>`` writes ``outputs``."""

    outdir: Path
    outputs: dict[str, Any] = field(default_factory=dict)
    fail_once: str | None = None

    def __call__(
        self,
        step: str,
        argv: Any,
        *,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        shown: str | None = None,
    ) -> str:
        words = self.record(step, argv, env)
        if words[1:3] == ["deploy", "bootstrap"]:
            boto3.client("s3", region_name=REGION).create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        elif words[0] == "terraform" and "apply" in words:
            self._apply(Path(words[1].split("=", 1)[1]), words)
        elif words[:2] == ["docker", "push"]:
            host, path = words[2].split("/", 1)
            repo, tag = path.rsplit(":", 1)
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{repo.replace('/', '')}"},
            }
            boto3.client("ecr", region_name=host.split(".")[3]).put_image(
                repositoryName=repo, imageManifest=json.dumps(manifest), imageTag=tag
            )
        elif words[1:2] == ["deploy"]:
            out = Path(words[words.index("--outputs-file") + 1])
            out.write_text(json.dumps({words[2]: self.outputs}))
        return ""

    def _apply(self, chdir: Path, words: list[str]) -> None:
        stack = json.loads((chdir / "cdk.tf.json").read_text())
        region = stack_region(stack) or REGION
        resources = stack["resource"]
        for word in words:
            if not word.startswith("-target="):
                continue
            type_, name = word.removeprefix("-target=").split(".", 1)
            if type_ == "aws_ecr_repository":
                boto3.client("ecr", region_name=region).create_repository(
                    repositoryName=resources[type_][name]["name"]
                )
            elif type_ == "aws_s3_bucket":
                bucket = resources[type_][name]["bucket"].replace(
                    "${data.aws_caller_identity.caller.account_id}", ACCOUNT
                )
                boto3.client("s3", region_name=region).create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
                )


@dataclass
class Recorder(RecordingRunner):
    """The platform's: stands in for the cdktf, terraform and docker CLIs (the
    repositories of ``dev``); records every call."""

    aws: dict[str, Any]
    outdir: Path
    fail_once: str | None = None

    def __call__(
        self,
        step: str,
        argv: Any,
        *,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        shown: str | None = None,
    ) -> str:
        words = self.record(step, argv, env)
        if words[1:3] == ["deploy", "bootstrap"]:
            self.aws["s3"].create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        elif words[0] == "terraform" and "apply" in words:
            stack = json.loads((self.outdir / "stacks" / "dev" / "cdk.tf.json").read_text())
            for name in repository_names(stack).values():
                self.aws["ecr"].create_repository(repositoryName=name)
        elif words[:2] == ["docker", "push"]:
            repo, tag = words[2].split("/", 1)[1].rsplit(":", 1)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"digest": f"sha256:{repo}"},
                }
            )
            self.aws["ecr"].put_image(repositoryName=repo, imageManifest=manifest, imageTag=tag)
        elif words[1:2] == ["deploy"]:
            out = Path(words[words.index("--outputs-file") + 1])
            out.write_text(json.dumps({words[2]: {"cloudfront_url": "https://d1.cloudfront.net"}}))
        return ""


def no_tools_missing(cdktf: str) -> list[Finding]:
    return []


def run_system(
    argv: list[str],
    recorder: Runner | None,
    outdir: Path,
    *,
    smoke: Callable[[Context], Any] | None = None,
    tools: Callable[[str], list[Finding]] = no_tools_missing,
) -> tuple[int, str]:
    out = io.StringIO()
    code = deploy.main(
        argv,
        runner=recorder,
        out=out,
        outdir=outdir,
        system_smoke=smoke or (lambda ctx: FakeSmoke(True, ("health: ok",), None)),
        tools=tools,
    )
    return code, out.getvalue()


def short(calls: list[str]) -> list[str]:
    """Each call as ``<tool> <subcommand>[ <what>]``, enough to check the order."""
    result = []
    for call in calls:
        words = call.split()
        if words[0] == "docker" and words[1] in ("build", "push"):
            image = next(w for w in words if ".dkr.ecr." in w)
            result.append(f"docker {words[1]} {image.split('/')[-1].split(':')[0]}")
        elif words[0] == "terraform":
            result.append(f"terraform {'init' if 'init' in words else 'apply'}")
        elif words[0] == "docker":
            result.append("docker login")
        else:
            result.append(" ".join(words[:3]) if words[1] == "deploy" else " ".join(words[:2]))
    return result
