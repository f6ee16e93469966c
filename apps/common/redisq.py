"""The Redis Streams queue: connection, message format and the producer's enqueue."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import Connection, ConnectionPool, SSLConnection, parse_url
from redis.credentials import CredentialProvider
from redis.retry import Retry

from apps.common.config import BIGINT_MAX, BIGINT_MIN, RedisSettings
from apps.common.credentials import CredentialSource

# Fields of a queue entry. ``key`` is the idempotency key that the consumer's insert uses.
FIELD_KEY = "key"
FIELD_VALUE = "count"
FIELD_TS = "ts"

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

RedisClient = redis.Redis

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,  # LOADING: replaying the AOF after a restart
    redis.exceptions.ClusterDownError,  # CLUSTERDOWN: a cluster-mode node before state ok
    redis.exceptions.TryAgainError,  # TRYAGAIN: slot migration (ElastiCache scaling)
    redis.exceptions.ReadOnlyError,  # READONLY: a former primary, during a failover
)
"""Redis errors that pass: retry with backoff, never treat the message as bad. Found by
restarting the local cluster-mode server (as ElastiCache does in maintenance): it answers
CLUSTERDOWN for a moment, which used to end the consumer's worker loop."""


class _Login(CredentialProvider):
    """redis-py's view of a :class:`CredentialSource`."""

    def __init__(self, source: CredentialSource) -> None:
        self.source = source

    def get_credentials(self) -> tuple[str, str]:
        login = self.source.get()
        return login.username, login.password


class _RetryLogin:
    """On a refused AUTH, read the credentials again (a rotation may have retired the
    cached ones) and authenticate once more on the same socket."""

    credential_provider: CredentialProvider | None

    def on_connect_check_health(self, check_health: bool = True) -> None:
        try:
            super().on_connect_check_health(check_health)  # type: ignore[misc]
        except redis.AuthenticationError:
            provider = self.credential_provider
            if not isinstance(provider, _Login):
                raise
            before = provider.source.get()
            if provider.source.refresh() == before:
                raise
            super().on_connect_check_health(check_health)  # type: ignore[misc]


class _RetryLoginConnection(_RetryLogin, Connection):
    pass


class _RetryLoginSSLConnection(_RetryLogin, SSLConnection):
    pass


def make_redis(settings: RedisSettings, *, socket_timeout_s: float | None = None) -> RedisClient:
    """Client from REDIS_URL. The login comes from REDIS_CREDENTIALS_SECRET (re-read when
    refused after a rotation), else REDIS_USERNAME/REDIS_PASSWORD, else the URL's userinfo.

    redis-py's own retries are disabled: callers retry with their own bounded backoff so a
    retry is always visible (and idempotent) at the application level.
    """
    options: dict[str, Any] = dict(parse_url(settings.url))  # type: ignore[no-untyped-call]
    source = settings.credentials()
    if source is not None:
        options.pop("username", None)
        options.pop("password", None)
        options["credential_provider"] = _Login(source)
    options["connection_class"] = (
        _RetryLoginSSLConnection if settings.url.startswith("rediss://") else _RetryLoginConnection
    )
    options["socket_timeout"] = (
        settings.socket_timeout_s if socket_timeout_s is None else socket_timeout_s
    )
    options["socket_connect_timeout"] = settings.connect_timeout_s
    options["decode_responses"] = True
    options["health_check_interval"] = 30
    options["retry"] = Retry(NoBackoff(), 0)
    options["client_name"] = "apps"
    if settings.url.startswith("rediss://"):
        # Always verify the server: against REDIS_TLS_CA, else the system trust store.
        options["ssl_cert_reqs"] = "required"
        options["ssl_check_hostname"] = True
        if settings.tls_ca is not None:
            options["ssl_ca_certs"] = settings.tls_ca
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
        except TRANSIENT_ERRORS as exc:
            last = exc
            if attempt + 1 < attempts:
                time.sleep(backoff_s * (2**attempt))
    raise EnqueueError(f"queue unavailable after {attempts} attempts: {last}") from last
