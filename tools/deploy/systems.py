"""The steps of ``make deploy`` / ``make destroy`` for a seed system's stack
(``<system>-<env>``): the platform's steps (tools/deploy/plan.py) where they apply, plus
the system's preflight, its own images, Panintelligence's assets and a smoke test per
system. Each step is idempotent, so a re-run after a failure resumes."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools.deploy import preflight as checks
from tools.deploy.plan import (
    Context,
    Runner,
    Step,
    StepError,
    _account_resolved,
    _describe_repositories,
    _image_exists,
    _login,
    _print_service_logs,
    confirm_change,
    empty,
    identify,
    keeps,
    protection,
    stack_region,
    state_bucket,
)
from tools.deploy.plan import (
    deploy_stack as deploy_with_outputs,
)
from tools.ecr_targets import first_apply_targets

PLATFORMS = {"ARM64": "linux/arm64", "X86_64": "linux/amd64"}
UPSTREAM_SERVICE = {"dashboard": "server"}
"""A repository whose upstream image has another name (``--build-arg SERVICE=``)."""
_IMAGE_REF = re.compile(r"^\$\{aws_ecr_repository\.([^.}]+)\.repository_url\}:(.+)$")
_BUCKET_REF = re.compile(r"^\$\{aws_s3_bucket\.([^.}]+)\.bucket\}$")

SmokeCall = Callable[[Context], Any]
"""Runs a system's smoke test against the deployed stack; returns a SmokeResult."""


def config_of(ctx: Context) -> Any:
    """The stack's typed environment (``environments/<system>.py``)."""
    from environments import SYSTEM_ENVIRONMENTS

    return SYSTEM_ENVIRONMENTS[ctx.env]


def module_of(ctx: Context) -> Any:
    return importlib.import_module(f"environments.{ctx.system}")


# ------------------------------------------------------------------ what the stack says


@dataclass(frozen=True)
class Image:
    """One image the stack runs: built from images/<system>/Dockerfile, pushed to its
    repository under the tag the task definition names."""

    service: str
    repository: str
    tag: str
    platform: str
    build_args: tuple[tuple[str, str], ...]


def stack_images(stack: dict[str, Any], dockerfile: str) -> list[Image]:
    """The images the task definitions run, each with the platform of its task
    definition's ``cpu_architecture`` and, when the Dockerfile declares them, the
    ``SERVICE`` (the upstream image) and ``RELEASE`` build arguments."""
    resources = stack.get("resource", {})
    repos = {
        rid: str(body["name"]) for rid, body in resources.get("aws_ecr_repository", {}).items()
    }
    arg_service = re.search(r"^ARG SERVICE\b", dockerfile, re.MULTILINE) is not None
    arg_release = re.search(r"^ARG RELEASE\b", dockerfile, re.MULTILINE) is not None
    found: dict[str, Image] = {}
    for body in resources.get("aws_ecs_task_definition", {}).values():
        arch = str((body.get("runtime_platform") or {}).get("cpu_architecture", "X86_64"))
        for container in json.loads(body["container_definitions"]):
            match = _IMAGE_REF.match(str(container.get("image", "")))
            if match is None or match.group(1) not in repos:
                continue
            repository, tag = repos[match.group(1)], match.group(2)
            service = repository.rsplit("/", 1)[-1]
            args: tuple[tuple[str, str], ...] = ()
            if arg_service:
                args += (("SERVICE", UPSTREAM_SERVICE.get(service, service)),)
            if arg_release:
                args += (("RELEASE", str(tag)),)
            found[repository] = Image(service, repository, tag, PLATFORMS[arch], args)
    return [found[name] for name in sorted(found)]


def assets_location(stack: dict[str, Any]) -> tuple[str, str] | None:
    """``(bucket, prefix)`` the stack's asset loader reads (Panintelligence), or None."""
    resources = stack.get("resource", {})
    buckets = resources.get("aws_s3_bucket", {})
    for body in resources.get("aws_lambda_function", {}).values():
        variables = (body.get("environment") or {}).get("variables", {})
        match = _BUCKET_REF.match(str(variables.get("ASSETS_BUCKET", "")))
        if match and match.group(1) in buckets and "ASSETS_PREFIX" in variables:
            return str(buckets[match.group(1)]["bucket"]), str(variables["ASSETS_PREFIX"])
    return None


def service_names(stack: dict[str, Any]) -> tuple[str, list[str]]:
    """The cluster's name and its services' names."""
    resources = stack.get("resource", {})
    cluster: dict[str, Any] = next(iter(resources.get("aws_ecs_cluster", {}).values()), {})
    services = sorted(str(b["name"]) for b in resources.get("aws_ecs_service", {}).values())
    return str(cluster.get("name", "")), services


def load_balancer_name(stack: dict[str, Any]) -> str:
    balancers: dict[str, dict[str, Any]] = stack.get("resource", {}).get("aws_lb", {})
    return str(next(iter(balancers.values()), {}).get("name"))


def service_log_groups(stack: dict[str, Any]) -> list[str]:
    """The services' log groups (``/<system>/<env>/ecs/<service>``)."""
    groups = stack.get("resource", {}).get("aws_cloudwatch_log_group", {}).values()
    return sorted(str(b["name"]) for b in groups if "/ecs/" in str(b.get("name", "")))


# ------------------------------------------------------------------ deploy steps


def synth(ctx: Context) -> str | None:
    """Only this system's stacks (``SYSTEMS``): the platform's are not needed."""
    argv = [ctx.cdktf, "synth"]
    shown = f"SYSTEMS={ctx.system} {ctx.cli} synth"
    if ctx.dry_run and not (ctx.synth_dir / "stacks" / ctx.env / "cdk.tf.json").exists():
        Runner(ctx.out, ctx.root)("synth", argv, env=ctx.synth_env(), shown=shown)
    else:
        ctx.runner("synth", argv, env=ctx.synth_env(), shown=shown)
    return None


def run_preflight(ctx: Context, tools: Callable[[str], list[checks.Finding]]) -> checks.Report:
    """Every check at once (the AWS ones only with credentials)."""
    config, module, stack = config_of(ctx), module_of(ctx), ctx.stack()
    blocking = checks.static_findings(config, module, ctx.root)
    local = tools(ctx.cdktf)
    assets = assets_location(stack)
    if assets is not None:
        login = checks.registry_login(checks.GHCR)
        local += [login] if login is not None else []
    if ctx.session is not None:
        region = config.region
        blocking += checks.zone_findings(config, module, ctx.client("route53", "us-east-1"))
        blocking += checks.certificate_findings(config, module, ctx.client("acm", region))
        sign_in = checks.SignIn(checks.listener_scopes(stack), ctx.account)
        blocking += checks.cognito_findings(
            config, module, sign_in, lambda pool_region: ctx.client("cognito-idp", pool_region)
        )
        blocking += checks.secret_findings(
            checks.operator_secrets(stack), region, ctx.client("secretsmanager", region)
        )
        if checks.logs_api_access(config, stack):
            blocking += checks.api_gateway_findings(
                config, module, ctx.client("apigateway", region), ctx.account or "<account>"
            )
    if assets is not None:
        bucket = _account_resolved(assets[0], ctx.account)
        s3 = ctx.client("s3") if ctx.session is not None else None
        blocking += checks.assets_findings(bucket, assets[1], s3)
    if not ctx.dry_run:  # a dry run runs no tool: what is missing here is only a warning
        blocking, local = blocking + local, []
    return checks.Report(
        tuple(blocking), tuple(local + checks.placeholder_warnings(config, module))
    )


def make_preflight(tools: Callable[[str], list[checks.Finding]]) -> Step:
    def preflight_step(ctx: Context) -> str | None:
        report = run_preflight(ctx, tools)
        for finding in report.warnings:
            print(f"warning: {finding.line()}", file=ctx.out)
        for finding in report.blocking:
            print(f"error: preflight: {finding.line()}", file=ctx.out)
        if report.blocking:
            ctx.problems += len(report.blocking)
            if not ctx.dry_run:
                raise StepError(
                    "preflight",
                    f"{len(report.blocking)} problem(s) listed above; nothing was changed",
                    "fix each one, then run `make deploy` again",
                )
            return None
        confirm_change(ctx, "preflight")
        return "nothing missing" if ctx.session is not None else None

    return preflight_step


def repositories(ctx: Context) -> str | None:
    """The stack's repositories (and Panintelligence's assets bucket), created with a
    targeted apply when missing."""
    stack = ctx.stack()
    region = stack_region(stack)
    if region:
        ctx.region = region
    wanted = sorted(str(b["name"]) for b in stack["resource"]["aws_ecr_repository"].values())
    assets = assets_location(stack)
    if ctx.session is not None:
        have = {r["repositoryName"] for r in _describe_repositories(ctx.client("ecr"), wanted)}
        bucket_ok = assets is None or _bucket_exists(ctx, assets[0])
        if set(wanted) <= have and bucket_ok:
            return "repositories exist"
    chdir = f"-chdir={ctx.synth_dir / 'stacks' / ctx.env}"
    ctx.runner("repositories", ["terraform", chdir, "init", "-input=false"])
    ctx.runner(
        "repositories",
        ["terraform", chdir, "apply", "-input=false", "-auto-approve", *first_apply_targets(stack)],
    )
    return f"created {', '.join(wanted)}" + (" and the assets bucket" if assets else "")


def _bucket_exists(ctx: Context, name: str) -> bool:
    s3 = ctx.client("s3")
    try:
        s3.head_bucket(Bucket=_account_resolved(name, ctx.account))
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
            return False
        raise
    return True


def images(ctx: Context) -> str | None:
    """Build each image the stack runs from images/<system>/Dockerfile and push it, unless
    its (immutable) tag is in ECR already."""
    dockerfile = f"images/{ctx.system}/Dockerfile"
    wanted = stack_images(ctx.stack(), (ctx.root / dockerfile).read_text())
    ecr = ctx.client("ecr") if ctx.session is not None else None
    pushed, skipped = [], []
    logged_in = False
    for image in wanted:
        uri = f"{ctx.registry}/{image.repository}:{image.tag}"
        if ecr is not None and _image_exists(ecr, image.repository, image.tag):
            skipped.append(image.service)
            continue
        if not logged_in:
            _login(ctx, ecr)
            logged_in = True
        args = [a for name, value in image.build_args for a in ("--build-arg", f"{name}={value}")]
        ctx.runner(
            "images",
            ["docker", "build", "--platform", image.platform, *args, "-f", dockerfile,
             "-t", uri, "."],
        )  # fmt: skip
        ctx.runner("images", ["docker", "push", uri])
        pushed.append(image.service)
    parts = ([f"pushed {', '.join(pushed)}"] if pushed else []) + (
        [f"{', '.join(skipped)} already in ECR"] if skipped else []
    )
    return "; ".join(parts)


def assets(ctx: Context) -> str | None:
    """Panintelligence: upload ``PI_ASSETS_DIR`` under the loader's prefix unless the
    prefix already holds objects (the loader refuses an empty one; it never overwrites
    what users changed, so a later upload changes nothing on the share)."""
    location = assets_location(ctx.stack())
    if location is None:
        return "no assets"
    bucket, prefix = _account_resolved(location[0], ctx.account), location[1]
    local = checks.assets_dir()
    target = f"s3://{bucket}/{prefix}"
    s3 = ctx.client("s3") if ctx.session is not None else None
    if s3 is not None and s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get(
        "KeyCount", 0
    ):
        return f"{target} holds the assets"
    if local is None and ctx.dry_run:
        print(f"    upload ${checks.ASSETS_VARIABLE} -> {target}", file=ctx.out)
        return None
    if local is None:
        raise StepError(
            "assets",
            f"{target} is empty and {checks.ASSETS_VARIABLE} is unset",
            f"export {checks.ASSETS_VARIABLE}=<directory with Panintelligence's shipped assets>",
        )
    files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else []
    print(f"    upload {local} -> {target} ({len(files)} files)", file=ctx.out)
    if s3 is None or ctx.dry_run:
        return None
    for path in files:
        s3.upload_file(str(path), bucket, prefix + path.relative_to(local).as_posix())
    return f"uploaded {len(files)} files"


def deploy_stack(ctx: Context) -> str | None:
    """The platform's deploy step, printed with the system it builds."""
    return deploy_with_outputs(ctx, shown_env=f"SYSTEMS={ctx.system}")


def make_smoke(smoke: SmokeCall, describe: Callable[[Context], str]) -> Step:
    def smoke_step(ctx: Context) -> str | None:
        if ctx.dry_run:
            print(f"    smoke test: {describe(ctx)}", file=ctx.out)
            return None
        result = smoke(ctx)
        for line in result.steps:
            print(f"    {line}", file=ctx.out)
        if not result.ok:
            _print_service_logs(ctx, groups=service_log_groups(ctx.stack()))
            raise StepError(
                "smoke test",
                str(result.error),
                "read the service logs above; re-run `make deploy` once fixed",
            )
        return f"{ctx.system} answers"

    return smoke_step


def deploy_steps(
    smoke: SmokeCall,
    describe: Callable[[Context], str],
    tools: Callable[[str], list[checks.Finding]] = checks.missing_tools,
    *,
    with_assets: bool = False,
) -> list[tuple[str, Step]]:
    steps: list[tuple[str, Step]] = [
        ("credentials", identify),
        ("synth", synth),
        ("preflight", make_preflight(tools)),
        ("state bucket", state_bucket),
        ("repositories", repositories),
        ("images", images),
    ]
    if with_assets:
        steps.append(("assets", assets))
    return [*steps, ("deploy", deploy_stack), ("smoke test", make_smoke(smoke, describe))]


# ------------------------------------------------------------------ destroy


def load_balancer_protection(ctx: Context) -> str | None:
    """Refuse while the live database, load balancer or user pool has deletion protection
    on (Terraform's destroy would stop there, half-way)."""
    note = protection(ctx)
    _user_pool_protection(ctx)
    for body in ctx.stack().get("resource", {}).get("aws_lb", {}).values():
        name = str(body["name"])
        if body.get("enable_deletion_protection") is not True:
            continue
        if ctx.session is None:
            raise StepError(
                "protection",
                f"the load balancer {name} is deletion-protected in this environment",
                "lift it deliberately first (with credentials, make destroy prints the "
                "command), then destroy",
            )
        elbv2 = ctx.client("elbv2")
        try:
            found = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
        except elbv2.exceptions.LoadBalancerNotFoundException:
            continue
        arn = found[0]["LoadBalancerArn"]
        attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
        if any(
            a["Key"] == "deletion_protection.enabled" and a["Value"] == "true" for a in attributes
        ):
            raise StepError(
                "protection",
                f"the load balancer {name} has deletion protection on",
                "lift it deliberately: `aws elbv2 modify-load-balancer-attributes "
                f"--region {ctx.region} --load-balancer-arn {arn} --attributes "
                "Key=deletion_protection.enabled,Value=false`, then run `make destroy` again",
            )
    return note


def system_keeps(ctx: Context) -> str | None:
    resources = ctx.stack().get("resource", {})
    for body in resources.get("aws_efs_backup_policy", {}).values():
        if (body.get("backup_policy") or {}).get("status") == "ENABLED":
            print(
                "    keeps: the file system's backups (AWS Backup vault "
                "aws/efs/automatic-backup-vault; delete the recovery points there)",
                file=ctx.out,
            )
            break
    return keeps(ctx)


def system_destroy(ctx: Context) -> str | None:
    ctx.runner(
        "destroy",
        [ctx.cdktf, "destroy", ctx.env, "--auto-approve"],
        env=ctx.synth_env(),
        shown=f"SYSTEMS={ctx.system} {ctx.cli} destroy {ctx.env} --auto-approve",
    )
    return None


def destroy_steps() -> list[tuple[str, Step]]:
    return [
        ("credentials", identify),
        ("synth", synth),
        ("protection", load_balancer_protection),
        ("keeps", system_keeps),
        ("empty", empty),
        ("destroy", system_destroy),
    ]


def _user_pool_protection(ctx: Context) -> None:
    for body in ctx.stack().get("resource", {}).get("aws_cognito_user_pool", {}).values():
        name = str(body["name"])
        if body.get("deletion_protection") != "ACTIVE":
            continue
        if ctx.session is None:
            raise StepError(
                "protection",
                f"the user pool {name} is deletion-protected in this environment",
                "lift it deliberately first (with credentials, make destroy names it), then "
                "destroy",
            )
        cognito = ctx.client("cognito-idp")
        pools = [
            pool
            for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60)
            for pool in page.get("UserPools", [])
            if pool.get("Name") == name
        ]
        for pool in pools:
            live = cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
            if live.get("DeletionProtection") == "ACTIVE":
                raise StepError(
                    "protection",
                    f"the user pool {name} ({pool['Id']}) has deletion protection on (it holds "
                    "the users' accounts)",
                    "lift it deliberately in the Cognito console (the pool's Settings, "
                    "Deletion protection: update-user-pool would reset the pool's other "
                    "settings), then run `make destroy` again",
                )


# ------------------------------------------------------------------ smoke tests


def smoke_system(ctx: Context) -> Any:
    """The system's smoke test against the deployed stack (its outputs, AWS)."""
    from tools.deploy import system_smoke as smoke

    stack, url = ctx.stack(), str(ctx.outputs.get("url", ""))
    if ctx.system == "metabase":
        return smoke.metabase(url)
    if ctx.system == "dekart":
        probe = smoke.targets_probe(ctx.client("elbv2"), load_balancer_name(stack))
        return smoke.dekart(url, cognito=config_of(ctx).cognito is not None, targets=probe)
    if ctx.system == "metaflow":
        key_id = str(ctx.outputs.get("api_gateway_rest_api_id_key_id") or "")
        key = (
            str(ctx.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"])
            if key_id
            else None
        )
        base = ctx.outputs.get("METAFLOW_SERVICE_URL") or ctx.outputs.get(
            "METAFLOW_SERVICE_INTERNAL_URL", ""
        )
        return smoke.metaflow(str(base), key)
    cluster, services = service_names(stack)
    return smoke.panintelligence(
        url, services=smoke.services_probe(ctx.client("ecs"), cluster, services)
    )


def describe_smoke(ctx: Context) -> str:
    """What the smoke test would check (a dry run)."""
    url = str(ctx.outputs.get("url", "<url output>"))
    if ctx.system == "metabase":
        return f'GET {url}/api/health until {{"status": "ok"}}'
    if ctx.system == "dekart":
        first = (
            "GET / redirected to the Cognito sign-in"
            if config_of(ctx).cognito is not None
            else "GET /health 200"
        )
        return f"{url}: {first}; the target group's targets healthy (ELB API)"
    if ctx.system == "metaflow":
        return (
            "GET <METAFLOW_SERVICE_URL>/ping (pong) and /flows with the API key "
            "(aws apigateway get-api-key --include-value)"
        )
    return f"GET {url}/pi/ (the login page); the four services steady (ECS API)"
