#!/usr/bin/env python
"""CDKTF app: the bootstrap stack, one stack per platform environment, and one per seed
system environment (``metabase-dev``, ``dekart-prod``, ...).

``cdktf synth`` runs this file (see cdktf.json); tests call :func:`build_app` directly.
``SYSTEMS=metabase,dekart`` (any of ``platform`` and the system names) synthesizes only
those systems' stacks (plus bootstrap); unset, every stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cdktf import App

from constructs_lib.errors import ConfigError
from environments import ENVIRONMENTS, SYSTEM_ENVIRONMENTS
from environments.alarms import AlarmTarget
from environments.release import Release
from environments.state import StateConfig
from stacks import BootstrapStack, PlatformStack
from stacks.dekart import DekartStack
from stacks.metabase import MetabaseStack
from stacks.metaflow import MetaflowStack
from stacks.panintelligence import PanintelligenceStack
from stacks.system import SystemStack

BOOTSTRAP_STACK = "bootstrap"
PLATFORM = "platform"
SYSTEM_STACKS: dict[str, type[SystemStack]] = {
    "metabase": MetabaseStack,
    "dekart": DekartStack,
    "metaflow": MetaflowStack,
    "panintelligence": PanintelligenceStack,
}
"""Each seed system's stack class, by system name."""
SYSTEMS_VARIABLE = "SYSTEMS"


def selected_systems(environ: Mapping[str, str]) -> set[str]:
    """The systems ``SYSTEMS`` names (comma-separated), or all of them when unset."""
    known = {PLATFORM, *SYSTEM_STACKS}
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


def build_app(outdir: str | None = None, environ: Mapping[str, str] | None = None) -> App:
    """Build every stack; nothing is written until ``app.synth()``."""
    environ = os.environ if environ is None else environ
    state = StateConfig.from_environ(environ)
    release = Release.from_environ(environ)
    alarm_target = AlarmTarget.from_environ(environ)
    systems = selected_systems(environ)
    configs = [alarm_target.apply(c) for c in ENVIRONMENTS.values()] if PLATFORM in systems else []
    system_configs = [
        alarm_target.apply(c) for c in SYSTEM_ENVIRONMENTS.values() if c.system in systems
    ]
    for config in configs:  # every input is checked before any stack exists
        release.validate_for(config)
    app = App(outdir=outdir) if outdir else App()
    BootstrapStack(app, BOOTSTRAP_STACK, state=state)
    for config in configs:
        PlatformStack(app, config.name, config=config, state=state, release=release)
    for system_config in system_configs:
        SYSTEM_STACKS[system_config.system](app, config=system_config, state=state)
    return app


if __name__ == "__main__":
    build_app().synth()
