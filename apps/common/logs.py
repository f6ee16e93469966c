"""Logging to stderr (stdout of the consumer is reserved for EMF metric lines)."""

from __future__ import annotations

import logging
import sys


def setup(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
        force=True,
    )
