"""``python -m apps.producer``: read settings from the environment, then serve."""

from __future__ import annotations

import sys

from apps.common.config import ConfigError
from apps.common.logs import setup


def main() -> int:
    from apps.producer.server import serve
    from apps.producer.settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"producer: configuration error: {exc}", file=sys.stderr)
        return 2
    setup(settings.log_level)
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
