"""One typed configuration per environment; see :mod:`environments.config`."""

from . import dekart, metabase, metaflow, panintelligence
from .config import EnvironmentConfig
from .dev import CONFIG as DEV
from .prod import CONFIG as PROD
from .stage import CONFIG as STAGE
from .systems import SystemConfig
from .test import CONFIG as TEST

ENVIRONMENTS: dict[str, EnvironmentConfig] = {c.name: c for c in (DEV, TEST, STAGE, PROD)}
"""Every deployable environment by stack name, in promotion order."""

SYSTEM_ENVIRONMENTS: dict[str, SystemConfig] = {
    **metabase.ENVIRONMENTS,
    **dekart.ENVIRONMENTS,
    **metaflow.ENVIRONMENTS,
    **panintelligence.ENVIRONMENTS,
}
"""The seed systems' environments by stack name (``metabase-dev``, ...)."""

__all__ = [
    "DEV",
    "ENVIRONMENTS",
    "PROD",
    "STAGE",
    "SYSTEM_ENVIRONMENTS",
    "TEST",
    "EnvironmentConfig",
    "SystemConfig",
]
