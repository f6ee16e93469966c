"""The Node under every make target: a supported LTS (22.19 or newer), with nothing silenced.

Each test runs make as a shell would (no project Node on PATH, no jsii silencing variables in
the environment), so what it sees is what the Makefile chose.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.support import ROOT

SILENCING = (
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION",
)


def shell_env() -> dict[str, str]:
    """The environment of a fresh shell: no make variables, no project Node first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in {*SILENCING, "MAKEFLAGS", "MFLAGS"}}
    env.pop("MAKELEVEL", None)
    project_bin = str(ROOT / "node_modules" / ".bin")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != project_bin)
    return env


def in_make(recipe: str) -> subprocess.CompletedProcess[str]:
    """Run ``recipe`` as a recipe of the project's Makefile."""
    return subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", f"probe: ; @{recipe}", "probe"],
        cwd=ROOT,
        env=shell_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_runs_node_22_19_or_newer() -> None:
    result = in_make("node --version")
    assert result.returncode == 0, result.stderr
    found = re.fullmatch(r"v(\d+)\.(\d+)\.\d+\n", result.stdout)
    assert found, result.stdout
    assert (int(found[1]), int(found[2])) >= (22, 19)


def test_make_silences_no_node_warning() -> None:
    for name in SILENCING:
        result = in_make(f'echo "[$${{{name}-}}]"')
        assert result.returncode == 0, result.stderr
        assert result.stdout == "[]\n", name


def test_jsii_runtime_under_make_warns_of_nothing(tmp_path: Path) -> None:
    """The bindings' runtime starts on make's Node and prints no end-of-life warning."""
    code = f"import cdktf; cdktf.App(outdir='{tmp_path}')"
    result = in_make(f'.venv/bin/python -c "{code}"')
    assert result.returncode == 0, result.stderr
    assert "end-of-life" not in result.stderr
    assert "not supported" not in result.stderr
