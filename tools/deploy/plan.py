"""The steps of ``make deploy`` and ``make destroy``, each idempotent, so a re-run after a
failure resumes where it stopped. AWS is read and changed through boto3; the Docker, CDKTF
and Terraform CLIs run as subprocesses (``Runner``), which a dry run prints instead."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import engine
from tools.ecr_targets import targets as ecr_targets
from tools.git import has_uncommitted_changes

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("producer", "consumer")
SENSITIVE_OUTPUTS = frozenset({"database_endpoint"})
DEFAULT_REGION = "eu-central-1"
DEFAULT_STATE_BUCKET = "pcp-terraform-state"
REVIEW_ALARM_EMAIL = "alarms@example.invalid"
PRODUCTION = frozenset({"prod"})
"""Environments whose alarm target must be real (environments/prod.py: Tier.PRODUCTION)."""


class StepError(Exception):
    """A step failed: the message (one line) names the step, the cause and the fix."""

    def __init__(self, step: str, cause: str, fix: str) -> None:
        super().__init__(f"step {step!r} failed: {_one_line(cause)}; fix: {_one_line(fix)}")
        self.step = step
        self.cause = cause
        self.fix = fix


def _one_line(text: str) -> str:
    return " ".join(text.split())


THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
     "ThrottledException", "SlowDown", "RequestThrottled", "RequestThrottledException"}
)  # fmt: skip
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
INVALID = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
     "AuthFailure", "InvalidAccessKeyId", "IncompleteSignature"}
)  # fmt: skip
DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden",
     "AuthorizationError", "403"}
)  # fmt: skip
REFRESH = "refresh them (aws sso login, or new keys) and re-run"
DEFAULT_MAX_ATTEMPTS = 8
"""Attempts per AWS call (botocore's standard retry mode: exponential backoff with jitter
on throttling and transient errors); ``AWS_MAX_ATTEMPTS`` overrides it."""


def aws_error(step: str, exc: Exception, attempts: int) -> StepError:
    """One line for a botocore error: the call, AWS's error code and the fix."""
    from botocore.exceptions import (  # type: ignore[import-untyped]
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        SSOError,
        SSOTokenLoadError,
        TokenRetrievalError,
    )

    if isinstance(exc, SSOError | SSOTokenLoadError | TokenRetrievalError):
        return StepError(
            step,
            f"the AWS SSO session has expired or is missing ({type(exc).__name__})",
            "run `aws sso login` (with your AWS_PROFILE) and re-run",
        )
    if isinstance(exc, ProfileNotFound):
        return StepError(
            step,
            f"the AWS profile {os.environ.get('AWS_PROFILE', '')!r} does not exist",
            "set AWS_PROFILE to a profile of ~/.aws/config (aws configure list-profiles), or "
            "unset it",
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StepError(
            step,
            "no AWS credentials found",
            "set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and AWS_REGION",
        )
    if isinstance(exc, EndpointConnectionError):
        return StepError(
            step, f"AWS cannot be reached ({exc})", "check the network, a proxy and AWS_REGION"
        )
    if not isinstance(exc, ClientError):
        return StepError(step, f"{type(exc).__name__}: {exc}", "read the message and re-run")
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "?"))
    message = _one_line(str(error.get("Message") or "")) or "no message"
    call = exc.operation_name
    if code in THROTTLING:
        return StepError(
            step,
            f"AWS throttled {call} ({code}: {message}) after {attempts} attempts with backoff",
            "wait a minute and re-run (every step resumes), or raise AWS_MAX_ATTEMPTS",
        )
    if code in EXPIRED:
        return StepError(step, f"the AWS credentials have expired ({code}: {message})", REFRESH)
    if code in INVALID:
        return StepError(step, f"the AWS credentials are not valid ({code}: {message})", REFRESH)
    if code in DENIED:
        named = re.search(r"perform: ([\w-]+:\w+)", message)
        action = named.group(1) if named else call
        return StepError(
            step,
            f"AWS denied {call} ({code}: {message})",
            f"allow {action} to the identity you deploy with (or use one that has it), then re-run",
        )
    return StepError(
        step, f"AWS refused {call} ({code}: {message})", "read AWS's message, fix it and re-run"
    )


def display(argv: Sequence[str], root: Path) -> str:
    """The command as a reader would type it: tools by name, paths relative to the repo."""
    prefix = f"{root}/"
    shown = [Path(argv[0]).name, *(a.replace(prefix, "") for a in argv[1:])]
    return shlex.join(shown)


class Runner:
    """Prints an external CLI command, then runs it (``execute``); a failure is a
    StepError with the command's last output."""

    def __init__(self, out: TextIO, root: Path = ROOT) -> None:
        self.out = out
        self.root = root

    def __call__(
        self,
        step: str,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        shown: str | None = None,
    ) -> str:
        print(f"    $ {shown or display(argv, self.root)}", file=self.out, flush=True)
        return self.execute(step, argv, stdin=stdin, env=env)

    def execute(
        self, step: str, argv: Sequence[str], *, stdin: str | None, env: dict[str, str] | None
    ) -> str:
        """Run it, showing its output as it comes (a prod deploy takes many minutes) and
        keeping the last lines for the error."""
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=self.root,
                text=True,
            )
        except FileNotFoundError:
            raise StepError(step, f"{argv[0]} is not installed", _install_hint(argv[0])) from None
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            print(f"      | {lines[-1]}", file=self.out, flush=True)
        code = proc.wait()
        if code != 0:
            tail = "\n".join(lines[-40:])
            last = next((line for line in reversed(lines) if line.strip()), "no output")
            raise StepError(
                step,
                f"`{display(argv, self.root)}` exited {code} (its output is above; last "
                f"line: {last.strip()})",
                _fix_for(argv, tail),
            )
        return "\n".join(lines)


class DryRunner(Runner):
    """Prints the command and changes nothing."""

    def execute(
        self, step: str, argv: Sequence[str], *, stdin: str | None, env: dict[str, str] | None
    ) -> str:
        return ""


def _install_hint(tool: str) -> str:
    return {
        "docker": "install Docker (with buildx for --platform) and start its engine",
        "terraform": "install Terraform >= 1.10",
    }.get(tool, f"install {tool} or run `make deps`")


def _fix_for(argv: Sequence[str], output: str) -> str:
    text = output.lower()
    tool = [Path(argv[0]).name, *argv[1:2]]
    if tool == ["docker", "push"] and ("denied" in text or "unauthorized" in text):
        return (
            "the role may not push to this repository: it needs ecr:InitiateLayerUpload, "
            "ecr:UploadLayerPart, ecr:CompleteLayerUpload and ecr:PutImage on it"
        )
    if "cannot connect to the docker daemon" in text:
        return "start the Docker engine"
    if "bucketalreadyexists" in text:
        return "the state bucket name is taken: set TF_STATE_BUCKET to a globally unique name"
    return (
        "read the output above; every step is idempotent, so re-run `make deploy` after fixing it"
    )


@dataclass
class Context:
    env: str
    runner: Runner
    out: TextIO = field(default_factory=lambda: sys.stdout)
    root: Path = ROOT
    outdir: Path | None = None
    region: str = DEFAULT_REGION
    state_bucket: str = DEFAULT_STATE_BUCKET
    image_tag: str = "latest"
    dry_run: bool = False
    auto_approve: bool = False
    deploying: bool = True
    """False for a destroy."""
    confirm: Callable[[str], bool] = lambda prompt: input(prompt).strip().lower() in ("y", "yes")
    session: Any = None
    """A boto3 session, or None when a dry run has no credentials."""
    account: str | None = None
    started: float = field(default_factory=time.monotonic)
    outputs: dict[str, Any] = field(default_factory=dict)
    problems: int = 0
    """Preflight findings a dry run printed (it goes on, then exits 2)."""
    system: str | None = None
    """The seed system of a ``<system>-<env>`` stack (None: a platform environment); its
    synth and deploy build only that system's stacks (``SYSTEMS``)."""

    @property
    def cli(self) -> str:
        """The engine's CLI by name, as printed command lines show it (``ENGINE=terrain``:
        CDK Terrain's ``cdktn``; unset: ``cdktf``)."""
        return engine.cli(os.environ)

    @property
    def cdktf(self) -> str:
        """The engine's CLI (:attr:`cli`) to run: the project's own copy when installed."""
        local = self.root / "node_modules" / ".bin" / self.cli
        return str(local) if local.exists() else self.cli

    @property
    def synth_dir(self) -> Path:
        return self.outdir or self.root / "cdktf.out"

    def stack(self) -> dict[str, Any]:
        path = self.synth_dir / "stacks" / self.env / "cdk.tf.json"
        if not path.exists():
            raise StepError("synth", f"{path} does not exist", "run the synth step (make synth)")
        document: dict[str, Any] = json.loads(path.read_text())
        return document

    @property
    def max_attempts(self) -> int:
        raw = os.environ.get("AWS_MAX_ATTEMPTS", "")
        return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_ATTEMPTS

    def client(self, service: str, region: str | None = None) -> Any:
        from botocore.config import Config  # type: ignore[import-untyped]

        retries = {"mode": "standard", "total_max_attempts": self.max_attempts}
        return self.session.client(
            service, region_name=region or self.region, config=Config(retries=retries)
        )

    @property
    def registry(self) -> str:
        return f"{self.account or '<account>'}.dkr.ecr.{self.region}.amazonaws.com"

    def synth_env(self) -> dict[str, str]:
        env = {"IMAGE_TAG": self.image_tag, "TF_STATE_BUCKET": self.state_bucket}
        if not (os.environ.get("PCP_ALARM_EMAIL") or os.environ.get("PCP_ALARM_TOPIC_ARN")):
            # Every synth builds every stack, and production must name an alarm target. For
            # another environment, prod's target is never deployed: use the address that
            # `make synth` uses, which can never receive mail. (preflight refuses prod.)
            env["PCP_ALARM_EMAIL"] = REVIEW_ALARM_EMAIL
        if self.system is not None:
            env["SYSTEMS"] = self.system
        return env


Step = Callable[[Context], str | None]
"""Runs one step; returns a short note (what it found or skipped) or None."""


def run_steps(ctx: Context, steps: Sequence[tuple[str, Step]]) -> None:
    total = len(steps)
    for number, (name, step) in enumerate(steps, 1):
        print(f"[{number}/{total}] {name}", file=ctx.out, flush=True)
        began = time.monotonic()
        note = call_step(ctx, name, step)
        took = time.monotonic() - began
        if ctx.dry_run and note and not note.startswith("no credentials"):
            note = None  # a dry run did not do what the note would say
        done = f" ({note})" if note else ""
        print(
            f"    done in {took:.1f} s, {time.monotonic() - ctx.started:.0f} s in all{done}",
            file=ctx.out,
            flush=True,
        )


def call_step(ctx: Context, name: str, step: Step) -> str | None:
    """Run one step; an AWS error it lets through becomes a one-line StepError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return step(ctx)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(name, exc, ctx.max_attempts) from exc


# ------------------------------------------------------------------ shared steps


def preflight(ctx: Context) -> None:
    """What must hold before anything is changed (checked also in a dry run)."""
    if not ctx.deploying:
        return  # a destroy deploys nothing: prod's alarm target and the image do not matter
    alarm = os.environ.get("PCP_ALARM_EMAIL") or os.environ.get("PCP_ALARM_TOPIC_ARN")
    if ctx.env in PRODUCTION and not alarm:
        raise StepError(
            "credentials",
            f"{ctx.env} needs an alarm target",
            "set PCP_ALARM_EMAIL (or PCP_ALARM_TOPIC_ARN) in your shell",
        )
    if ctx.image_tag == "latest":
        raise StepError(
            "credentials",
            "no image tag: not a git checkout and IMAGE_TAG unset",
            "run from a git checkout, or set IMAGE_TAG to a new release tag",
        )
    if not os.environ.get("IMAGE_TAG") and has_uncommitted_changes(ctx.root):
        # Tags are immutable and a tag already in ECR is not rebuilt: uncommitted code under
        # the commit's tag would stick to that tag for good.
        raise StepError(
            "credentials",
            "the working tree has uncommitted changes",
            "commit them (the images are tagged with the commit), or set IMAGE_TAG to a new tag",
        )


def credentials(ctx: Context) -> str | None:
    preflight(ctx)
    note = identify(ctx)
    confirm_change(ctx)
    return note


def identify(ctx: Context) -> str | None:
    """Who and where: the account of the credentials (none: an error, but in a dry run)."""
    if ctx.session is None:
        if not ctx.dry_run:
            raise StepError(
                "credentials",
                "no AWS credentials found",
                "set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and AWS_REGION",
            )
        return "no credentials: a dry run assumes nothing exists yet"
    identity = ctx.client("sts").get_caller_identity()
    ctx.account = str(identity["Account"])
    print(
        f"    account {ctx.account} ({identity['Arn']}), region {ctx.region}, environment "
        f"{ctx.env}",
        file=ctx.out,
    )
    return None


def confirm_change(ctx: Context, step: str = "credentials") -> None:
    if ctx.session is None or ctx.dry_run or ctx.auto_approve:
        return
    if not ctx.confirm(f"    change account {ctx.account} in {ctx.region}? [y/N] "):
        raise StepError(step, "not confirmed", "answer y, or set AUTO_APPROVE=1")


def _exists(call: Callable[[], Any], missing: tuple[str, ...]) -> bool:
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in missing:
            return False
        raise
    return True


# ------------------------------------------------------------------ deploy


def state_bucket(ctx: Context) -> str | None:
    if ctx.session is not None:
        s3 = ctx.client("s3")
        from botocore.exceptions import ClientError

        try:
            found = _exists(
                lambda: s3.head_bucket(Bucket=ctx.state_bucket), ("404", "NoSuchBucket")
            )
        except ClientError as exc:  # 403: the name belongs to another account
            if exc.response.get("Error", {}).get("Code") != "403":
                raise
            raise StepError(
                "state bucket",
                f"s3://{ctx.state_bucket} is not ours (403 on HeadBucket)",
                "set TF_STATE_BUCKET to a globally unique name",
            ) from exc
        if found:
            return f"s3://{ctx.state_bucket} exists"
    ctx.runner(
        "state bucket", [ctx.cdktf, "deploy", "bootstrap", "--auto-approve"], env=ctx.synth_env()
    )
    return f"bootstrapped s3://{ctx.state_bucket}"


def synth(ctx: Context) -> str | None:
    argv = [ctx.cdktf, "synth"]
    shown = f"IMAGE_TAG={ctx.image_tag} {ctx.cli} synth"
    if ctx.dry_run and not (ctx.synth_dir / "stacks" / ctx.env / "cdk.tf.json").exists():
        # A dry run needs the stack to name what it would do; the synth writes only here.
        Runner(ctx.out, ctx.root)("synth", argv, env=ctx.synth_env(), shown=shown)
    else:
        ctx.runner("synth", argv, env=ctx.synth_env(), shown=shown)
    return f"image tag {ctx.image_tag}"


def repository_names(stack: dict[str, Any]) -> dict[str, str]:
    """Service -> ECR repository name, from the synthesized stack."""
    names: dict[str, str] = {}
    for body in stack.get("resource", {}).get("aws_ecr_repository", {}).values():
        name = str(body["name"])
        service = next((s for s in SERVICES if name.endswith(s)), name)
        names[service] = name
    return names


def stack_region(stack: dict[str, Any]) -> str | None:
    """The region the stack deploys to (its default AWS provider's)."""
    providers = stack.get("provider", {}).get("aws", [])
    for provider in providers if isinstance(providers, list) else [providers]:
        if "alias" not in provider and provider.get("region"):
            return str(provider["region"])
    return None


def repositories(ctx: Context) -> str | None:
    stack = ctx.stack()
    region = stack_region(stack)
    if region and region != ctx.region:
        print(
            f"    the stack deploys to {region} (AWS_REGION is {ctx.region}): using {region}",
            file=ctx.out,
        )
        ctx.region = region
    wanted = sorted(repository_names(stack).values())
    if ctx.session is not None:
        ecr = ctx.client("ecr")
        have = {r["repositoryName"] for r in _describe_repositories(ecr, wanted)}
        if set(wanted) <= have:
            return "repositories exist"
    chdir = f"-chdir={ctx.synth_dir / 'stacks' / ctx.env}"
    ctx.runner("repositories", ["terraform", chdir, "init", "-input=false"])
    ctx.runner(
        "repositories",
        ["terraform", chdir, "apply", "-input=false", "-auto-approve", *ecr_targets(stack)],
    )
    return f"created {', '.join(wanted)}"


def _describe_repositories(ecr: Any, names: list[str]) -> list[dict[str, Any]]:
    found = []
    for name in names:
        try:
            found += ecr.describe_repositories(repositoryNames=[name])["repositories"]
        except ecr.exceptions.RepositoryNotFoundException:
            continue
    return found


def platform(stack: dict[str, Any]) -> str:
    """Docker's --platform for the task definitions' CPU architecture."""
    archs = {
        str((body.get("runtime_platform") or {}).get("cpu_architecture", "X86_64"))
        for body in stack.get("resource", {}).get("aws_ecs_task_definition", {}).values()
    }
    if len(archs) != 1:
        raise StepError(
            "images",
            f"the task definitions mix architectures {sorted(archs)}",
            "give every service the same cpu_architecture",
        )
    return {"ARM64": "linux/arm64", "X86_64": "linux/amd64"}[archs.pop()]


def images(ctx: Context) -> str | None:
    stack = ctx.stack()
    names = repository_names(stack)
    arch = platform(stack)
    ecr = ctx.client("ecr") if ctx.session is not None else None
    pushed, skipped = [], []
    logged_in = False
    for service in SERVICES:
        repo = names[service]
        uri = f"{ctx.registry}/{repo}:{ctx.image_tag}"
        if ecr is not None and _image_exists(ecr, repo, ctx.image_tag):
            skipped.append(service)  # tags are immutable: an existing one is this commit's
            continue
        if not logged_in:
            _login(ctx, ecr)
            logged_in = True
        ctx.runner(
            "images",
            [
                "docker",
                "build",
                "--platform",
                arch,
                "-f",
                "apps/Dockerfile",
                "--target",
                service,
                "-t",
                uri,
                ".",
            ],
        )
        ctx.runner("images", ["docker", "push", uri])
        pushed.append(service)
    parts = ([f"pushed {', '.join(pushed)}"] if pushed else []) + (
        [f"{', '.join(skipped)} already in ECR"] if skipped else []
    )
    return "; ".join(parts)


def _image_exists(ecr: Any, repo: str, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": tag}])
    except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
        return False
    return True


def _login(ctx: Context, ecr: Any) -> None:
    argv = ["docker", "login", "--username", "AWS", "--password-stdin", ctx.registry]
    if ecr is None:
        ctx.runner("images", argv, shown=f"aws ecr get-login-password | {shlex.join(argv)}")
        return
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().split(":", 1)[1]
    ctx.runner(
        "images", argv, stdin=password, shown=f"aws ecr get-login-password | {shlex.join(argv)}"
    )


def deploy_stack(ctx: Context, *, shown_env: str | None = None) -> str | None:
    """``cdktf deploy`` of the stack, then its outputs printed (sensitive ones left out);
    ``shown_env``: the variable the printed command line starts with (unset: the
    platform's ``IMAGE_TAG``)."""
    outputs = ctx.synth_dir / f"outputs-{ctx.env}.json"
    shown_env = f"IMAGE_TAG={ctx.image_tag}" if shown_env is None else shown_env
    ctx.runner(
        "deploy",
        [ctx.cdktf, "deploy", ctx.env, "--auto-approve", "--outputs-file", str(outputs)],
        env=ctx.synth_env(),
        shown=f"{shown_env} {ctx.cli} deploy {ctx.env} --auto-approve "
        f"--outputs-file {str(outputs).replace(f'{ctx.root}/', '')}",
    )
    if outputs.exists():
        document = json.loads(outputs.read_text())
        ctx.outputs = dict(document.get(ctx.env, document))
        for key, value in sorted(ctx.outputs.items()):
            if key not in SENSITIVE_OUTPUTS:
                print(f"    {key} = {value}", file=ctx.out)
    return None


def make_smoke(smoke: Callable[[str], Any]) -> Step:
    def smoke_step(ctx: Context) -> str | None:
        url = str(ctx.outputs.get("cloudfront_url", "<cloudfront_url>"))
        if ctx.dry_run:
            print(
                f"    smoke test {url}: /api/ready, POST /api/count, GET /api/count until "
                "stored, /api/status",
                file=ctx.out,
            )
            return None
        result = smoke(url)
        for line in result.steps:
            print(f"    {line}", file=ctx.out)
        if not result.ok:
            _print_service_logs(ctx)
            raise StepError(
                "smoke test",
                str(result.error),
                "read the service logs above; re-run `make deploy` once fixed",
            )
        return "the platform answers and stores values"

    return smoke_step


def _print_service_logs(ctx: Context, lines: int = 20, groups: Sequence[str] | None = None) -> None:
    """The last lines of the services' log groups (``groups``; unset: the platform's)."""
    if ctx.session is None:
        return
    logs = ctx.client("logs")
    if groups is None:
        groups = [
            str(body["name"])
            for body in ctx.stack().get("resource", {}).get("aws_cloudwatch_log_group", {}).values()
            if any(str(body.get("name", "")).endswith(f"/{s}") for s in SERVICES)
        ]
    for group in groups:
        try:
            events = _recent_events(logs, group)
        except Exception as exc:  # the group may not exist yet
            print(f"    (no logs from {group}: {exc})", file=ctx.out)
            continue
        print(f"    last lines of {group}:", file=ctx.out)
        for event in events[-lines:]:
            print(f"      {event['message'].rstrip()}", file=ctx.out)


def _recent_events(logs: Any, group: str, minutes: int = 30) -> list[dict[str, Any]]:
    """The group's events of the last ``minutes``, oldest first (the tail is the newest)."""
    start = int((time.time() - minutes * 60) * 1000)
    events: list[dict[str, Any]] = []
    for page in logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, startTime=start, PaginationConfig={"MaxItems": 5000}
    ):
        events += page.get("events", [])
    return events


def deploy_steps(smoke: Callable[[str], Any]) -> list[tuple[str, Step]]:
    return [
        ("credentials", credentials),
        ("state bucket", state_bucket),
        ("synth", synth),
        ("repositories", repositories),
        ("images", images),
        ("deploy", deploy_stack),
        ("smoke test", make_smoke(smoke)),
    ]


# ------------------------------------------------------------------ destroy


def protection(ctx: Context) -> str | None:
    """Refuse to destroy a database that deletion protection still guards."""
    for body in ctx.stack().get("resource", {}).get("aws_db_instance", {}).values():
        identifier = str(body["identifier"])
        if body.get("deletion_protection") is not True:
            continue
        if ctx.session is None:
            raise StepError(
                "protection",
                f"{identifier} is deletion-protected in this environment",
                "lift it deliberately first (with credentials, make destroy prints the "
                "command), then destroy",
            )
        rds = ctx.client("rds")
        try:
            live = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        except rds.exceptions.DBInstanceNotFoundFault:
            continue
        if live and live[0].get("DeletionProtection"):
            raise StepError(
                "protection",
                f"{identifier} has deletion protection on",
                f"lift it deliberately: `aws rds modify-db-instance --db-instance-identifier "
                f"{identifier} --no-deletion-protection --apply-immediately`, then run "
                "`make destroy` again",
            )
    return "no deletion-protected database"


def keeps(ctx: Context) -> str | None:
    stack = ctx.stack().get("resource", {})
    for body in stack.get("aws_db_instance", {}).values():
        if not body.get("skip_final_snapshot"):
            print(
                f"    keeps: RDS final snapshot {body.get('final_snapshot_identifier')}",
                file=ctx.out,
            )
    for body in stack.get("aws_elasticache_replication_group", {}).values():
        if body.get("final_snapshot_identifier"):
            print(
                f"    keeps: ElastiCache final snapshot {body['final_snapshot_identifier']}",
                file=ctx.out,
            )
    print(
        f"    keeps: the state bucket s3://{ctx.state_bucket} and the bootstrap stack", file=ctx.out
    )
    if (
        not ctx.dry_run
        and not ctx.auto_approve
        and not ctx.confirm(f"    destroy {ctx.env}? [y/N] ")
    ):
        raise StepError("keeps", "not confirmed", "answer y, or set AUTO_APPROVE=1")
    return None


def empty(ctx: Context) -> str | None:
    """Empty the buckets and repositories Terraform cannot delete while they hold
    something (prod keeps its images: its repositories have no ``force_delete``)."""
    stack = ctx.stack().get("resource", {})
    buckets = [
        _account_resolved(str(b["bucket"]), ctx.account)
        for b in stack.get("aws_s3_bucket", {}).values()
        if "bucket" in b and not b.get("force_destroy")
    ]
    emptied = []
    for bucket in buckets:
        if ctx.dry_run or ctx.session is None:
            print(f"    would empty s3://{bucket} (every object version)", file=ctx.out)
            continue
        s3 = ctx.client("s3")
        if not _exists(partial(s3.head_bucket, Bucket=bucket), ("404", "NoSuchBucket")):
            continue
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
        emptied.append(bucket)
    for body in stack.get("aws_ecr_repository", {}).values():
        if body.get("force_delete"):
            continue  # Terraform deletes it with its images
        repo = str(body["name"])
        if ctx.dry_run or ctx.session is None:
            print(f"    would delete every image in ECR {repo}", file=ctx.out)
            continue
        ecr = ctx.client("ecr")
        try:
            for page in ecr.get_paginator("list_images").paginate(repositoryName=repo):
                ids = page.get("imageIds", [])
                for i in range(0, len(ids), 100):
                    ecr.batch_delete_image(repositoryName=repo, imageIds=ids[i : i + 100])
        except ecr.exceptions.RepositoryNotFoundException:
            continue
        emptied.append(repo)
    return f"emptied {', '.join(emptied)}" if emptied else None


def _account_resolved(name: str, account: str | None) -> str:
    """A bucket name with the stack's account-id reference filled in (``<account>`` when
    a dry run has no credentials)."""
    return re.sub(
        r"\$\{data\.aws_caller_identity\.[^}]+\.account_id\}", account or "<account>", name
    )


def destroy_stack(ctx: Context) -> str | None:
    ctx.runner("destroy", [ctx.cdktf, "destroy", ctx.env, "--auto-approve"], env=ctx.synth_env())
    return None


def destroy_steps() -> list[tuple[str, Step]]:
    return [
        ("credentials", credentials),
        ("synth", synth),
        ("protection", protection),
        ("keeps", keeps),
        ("empty", empty),
        ("destroy", destroy_stack),
    ]
