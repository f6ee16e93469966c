#!/usr/bin/env python
"""CDKTF app: the bootstrap stack, one stack per platform environment, and one per seed
system environment (``metabase-dev``, ``dekart-prod``, ...).

``cdktf synth`` runs this file (see cdktf.json); tests call :func:`build_app` directly.
``SYSTEMS=metabase,dekart`` (any of ``platform`` and the system names) synthesizes only
those systems' stacks (plus bootstrap); unset, every stack.

Every input (the shell's variables, every environment's config and rules) is checked
before the CDKTF and AWS provider bindings load (13-19 s): :func:`check_inputs` imports
only the light modules (``environments``, ``constructs_lib.errors``/``options``/
``settings``), and :func:`build_stacks` imports the stacks after it. A wrong input ends
the run with one line per error, ``error: <message>``, on stderr and exit status 2; any
other exception keeps its traceback.
"""

from __future__ import annotations

import engine  # noqa: F401  # first: ENGINE=terrain makes `cdktf` CDK Terrain (engine.py)

# isort: split
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from constructs_lib.errors import ConfigError, InputsError

if TYPE_CHECKING:
    from cdktf import App

    from environments import EnvironmentConfig, SystemConfig
    from environments.release import Release
    from environments.state import StateConfig
    from stacks.system import SystemStack

BOOTSTRAP_STACK = "bootstrap"
PLATFORM = "platform"
SYSTEMS_VARIABLE = "SYSTEMS"
EXIT_CONFIG_ERROR = 2
"""The exit status of a run stopped by a wrong input."""

P = ParamSpec("P")
T = TypeVar("T")


def known_systems() -> set[str]:
    """``platform`` and every seed system's name (``metabase``, ...)."""
    from environments import SYSTEM_ENVIRONMENTS

    return {PLATFORM, *(c.system for c in SYSTEM_ENVIRONMENTS.values())}


def selected_systems(environ: Mapping[str, str]) -> set[str]:
    """The systems ``SYSTEMS`` names (comma-separated), or all of them when unset."""
    known = known_systems()
    raw = environ.get(SYSTEMS_VARIABLE, "").strip()
    if not raw:
        return known
    chosen = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = sorted(chosen - known)
    if unknown or not chosen:
        raise ConfigError(
            "app",
            SYSTEMS_VARIABLE,
            repr(raw),
            f"name systems among {', '.join(sorted(known))}, comma-separated, or unset it",
        )
    return chosen


@dataclass(frozen=True)
class Inputs:
    """What the stacks are built from, every part checked."""

    state: StateConfig
    release: Release
    configs: tuple[EnvironmentConfig, ...]
    """The platform environments to build, alarm target applied."""
    system_configs: tuple[SystemConfig, ...]
    """The seed systems' environments to build, alarm target applied."""


class _Collector:
    """Runs checks and keeps every :class:`ConfigError` instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def attempt(self, check: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``check(*args, **kwargs)``, or None after recording the error it raised."""
        try:
            return check(*args, **kwargs)
        except ConfigError as error:
            self.errors.append(error)
            return None


def check_inputs(environ: Mapping[str, str]) -> Inputs:
    """Every input the app reads, checked without the provider bindings.

    Raises :class:`InputsError` naming every wrong input. An invalid ``SYSTEMS`` checks
    every system, so its errors come with the rest. An environment file whose own values
    are wrong raises its :class:`ConfigError` as the package is imported.
    """
    from environments import ENVIRONMENTS, SYSTEM_ENVIRONMENTS
    from environments.alarms import AlarmTarget
    from environments.release import Release
    from environments.state import StateConfig

    checks = _Collector()
    state = checks.attempt(StateConfig.from_environ, environ)
    release = Release.from_environ(environ)
    alarm_target = AlarmTarget.from_environ(environ)
    systems = checks.attempt(selected_systems, environ) or known_systems()
    configs: list[EnvironmentConfig] = []
    for config in ENVIRONMENTS.values() if PLATFORM in systems else ():
        resolved = checks.attempt(alarm_target.apply, config)
        checks.attempt(release.validate_for, config)
        if resolved is not None:
            configs.append(resolved)
    system_configs: list[SystemConfig] = []
    for system_config in SYSTEM_ENVIRONMENTS.values():
        if system_config.system in systems:
            resolved_system = checks.attempt(alarm_target.apply, system_config)
            if resolved_system is not None:
                system_configs.append(resolved_system)
    if checks.errors or state is None:
        raise InputsError(checks.errors)
    return Inputs(state, release, tuple(configs), tuple(system_configs))


def system_stacks() -> dict[str, type[SystemStack]]:
    """Each seed system's stack class, by system name (loads the provider bindings)."""
    from stacks.dekart import DekartStack
    from stacks.metabase import MetabaseStack
    from stacks.metaflow import MetaflowStack
    from stacks.panintelligence import PanintelligenceStack

    return {
        "metabase": MetabaseStack,
        "dekart": DekartStack,
        "metaflow": MetaflowStack,
        "panintelligence": PanintelligenceStack,
    }


def build_stacks(inputs: Inputs, outdir: str | None = None) -> App:
    """Every stack of ``inputs``: the first import of the CDKTF and provider bindings."""
    from cdktf import App

    from stacks import BootstrapStack, PlatformStack

    classes = system_stacks()
    app = App(outdir=outdir) if outdir else App()
    BootstrapStack(app, BOOTSTRAP_STACK, state=inputs.state)
    for config in inputs.configs:
        PlatformStack(app, config.name, config=config, state=inputs.state, release=inputs.release)
    for system_config in inputs.system_configs:
        classes[system_config.system](app, config=system_config, state=inputs.state)
    return app


def build_app(outdir: str | None = None, environ: Mapping[str, str] | None = None) -> App:
    """Check every input, then build every stack; nothing is written until ``app.synth()``."""
    inputs = check_inputs(os.environ if environ is None else environ)
    return build_stacks(inputs, outdir)


def config_error_lines(error: ConfigError | InputsError) -> list[str]:
    """What the user sees: ``error: <message>``, one line per wrong input."""
    errors = error.errors if isinstance(error, InputsError) else (error,)
    return [f"error: {e}" for e in errors]


def main(environ: Mapping[str, str] | None = None) -> int:
    """``cdktf synth``'s entry point: the exit status (2 when an input is wrong)."""
    try:
        build_app(environ=environ).synth()
    except (ConfigError, InputsError) as error:
        for line in config_error_lines(error):
            print(line, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
