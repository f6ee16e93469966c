"""``python -m bench.review``: how long ``make review`` takes next to ``make synth``.

Prints three wall times on this machine and the two ratios the review tool is held to
(at most 1.5x): a review with a fresh synth, and a review against a base whose synth is
cached. Never fails on time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parents[1]


class StepFailedError(Exception):
    """A timed command failed: the bench names it and its last line of output."""


def timed(argv: list[str]) -> float:
    env = {
        **os.environ,
        "PCP_ALARM_EMAIL": os.environ.get("PCP_ALARM_EMAIL", "alarms@example.invalid"),
    }
    started = time.monotonic()
    proc = subprocess.run(
        argv, cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1].strip() if lines else "no output"
        name = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
        raise StepFailedError(f"`{name}` exited {proc.returncode} ({why}): run it alone to see why")
    return time.monotonic() - started


def main() -> int:
    try:
        return _bench()
    except StepFailedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _bench() -> int:
    cli = engine.CLIS[engine.ENGINE]
    synth = timed([str(ROOT / "node_modules" / ".bin" / cli), "synth"])
    review = timed([sys.executable, "-m", "tools.review"])
    timed([sys.executable, "-m", "tools.review", "--base", "HEAD"])  # fills the cache
    cached = timed([sys.executable, "-m", "tools.review", "--base", "HEAD"])
    print(f"make synth ({cli} synth): {synth:.1f} s")
    print(f"make review: {review:.1f} s ({review / synth:.2f}x synth; limit 1.5x)")
    ratio = cached / synth
    print(f"make review BASE=HEAD, base cached: {cached:.1f} s ({ratio:.2f}x synth; limit 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
