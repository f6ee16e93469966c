"""AWS Lambda entry point ``apps/assetloader/handler.py:handler``
(``apps.assetloader.handler.handler``): copies the assets from S3 onto the mounted file
system once; see :mod:`apps.assetloader` for the environment, the event and the answer.

boto3 comes from the Lambda runtime and is imported lazily; its endpoint and credentials are
the function role's (``AWS_ENDPOINT_URL`` points it elsewhere, as the tests do).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from apps.assetloader.loader import load_assets, load_settings, parse_event
from apps.common.config import Env

LOCK_WAIT_MARGIN_S = 30.0
"""Time kept back from the function's remaining time when waiting for the lock, so a run
that cannot get it fails with its own error rather than a timeout."""


def lock_wait_s(configured: float, context: Any) -> float:
    """How long to wait for the lock: ``configured``, capped by the remaining time."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return configured
    left = float(remaining()) / 1000.0 - LOCK_WAIT_MARGIN_S
    return max(0.0, min(configured, left))


def handler(event: Any, context: Any) -> dict[str, Any]:
    import boto3  # provided by the Lambda runtime

    settings = load_settings(Env(os.environ))
    request = parse_event(event)
    request_id = getattr(context, "aws_request_id", None)
    owner = f"request {request_id}" if request_id else f"{socket.gethostname()} pid {os.getpid()}"
    return load_assets(
        settings,
        request,
        s3=boto3.client("s3"),
        owner=owner,
        lock_wait_s=lock_wait_s(settings.lock_wait_s, context),
    )
