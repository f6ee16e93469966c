"""``python -m tools.review [--base REF] [--fail-on risky]`` (``make review``).

Synthesizes the working tree (and, with ``--base``, the base commit in a temporary worktree,
cached per commit under ``.review-cache/``), then writes ``review/`` and prints a summary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

from tools.git import head_revision
from tools.review.cost import estimate
from tools.review.diff import diff_stacks
from tools.review.model import load_stacks
from tools.review.report import diff_summary_line, review_stacks, write

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".review-cache"
EXIT_USER_ERROR = 2
REVIEW_ALARM_EMAIL = "alarms@example.invalid"
"""As ``make synth``: production must name an alarm target; a review uses one that can
never receive mail unless the shell sets its own."""


class ReviewInputError(Exception):
    """What the user must fix before the review can run: each line printed as
    ``error: <line>``, exit status 2."""

    def __init__(self, *lines: str) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ReviewInputError(message)


def synthesize(source: Path, outdir: Path, label: str) -> float:
    """Run the CDKTF app in ``source`` into ``outdir``, printing progress; seconds taken."""
    env = dict(os.environ)
    env["CDKTF_OUTDIR"] = str(outdir)
    env.setdefault("PCP_ALARM_EMAIL", REVIEW_ALARM_EMAIL)
    env["PYTHONPATH"] = str(source)
    started = time.monotonic()
    done = threading.Event()
    seen: set[str] = set()

    def progress() -> None:
        while not done.wait(2.0):
            stacks = outdir / "stacks"
            new = (
                sorted({p.parent.name for p in stacks.glob("*/cdk.tf.json")} - seen)
                if stacks.exists()
                else []
            )
            seen.update(new)
            elapsed = time.monotonic() - started
            if new:
                what = f"wrote {', '.join(new)}"
            elif seen:
                what = "writing assets"
            else:
                what = "building stacks (importing the AWS provider bindings)"
            print(f"  synth {label}: {elapsed:4.0f} s  {what}", flush=True)

    print(f"synth {label} ...", flush=True)
    ticker = threading.Thread(target=progress, daemon=True)
    ticker.start()
    try:
        result = subprocess.run(
            [sys.executable, "main.py"],
            cwd=source,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        done.set()
        ticker.join()
    if result.returncode == EXIT_USER_ERROR:  # the app's own one-line errors: a wrong input
        raise ReviewInputError(
            *(
                f"synth {label}: {line.removeprefix('error: ')}"
                for line in result.stderr.splitlines()
                if line.strip()
            )
        )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"synth {label} failed (exit {result.returncode})")
    elapsed = time.monotonic() - started
    stacks = sorted(p.parent.name for p in (outdir / "stacks").glob("*/cdk.tf.json"))
    print(
        f"synth {label}: {len(stacks)} stacks in {elapsed:.1f} s ({', '.join(stacks)})", flush=True
    )
    return elapsed


def base_outdir(ref: str) -> tuple[str, Path]:
    """The base commit's synth, from the cache (per commit and image tag) or synthesized in
    a temporary worktree."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not sha:
        raise ReviewInputError(f"--base {ref!r} is not a commit in this repository")
    key = CACHE / f"{sha}-{os.environ.get('IMAGE_TAG', 'latest')}"
    cached = key / "cdktf.out"
    if (cached / "stacks").is_dir():
        print(f"base {ref} ({sha[:12]}): cached synth", flush=True)
        return sha, cached
    worktree = key / "src"
    shutil.rmtree(worktree, ignore_errors=True)
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--force", str(worktree), sha],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    partial = key / "cdktf.out.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        synthesize(worktree, partial, f"base {ref} ({sha[:12]})")
        partial.rename(cached)
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)],
            cwd=ROOT,
            check=False,
            capture_output=True,
        )
    return sha, cached


def main(argv: list[str] | None = None) -> int:
    """The exit status: 0 reviewed, 1 FAIL_ON=risky found a risky change, 2 an input to fix
    (one line each on stderr)."""
    try:
        return review(argv)
    except ReviewInputError as error:
        for line in error.lines:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USER_ERROR


def review(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(prog="make review", description=__doc__)
    parser.add_argument("--base", help="git ref to compare with (synthesized once per commit)")
    parser.add_argument("--fail-on", choices=("risky",), help="exit 1 on risky or widening changes")
    parser.add_argument("--out", type=Path, default=ROOT / "review", help="output directory")
    parser.add_argument(
        "--outdir", type=Path, default=ROOT / "cdktf.out", help="the synth to review"
    )
    parser.add_argument("--no-synth", action="store_true", help="review the existing --outdir")
    args = parser.parse_args(argv)

    # One image tag for both synths (the working tree's, as a deploy from here would use):
    # the diff then shows what the code changes, not that a release is a new image.
    os.environ.setdefault("IMAGE_TAG", head_revision(ROOT))
    if not args.no_synth:
        synthesize(ROOT, args.outdir, "working tree")
    head = load_stacks(args.outdir)
    if not head:
        raise ReviewInputError(f"no stacks under {args.outdir}/stacks: run the synth first")
    reviews = review_stacks(head)
    diffs = None
    if args.base:
        _sha, base_dir = base_outdir(args.base)
        base = load_stacks(base_dir)
        diffs = diff_stacks(base, head)
        for d in diffs:
            if d.stack in base:
                d.cost_before = estimate(base[d.stack]).total
            if d.stack in head:
                d.cost_after = estimate(head[d.stack]).total
    written = write(args.out, reviews, diffs, args.base)
    width = max(len(name) for name in head) + 2
    print()
    for r in reviews:
        print(r.summary_line(width))
    for r in reviews:  # a missing price never stops the review: the total is a lower bound
        for message in r.cost.missing:
            print(f"{r.stack.name}: {message}")
    if diffs is not None:
        print(f"\nagainst {args.base}:")
        for d in diffs:
            print(diff_summary_line(d))
    names = [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in written]
    print(f"\nwrote {', '.join(names)}")
    print("costs are estimates from a pinned on-demand price table (tools/review/prices.toml)")
    if args.fail_on == "risky" and diffs is not None:
        flagged = [d for d in diffs if d.risky or d.widening]
        if flagged:
            print(
                "FAIL_ON=risky: risky or widening changes in "
                + ", ".join(d.stack for d in flagged),
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
