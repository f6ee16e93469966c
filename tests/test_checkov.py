"""checkov over every synthesized stack: no failed check (skips live in .checkov.yaml)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Synth

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def checkov(synth: Synth) -> dict[str, dict[str, Any]]:
    spec = importlib.util.spec_from_file_location(
        "checkov_scan", ROOT / "tools" / "checkov_scan.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result: dict[str, dict[str, Any]] = module.scan(synth.outdir / "stacks")
    return result


def test_checkov_scanned_every_stack(checkov: dict[str, dict[str, Any]], synth: Synth) -> None:
    assert sorted(checkov) == sorted(synth.stacks)
    assert all(r["passed"] > 0 for r in checkov.values())


@pytest.mark.parametrize("stack", ["bootstrap", "dev", "test", "stage", "prod"])
def test_no_failed_checks(checkov: dict[str, dict[str, Any]], stack: str) -> None:
    assert checkov[stack]["failures"] == []


def test_every_skip_has_a_reason() -> None:
    lines = (ROOT / ".checkov.yaml").read_text().splitlines()
    start = lines.index("skip-check:")
    entries = [line.strip() for line in lines[start + 1 :] if line.strip().startswith("- ")]
    assert entries, "no skips listed under skip-check"
    for entry in entries:
        check, _, reason = entry[2:].partition("#")
        assert re.fullmatch(r"CKV2?_AWS_\d+", check.strip()), entry
        assert reason.strip(), f"{check.strip()} has no reason"
