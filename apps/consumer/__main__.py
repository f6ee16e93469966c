"""``python -m apps.consumer``: read settings from the environment and run until SIGTERM."""

from __future__ import annotations

import sys

from apps.common.runner import run_service


def main() -> int:
    from apps.consumer.service import Service
    from apps.consumer.settings import load_settings

    return run_service("consumer", load_settings, lambda settings: Service(settings).run())


if __name__ == "__main__":
    sys.exit(main())
