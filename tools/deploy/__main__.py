"""``python -m tools.deploy {deploy,destroy} ENV [--dry-run] [--auto-approve]``.

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

from tools.deploy.plan import (
    DEFAULT_REGION,
    DEFAULT_STATE_BUCKET,
    Context,
    DryRunner,
    Runner,
    StepError,
    deploy_steps,
    destroy_steps,
    run_steps,
)
from tools.git import head_revision

ROOT = Path(__file__).resolve().parents[2]


def session() -> Any:
    """A boto3 session when credentials resolve, else None."""
    import boto3

    s = boto3.session.Session()
    return s if s.get_credentials() is not None else None


def default_smoke(url: str) -> Any:
    from tools.deploy.smoke import smoke_test

    return smoke_test(url)


def main(
    argv: list[str] | None = None,
    *,
    runner: Runner | None = None,
    out: TextIO | None = None,
    smoke: Callable[[str], Any] = default_smoke,
    outdir: Path | None = None,
    confirm: Callable[[str], bool] | None = None,
) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("deploy", "destroy"))
    parser.add_argument("env", help="environment: dev, test, stage or prod")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, change nothing")
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    aws = session()
    ctx = Context(
        env=args.env,
        runner=runner or (DryRunner(out) if args.dry_run else Runner(out)),
        out=out,
        root=ROOT,
        outdir=outdir,
        region=os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION,
        state_bucket=os.environ.get("TF_STATE_BUCKET", DEFAULT_STATE_BUCKET),
        image_tag=os.environ.get("IMAGE_TAG") or head_revision(ROOT),
        dry_run=args.dry_run,
        auto_approve=args.auto_approve,
        deploying=args.action == "deploy",
        session=aws,
    )
    if confirm is not None:
        ctx.confirm = confirm
    if args.dry_run:
        print("dry run: prints every command, changes nothing", file=out)
    steps = deploy_steps(smoke) if args.action == "deploy" else destroy_steps()
    try:
        run_steps(ctx, steps)
    except StepError as exc:
        print(f"\n{args.action} {args.env}: {exc}", file=out)
        return 1
    print(f"\n{args.action} {args.env}: done", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
