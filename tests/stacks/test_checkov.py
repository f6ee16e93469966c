"""checkov over every synthesized stack: every failure justified per resource, none stale.

The gate (tools/checkov_scan.py) runs every checkov check and matches each failure to an
entry of tools/checkov-justifications.toml by check id, construct path and stack. These
tests run it on the session's synthesis and feed the same ``judge`` function changed scans.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, Synth


def load_scanner() -> Any:
    """Import tools/checkov_scan.py, registered (its dataclasses need their module)."""
    path = ROOT / "tools" / "checkov_scan.py"
    spec = importlib.util.spec_from_file_location("checkov_scan", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["checkov_scan"] = module
    spec.loader.exec_module(module)
    return module


scanner: Any = load_scanner()


def justifications(text: str | None = None) -> list[Any]:
    source = scanner.JUSTIFICATIONS.read_text() if text is None else text
    found: list[Any] = scanner.load_justifications(source)
    return found


@pytest.fixture(scope="session")
def gate(synth: Synth) -> Any:
    return scanner.scan(synth.outdir / "stacks")


def rejudge(gate: Any, *, failed: Any = None, passed: Any = None, extra: str = "") -> Any:
    """The gate's verdict on the session's scan with changed results or extra entries."""
    scan = dataclasses.replace(
        gate.scan,
        failed=tuple(gate.scan.failed if failed is None else failed),
        passed=tuple(gate.scan.passed if passed is None else passed),
    )
    text = scanner.JUSTIFICATIONS.read_text() + extra
    return scanner.judge(scan, justifications(text))


def real_failure(gate: Any, check: str, path: str, stack: str = "dev") -> Any:
    (found,) = [f for f in gate.scan.failed if (f.check, f.path, f.stack) == (check, path, stack)]
    return found


# --- the real stacks ----------------------------------------------------------------------


def test_synthesized_stacks_pass_the_gate(gate: Any) -> None:
    assert gate.ok, "\n" + scanner.report(gate)


def test_every_stack_scanned_with_every_check(gate: Any, synth: Synth) -> None:
    assert sorted(gate.scan.stacks) == sorted(synth.stacks)
    for stack in synth.stacks:
        assert any(r.stack == stack for r in gate.scan.passed), stack
    # run_checkov refuses a scan in which checkov skipped anything; over a hundred checks
    # apply to these resource types (123 with checkov 3.3.30).
    assert len(gate.scan.checks) > 100


def test_every_failure_resolves_to_a_construct_path(gate: Any) -> None:
    """Entries name construct paths, so every failure must have one (not an address)."""
    assert [f for f in gate.scan.failed if f.path == f.address] == []


def test_non_prod_entries_leave_prod_to_pass(gate: Any) -> None:
    """What non-prod may skip (multi-AZ, deletion protection, ALB logs) passes in prod."""
    non_prod = [j for j in justifications() if j.stacks == ("dev", "test", "stage")]
    expected = {
        ("CKV_AWS_157", "database/instance"),
        ("CKV_AWS_293", "database/instance"),
        ("CKV_AWS_150", "load-balancer/alb"),
        ("CKV_AWS_91", "load-balancer/alb"),
    }
    assert {(j.check, p) for j in non_prod for p in j.paths} == expected
    passed_in_prod = {(r.check, r.path) for r in gate.scan.passed if r.stack == "prod"}
    assert expected <= passed_in_prod


# --- a failure needs its own justification ------------------------------------------------


def test_new_resource_failing_a_justified_check_fails_the_gate(
    synth: Synth, tmp_path: Path
) -> None:
    """Real checkov on a copy of dev with one more log group (retention 7 days).

    CKV_AWS_338 is justified for the stack's other log groups; the old gate skipped the
    check id globally and passed this resource. The new one must not.
    """
    shutil.copytree(synth.outdir / "stacks" / "dev", tmp_path / "stacks" / "dev")
    stack_file = tmp_path / "stacks" / "dev" / "cdk.tf.json"
    doc = json.loads(stack_file.read_text())
    groups = doc["resource"]["aws_cloudwatch_log_group"]
    model = next(iter(groups.values()))
    groups["extra_log-group_0BAD0BAD"] = {
        "//": {"metadata": {"path": "dev/extra/log-group", "uniqueId": "extra_log-group_0BAD0BAD"}},
        "name": "/pcp/dev/extra",
        "retention_in_days": 7,
        "kms_key_id": model["kms_key_id"],
    }
    stack_file.write_text(json.dumps(doc))

    verdict = scanner.scan(tmp_path / "stacks")

    assert "CKV_AWS_338" in {j.check for j in justifications()}  # a per-id skip hid it
    assert not verdict.ok
    assert [(f.check, f.stack, f.path) for f in verdict.unjustified] == [
        ("CKV_AWS_338", "dev", "extra/log-group")
    ]
    assert verdict.unjustified[0].address == "aws_cloudwatch_log_group.extra_log-group_0BAD0BAD"
    assert "UNJUSTIFIED CKV_AWS_338 extra/log-group" in scanner.report(verdict)
    # The stack's own log groups stay justified.
    assert ("CKV_AWS_338", "producer/log-group") in {
        (f.check, f.path) for f, _ in verdict.justified
    }


@pytest.mark.parametrize(
    ("check", "path", "change"),
    [
        # another resource, same check and stack
        ("CKV_AWS_338", "producer/log-group", {"path": "producer/other-log-group"}),
        # the same resource in a stack its (non-prod) entry does not name
        ("CKV_AWS_157", "database/instance", {"stack": "prod"}),
        # another check on the same resource
        ("CKV_AWS_338", "producer/log-group", {"check": "CKV_AWS_66"}),
    ],
)
def test_justification_covers_only_its_resource(
    gate: Any, check: str, path: str, change: dict[str, str]
) -> None:
    other = dataclasses.replace(real_failure(gate, check, path), **change)
    where = (other.check, other.stack, other.path)
    passed = [r for r in gate.scan.passed if (r.check, r.stack, r.path) != where]
    verdict = rejudge(gate, failed=[*gate.scan.failed, other], passed=passed)
    assert not verdict.ok
    assert verdict.unjustified == [other]
    assert verdict.stale == []


def test_failure_without_any_entry_fails_the_gate(gate: Any) -> None:
    bad = scanner.Result("CKV_AWS_999", "dev", "extra/thing", "aws_x.extra_thing_1", "made up")
    verdict = rejudge(gate, failed=[*gate.scan.failed, bad])
    assert verdict.unjustified == [bad]
    assert not verdict.ok


# --- stale entries fail the gate ----------------------------------------------------------


def entry(check: str, paths: list[str], stacks: str = "", reason: str = "test") -> str:
    line = f"stacks = {stacks}\n" if stacks else ""
    return f'\n[[justify]]\ncheck = "{check}"\npaths = {json.dumps(paths)}\n{line}reason = "{reason}"\n'


def stale(verdict: Any) -> list[tuple[str, str, str]]:
    return [(s.justification.check, s.path, s.why) for s in verdict.stale]


def test_entry_for_a_fixed_resource_is_stale(gate: Any) -> None:
    """The migration function gets code signing: its CKV_AWS_272 entry must go."""
    failed = [
        f for f in gate.scan.failed if (f.check, f.path) != ("CKV_AWS_272", "migration/function")
    ]
    verdict = rejudge(gate, failed=failed)
    assert verdict.unjustified == []
    assert stale(verdict) == [("CKV_AWS_272", "migration/function", "fails nowhere")]
    assert not verdict.ok


def test_entry_for_a_missing_path_is_stale(gate: Any) -> None:
    verdict = rejudge(gate, extra=entry("CKV_AWS_338", ["renamed/log-group"]))
    assert stale(verdict) == [("CKV_AWS_338", "renamed/log-group", "fails nowhere")]
    assert not verdict.ok


def test_entry_covering_a_passing_resource_is_stale(gate: Any) -> None:
    """Multi-AZ passes in prod: an entry for every stack (or naming prod) is too broad."""
    verdict = rejudge(gate, extra=entry("CKV_AWS_157", ["database/instance"], '["prod"]'))
    assert stale(verdict) == [
        ("CKV_AWS_157", "database/instance", "prod: passes on database/instance"),
        ("CKV_AWS_157", "database/instance", "prod: does not fail there"),
    ]
    assert not verdict.ok


def test_pattern_covering_a_passing_resource_is_stale(gate: Any) -> None:
    """A wildcard may not reach resources on which the check passes."""
    # KMS encryption fails only on the ALB's log bucket (SSE-S3); the others pass.
    text = scanner.JUSTIFICATIONS.read_text().replace(
        'paths = ["load-balancer/access-logs/bucket"]\nreason = "ELB access-log delivery',
        'paths = ["*/bucket"]\nreason = "ELB access-log delivery',
    )
    assert '"*/bucket"' in text
    verdict = scanner.judge(gate.scan, justifications(text))
    assert verdict.unjustified == []
    assert {(s.path, s.why) for s in verdict.stale} == {
        ("*/bucket", f"{stack}: passes on {path}")
        for stack in ("dev", "test", "stage", "prod")
        for path in ("frontend/bucket/bucket",)
    } | {
        ("*/bucket", "bootstrap: passes on state-bucket/bucket"),
        ("*/bucket", "dekart-dev: passes on storage/bucket"),
        ("*/bucket", "dekart-prod: passes on storage/bucket"),
        ("*/bucket", "metaflow-dev: passes on datastore/bucket"),
        ("*/bucket", "metaflow-prod: passes on datastore/bucket"),
        ("*/bucket", "panintelligence-dev: passes on assets/bucket"),
        ("*/bucket", "panintelligence-prod: passes on assets/bucket"),
    }
    assert not verdict.ok


def test_failure_covered_twice_is_reported(gate: Any) -> None:
    verdict = rejudge(gate, extra=entry("CKV_AWS_161", ["database/*"]))
    assert {(c, p) for c, p, _ in stale(verdict)} == {("CKV_AWS_161", "database/instance")}
    assert all("also covered by entry" in why for _, _, why in stale(verdict))
    assert not verdict.ok


# --- the justification file ---------------------------------------------------------------


def test_every_entry_has_a_reason_of_its_own() -> None:
    entries = justifications()
    assert entries
    for j in entries:
        assert len(j.reason) >= 40, j.label()
    # One entry per (check, path, stacks): a second reason would be ambiguous.
    keys = [(j.check, p, j.stacks) for j in entries for p in j.paths]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (entry("CKV_AWS_18", ["a/b"], reason=""), "give the reason"),
        (entry("CKV_AWS_18", ["a/b"], reason="TODO"), "give the reason"),
        (entry("CKV_AWS_18", []), "paths must list"),
        (entry("CKV_AWS_18", ["*"]), "paths must list"),
        (entry("skip-all", ["a/b"]), "checkov id"),
        (entry("CKV_AWS_18", ["a/b"], '"nowhere"'), "no stack set"),
        (entry("CKV_AWS_18", ["a/b"]).replace("paths", "path"), "unknown keys"),
    ],
)
def test_malformed_entries_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        justifications(text)


def test_unjustified_output_is_ready_to_edit(gate: Any) -> None:
    """``--unjustified`` prints entries that, once given reasons, justify the failures."""
    # The platform's entry (dev/test/stage); the seed systems' own stays.
    platform = ("dev", "test", "stage")
    removed = [j for j in justifications() if j.check == "CKV_AWS_157" and j.stacks == platform]
    kept = [j for j in justifications() if j not in removed]
    verdict = scanner.judge(gate.scan, kept)
    assert {f.check for f in verdict.unjustified} == {"CKV_AWS_157"}
    sets = tomllib.loads(scanner.JUSTIFICATIONS.read_text())["sets"]
    printed = scanner.unjustified_entries(verdict, sets)
    assert 'stacks = "non-prod"' in printed  # fails in dev/test/stage, passes in prod
    with pytest.raises(ValueError, match="give the reason"):
        justifications(printed)
    filled = printed.replace('reason = ""', f'reason = "{removed[0].reason}"')
    again = scanner.judge(gate.scan, [*kept, *justifications(f"[sets]\n{_sets(sets)}{filled}")])
    assert again.ok, "\n" + scanner.report(again)


def _sets(sets: dict[str, list[str]]) -> str:
    return "".join(f"{name} = {json.dumps(members)}\n" for name, members in sets.items())
