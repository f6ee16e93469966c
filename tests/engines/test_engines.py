"""The two engines (engine.py): the alias rule, the ENGINE variable, and the proof that CDKTF
and CDK Terrain synthesize the same stacks.

``engines`` runs the app (``main.py``, as ``make synth`` does) once per engine per session, in
child processes (each engine loads its own bindings; the session's own engine is irrelevant).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

import engine
from tests.support import ROOT, SYNTH_ENVIRON

CHILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class EngineSynth:
    """One engine's synthesis: its stacks, parsed, and what the child process had loaded."""

    outdir: Path
    stacks: dict[str, dict[str, Any]]
    loaded: dict[str, str]

    def files(self) -> dict[str, bytes]:
        """Every file written but the stacks and the manifest (assets: Lambda packages, ...)."""
        skip = {"cdk.tf.json", "manifest.json"}
        return {
            str(p.relative_to(self.outdir)): p.read_bytes()
            for p in sorted(self.outdir.rglob("*"))
            if p.is_file() and p.name not in skip
        }


# Runs main.py as `python main.py` does (it ends with sys.exit), then reports which modules `cdktf` and the provider
# package really were in that process.
CHILD = """
import json, runpy, sys
try:
    runpy.run_path("main.py", run_name="__main__")
except SystemExit as stop:
    if stop.code not in (None, 0):
        raise
print(json.dumps({name: sys.modules[name].__name__
                  for name in ("cdktf", "cdktf_cdktf_provider_aws")}))
"""


def child_env(name: str, outdir: Path) -> dict[str, str]:
    env = {**os.environ, **SYNTH_ENVIRON, "CDKTF_OUTDIR": str(outdir), engine.VARIABLE: name}
    env.pop("SYSTEMS", None)
    return env


def without_metadata(value: Any) -> Any:
    """``value`` without any ``//`` key (the engine's metadata), at every depth."""
    if isinstance(value, dict):
        return {k: without_metadata(v) for k, v in value.items() if k != "//"}
    if isinstance(value, list):
        return [without_metadata(v) for v in value]
    return value


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, EngineSynth]:
    """Both engines' synthesis of the whole app, side by side (two child processes)."""
    children = {}
    for name in engine.ENGINES:
        outdir = tmp_path_factory.mktemp(f"{name}.out")
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=ROOT,
            env=child_env(name, outdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        children[name] = (proc, outdir)
    result = {}
    for name, (proc, outdir) in children.items():
        out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
        assert proc.returncode == 0, f"{name} synth failed:\n{err[-4000:]}"
        stacks = {
            p.name: json.loads((p / "cdk.tf.json").read_text())
            for p in sorted((outdir / "stacks").iterdir())
        }
        loaded = json.loads(out.splitlines()[-1])
        result[name] = EngineSynth(outdir=outdir, stacks=stacks, loaded=loaded)
    return result


# --- the same stacks -----------------------------------------------------------------------


def test_both_engines_write_the_same_stacks(engines: dict[str, EngineSynth]) -> None:
    """The same keys in the same order with the same values; only the text of empty lists and
    objects differs (CDKTF writes them over two lines), which JSON readers never see."""
    cdktf, terrain = engines[engine.CDKTF].stacks, engines[engine.TERRAIN].stacks
    assert sorted(cdktf) == sorted(terrain)
    assert len(cdktf) >= 13

    def text(stack: dict[str, Any]) -> str:
        return json.dumps(without_metadata(stack), indent=1)  # keeps the written key order

    different = [name for name in cdktf if text(cdktf[name]) != text(terrain[name])]
    assert not different, f"stacks that differ apart from // metadata: {different}"


def test_both_engines_write_the_same_assets(engines: dict[str, EngineSynth]) -> None:
    cdktf, terrain = engines[engine.CDKTF].files(), engines[engine.TERRAIN].files()
    assert cdktf, "no assets written"
    assert sorted(cdktf) == sorted(terrain)
    different = [path for path in cdktf if cdktf[path] != terrain[path]]
    assert not different, f"assets that differ: {different}"


def test_both_engines_pin_the_same_aws_provider(engines: dict[str, EngineSynth]) -> None:
    for synth in engines.values():
        for stack in synth.stacks.values():
            aws = stack["terraform"]["required_providers"]["aws"]
            assert aws == {"source": "hashicorp/aws", "version": "~> 6.25.0"}


def test_terrain_runs_on_cdk_terrain(engines: dict[str, EngineSynth]) -> None:
    assert engines[engine.TERRAIN].loaded == {
        "cdktf": "cdktn",
        "cdktf_cdktf_provider_aws": "cdktn_provider_aws",
    }
    assert engines[engine.CDKTF].loaded == {
        "cdktf": "cdktf",
        "cdktf_cdktf_provider_aws": "cdktf_cdktf_provider_aws",
    }


def test_each_engine_stamps_its_own_version(engines: dict[str, EngineSynth]) -> None:
    for name, package in ((engine.CDKTF, "cdktf"), (engine.TERRAIN, "cdktn")):
        for stack in engines[name].stacks.values():
            assert stack["//"]["metadata"]["version"] == version(package)


# --- the ENGINE variable -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "cdktf"),
        ({"ENGINE": ""}, "cdktf"),
        ({"ENGINE": "cdktf"}, "cdktf"),
        ({"ENGINE": "terrain"}, "terrain"),
        ({"ENGINE": " terrain "}, "terrain"),
    ],
)
def test_engine_variable_selects(environ: dict[str, str], expected: str) -> None:
    assert engine.selected(environ) == expected


def test_unknown_engine_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"environment\.ENGINE: got 'cdk', use cdktf or terrain"):
        engine.selected({"ENGINE": "cdk"})


def python_child(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in the project, with ``env``; its output captured."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unknown_engine_stops_the_app_with_one_line() -> None:
    result = python_child("import main", {**os.environ, "ENGINE": "terraform"})
    assert result.returncode == 2
    assert result.stderr == (
        "error: environment.ENGINE: got 'terraform', use cdktf or terrain, or unset it\n"
    )


def test_terrain_refuses_a_cdktf_imported_before_it() -> None:
    code = "import cdktf, engine"  # the real cdktf first, then ENGINE=terrain
    result = python_child(code, {**os.environ, "ENGINE": "terrain"})
    assert result.returncode == 2
    assert "but cdktf was imported before the engine module: import engine first" in result.stderr


# --- the alias ------------------------------------------------------------------------------


@pytest.fixture
def json_as_old_name() -> Iterator[engine.ModuleAlias]:
    """``oldjson`` (and its submodules) aliased to the standard library's ``json``."""
    alias = engine.ModuleAlias({"oldjson": "json"})
    sys.meta_path.insert(0, alias)
    yield alias
    sys.meta_path.remove(alias)
    for name in [n for n in sys.modules if n.partition(".")[0] == "oldjson"]:
        del sys.modules[name]


@pytest.mark.usefixtures("json_as_old_name")
def test_alias_gives_the_real_module_and_its_submodules() -> None:
    import json.decoder

    assert importlib.import_module("oldjson") is json
    assert importlib.import_module("oldjson.decoder") is json.decoder
    from oldjson.decoder import JSONDecoder  # type: ignore[import-not-found]

    assert JSONDecoder is json.decoder.JSONDecoder


@pytest.mark.usefixtures("json_as_old_name")
def test_alias_leaves_the_real_module_as_it_was() -> None:
    spec = json.__spec__
    importlib.import_module("oldjson")
    assert json.__spec__ is spec
    assert json.__name__ == "json"


def test_alias_maps_names_by_their_first_part(json_as_old_name: engine.ModuleAlias) -> None:
    assert json_as_old_name.target("oldjson.scanner") == "json.scanner"
    assert json_as_old_name.target("oldjsonx") is None
    assert json_as_old_name.target("json") is None


# --- the runtime's defaults -----------------------------------------------------------------


def test_terrain_tokens_skip_their_creation_stack_by_default() -> None:
    environ: dict[str, str] = {}
    engine.runtime_defaults(engine.TERRAIN, environ)
    assert environ == {engine.CREATION_STACK_VARIABLE: "1"}


def test_terrain_keeps_the_shells_creation_stack_choice() -> None:
    environ = {engine.CREATION_STACK_VARIABLE: "0"}
    engine.runtime_defaults(engine.TERRAIN, environ)
    assert environ == {engine.CREATION_STACK_VARIABLE: "0"}


def test_cdktf_runtime_gets_no_terrain_setting() -> None:
    environ: dict[str, str] = {}
    engine.runtime_defaults(engine.CDKTF, environ)
    assert environ == {}


# A token made by the runtime, and the length of the stack trace it recorded.
CREATION_STACK_CHILD = """
import engine, cdktf
token = cdktf.Tokenization.reverse_string(cdktf.Fn.upper("x")).first_token
print(len(token.creation_stack))
"""


@pytest.mark.parametrize(("shell", "recorded"), [(None, False), ("0", True)])
def test_terrain_runtime_honours_the_creation_stack_setting(
    shell: str | None, recorded: bool
) -> None:
    env = {**os.environ, engine.VARIABLE: engine.TERRAIN}
    env.pop(engine.CREATION_STACK_VARIABLE, None)
    if shell is not None:
        env[engine.CREATION_STACK_VARIABLE] = shell
    result = python_child(CREATION_STACK_CHILD, env)
    assert result.returncode == 0, result.stderr
    assert (int(result.stdout.split()[-1]) > 0) is recorded
