#!/usr/bin/env python
"""Run checkov over every synthesized stack; every failure must be justified per resource.

Usage::

    python tools/checkov_scan.py [STACKS_DIR]                 # the gate (make checkov)
    python tools/checkov_scan.py --unjustified [STACKS_DIR]   # entries to paste and edit

``STACKS_DIR`` defaults to ``cdktf.out/stacks``. Exit status: 0 when the gate passes, 1 when
a failure is unjustified or a justification is stale, 2 when the justification file is
malformed. tests/stacks/test_checkov.py runs the same gate over the test session's synthesis.

checkov runs once over all stacks, with every check on: no skip, no config file (it runs
from an empty directory with ``HOME`` there too, and the scan is refused if checkov reports
a skipped check). Each failed check is matched against ``tools/checkov-justifications.toml``,
where an entry names one check id, the construct paths it covers (the ``//`` metadata path
cdktf writes on each resource, without the stack: ``database/instance``), optionally the
stacks, and the reason. So:

* a failure no entry covers fails the gate, even when its check id is justified for other
  resources (a new resource is never hidden by an old reason);
* an entry is **stale**, and fails the gate, when one of its paths fails the check nowhere
  (the resource was fixed, renamed or removed), when it names a stack where that path does
  not fail, or when the check *passes* on a resource it covers (the entry is broader than
  the failures it explains); a failure covered by two entries is reported as well.

checkov 3.3's terraform_json parser rejects the plain-string ``terraform.required_version``
of cdk.tf.json ("this method receives only dicts"), so each stack is scanned from a copy
without that one key; every resource, provider and backend block is scanned unchanged.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
JUSTIFICATIONS = ROOT / "tools" / "checkov-justifications.toml"
CHECK_ID = re.compile(r"CKV2?_[A-Z0-9]+_\d+")
ENTRY_KEYS = frozenset({"check", "paths", "stacks", "reason"})


@dataclass(frozen=True)
class Result:
    """One check on one resource in one stack."""

    check: str
    stack: str
    path: str
    """The construct path without the stack (``database/instance``); the address when the
    block has no construct path (providers, backends)."""
    address: str
    """``type.logical_id``."""
    name: str
    """The check's title."""


@dataclass(frozen=True)
class Scan:
    stacks: tuple[str, ...]
    failed: tuple[Result, ...]
    passed: tuple[Result, ...]
    paths: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """``{stack: construct paths of its resources}``."""
    seconds: float = 0.0

    @property
    def checks(self) -> frozenset[str]:
        """The check ids that ran on at least one resource."""
        return frozenset(r.check for r in (*self.failed, *self.passed))


@dataclass(frozen=True)
class Justification:
    index: int
    """1-based position in the file, for messages."""
    check: str
    paths: tuple[str, ...]
    """Construct paths without the stack; ``fnmatch`` patterns (``*`` also crosses ``/``),
    but name each resource unless every resource the pattern matches must fail."""
    reason: str
    stacks: tuple[str, ...] = ()
    """Only in these stacks. Empty: in every stack the path fails in."""

    def covers(self, result: Result) -> bool:
        return (
            result.check == self.check
            and (not self.stacks or result.stack in self.stacks)
            and any(fnmatch.fnmatchcase(result.path, p) for p in self.paths)
        )

    def label(self) -> str:
        where = f" in {', '.join(self.stacks)}" if self.stacks else ""
        return f"entry #{self.index} {self.check} {list(self.paths)}{where}"


@dataclass(frozen=True)
class Stale:
    justification: Justification
    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.justification.label()}: {self.path}: {self.why}"


@dataclass
class Gate:
    """The verdict on one scan."""

    scan: Scan
    justified: list[tuple[Result, Justification]] = field(default_factory=list)
    unjustified: list[Result] = field(default_factory=list)
    stale: list[Stale] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unjustified and not self.stale


def load_justifications(text: str) -> list[Justification]:
    """Parse the justification file; raise ``ValueError`` naming the bad entry."""
    doc = tomllib.loads(text)
    sets: dict[str, list[str]] = doc.get("sets", {})
    out = []
    for index, entry in enumerate(doc.get("justify", []), start=1):
        where = f"justification #{index} ({entry.get('check')})"
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; use {sorted(ENTRY_KEYS)}")
        check = str(entry.get("check", ""))
        if not CHECK_ID.fullmatch(check):
            raise ValueError(f"{where}: check must be a checkov id such as CKV_AWS_18")
        paths = entry.get("paths")
        if not paths or not all(isinstance(p, str) and p.strip("*/") for p in paths):
            raise ValueError(f"{where}: paths must list construct paths (without the stack)")
        reason = str(entry.get("reason", "")).strip()
        if not reason or reason.upper().startswith("TODO"):
            raise ValueError(f"{where}: give the reason this check may fail on these paths")
        stacks = entry.get("stacks", [])
        if isinstance(stacks, str):
            if stacks not in sets:
                raise ValueError(f"{where}: no stack set {stacks!r} under [sets]")
            stacks = sets[stacks]
        out.append(
            Justification(
                index=index,
                check=check,
                paths=tuple(paths),
                reason=reason,
                stacks=tuple(stacks),
            )
        )
    return out


def judge(scan: Scan, justifications: Sequence[Justification]) -> Gate:
    """Match every failure to a justification; report the rest and the stale entries."""
    gate = Gate(scan=scan)
    for failure in scan.failed:
        covering = [j for j in justifications if j.covers(failure)]
        if not covering:
            gate.unjustified.append(failure)
            continue
        gate.justified.append((failure, covering[0]))
        for extra in covering[1:]:
            gate.stale.append(
                Stale(
                    extra,
                    failure.path,
                    f"{failure.stack}: also covered by entry #{covering[0].index}",
                )
            )
    for j in justifications:
        for pattern in j.paths:
            failed = [r for r in scan.failed if _within(j, pattern, r)]
            for r in scan.passed:
                if _within(j, pattern, r):
                    gate.stale.append(Stale(j, pattern, f"{r.stack}: passes on {r.path}"))
            if not j.stacks and not failed:
                gate.stale.append(Stale(j, pattern, "fails nowhere"))
            for stack in j.stacks:
                # Stacks outside a partial scan cannot be judged.
                if stack in scan.stacks and not any(r.stack == stack for r in failed):
                    gate.stale.append(Stale(j, pattern, f"{stack}: does not fail there"))
    return gate


def _within(j: Justification, pattern: str, r: Result) -> bool:
    """Whether ``r`` is ``j``'s check on a resource ``pattern`` names, in ``j``'s stacks."""
    return (
        r.check == j.check
        and (not j.stacks or r.stack in j.stacks)
        and fnmatch.fnmatchcase(r.path, pattern)
    )


def _paths(doc: dict[str, Any], stack: str) -> dict[str, tuple[str, str]]:
    """``{checkov's name for a block: (construct path without the stack, address)}`` for
    every resource and data source."""
    out = {}
    for kind, prefix in (("resource", ""), ("data", "data.")):
        for type_, items in doc.get(kind, {}).items():
            for logical_id, body in items.items():
                address = f"{prefix}{type_}.{logical_id}"
                path = body.get("//", {}).get("metadata", {}).get("path", "")
                entry = (path.removeprefix(f"{stack}/") or address, address)
                out[address] = entry
                if kind == "resource":
                    # Some checks report ``resource.<logical id>`` (ids are unique in a stack).
                    out[f"resource.{logical_id}"] = entry
    return out


class GateInputError(Exception):
    """What the user must fix before the gate can run (no checkov, no synth): one line."""


def run_checkov(stacks_dir: Path) -> Scan:
    """One checkov process over copies of every stack; every check on."""
    if not stacks_dir.is_dir() or not list(stacks_dir.glob("*/cdk.tf.json")):
        raise GateInputError(f"no */cdk.tf.json under {stacks_dir}: synthesize first (make synth)")
    if not CHECKOV.exists():
        raise GateInputError(f"{CHECKOV} is missing: run `make test` (it installs checkov)")
    started = time.monotonic()
    names: dict[str, dict[str, tuple[str, str]]] = {}
    with tempfile.TemporaryDirectory(prefix="checkov-") as tmp_:
        work = Path(tmp_)
        for source in sorted(stacks_dir.iterdir()):
            if not (source / "cdk.tf.json").exists():
                continue
            doc = json.loads((source / "cdk.tf.json").read_text())
            names[source.name] = _paths(doc, source.name)
            doc.get("terraform", {}).pop("required_version", None)
            (work / "stacks" / source.name).mkdir(parents=True)
            (work / "stacks" / source.name / "cdk.tf.json").write_text(json.dumps(doc, indent=1))
        # No .checkov.yaml can apply: checkov reads one from the scanned directory, the
        # working directory and HOME, and all three are this empty temporary directory.
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "HOME": str(work)}
        cmd = [str(CHECKOV), "-d", str(work / "stacks"), "-o", "json"]
        cmd += ["--framework", "terraform_json", "--skip-download", "--compact"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=work)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {proc.returncode}: {proc.stderr[-2000:]}")
    reports = json.loads(proc.stdout)
    results: dict[str, list[Result]] = {"passed": [], "failed": []}
    for report in [reports] if isinstance(reports, dict) else reports:
        summary = report.get("summary", report)
        if summary.get("parsing_errors"):
            raise RuntimeError(f"checkov could not parse: {summary}")
        if summary.get("skipped") or report.get("results", {}).get("skipped_checks"):
            raise RuntimeError(f"checkov skipped checks; the gate runs every check: {summary}")
        for kind, found in results.items():
            for check in report.get("results", {}).get(f"{kind}_checks", []):
                stack = Path(check["file_path"]).parts[-2]
                resource = check["resource"]
                path, address = names[stack].get(resource, (resource, resource))
                found.append(Result(check["check_id"], stack, path, address, check["check_name"]))
    return Scan(
        stacks=tuple(names),
        failed=tuple(results["failed"]),
        passed=tuple(results["passed"]),
        paths={s: frozenset(p for p, _ in n.values()) for s, n in names.items()},
        seconds=time.monotonic() - started,
    )


def scan(stacks_dir: Path, justifications_text: str | None = None) -> Gate:
    """Run checkov over ``stacks_dir`` and judge it (default: the repository's file)."""
    text = JUSTIFICATIONS.read_text() if justifications_text is None else justifications_text
    justifications = load_justifications(text)  # a malformed file fails before the scan
    return judge(run_checkov(stacks_dir), justifications)


def unjustified_entries(gate: Gate, sets: Mapping[str, Sequence[str]] | None = None) -> str:
    """Ready-to-edit TOML for the unjustified failures (one entry per check and path) and
    the stale entries as comments. The reasons are left empty: the file does not load
    until each is written."""
    if sets is None:
        sets = tomllib.loads(JUSTIFICATIONS.read_text()).get("sets", {})
    grouped: dict[tuple[str, str], list[Result]] = {}
    for f in gate.unjustified:
        grouped.setdefault((f.check, f.path), []).append(f)
    blocks = [f"# STALE {s}" for s in gate.stale]
    for (check, path), failures in sorted(grouped.items()):
        failing = sorted({f.stack for f in failures})
        having = sorted(s for s, paths in gate.scan.paths.items() if path in paths)
        named = [name for name, members in sets.items() if sorted(members) == failing]
        if failing == having or not having:
            stacks = ""  # fails wherever the resource exists
        elif named:
            stacks = f'stacks = "{named[0]}"\n'
        else:
            stacks = f"stacks = {json.dumps(failing)}\n"
        blocks.append(
            f"[[justify]]  # {failures[0].name} ({failures[0].address})\n"
            f'check = "{check}"\n'
            f"paths = {json.dumps([path])}\n"
            f"{stacks}"
            'reason = ""\n'
        )
    return "\n".join(blocks)


def report(gate: Gate) -> str:
    scan = gate.scan
    lines = [f"{'stack':<10} {'passed':>7} {'justified':>10} {'unjustified':>12}"]
    for stack in scan.stacks:
        passed = sum(r.stack == stack for r in scan.passed)
        justified = sum(f.stack == stack for f, _ in gate.justified)
        bad = [f for f in gate.unjustified if f.stack == stack]
        lines.append(f"{stack:<10} {passed:>7} {justified:>10} {len(bad):>12}")
        lines += [f"    UNJUSTIFIED {f.check} {f.path} ({f.address}): {f.name}" for f in bad]
    lines += [f"STALE {s}" for s in gate.stale]
    lines.append(
        f"{len(scan.checks)} checks ran, none skipped; {len(gate.justified)} failures justified"
        f" by {len({j.index for _, j in gate.justified})} entries;"
        f" checkov took {scan.seconds:.1f} s"
    )
    if not gate.ok:
        lines.append(
            "gate FAILED: fix the resource, or run `python tools/checkov_scan.py --unjustified`"
            " and add entries with their reasons to tools/checkov-justifications.toml"
        )
    return "\n".join(lines)


OPTIONS = ("--unjustified",)
USAGE = "python tools/checkov_scan.py [--unjustified] [STACKS_DIR]"


def main(argv: Sequence[str]) -> int:
    """The exit status: 0 the gate passes, 1 it fails, 2 the user must fix an input
    (one line on stderr, ``error: <message>``)."""
    args = [a for a in argv if not a.startswith("--")]
    unknown = [a for a in argv if a.startswith("--") and a not in OPTIONS]
    if unknown or len(args) > 1:
        wrong = unknown[0] if unknown else " ".join(args)
        print(f"error: unknown argument {wrong!r}: use {USAGE}", file=sys.stderr)
        return 2
    stacks_dir = Path(args[0]) if args else ROOT / "cdktf.out" / "stacks"
    try:
        justifications = load_justifications(JUSTIFICATIONS.read_text())
    except ValueError as error:  # a malformed entry, or TOML (tomllib's errors are ValueErrors)
        shown = (
            JUSTIFICATIONS.relative_to(ROOT)
            if JUSTIFICATIONS.is_relative_to(ROOT)
            else JUSTIFICATIONS
        )
        print(f"error: {shown}: {error}", file=sys.stderr)
        return 2
    try:
        gate = judge(run_checkov(stacks_dir), justifications)
    except GateInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if "--unjustified" in argv:
        print(unjustified_entries(gate) or "# nothing unjustified, nothing stale")
    else:
        print(report(gate))
    return 0 if gate.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
