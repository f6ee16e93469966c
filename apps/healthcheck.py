"""``python -m apps.healthcheck [URL]``: exit 0 when URL answers HTTP 200, else 1 (stdlib only).

Without URL it checks ``http://127.0.0.1:$PORT/health``.

Used by the Dockerfile HEALTHCHECK and ECS container health checks.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check(url: str, timeout_s: float = 3.0) -> bool:
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - scheme checked
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: python -m apps.healthcheck [http://127.0.0.1:PORT/health]", file=sys.stderr)
        return 2
    url = argv[0] if argv else f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/health"
    return 0 if check(url) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
