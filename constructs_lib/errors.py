"""The one error type raised for a wrong configuration value (shared with the apps)."""

from apps.common.errors import ConfigError

__all__ = ["ConfigError"]
