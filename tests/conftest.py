"""Session fixtures for the infrastructure tests (the helpers they use are in support.py).

The AWS provider bindings take 10-15 s to load, so every stack is synthesized exactly
once per test session (``synth``), in-process, and tests read the parsed JSON. Modules
that need no synthesis (config validation, apps) never import cdktf. Construct unit
tests build into a small stack of their own (``unit_stack``). ``ENGINE=terrain`` runs them
on CDK Terrain (engine.py).
"""

from __future__ import annotations

import engine  # noqa: F401  # first: ENGINE=terrain makes `cdktf` CDK Terrain (engine.py)

# isort: split
from typing import Any

import pytest

from tests.support import (
    ENVIRONMENT_STACKS,
    EnvStack,
    Synth,
    UnitStack,
    new_unit_stack,
    synth_app,
    variant_stage,
    variant_systems,
)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The whole app, synthesized once per session."""
    return synth_app(tmp_path_factory.mktemp("cdktf.out"))


@pytest.fixture(scope="session", params=ENVIRONMENT_STACKS)
def env_stack(request: pytest.FixtureRequest, synth: Synth) -> EnvStack:
    """Each environment stack in turn, as ``(name, parsed JSON)``."""
    name: str = request.param
    return name, synth.stack(name)


@pytest.fixture(scope="session")
def stage_variant() -> dict[str, Any]:
    """``stage`` with what no shipped environment turns on (a custom domain, a sharded
    queue), synthesized once per session for the tests of those switches."""
    return variant_stage()


@pytest.fixture(scope="session")
def system_variants() -> dict[str, dict[str, Any]]:
    """Seed-system stacks with the switches no shipped environment turns on (hardened
    Panintelligence, data sources, a moved target group), synthesized once per session."""
    return variant_systems()


@pytest.fixture
def unit_stack() -> UnitStack:
    """A fresh small stack (AWS provider included) for one construct unit test."""
    return new_unit_stack()
