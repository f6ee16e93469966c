"""``make review`` end to end on the session's synth (no new synth): outputs, the terminal
summary, and FAIL_ON=risky against a base that differs by one opened port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, Synth
from tools.review import __main__ as cli


def test_review_writes_the_page_and_prints_one_line_per_stack(
    synth: Synth, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "review"
    assert cli.main(["--no-synth", "--outdir", str(synth.outdir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    for name in ("bootstrap", "dev", "test", "stage", "prod"):
        assert any(line.startswith(f"{name} ") and "/month" in line for line in printed), name
        assert (out / f"{name}.md").is_file()
    assert (out / "index.html").is_file()
    assert "estimate" in " ".join(printed)


@pytest.fixture
def base_with_a_closed_port(synth: Synth, tmp_path: Path) -> Path:
    """A copy of the synth as the base, where the ALB -> producer rule had another port: the
    working tree then 'opens' 5080."""
    base = tmp_path / "base"
    shutil.copytree(synth.outdir, base)
    file = base / "stacks" / "prod" / "cdk.tf.json"
    doc = json.loads(file.read_text())
    rules = doc["resource"]["aws_vpc_security_group_ingress_rule"]
    rule = next(v for k, v in rules.items() if k.startswith("producer_ingress"))
    rule["from_port"] = rule["to_port"] = 8443
    file.write_text(json.dumps(doc))
    return base


def test_fail_on_risky_exits_1_on_a_widening(
    synth: Synth, tmp_path: Path, base_with_a_closed_port: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "base_outdir", lambda ref: ("0" * 40, base_with_a_closed_port))
    args = [
        "--no-synth",
        "--outdir",
        str(synth.outdir),
        "--out",
        str(tmp_path / "r"),
        "--base",
        "main",
    ]
    assert cli.main(args) == 0  # reported, not failed, without FAIL_ON
    assert cli.main([*args, "--fail-on", "risky"]) == 1
    diff = (tmp_path / "r" / "diff.md").read_text()
    assert "new ingress: load-balancer/alb -> producer/service on tcp/5080" in diff
    assert "prod      1 changed" in diff


@pytest.fixture
def prod_on_an_unknown_class(synth: Synth, tmp_path: Path) -> Path:
    """A copy of the synth where prod's database is on a class the price table lacks."""
    outdir = tmp_path / "cdktf.out"
    shutil.copytree(synth.outdir, outdir)
    file = outdir / "stacks" / "prod" / "cdk.tf.json"
    doc = json.loads(file.read_text())
    (db,) = doc["resource"]["aws_db_instance"].values()
    db["instance_class"] = "db.x9.large"
    file.write_text(json.dumps(doc))
    return outdir


def test_a_missing_price_never_stops_the_review(
    prod_on_an_unknown_class: Path,
    base_with_a_closed_port: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ["--no-synth", "--outdir", str(prod_on_an_unknown_class), "--out", str(tmp_path / "r")]
    assert cli.main(args) == 0
    out = capsys.readouterr()
    printed = out.out.splitlines()
    assert "prod: no price for db.x9.large in eu-central-1: add it to tools/review/prices.toml" in (
        printed
    )
    (prod,) = [line for line in printed if line.startswith("prod ")]
    assert "at least $" in prod
    assert not [line for line in printed if "at least" in line and not line.startswith("prod")]
    assert "Traceback" not in out.out + out.err
    assert "## Monthly cost: at least $" in (tmp_path / "r" / "prod.md").read_text()
    # FAIL_ON is unaffected: no verdict without a risky change, the same verdict with one.
    monkeypatch.setattr(cli, "base_outdir", lambda ref: ("0" * 40, prod_on_an_unknown_class))
    assert cli.main([*args, "--base", "main", "--fail-on", "risky"]) == 0
    monkeypatch.setattr(cli, "base_outdir", lambda ref: ("0" * 40, base_with_a_closed_port))
    assert cli.main([*args, "--base", "main", "--fail-on", "risky"]) == 1


def test_a_wrong_input_to_the_synth_is_one_line(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGE_TAG", "PCP_"))}
    argv = ["--outdir", str(tmp_path / "o"), "--out", str(tmp_path / "r")]
    run = subprocess.run(
        [sys.executable, "-m", "tools.review", *argv],
        cwd=ROOT,
        env={**environ, "IMAGE_TAG": "latest"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in run.stdout + run.stderr
    assert run.stderr.splitlines() == [
        "error: synth working tree: prod.image_tag: got 'latest', production deploys an "
        "immutable tag: set IMAGE_TAG to a release or git SHA"
    ]
    assert run.returncode == 2


def test_no_stacks_to_review_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--no-synth", "--outdir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (
        f"error: no stacks under {tmp_path}/stacks: run the synth first\n"
    )


def test_a_base_that_is_not_a_commit_is_one_line(
    synth: Synth, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--no-synth", "--outdir", str(synth.outdir), "--out", str(tmp_path / "r")]
    assert cli.main([*args, "--base", "no-such-ref"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --base 'no-such-ref' is not a commit in this repository\n"


def test_a_wrong_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--no-synth", "--fail-on", "everything"]) == 2
    assert capsys.readouterr().err == (
        "error: argument --fail-on: invalid choice: 'everything' (choose from 'risky')\n"
    )
