"""The Redis Streams queue: connection, message format and the producer's enqueue."""

from __future__ import annotations

import hashlib
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

from apps.common import contract
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


# The enqueue, run by the server with nothing in between: when the key has a record, return it
# (the value and the entry id it was enqueued as) and add nothing; else XADD and record
# key -> "value id" with a TTL. Redis does not roll back a script whose later command fails,
# so both commands must be ones that cannot be refused once the script runs: the app user's
# ACL grants XADD and SET (contract.queue_access_string; NOPERM otherwise), and an
# out-of-memory refusal comes before a script's first write, never between its writes. So a
# record exists exactly when its entry was added.
_ENQUEUE_LUA = """
local prior = redis.call('GET', KEYS[2])
if prior then
  local sep = string.find(prior, ' ', 1, true)
  return {0, string.sub(prior, 1, sep - 1), string.sub(prior, sep + 1)}
end
local id = redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
redis.call('SET', KEYS[2], ARGV[4] .. ' ' .. id, 'EX', ARGV[7])
return {1, ARGV[4], id}
"""
_ENQUEUE_SHA = hashlib.sha1(_ENQUEUE_LUA.encode()).hexdigest()  # noqa: S324 - Redis's script id

DEFAULT_IDEMPOTENCY_TTL_S = 86_400


class EnqueueError(RuntimeError):
    """The value was not enqueued, or it is unknown whether it was (:attr:`outcome_unknown`).

    Unknown means a command reached the server's socket and no reply came back: the server
    may have run it. A retry with the same :attr:`key` stores the value at most once.
    """

    def __init__(self, message: str, *, key: str, outcome_unknown: bool) -> None:
        super().__init__(message)
        self.key = key
        self.outcome_unknown = outcome_unknown


class KeyConflictError(ValueError):
    """The idempotency key was already used for a different value."""

    def __init__(self, key: str, stored: int) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different value")
        self.key = key
        self.stored = stored


@dataclass(frozen=True)
class Enqueued:
    entry_id: str
    key: str
    replayed: bool
    """True when the key already had a record: nothing was added, the first entry stands."""


def idempotency_record(stream: str, key: str) -> str:
    return f"{contract.idempotency_key_prefix(stream)}{key}"


def enqueue(
    client: RedisClient,
    stream: str,
    value: int,
    *,
    key: str | None = None,
    attempts: int = 3,
    backoff_s: float = 0.05,
    ttl_s: int = DEFAULT_IDEMPOTENCY_TTL_S,
) -> Enqueued:
    """Add ``value`` under idempotency ``key`` (a new one when None) at most once per key.

    A key seen in the last ``ttl_s`` seconds adds nothing: with the same value the first
    entry is returned (``replayed``), with another value :class:`KeyConflictError` is
    raised. Transient failures are retried (safe: the script is idempotent by key); when
    they persist, :class:`EnqueueError` says whether the value may have been added.
    """
    if not valid_value(value):
        raise ValueError("value must be an int in the signed 64-bit range")
    msg_key = key or new_key()
    keys = (stream, idempotency_record(stream, msg_key))
    args = (
        FIELD_KEY,
        msg_key,
        FIELD_VALUE,
        str(value),
        FIELD_TS,
        str(int(time.time() * 1000)),
        str(ttl_s),
    )
    last: BaseException | None = None
    maybe_ran = False
    for attempt in range(max(1, attempts)):
        try:
            reply = _run_script(client, keys, args)
        except _UnsentError as exc:
            last = exc.__cause__ or exc
        except _MaybeRanError as exc:
            last = exc.__cause__ or exc
            maybe_ran = True
        else:
            added, stored, entry_id = int(reply[0]), int(reply[1]), str(reply[2])
            if stored != value:
                raise KeyConflictError(msg_key, stored)
            # A record found after our own unanswered attempt is that attempt's entry.
            return Enqueued(entry_id, msg_key, replayed=not added and not maybe_ran)
        if attempt + 1 < attempts:
            time.sleep(backoff_s * (2**attempt))
    outcome = "outcome unknown" if maybe_ran else "not added"
    raise EnqueueError(
        f"queue unavailable after {attempts} attempts ({outcome}): {last}",
        key=msg_key,
        outcome_unknown=maybe_ran,
    ) from last


class _UnsentError(Exception):
    """The command did not run: it never fully reached the server, or the server refused it
    before running any of it."""


class _MaybeRanError(Exception):
    """The command was sent and no usable reply came back: it may have run."""


REFUSALS: tuple[type[Exception], ...] = (
    redis.exceptions.ReadOnlyError,  # READONLY: a replica, during a failover
    redis.BusyLoadingError,  # LOADING
    redis.exceptions.ClusterDownError,  # CLUSTERDOWN
    redis.exceptions.TryAgainError,  # TRYAGAIN
    redis.exceptions.NoPermissionError,  # NOPERM: the ACL lacks a command
    redis.exceptions.OutOfMemoryError,  # OOM: refused before the script's first write
)
"""Error replies by which the server refuses a command before running any of it."""


def _run_script(client: RedisClient, keys: tuple[str, ...], args: tuple[str, ...]) -> Any:
    """EVALSHA (EVAL when the server lacks the script) on one pooled connection, telling a
    command that did not run from one that may have."""
    pool = client.connection_pool
    try:
        conn = pool.get_connection()  # connects (and logs in) now: a failure sent nothing
    except redis.RedisError as exc:
        raise _UnsentError from exc
    try:
        for command in ("EVALSHA", "EVAL"):
            body = _ENQUEUE_SHA if command == "EVALSHA" else _ENQUEUE_LUA
            try:
                conn.send_command(command, body, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
            except redis.RedisError as exc:
                conn.disconnect()  # type: ignore[no-untyped-call]
                raise _UnsentError from exc
            try:
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                continue  # not run; EVAL loads and runs it
            except REFUSALS as exc:
                conn.disconnect()  # type: ignore[no-untyped-call]
                raise _UnsentError from exc
            except redis.ResponseError as exc:
                # The script failed while running: the commands before the failing one
                # stay done (Redis does not roll a script back).
                raise _MaybeRanError from exc
            except redis.RedisError as exc:  # no reply: timeout or connection lost
                conn.disconnect()  # type: ignore[no-untyped-call]
                raise _MaybeRanError from exc
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        pool.release(conn)
