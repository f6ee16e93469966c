"""Where Terraform keeps the state of every environment stack."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from constructs_lib.errors import ConfigError

from .config import DEFAULT_REGION

DEFAULT_STATE_BUCKET = "pcp-terraform-state"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class StateConfig:
    """The remote-state bucket the bootstrap stack creates and every environment uses."""

    bucket: str = DEFAULT_STATE_BUCKET
    """Globally unique S3 bucket name. Unset: ``pcp-terraform-state`` (set
    ``TF_STATE_BUCKET`` to your own name before the first deploy)."""
    region: str = DEFAULT_REGION
    """Region of the bucket. Unset: eu-central-1."""

    def __post_init__(self) -> None:
        if not _BUCKET_RE.match(self.bucket) or ".." in self.bucket:
            raise ConfigError(
                "state",
                "bucket",
                repr(self.bucket),
                "use 3-63 lower-case letters, digits, dots and hyphens (an S3 bucket name)",
            )

    def key(self, environment: str) -> str:
        """The state object of one environment: ``<environment>/terraform.tfstate``."""
        return f"{environment}/terraform.tfstate"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> StateConfig:
        """Read ``TF_STATE_BUCKET`` and ``TF_STATE_REGION``, each optional."""
        return cls(
            bucket=environ.get("TF_STATE_BUCKET") or DEFAULT_STATE_BUCKET,
            region=environ.get("TF_STATE_REGION") or DEFAULT_REGION,
        )
