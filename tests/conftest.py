"""Session fixtures for the infrastructure tests.

The AWS provider bindings take 10-15 s to load, so every stack is synthesized exactly
once per test session (``synth``), in-process, and tests read the parsed JSON. Modules
that need no synthesis (config validation, apps) never import cdktf.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

ENVIRONMENT_STACKS = ("dev", "test", "stage", "prod")
IMAGE_TAG = "0123456789ab"
"""The image tag every test synthesis deploys (as CI would pass a commit SHA)."""
REVIEW_ALARM_EMAIL = "alarms@example.invalid"
"""What ``make synth`` gives production when the shell names no alarm target."""
SYNTH_ENVIRON = {"IMAGE_TAG": IMAGE_TAG, "PCP_ALARM_EMAIL": REVIEW_ALARM_EMAIL}


@dataclass(frozen=True)
class Synth:
    """Every synthesized stack of the app, parsed."""

    outdir: Path
    stacks: dict[str, dict[str, Any]]

    def stack(self, name: str) -> dict[str, Any]:
        return self.stacks[name]

    def text(self, name: str) -> str:
        return (self.outdir / "stacks" / name / "cdk.tf.json").read_text()


def resources(stack: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    """``{logical id: config}`` of every resource of ``type_`` in ``stack``."""
    found: dict[str, dict[str, Any]] = stack.get("resource", {}).get(type_, {})
    return found


def one(stack: dict[str, Any], type_: str) -> dict[str, Any]:
    """The single resource of ``type_``; fails when there are none or several."""
    found = resources(stack, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.values()))


def named(stack: dict[str, Any], type_: str, key: str = "name") -> dict[str, dict[str, Any]]:
    """Resources of ``type_`` keyed by their ``key`` attribute (e.g. security groups by name)."""
    return {r[key]: r for r in resources(stack, type_).values()}


def logical_id(stack: dict[str, Any], type_: str, key: str, value: str) -> str:
    """The logical id of the resource of ``type_`` whose ``key`` is ``value``."""
    (found,) = [k for k, r in resources(stack, type_).items() if r.get(key) == value]
    return found


def ref(type_: str, logical_id: str, attr: str = "id") -> str:
    """The interpolation Terraform uses to refer to an attribute of a resource."""
    return f"${{{type_}.{logical_id}.{attr}}}"


def load_tool(name: str) -> Any:
    """Import ``tools/<name>.py`` (the tools are scripts, not a package)."""
    path = Path(__file__).resolve().parent.parent / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    import main  # loads the provider bindings: once per session

    outdir = tmp_path_factory.mktemp("cdktf.out")
    main.build_app(outdir=str(outdir), environ=SYNTH_ENVIRON).synth()
    stacks = {
        p.name: json.loads((p / "cdk.tf.json").read_text())
        for p in sorted((outdir / "stacks").iterdir())
    }
    return Synth(outdir=outdir, stacks=stacks)


def containers(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every container definition of the stack's task definitions, by container name."""
    out: dict[str, dict[str, Any]] = {}
    for task in resources(stack, "aws_ecs_task_definition").values():
        for container in json.loads(task["container_definitions"]):
            out[container["name"]] = container
    return out


@pytest.fixture(scope="session", params=ENVIRONMENT_STACKS)
def env_stack(request: pytest.FixtureRequest, synth: Synth) -> tuple[str, dict[str, Any]]:
    """Each environment stack in turn, as ``(name, parsed JSON)``."""
    name: str = request.param
    return name, synth.stack(name)
