"""``python -m apps.consumer``: read settings from the environment and run until SIGTERM."""

from __future__ import annotations

import sys

from apps.common.config import ConfigError
from apps.common.logs import setup


def main() -> int:
    from apps.consumer.service import Service
    from apps.consumer.settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"consumer: configuration error: {exc}", file=sys.stderr)
        return 2
    setup(settings.log_level)
    return Service(settings).run()


if __name__ == "__main__":
    sys.exit(main())
