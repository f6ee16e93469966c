#!/usr/bin/env python
"""Run checkov once over every synthesized stack and report per stack.

Usage: ``python tools/checkov_scan.py [STACKS_DIR]`` (default ``cdktf.out/stacks``).
Exits 1 when any check fails. Used by ``make checkov`` and by tests/test_checkov.py.

checkov 3.3's terraform_json parser rejects the plain-string ``terraform.required_version``
of cdk.tf.json ("this method receives only dicts"), so each stack is scanned from a copy
without that one key; every resource, provider and backend block is scanned unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
CONFIG = ROOT / ".checkov.yaml"


def scan(stacks_dir: Path) -> dict[str, dict[str, Any]]:
    """``{stack: {"passed": n, "failed": n, "skipped": n, "failures": [...]}}``."""
    if not CHECKOV.exists():
        raise FileNotFoundError(f"{CHECKOV} is missing: run `make test` (it installs checkov)")
    with tempfile.TemporaryDirectory(prefix="checkov-") as tmp:
        stacks = sorted(p.name for p in stacks_dir.iterdir() if (p / "cdk.tf.json").exists())
        for stack in stacks:
            doc = json.loads((stacks_dir / stack / "cdk.tf.json").read_text())
            doc.get("terraform", {}).pop("required_version", None)
            (Path(tmp) / stack).mkdir()
            (Path(tmp) / stack / "cdk.tf.json").write_text(json.dumps(doc, indent=2))
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": ""}
        proc = subprocess.run(
            [str(CHECKOV), "--config-file", str(CONFIG), "-d", tmp, "-o", "json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"checkov exited {proc.returncode}: {proc.stderr[-2000:]}")
        reports = json.loads(proc.stdout)
    if isinstance(reports, dict):
        reports = [reports]
    out: dict[str, dict[str, Any]] = {
        s: {"passed": 0, "failed": 0, "skipped": 0, "failures": []} for s in stacks
    }
    for report in reports:
        if report.get("summary", {}).get("parsing_errors"):
            raise RuntimeError(f"checkov could not parse: {report['summary']}")
        for kind in ("passed", "failed", "skipped"):
            for check in report["results"].get(f"{kind}_checks", []):
                stack = Path(check["file_path"]).parts[-2]
                out[stack][kind] += 1
                if kind == "failed":
                    out[stack]["failures"].append(
                        f"{check['check_id']} {check['resource']}: {check['check_name']}"
                    )
    return out


def main() -> int:
    stacks_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "cdktf.out" / "stacks"
    results = scan(stacks_dir)
    print(f"{'stack':<10} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for stack, r in results.items():
        print(f"{stack:<10} {r['passed']:>7} {r['failed']:>7} {r['skipped']:>8}")
        for failure in r["failures"]:
            print(f"    FAILED {failure}")
    return 1 if any(r["failed"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
