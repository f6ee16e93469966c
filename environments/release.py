"""Which image tag an environment deploys."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from constructs_lib.errors import ConfigError

from .config import EnvironmentConfig

IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
"""What ECR accepts as a tag."""
MUTABLE_TAGS = frozenset({"latest", "main", "master", "nightly", "edge"})
"""Tags that name whatever was pushed last: never deployed to production (the seed
systems pin a release in every environment)."""


def git_revision() -> str | None:
    """The checked-out commit, abbreviated to 12 characters, or None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@dataclass(frozen=True)
class Release:
    """The image tag to deploy: ``IMAGE_TAG``, or the current git commit when unset.

    CI builds and pushes ``producer`` and ``consumer`` images tagged with the commit, so
    deploying a commit deploys its own images. Repositories are immutable.
    """

    image_tag: str

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], revision: Callable[[], str | None] = git_revision
    ) -> Release:
        tag = environ.get("IMAGE_TAG") or revision() or "latest"
        return cls(tag)

    def validate_for(self, config: EnvironmentConfig) -> None:
        """Raise :class:`ConfigError` when ``config`` may not deploy this tag."""
        if not IMAGE_TAG.match(self.image_tag):
            raise ConfigError(
                config.name,
                "image_tag",
                repr(self.image_tag),
                "use letters, digits, '_', '.', '-' (at most 128; an ECR tag)",
            )
        if config.is_production and self.image_tag in MUTABLE_TAGS:
            raise ConfigError(
                config.name,
                "image_tag",
                repr(self.image_tag),
                "production deploys an immutable tag: set IMAGE_TAG to a release or git SHA",
            )
