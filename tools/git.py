"""The checked-out commit, as the release tags images (12 hex digits)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def head_revision(root: Path) -> str:
    """``git rev-parse --short=12 HEAD`` in ``root``; ``latest`` outside a git checkout."""
    out = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return out or "latest"
