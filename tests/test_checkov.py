"""checkov over every synthesized stack: no failed check (skips live in .checkov.yaml)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Synth, load_tool

ROOT = Path(__file__).resolve().parent.parent


def load_scanner() -> Any:
    return load_tool("checkov_scan")


@pytest.fixture(scope="session")
def checkov(synth: Synth) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = load_scanner().scan(synth.outdir / "stacks")
    return result


def test_checkov_scanned_every_stack(checkov: dict[str, dict[str, Any]], synth: Synth) -> None:
    assert sorted(checkov) == sorted(synth.stacks)
    assert all(r["passed"] > 0 for r in checkov.values())


@pytest.mark.parametrize("stack", ["bootstrap", "dev", "test", "stage", "prod"])
def test_no_failed_checks(checkov: dict[str, dict[str, Any]], stack: str) -> None:
    assert checkov[stack]["failures"] == []


def test_non_prod_skips_pass_in_prod(checkov: dict[str, dict[str, Any]]) -> None:
    """Skips tagged [non-prod] are environment policy: prod is scanned without them."""
    tagged = load_scanner().skips((ROOT / ".checkov.yaml").read_text())
    non_prod = {check for check, is_non_prod in tagged.items() if is_non_prod}
    assert non_prod >= {"CKV_AWS_157", "CKV_AWS_293"}
    assert non_prod <= checkov["prod"]["passed_ids"]
    assert not non_prod & checkov["dev"]["passed_ids"]


def test_every_skip_has_a_reason() -> None:
    lines = (ROOT / ".checkov.yaml").read_text().splitlines()
    start = lines.index("skip-check:")
    entries = [line.strip() for line in lines[start + 1 :] if line.strip().startswith("- ")]
    assert entries, "no skips listed under skip-check"
    for entry in entries:
        check, _, reason = entry[2:].partition("#")
        assert re.fullmatch(r"CKV2?_AWS_\d+", check.strip()), entry
        assert reason.strip(), f"{check.strip()} has no reason"
