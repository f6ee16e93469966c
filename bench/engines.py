"""``python -m bench.engines``: ``make synth`` under each engine against its own import floor.

Per round, interleaved (CDKTF synth, CDK Terrain synth, CDKTF floor, CDK Terrain floor), so
both engines see the same load on a shared machine. ``make synth`` is the real target (all
stacks, ``python -O``); the import floor is ``python -O`` importing ``main`` and every module of
``stacks`` (so the engine and every binding the app uses), with no construct built and nothing
written. Prints medians and each
engine's synth against its floor and against the other's synth. Never fails on time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("BENCH_SYNTH_ROUNDS", "3"))
ENGINES = {"cdktf": "CDKTF", "terrain": "CDK Terrain"}
PYTHON = str(ROOT / ".venv" / "bin" / "python")
IMPORT_FLOOR = (
    "import importlib, pkgutil, main, stacks\n"
    "for m in pkgutil.iter_modules(stacks.__path__): importlib.import_module('stacks.' + m.name)"
)


def timed(argv: list[str], engine: str) -> float:
    env = {**os.environ, "ENGINE": engine}
    env.setdefault("PCP_ALARM_EMAIL", "alarms@example.invalid")
    env.pop("SYSTEMS", None)
    env.pop("MAKEFLAGS", None)  # run `make synth` as a shell would, not as a sub-make
    started = time.monotonic()
    subprocess.run(
        argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.monotonic() - started


def main() -> int:
    synth: dict[str, list[float]] = {name: [] for name in ENGINES}
    floor: dict[str, list[float]] = {name: [] for name in ENGINES}
    timed(["make", "-s", "synth"], "cdktf")  # installs what is missing, compiles the -O bytecode
    for _ in range(ROUNDS):
        for name in ENGINES:
            synth[name].append(timed(["make", "-s", "synth"], name))
        for name in ENGINES:
            floor[name].append(timed([PYTHON, "-O", "-c", IMPORT_FLOOR], name))
    median = {name: statistics.median(synth[name]) for name in ENGINES}
    print(f"make synth per engine, {ROUNDS} interleaved rounds (median; all runs)")
    for name, label in ENGINES.items():
        runs = ", ".join(f"{t:.1f}" for t in synth[name])
        floors = ", ".join(f"{t:.1f}" for t in floor[name])
        base = statistics.median(floor[name])
        print(
            f"  {label:11} (ENGINE={name}): synth {median[name]:5.1f} s ({runs}); "
            f"import floor {base:4.1f} s ({floors}); synth / floor {median[name] / base:.2f}x"
        )
    ratio = median["terrain"] / median["cdktf"]
    print(f"  CDK Terrain / CDKTF make synth: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
