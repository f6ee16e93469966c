"""The Redis Streams queue: connection, message format and the producer's enqueue."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import ConnectionPool, parse_url
from redis.retry import Retry

from apps.common.config import BIGINT_MAX, BIGINT_MIN, RedisSettings

# Fields of a queue entry. ``key`` is the idempotency key that the consumer's insert uses.
FIELD_KEY = "key"
FIELD_VALUE = "count"
FIELD_TS = "ts"

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

RedisClient = redis.Redis


def make_redis(settings: RedisSettings, *, socket_timeout_s: float | None = None) -> RedisClient:
    """Client from REDIS_URL; REDIS_USERNAME/REDIS_PASSWORD override URL credentials.

    redis-py's own retries are disabled: callers retry with their own bounded backoff so a
    retry is always visible (and idempotent) at the application level.
    """
    options: dict[str, Any] = dict(parse_url(settings.url))  # type: ignore[no-untyped-call]
    if settings.username is not None:
        options["username"] = settings.username
    if settings.password is not None:
        options["password"] = settings.password
    options["socket_timeout"] = (
        settings.socket_timeout_s if socket_timeout_s is None else socket_timeout_s
    )
    options["socket_connect_timeout"] = settings.connect_timeout_s
    options["decode_responses"] = True
    options["health_check_interval"] = 30
    options["retry"] = Retry(NoBackoff(), 0)
    options["client_name"] = "apps"
    return redis.Redis(connection_pool=ConnectionPool(**options))


def new_key() -> str:
    return uuid.uuid4().hex


def valid_value(value: object) -> bool:
    """An integer (not a bool) that fits a signed 64-bit BIGINT column."""
    return type(value) is int and BIGINT_MIN <= value <= BIGINT_MAX


@dataclass(frozen=True)
class Message:
    key: str
    value: int


class BadMessageError(ValueError):
    pass


def decode(fields: dict[str, str]) -> Message:
    """Parse a stream entry; raises BadMessageError with the reason."""
    key = fields.get(FIELD_KEY)
    raw = fields.get(FIELD_VALUE)
    if key is None or not KEY_PATTERN.match(key):
        raise BadMessageError("missing or invalid key field")
    if raw is None:
        raise BadMessageError("missing count field")
    try:
        value = int(raw, 10)
    except ValueError:
        raise BadMessageError(f"count is not an integer: {raw[:80]!r}") from None
    if not valid_value(value):
        raise BadMessageError("count out of signed 64-bit range")
    return Message(key=key, value=value)


class EnqueueError(RuntimeError):
    pass


def enqueue(
    client: RedisClient,
    stream: str,
    value: int,
    *,
    key: str | None = None,
    attempts: int = 3,
    backoff_s: float = 0.05,
) -> tuple[str, str]:
    """XADD one value; returns (entry id, idempotency key).

    XADD is atomic. If a reply is lost and the retry adds a second entry, both carry the same
    idempotency key, and the consumer's insert keeps exactly one row.
    """
    if not valid_value(value):
        raise ValueError("value must be an int in the signed 64-bit range")
    msg_key = key or new_key()
    fields = {FIELD_KEY: msg_key, FIELD_VALUE: str(value), FIELD_TS: str(int(time.time() * 1000))}
    last: Exception | None = None
    for attempt in range(max(1, attempts)):
        try:
            entry_id = client.xadd(stream, fields)  # type: ignore[arg-type]
            return str(entry_id), msg_key
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            last = exc
            if attempt + 1 < attempts:
                time.sleep(backoff_s * (2**attempt))
    raise EnqueueError(f"queue unavailable after {attempts} attempts: {last}") from last
