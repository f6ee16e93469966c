#!/usr/bin/env python
"""Run checkov over every synthesized stack and report per stack.

Usage: ``python tools/checkov_scan.py [STACKS_DIR]`` (default ``cdktf.out/stacks``).
Exits 1 when any check fails. Used by ``make checkov`` and by tests/test_checkov.py.

Every stack is scanned with ``.checkov.yaml``; the production-tier stacks are scanned
with the skips tagged ``[non-prod]`` switched back on, so those skips are proven to be
environment policy rather than gaps.

checkov 3.3's terraform_json parser rejects the plain-string ``terraform.required_version``
of cdk.tf.json ("this method receives only dicts"), so each stack is scanned from a copy
without that one key; every resource, provider and backend block is scanned unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
CONFIG = ROOT / ".checkov.yaml"


PRODUCTION_STACKS = ("prod",)


def skips(config_text: str) -> dict[str, bool]:
    """``{check id: non_prod_only}`` from the ``skip-check`` list of ``.checkov.yaml``."""
    out: dict[str, bool] = {}
    lines = config_text.splitlines()
    for line in lines[lines.index("skip-check:") + 1 :]:
        entry = line.strip()
        if entry.startswith("- "):
            check, _, reason = entry[2:].partition("#")
            out[check.strip()] = reason.strip().startswith("[non-prod]")
    return out


def _run(tmp: Path, stacks: list[str], skip: list[str]) -> list[dict[str, Any]]:
    work = tmp / "scan"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    for stack in stacks:
        shutil.copytree(tmp / "stacks" / stack, work / stack)
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    cmd = [str(CHECKOV), "-d", str(work), "-o", "json", "--framework", "terraform_json"]
    cmd += ["--skip-download", "--skip-check", ",".join(skip)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {proc.returncode}: {proc.stderr[-2000:]}")
    reports = json.loads(proc.stdout)
    return [reports] if isinstance(reports, dict) else list(reports)


def scan(
    stacks_dir: Path, production: tuple[str, ...] = PRODUCTION_STACKS
) -> dict[str, dict[str, Any]]:
    """``{stack: {"passed": n, "failed": n, "failures": [...], "passed_ids": {...}}}``."""
    if not CHECKOV.exists():
        raise FileNotFoundError(f"{CHECKOV} is missing: run `make test` (it installs checkov)")
    skipped = skips(CONFIG.read_text())
    with tempfile.TemporaryDirectory(prefix="checkov-") as tmp_:
        tmp = Path(tmp_)
        stacks = sorted(p.name for p in stacks_dir.iterdir() if (p / "cdk.tf.json").exists())
        for stack in stacks:
            doc = json.loads((stacks_dir / stack / "cdk.tf.json").read_text())
            doc.get("terraform", {}).pop("required_version", None)
            (tmp / "stacks" / stack).mkdir(parents=True)
            (tmp / "stacks" / stack / "cdk.tf.json").write_text(json.dumps(doc, indent=2))
        strict = [s for s in stacks if s in production]
        reports = _run(tmp, [s for s in stacks if s not in strict], list(skipped))
        if strict:
            reports += _run(tmp, strict, [c for c, non_prod in skipped.items() if not non_prod])
    out: dict[str, dict[str, Any]] = {
        s: {"passed": 0, "failed": 0, "failures": [], "passed_ids": set()} for s in stacks
    }
    for report in reports:
        if report.get("summary", {}).get("parsing_errors"):
            raise RuntimeError(f"checkov could not parse: {report['summary']}")
        for kind in ("passed", "failed"):
            for check in report["results"].get(f"{kind}_checks", []):
                stack = Path(check["file_path"]).parts[-2]
                out[stack][kind] += 1
                if kind == "passed":
                    out[stack]["passed_ids"].add(check["check_id"])
                if kind == "failed":
                    out[stack]["failures"].append(
                        f"{check['check_id']} {check['resource']}: {check['check_name']}"
                    )
    return out


def main() -> int:
    stacks_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "cdktf.out" / "stacks"
    results = scan(stacks_dir)
    skipped = skips(CONFIG.read_text())
    non_prod = sum(skipped.values())
    print(f"{'stack':<10} {'passed':>7} {'failed':>7} {'checks skipped':>15}")
    for stack, r in results.items():
        n = len(skipped) - non_prod if stack in PRODUCTION_STACKS else len(skipped)
        print(f"{stack:<10} {r['passed']:>7} {r['failed']:>7} {n:>15}")
        for failure in r["failures"]:
            print(f"    FAILED {failure}")
    return 1 if any(r["failed"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
