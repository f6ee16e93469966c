"""One typed configuration per environment; see :mod:`environments.config`."""

from .config import EnvironmentConfig
from .dev import CONFIG as DEV
from .prod import CONFIG as PROD
from .stage import CONFIG as STAGE
from .test import CONFIG as TEST

ENVIRONMENTS: dict[str, EnvironmentConfig] = {c.name: c for c in (DEV, TEST, STAGE, PROD)}
"""Every deployable environment by stack name, in promotion order."""

__all__ = [
    "DEV",
    "ENVIRONMENTS",
    "PROD",
    "STAGE",
    "TEST",
    "EnvironmentConfig",
]
