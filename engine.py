"""Which engine builds the stacks: CDKTF (the default) or CDK Terrain (``ENGINE=terrain``).

The code imports one API, ``cdktf`` and ``cdktf_cdktf_provider_aws.*``, which strict mypy
checks. CDK Terrain (``cdktn``, ``cdktn_provider_aws.*``) is the same API under other module
names. With ``ENGINE=terrain``, importing this module puts an alias finder first on
``sys.meta_path``: every later import of ``cdktf`` or ``cdktf_cdktf_provider_aws.<x>`` gets
the ``cdktn`` / ``cdktn_provider_aws.<x>`` module itself (imported on first use, as the
provider's submodules are loaded lazily anyway). Unset or ``ENGINE=cdktf``, it does nothing.

CDK Terrain also records no creation stack on its tokens unless the shell asks for them
(``CDKTN_DISABLE_CREATION_STACK=0``): capturing a stack trace for every token was the largest
part of the Node runtime's own work while the stacks are built (:func:`runtime_defaults`).

Import it before anything that could import cdktf: ``main.py`` (first import; the CLI and
the synthesizing tools run ``main.py``) and ``tests/conftest.py`` do.
docs/decisions.md says why an alias and not a copy or a wrapper module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from types import ModuleType

from apps.common.errors import env_error

VARIABLE = "ENGINE"
CDKTF = "cdktf"
TERRAIN = "terrain"
ENGINES = (CDKTF, TERRAIN)
"""The values ``ENGINE`` takes; unset means ``cdktf``."""
TERRAIN_MODULES = {"cdktf": "cdktn", "cdktf_cdktf_provider_aws": "cdktn_provider_aws"}
"""The module (and its submodules) the code imports -> the one CDK Terrain provides."""
CLIS = {CDKTF: "cdktf", TERRAIN: "cdktn"}
"""Each engine's command-line tool (``node_modules/.bin/<name>``)."""
CREATION_STACK_VARIABLE = "CDKTN_DISABLE_CREATION_STACK"
"""CDK Terrain's switch: ``1`` (or ``true``) makes its tokens skip capturing a stack trace."""


def selected(environ: Mapping[str, str]) -> str:
    """The engine ``ENGINE`` names: ``cdktf`` when unset or empty."""
    raw = environ.get(VARIABLE, "").strip()
    if not raw:
        return CDKTF
    if raw not in ENGINES:
        raise env_error(VARIABLE, repr(raw), f"use {' or '.join(ENGINES)}, or unset it")
    return raw


def cli(environ: Mapping[str, str]) -> str:
    """The command-line tool of the engine ``ENGINE`` names (``cdktn`` for ``terrain``)."""
    return CLIS[selected(environ)]


class ModuleAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves each module named in ``targets`` (and its submodules) to the module of the
    other name: the same module object, so classes, ``isinstance`` and jsii's type registry
    see one module."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        self.targets = dict(targets)

    def target(self, name: str) -> str | None:
        """The real module behind ``name``, or None when ``name`` is not aliased."""
        top, dot, rest = name.partition(".")
        real = self.targets.get(top)
        return None if real is None else real + dot + rest

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        real = self.target(fullname)
        if real is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, loader_state=real)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(spec.loader_state)
        # The import system now sets module.__spec__ to the alias's spec: keep the real one
        # for exec_module to put back (relative imports inside the module read it).
        spec.loader_state = (spec.loader_state, module.__spec__)
        return module

    def exec_module(self, module: ModuleType) -> None:
        alias_spec = module.__spec__
        assert alias_spec is not None
        _, real_spec = alias_spec.loader_state
        module.__spec__ = real_spec


def install(environ: Mapping[str, str]) -> str:
    """Select the engine ``environ`` names; for CDK Terrain, install the alias (once).
    Returns the engine's name."""
    engine = selected(environ)
    if engine == CDKTF or any(isinstance(f, ModuleAlias) for f in sys.meta_path):
        return engine
    early = sorted(n for n in TERRAIN_MODULES if n in sys.modules)
    if early:
        raise env_error(
            VARIABLE,
            repr(engine),
            f"but {', '.join(early)} was imported before the engine module: "
            "import engine first (main.py, tests/conftest.py)",
        )
    sys.meta_path.insert(0, ModuleAlias(TERRAIN_MODULES))
    return engine


def runtime_defaults(engine: str, environ: MutableMapping[str, str]) -> None:
    """What the engine's Node runtime reads from ``environ`` (copied when jsii starts it).

    CDK Terrain: tokens skip their creation stack (a stack trace shown only when a token
    cannot be resolved) unless the shell sets ``CDKTN_DISABLE_CREATION_STACK`` itself, e.g.
    ``=0`` to debug such an error. CDKTF has no such switch; nothing is set for it.
    """
    if engine == TERRAIN:
        environ.setdefault(CREATION_STACK_VARIABLE, "1")


def _install_or_exit() -> str:
    try:
        engine = install(os.environ)
    except ValueError as error:  # a wrong ENGINE: one line, exit status 2
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(2) from None
    runtime_defaults(engine, os.environ)
    return engine


ENGINE = _install_or_exit()
"""The engine this process runs on."""
