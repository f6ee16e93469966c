"""Git facts about a checkout: the commit images are tagged with (12 hex digits), and
whether the working tree differs from it."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def head_revision(root: Path) -> str:
    """``git rev-parse --short=12 HEAD`` in ``root``; ``latest`` outside a git checkout."""
    return _git(root, "rev-parse", "--short=12", "HEAD").stdout.strip() or "latest"


def has_uncommitted_changes(root: Path) -> bool:
    """Tracked files differ from HEAD in ``root`` (False outside a git checkout)."""
    out = _git(root, "status", "--porcelain", "--untracked-files=no")
    return out.returncode == 0 and bool(out.stdout.strip())
