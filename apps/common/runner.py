"""The one start-up path of ``python -m apps.producer`` and ``python -m apps.consumer``:
read the settings from the environment, set up logging, then run until stopped."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

from apps.common.errors import ConfigError
from apps.common.logs import setup


class ServiceSettings(Protocol):
    @property
    def log_level(self) -> str: ...


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def run_service(
    service: str, load_settings: Callable[[], SettingsT], run: Callable[[SettingsT], int]
) -> int:
    """The process exit code: ``run``'s, or 2 when the configuration is invalid."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"{service}: configuration error: {exc}", file=sys.stderr)
        return 2
    setup(settings.log_level, service)
    return run(settings)
