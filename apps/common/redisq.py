"""The Redis Streams queue: connection, message format and the producer's enqueue."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterPipeline, RedisCluster
from redis.connection import Connection, ConnectionPool, SSLConnection, parse_url
from redis.credentials import CredentialProvider
from redis.retry import Retry

from apps.common import contract
from apps.common.config import RedisSettings
from apps.common.credentials import Credentials, CredentialSource

# Fields of a queue entry. ``key`` is the idempotency key that the consumer's insert uses.
FIELD_KEY = "key"
FIELD_VALUE = "count"
FIELD_TS = "ts"

KEY_PATTERN = contract.IDEMPOTENCY_KEY_PATTERN
"""Match it whole (``fullmatch``), or use :func:`contract.valid_key`."""

RedisClient = redis.Redis

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,  # LOADING: replaying the AOF after a restart
    redis.exceptions.ClusterDownError,  # CLUSTERDOWN: a cluster-mode node before state ok
    redis.exceptions.ClusterError,  # cluster client: MOVED/ASK/TRYAGAIN outlasted its TTL
    redis.exceptions.TryAgainError,  # TRYAGAIN: slot migration (ElastiCache scaling)
    redis.exceptions.ReadOnlyError,  # READONLY: a former primary, during a failover
)
"""Redis errors that pass: retry with backoff, never treat the message as bad. Found by
restarting the local cluster-mode server (as ElastiCache does in maintenance): it answers
CLUSTERDOWN for a moment, which used to end the consumer's worker loop."""


class _Login(CredentialProvider):
    """redis-py's view of a :class:`CredentialSource`. Remembers, per thread, the login it
    last handed out: the one a refused AUTH on this thread used."""

    def __init__(self, source: CredentialSource) -> None:
        self.source = source
        self._handed = threading.local()

    def get_credentials(self) -> tuple[str, str]:
        login = self.source.get()
        self._handed.login = login
        return login.username, login.password

    def last_handed(self) -> Credentials | None:
        """The login :meth:`get_credentials` last returned on this thread."""
        login: Credentials | None = getattr(self._handed, "login", None)
        return login


class _RetryLogin:
    """On a refused AUTH, read the credentials again (a rotation may have retired the
    cached ones) and authenticate once more on the same socket.

    Whether the fresh login is worth a try is decided against the login this AUTH used, not
    against the cache: a peer thread refused at the same moment may already have read the
    new value into it, and comparing the new value with itself would give up on a login
    that works."""

    credential_provider: CredentialProvider | None

    def on_connect_check_health(self, check_health: bool = True) -> None:
        try:
            super().on_connect_check_health(check_health)  # type: ignore[misc]
        except redis.AuthenticationError:
            provider = self.credential_provider
            if not isinstance(provider, _Login):
                raise
            used = provider.last_handed()
            if provider.source.refresh() == used:
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

    With REDIS_CLUSTER=on (``settings.cluster``) the client is a cluster client
    (:class:`ClusterClient`, a :class:`redis.cluster.RedisCluster` made on first use) with
    the same options on every node's connections.
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
    options["health_check_interval"] = HEALTH_CHECK_INTERVAL_S
    options["retry"] = Retry(NoBackoff(), 0)
    options["client_name"] = "apps"
    if settings.url.startswith("rediss://"):
        # Always verify the server: against REDIS_TLS_CA, else the system trust store.
        options["ssl_cert_reqs"] = "required"
        options["ssl_check_hostname"] = True
        if settings.tls_ca is not None:
            options["ssl_ca_certs"] = settings.tls_ca
    if settings.cluster:
        # Typed as the plain client: it answers the same calls (see ClusterClient).
        return cast(RedisClient, ClusterClient(options))
    return redis.Redis(connection_pool=ConnectionPool(**options))


HEALTH_CHECK_INTERVAL_S = 30


# ----------------------------------------------------------------------------- cluster mode


class _NodePool(ConnectionPool):
    """The connection pool of each cluster node. redis-py builds it from the URL, whose
    scheme picks its own connection class, and drops ``health_check_interval``: both are
    put back, so every node's connections log in (and re-read rotated credentials) and
    check their health as the single client's do."""

    def __init__(self, **kwargs: Any) -> None:
        tls = issubclass(kwargs.get("connection_class", Connection), SSLConnection)
        kwargs["connection_class"] = _RetryLoginSSLConnection if tls else _RetryLoginConnection
        kwargs.setdefault("health_check_interval", HEALTH_CHECK_INTERVAL_S)
        super().__init__(**kwargs)


_REDIRECTS: tuple[type[Exception], ...] = (
    redis.exceptions.AskError,  # and MovedError, its subclass
    redis.exceptions.TryAgainError,
)
"""Replies by which a cluster node refuses a whole command or transaction (MOVED, ASK,
TRYAGAIN; a transaction ends in EXECABORT): nothing ran, so sending it again is safe."""


class _RedirectsOnly(Retry):
    """The retry policy of a cluster MULTI/EXEC: again after a redirection only (the
    transaction did not run), never after a connection error or timeout (it may have).

    redis-py's transaction pipeline follows MOVED and ASK only through its retry policy,
    and does not send ASKING: during a slot migration it meets ASK until the slot has
    moved. When the redirections outlast the retries, TRYAGAIN is raised: a transient
    error the callers already back off on."""

    def call_with_retry(
        self,
        do: Callable[[], Any],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> Any:
        failures = 0
        while True:
            try:
                return do()
            except Exception as error:
                failures += 1
                if isinstance(error, self._supported_errors):
                    # redis-py's own handler: drops the connection, patches the slot map.
                    fail(error, failures) if with_failure_count else fail(error)
                if not isinstance(error, _REDIRECTS):
                    raise
                if failures > self._retries:
                    raise redis.exceptions.TryAgainError(
                        f"slot still moving after {failures} redirections: {error}"
                    ) from error
                time.sleep(self._backoff.compute(failures))


class _Cluster(RedisCluster):
    """RedisCluster whose errors are redis-py's RedisError (it raises a bare
    RedisClusterException when it cannot reach or map the cluster) and whose transaction
    pipelines follow redirections only (:class:`_RedirectsOnly`)."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis.exceptions.RedisClusterException as exc:
            raise _cluster_error(exc) from exc

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        if shard_hint:
            raise redis.exceptions.RedisClusterException("shard_hint is not supported")
        retry = (
            _RedirectsOnly(ExponentialBackoff(cap=0.5, base=0.01), 12)
            if transaction
            else self.retry
        )
        return _Pipeline(
            nodes_manager=self.nodes_manager,
            commands_parser=self.commands_parser,
            startup_nodes=list(self.nodes_manager.startup_nodes.values()),
            result_callbacks=self.result_callbacks,
            cluster_response_callbacks=self.cluster_response_callbacks,
            read_from_replicas=self.read_from_replicas,
            load_balancing_strategy=self.load_balancing_strategy,
            reinitialize_steps=self.reinitialize_steps,
            retry=retry,
            lock=self._lock,
            transaction=transaction,
            event_dispatcher=self._event_dispatcher,
        )


class _Pipeline(ClusterPipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return super().execute(raise_on_error)
        except redis.exceptions.CrossSlotTransactionError:
            raise  # a programming error: the keys of one transaction share a hash tag
        except redis.exceptions.RedisClusterException as exc:
            raise _cluster_error(exc) from exc


def _cluster_error(exc: redis.exceptions.RedisClusterException) -> redis.RedisError:
    """A RedisClusterException as the RedisError callers handle: NOPERM (e.g. the user may
    not run CLUSTER SLOTS) as itself, an uncovered slot as CLUSTERDOWN, the rest (no node
    reachable) as a connection error."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, redis.exceptions.NoPermissionError):
            return cause
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, redis.exceptions.SlotNotCoveredError):
        return redis.exceptions.ClusterDownError(str(exc))
    return redis.ConnectionError(f"redis cluster unavailable: {exc}")


class ClusterClient:
    """The cluster-mode client: a :class:`redis.cluster.RedisCluster` made on first use
    (like a connection pool, making one needs no server: it asks a node for the topology
    when first used, and again on every later use until that succeeds), with the calls the
    apps make on a client (commands, ``pipeline``, ``close``, ``connection_pool``)."""

    def __init__(self, options: dict[str, Any]) -> None:
        options = dict(options)
        host, port = options.pop("host", "localhost"), options.pop("port", 6379)
        if options.pop("db", 0) not in (0, "0"):
            raise ValueError("cluster mode has database 0 only: drop the URL's /db")
        scheme = "rediss" if issubclass(options.pop("connection_class"), SSLConnection) else "redis"
        for name in ("retry", "health_check_interval"):
            options.pop(name, None)  # the cluster's own retry; _NodePool's health checks
        self._url = f"{scheme}://{host}:{port}"
        self._options = options
        self._lock = threading.Lock()
        self._cluster: _Cluster | None = None
        self.connection_pool = _AllNodes(self)

    def cluster(self) -> _Cluster:
        with self._lock:
            if self._cluster is None:
                try:
                    self._cluster = _Cluster(
                        url=self._url,
                        connection_pool_class=_NodePool,
                        retry=Retry(NoBackoff(), 0),  # redirections are followed, no retry
                        **self._options,
                    )
                except redis.exceptions.RedisClusterException as exc:
                    raise _cluster_error(exc) from exc
            return self._cluster

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster(), name)

    def close(self) -> None:
        with self._lock:
            cluster = self._cluster
        if cluster is not None:
            cluster.close()


def ping_for(client: RedisClient | ClusterClient, key: str) -> None:
    """PING the node that serves ``key``: the one the apps depend on. A plain client has
    one node; a cluster client would send a bare PING to its default node, which in a
    sharded queue may be another shard than the stream's."""
    if not isinstance(client, ClusterClient):
        client.ping()
        return
    try:
        cluster = client.cluster()
        node = cluster.get_node_from_key(key)  # type: ignore[no-untyped-call]
        cluster.ping(target_nodes=node)
    except redis.exceptions.RedisClusterException as exc:
        raise _cluster_error(exc) from exc


class _AllNodes:
    """``client.connection_pool`` of a :class:`ClusterClient`: ``disconnect()`` closes the
    connections of every node."""

    def __init__(self, client: ClusterClient) -> None:
        self._client = client

    def disconnect(self) -> None:
        with self._client._lock:
            cluster = self._client._cluster
        if cluster is not None:
            cluster.disconnect_connection_pools()  # type: ignore[no-untyped-call]


def new_key() -> str:
    return uuid.uuid4().hex


def valid_value(value: object) -> bool:
    """An integer (not a bool) that fits a signed 64-bit BIGINT column."""
    return contract.valid_count(value)


@dataclass(frozen=True)
class Message:
    key: str
    value: int


class BadMessageError(ValueError):
    pass


ORIGINAL_PREFIX = "orig_"
"""A dead-letter record keeps the original entry's fields under this prefix (``orig_key``,
``orig_count``, ``orig_ts``); its other fields are metadata (``reason``, ``original_id``,
``stream``, ``consumer``, ``ts``)."""


def dead_letter_record(
    entry_id: str, fields: dict[str, str], *, reason: str, stream: str, consumer: str, now_ms: int
) -> dict[str, str]:
    """What the consumer adds to the dead-letter stream for entry ``entry_id``."""
    record = {f"{ORIGINAL_PREFIX}{k}": v for k, v in fields.items()}
    record.update(
        reason=reason, original_id=entry_id, stream=stream, consumer=consumer, ts=str(now_ms)
    )
    return record


def original_fields(record: dict[str, str]) -> dict[str, str]:
    """The original entry's fields of a dead-letter record (prefix removed, order kept)."""
    n = len(ORIGINAL_PREFIX)
    return {k[n:]: v for k, v in record.items() if k.startswith(ORIGINAL_PREFIX)}


def decode(fields: dict[str, str]) -> Message:
    """Parse a stream entry with the contract's parsers (the producer's own rules); raises
    BadMessageError with the reason."""
    key = fields.get(FIELD_KEY)
    raw = fields.get(FIELD_VALUE)
    if key is None or not contract.valid_key(key):
        raise BadMessageError("missing or invalid key field")
    if raw is None:
        raise BadMessageError("missing count field")
    try:
        value = contract.parse_count(raw)
    except contract.ContractError as exc:
        raise BadMessageError(str(exc)) from None
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
        contract.format_count(value),
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


class _RedirectedError(_UnsentError):
    """MOVED or ASK: another node serves the key's slot; the command did not run."""

    def __init__(self, redirect: redis.exceptions.AskError) -> None:
        super().__init__(str(redirect))
        self.redirect = redirect


MAX_REDIRECTS = 16


def _run_script(client: RedisClient, keys: tuple[str, ...], args: tuple[str, ...]) -> Any:
    """EVALSHA (EVAL when the server lacks the script) on one pooled connection, telling a
    command that did not run from one that may have. A cluster client first finds the
    node that serves the keys' slot, and follows MOVED and ASK."""
    actual: object = client  # a ClusterClient is typed as RedisClient (make_redis)
    if isinstance(actual, ClusterClient):
        return _run_script_cluster(actual, keys, args)
    return _run_script_on(client.connection_pool, keys, args)


def _run_script_cluster(client: ClusterClient, keys: tuple[str, ...], args: tuple[str, ...]) -> Any:
    try:
        cluster = client.cluster()
        slot: int = cluster.keyslot(keys[0])  # type: ignore[no-untyped-call]
        node = cluster.nodes_manager.get_node_from_slot(slot)
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        raise _UnsentError from exc
    asking = False
    for _ in range(MAX_REDIRECTS):
        try:
            pool = cluster.get_redis_connection(node).connection_pool
            return _run_script_on(pool, keys, args, asking=asking)
        except _RedirectedError as exc:
            redirect = exc.redirect
            if isinstance(redirect, redis.exceptions.MovedError):
                cluster.nodes_manager.move_slot(redirect)  # the slot has a new owner
                node, asking = cluster.nodes_manager.get_node_from_slot(slot), False
            else:  # ASK: this once, at the node the slot is moving to
                target = cluster.get_node(host=redirect.host, port=redirect.port)  # type: ignore[no-untyped-call]
                if target is None:
                    _refresh(cluster)
                    raise
                node, asking = target, True
        except (_UnsentError, _MaybeRanError) as exc:
            if isinstance(exc.__cause__, (redis.ConnectionError, redis.TimeoutError)):
                _refresh(cluster)  # a node may be gone: ask the others for the topology
            raise
    raise _UnsentError from redis.exceptions.ClusterError("too many MOVED/ASK redirections")


def _refresh(cluster: RedisCluster) -> None:
    with contextlib.suppress(Exception):  # best effort: the caller reports the first error
        cluster.nodes_manager.initialize()


def _run_script_on(
    pool: ConnectionPool, keys: tuple[str, ...], args: tuple[str, ...], *, asking: bool = False
) -> Any:
    try:
        conn = pool.get_connection()  # connects (and logs in) now: a failure sent nothing
    except redis.RedisError as exc:
        raise _UnsentError from exc
    try:
        for command in ("EVALSHA", "EVAL"):
            body = _ENQUEUE_SHA if command == "EVALSHA" else _ENQUEUE_LUA
            try:
                if asking:  # ASK: the next command only may use the slot being imported
                    conn.send_command("ASKING")  # type: ignore[no-untyped-call]
                    conn.read_response()
                conn.send_command(command, body, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
            except redis.RedisError as exc:
                conn.disconnect()  # type: ignore[no-untyped-call]
                raise _UnsentError from exc
            try:
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                continue  # not run; EVAL loads and runs it
            except redis.exceptions.AskError as exc:  # MOVED or ASK: not run
                raise _RedirectedError(exc) from exc
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
