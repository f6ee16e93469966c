#!/usr/bin/env python
"""CDKTF app: the bootstrap stack plus one stack per environment.

``cdktf synth`` runs this file (see cdktf.json); tests call :func:`build_app` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cdktf import App

from environments import ENVIRONMENTS
from environments.alarms import AlarmTarget
from environments.release import Release
from environments.state import StateConfig
from stacks import BootstrapStack, PlatformStack

BOOTSTRAP_STACK = "bootstrap"


def build_app(outdir: str | None = None, environ: Mapping[str, str] | None = None) -> App:
    """Build every stack; nothing is written until ``app.synth()``."""
    environ = os.environ if environ is None else environ
    state = StateConfig.from_environ(environ)
    release = Release.from_environ(environ)
    alarm_target = AlarmTarget.from_environ(environ)
    configs = [alarm_target.apply(config) for config in ENVIRONMENTS.values()]
    for config in configs:  # every input is checked before any stack exists
        release.validate_for(config)
    app = App(outdir=outdir) if outdir else App()
    BootstrapStack(app, BOOTSTRAP_STACK, state=state)
    for config in configs:
        PlatformStack(app, config.name, config=config, state=state, release=release)
    return app


if __name__ == "__main__":
    build_app().synth()
