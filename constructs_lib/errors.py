"""The one error type raised for a wrong configuration value (shared with the apps), and the
error that reports several of them at once."""

from __future__ import annotations

from collections.abc import Sequence

from apps.common.errors import ConfigError

__all__ = ["ConfigError", "InputsError"]


class InputsError(ValueError):
    """Every wrong input of one run, each a :class:`ConfigError`, reported together (one
    line each) so a user fixes them all in one go rather than one per run."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(error) for error in self.errors))
