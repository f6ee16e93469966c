"""``python -m tools.deploy {deploy,destroy} ENV [--dry-run] [--auto-approve]``.

ENV is a platform environment (dev, test, stage, prod) or a seed system's stack
(``<system>-<env>``: metabase-dev, ..., panintelligence-prod). A system's deploy runs its
preflight (every prerequisite Terraform cannot create, all reported at once, exit 2 with
nothing changed), then the same steps with its own images, and its own smoke test.

deploy: check the credentials (and confirm), bootstrap the state bucket if missing, synth
once, create the environment's ECR repositories if missing, build and push this commit's
images (skipping tags already in ECR), deploy the stack, print its outputs, and smoke-test
the public URL. destroy: refuse a deletion-protected database, say what is kept, empty the
buckets, destroy the stack. Every step is idempotent: after a failure, run it again.
--dry-run prints every command in order and changes nothing (without credentials it
assumes nothing exists yet).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from tools.deploy import systems
from tools.deploy.plan import (
    DEFAULT_REGION,
    DEFAULT_STATE_BUCKET,
    Context,
    DryRunner,
    Runner,
    Step,
    StepError,
    aws_error,
    deploy_steps,
    destroy_steps,
    run_steps,
)
from tools.deploy.preflight import Finding, missing_tools
from tools.git import head_revision

ROOT = Path(__file__).resolve().parents[2]


EXIT_USER_ERROR = 2


def session() -> Any:
    """A boto3 session when credentials resolve, else None."""
    import boto3

    s = boto3.session.Session()
    return s if s.get_credentials() is not None else None


def choices() -> tuple[list[str], list[str]]:
    """The platform environments and the seed systems' stacks ``make synth`` writes."""
    from environments import ENVIRONMENTS, SYSTEM_ENVIRONMENTS

    return list(ENVIRONMENTS), list(SYSTEM_ENVIRONMENTS)


def default_smoke(url: str) -> Any:
    from tools.deploy.smoke import smoke_test

    return smoke_test(url)


def main(
    argv: list[str] | None = None,
    *,
    runner: Runner | None = None,
    out: TextIO | None = None,
    smoke: Callable[[str], Any] = default_smoke,
    system_smoke: Callable[[Context], Any] = systems.smoke_system,
    tools: Callable[[str], list[Finding]] = missing_tools,
    outdir: Path | None = None,
    confirm: Callable[[str], bool] | None = None,
) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("deploy", "destroy"))
    parser.add_argument("env", help="a platform environment (dev, ..., prod) or <system>-<env>")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, change nothing")
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    platform, system_stacks = choices()
    if args.env not in platform and args.env not in system_stacks:
        print(
            f"error: {args.action}: unknown environment {args.env!r}; choose one of "
            f"{', '.join(platform + system_stacks)}",
            file=out,
        )
        return EXIT_USER_ERROR
    system = args.env.split("-", 1)[0] if args.env in system_stacks else None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    if system is not None:
        from environments import SYSTEM_ENVIRONMENTS

        region = SYSTEM_ENVIRONMENTS[args.env].region  # the stack's own, whatever AWS_REGION says
    from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]

    try:
        aws = session()
    except BotoCoreError as exc:  # a named profile that does not exist
        print(f"error: {args.action} {args.env}: {aws_error('credentials', exc, 1)}", file=out)
        return EXIT_USER_ERROR
    ctx = Context(
        env=args.env,
        runner=runner or (DryRunner(out) if args.dry_run else Runner(out)),
        out=out,
        root=ROOT,
        outdir=outdir,
        region=region,
        state_bucket=os.environ.get("TF_STATE_BUCKET", DEFAULT_STATE_BUCKET),
        image_tag=os.environ.get("IMAGE_TAG") or head_revision(ROOT),
        dry_run=args.dry_run,
        auto_approve=args.auto_approve,
        deploying=args.action == "deploy",
        session=aws,
        system=system,
    )
    if confirm is not None:
        ctx.confirm = confirm
    if args.dry_run:
        print("dry run: prints every command, changes nothing", file=out)
    return _run(ctx, args.action, _steps(args.action, system, smoke, system_smoke, tools))


def _steps(
    action: str,
    system: str | None,
    smoke: Callable[[str], Any],
    system_smoke: Callable[[Context], Any],
    tools: Callable[[str], list[Finding]],
) -> list[tuple[str, Step]]:
    if system is None:
        return deploy_steps(smoke) if action == "deploy" else destroy_steps()
    if action == "destroy":
        return systems.destroy_steps()
    return systems.deploy_steps(
        system_smoke, systems.describe_smoke, tools, with_assets=system == "panintelligence"
    )


def _run(ctx: Context, action: str, steps: list[tuple[str, Step]]) -> int:
    """Run the steps; a user error (a StepError, or an AWS error outside a step) is one
    line and exit 2."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        run_steps(ctx, steps)
    except StepError as exc:
        print(f"error: {action} {ctx.env}: {exc}", file=ctx.out)
        return EXIT_USER_ERROR
    except (ClientError, BotoCoreError) as exc:
        print(
            f"error: {action} {ctx.env}: {aws_error('setup', exc, ctx.max_attempts)}", file=ctx.out
        )
        return EXIT_USER_ERROR
    if ctx.problems:
        print(
            f"error: {action} {ctx.env}: preflight found {ctx.problems} problem(s) (listed "
            "above); a real run stops there and changes nothing",
            file=ctx.out,
        )
        return EXIT_USER_ERROR
    print(f"\n{action} {ctx.env}: done", file=ctx.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
