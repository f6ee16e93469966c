"""``python -m apps.producer``: read settings from the environment, then serve."""

from __future__ import annotations

import sys

from apps.common.runner import run_service


def main() -> int:
    from apps.producer.server import serve
    from apps.producer.settings import ProducerSettings, load_settings

    def run(settings: ProducerSettings) -> int:
        serve(settings)
        return 0

    return run_service("producer", load_settings, run)


if __name__ == "__main__":
    sys.exit(main())
