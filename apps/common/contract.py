"""The contract between the applications and the infrastructure, defined once.

The stacks (``stacks/``) and the applications (``apps/``) both import these names,
and the local servers the tests run against (``apps/devtools/servers.py``) are configured
from them, so what a test runs against is what the stacks deploy.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any

PRODUCER_PORT = 5080
CONSUMER_PORT = 8081

QUEUE_STREAM = "{counts}"
"""Key of the stream between producer and consumer.

The braces are a cluster hash tag: ElastiCache Serverless is cluster-mode, where every key
that one command or one MULTI/EXEC touches must hash to the same slot. The dead-letter
stream (:func:`dead_letter_stream`) shares the tag, so the consumer's
dead-letter + XACK + XDEL transaction stays in one slot."""

QUEUE_GROUP = "consumers"
METRICS_NAMESPACE = "ProducerConsumer"
"""Namespace of the consumer's Embedded Metric Format output (``QueueBacklog``)."""
METRICS_DIMENSION = "Environment"
"""The one dimension of the consumer's metrics; its value is the environment's name."""
BACKLOG_METRIC = "QueueBacklog"
PROCESSED_METRIC = "MessagesProcessed"
OLDEST_PENDING_AGE_METRIC = "OldestPendingAgeSeconds"
"""Age in seconds of the oldest entry delivered to the consumer group and not yet
acknowledged (0 when none is pending): how far behind the consumers are, in time."""
DEAD_LETTERED_METRIC = "MessagesDeadLettered"

DB_LOCK_WAIT_S = 5
"""``innodb_lock_wait_timeout`` of the apps' database sessions (``DB_LOCK_WAIT_S``): how long
one statement waits for a row lock that another session holds. The consumer leaves the
entries of a batch that waited this long pending and goes on with the rest."""
DB_IDLE_TIMEOUT_S = 120
"""``wait_timeout`` of the apps' database sessions (``DB_IDLE_TIMEOUT_S``): the server ends
a session of theirs that sends nothing for this long, releasing its locks. A task
partitioned from the database (or frozen) mid-transaction holds row locks until then."""
DB_SERVER_PARAMETERS = {"wait_timeout": "300", "innodb_lock_wait_timeout": "10"}
"""What the database's parameter group sets for every session (the local MariaDB starts
with the same): sessions that set nothing (the migration, an operator's client) end after
5 idle minutes instead of MySQL's 8 hours, and a lock wait lasts 10 s instead of 50."""

ORIGIN_VERIFY_HEADER = "X-Origin-Verify"
"""The header CloudFront adds to API requests and the load balancer requires."""

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
"""The image's system trust store (Debian ``ca-certificates``): ElastiCache's server
certificates chain to Amazon's public roots, which it holds."""
RDS_CA_BUNDLE = "/app/apps/common/certs/rds-ca-bundle.pem"
"""Where the images and the migration Lambda find the RDS CA bundle
(``apps/common/certs/rds-ca-bundle.pem`` in this repository)."""
LAMBDA_RDS_CA_BUNDLE = "/var/task/apps/common/certs/rds-ca-bundle.pem"
"""The same bundle inside the migration Lambda's deployment package."""


def metric_dimensions(environment: str) -> dict[str, str]:
    """The dimensions of the consumer's metrics in ``environment``."""
    return {METRICS_DIMENSION: environment}


def hash_tag(key: str) -> str | None:
    """The cluster hash tag of ``key`` (the text between the first ``{`` and the next
    ``}``), or None when the whole key is hashed."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1 : end]


def dead_letter_stream(stream: str) -> str:
    """The dead-letter stream of ``stream``: same hash tag, so the same cluster slot."""
    return f"{stream}:dead"


def idempotency_key_prefix(stream: str) -> str:
    """Prefix of the producer's idempotency records (one per key, value and entry id). Same
    hash tag as the stream, so the enqueue script touches one cluster slot."""
    return f"{stream}:idem:"


class EnvVar(StrEnum):
    """Environment variables the stacks set and the applications read.

    Only the names that cross the boundary are here; tunables that only the applications
    read (``THREADS``, ``BATCH_SIZE``, ...) are defined with their defaults in the
    applications' settings modules.
    """

    ENVIRONMENT = "ENVIRONMENT"
    PORT = "PORT"
    LOG_LEVEL = "LOG_LEVEL"
    REDIS_URL = "REDIS_URL"
    REDIS_TLS_CA = "REDIS_TLS_CA"
    REDIS_CREDENTIALS_SECRET = "REDIS_CREDENTIALS_SECRET"  # noqa: S105 (a name)
    """ARN of the queue credentials secret the application reads at run time."""
    QUEUE_STREAM = "QUEUE_STREAM"
    DB_HOST = "DB_HOST"
    DB_PORT = "DB_PORT"
    DB_NAME = "DB_NAME"
    DB_TLS = "DB_TLS"
    DB_TLS_CA = "DB_TLS_CA"
    DB_CREDENTIALS_SECRET = "DB_CREDENTIALS_SECRET"  # noqa: S105 (a name)
    """ARN of the MySQL credentials secret the application reads at run time."""
    DB_MIGRATE = "DB_MIGRATE"
    DB_LOGIN_TLS = "DB_LOGIN_TLS"
    """Whether the database owner function makes the application's login require TLS:
    ``required`` or ``optional`` (a database that only offers TLS,
    ``DatabaseTransport.TLS_OFFERED``). Unset: ``required``."""
    METRICS_NAMESPACE = "METRICS_NAMESPACE"
    METRICS_INTERVAL = "METRICS_INTERVAL"
    CONSUMER_URL = "CONSUMER_URL"
    MASTER_SECRET_ARN = "MASTER_SECRET_ARN"  # noqa: S105 (a name)
    """The RDS-managed master secret (schema migration and MySQL rotation only)."""
    APP_SECRET_ARN = "APP_SECRET_ARN"  # noqa: S105 (a name)
    ROTATION_TARGET = "ROTATION_TARGET"
    QUEUE_USER_ID = "QUEUE_USER_ID"
    REDIS_CLUSTER = "REDIS_CLUSTER"
    """``on`` for a queue of several shards (``QueueMode.SHARDED``): the apps use a
    cluster-aware client. Unset: ``off``, one connection pool to ``REDIS_URL``."""


class LogField(StrEnum):
    """The fields of the services' JSON log lines (one object per line on stderr) that the
    saved Logs Insights queries and the runbook read. One accepted value carries the same
    ``idempotency_key`` and ``entry_id`` in the producer's and the consumer's lines."""

    TIME = "time"
    LEVEL = "level"
    SERVICE = "service"
    LOGGER = "logger"
    MESSAGE = "message"
    IDEMPOTENCY_KEY = "idempotency_key"
    ENTRY_ID = "entry_id"
    VALUE = "value"
    STATUS = "status"
    """HTTP status of a request the producer answered."""
    PATH = "path"
    DURATION_MS = "duration_ms"
    """How long the producer took to answer, in milliseconds."""


IDEMPOTENCY_HEADER = "Idempotency-Key"
"""Request header a client names its submission with, and the response header the producer
answers with (also when the outcome is unknown, so a retry can reuse it)."""

HEALTH_PATH = "/health"
"""Both services' status page: the consumer's is its liveness check (503 only when the
worker loop died or hung), the producer's reports its dependencies."""

READINESS_PATH = "/ready"
"""The producer's readiness: 200 while the write path (the queue) works. The load balancer
routes by it; a database outage leaves it 200 (POSTs queue up) and shows in /health."""


CLUSTER_CLIENT_ACL = "+cluster|slots"
"""What a cluster-aware client (``REDIS_CLUSTER=on``) needs beyond the apps' commands:
CLUSTER SLOTS, the topology query redis-py runs at start, after a lost node and every few
MOVED replies. Only this subcommand: ``+cluster`` would also grant CLUSTER RESET, FAILOVER,
SETSLOT and the rest of the cluster's administration."""


def queue_access_string(stream: str = QUEUE_STREAM, *, cluster_client: bool = False) -> str:
    """The application user's ACL on the queue (ElastiCache access-string syntax).

    Only the stream, its dead-letter stream and the idempotency records (``~<stream>*``),
    and only what the apps use: streams, MULTI/EXEC, connection handling (AUTH, HELLO,
    PING, CLIENT SETNAME), and EVAL/EVALSHA of the producer's enqueue script and the
    consumer's pruning script with the GET and SET those run (Redis checks a script's
    commands against the caller's ACL), minus anything dangerous. No channel pattern is
    granted (Redis 7 and Valkey default to none); ``resetchannels`` is left out because
    ElastiCache refuses ``reset`` in access strings. ``cluster_client``: the clients use
    the cluster-aware client, which also needs :data:`CLUSTER_CLIENT_ACL`.
    """
    if hash_tag(stream) is None:
        raise ValueError(f"stream {stream!r} needs a hash tag such as {{counts}}")
    access = (
        f"on ~{stream}* -@all +@stream +@transaction +@connection "
        "+eval +evalsha +get +set -@dangerous"
    )
    return cluster_client_access(access) if cluster_client else access


def cluster_client_access(access: str) -> str:
    """``access`` that also grants :data:`CLUSTER_CLIENT_ACL` (unchanged when it does)."""
    if CLUSTER_CLIENT_ACL in access.split():
        return access
    return f"{access} {CLUSTER_CLIENT_ACL}"


# ----------------------------------------------------------------------------- the values
# One parser per field, shared by the producer (what it accepts) and the consumer (what it
# stores): an entry that anything else wrote to the stream, or that the replay tool re-adds,
# is stored only when the producer could have written it; otherwise it is dead-lettered.

COUNT_MIN = -(2**63)
COUNT_MAX = 2**63 - 1
"""The range of a value: the signed 64-bit ``BIGINT`` column it is stored in."""

IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""An idempotency key, matched whole (:func:`valid_key`): ``$`` would also match before a
trailing newline."""

COUNT_TEXT_PATTERN = re.compile(r"0|-?[1-9][0-9]{0,18}")
"""A value in a stream entry: what ``str()`` of a Python int gives, ASCII digits only (no
sign ``+``, no blanks, no ``_``, no leading zeros, no other script's digits, all of which
``int()`` accepts), at most 19 digits; the range is checked after."""


class ContractError(ValueError):
    """A value or a key that the contract does not allow; the message says why."""


def valid_key(key: object) -> bool:
    """``key`` is an idempotency key: 1-64 characters of ``[A-Za-z0-9_.:-]``, nothing more."""
    return isinstance(key, str) and IDEMPOTENCY_KEY_PATTERN.fullmatch(key) is not None


def valid_count(value: object) -> bool:
    """An integer (not a bool, not a float) in the range of :data:`COUNT_MIN`..``MAX``."""
    return type(value) is int and COUNT_MIN <= value <= COUNT_MAX


def format_count(value: int) -> str:
    """The text of a value in a stream entry (:func:`parse_count` reads it back)."""
    if not valid_count(value):
        raise ContractError(f"count must be an integer between {COUNT_MIN} and {COUNT_MAX}")
    return str(value)


def parse_count(text: str) -> int:
    """The value of a stream entry's ``count`` field, exactly as :func:`format_count` writes
    it; :class:`ContractError` for anything else."""
    if COUNT_TEXT_PATTERN.fullmatch(text) is None:
        raise ContractError(f"count is not an integer in canonical form: {text[:80]!r}")
    value = int(text)
    if not valid_count(value):
        raise ContractError("count out of signed 64-bit range")
    return value


class BodyError(ValueError):
    """A request body that is not one JSON object with unique names; the message says why."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise BodyError(
                f"request body names {name[:64]!r} more than once: which value is meant is "
                "ambiguous"
            )
        seen[name] = value
    return seen


def _no_constant(name: str) -> Any:
    raise BodyError(f"request body is not valid JSON ({name} is not a JSON number)")


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object (RFC 8259): UTF-8, every name once, no ``NaN`` or
    ``Infinity``, nested no deeper than the parser's recursion allows;
    :class:`BodyError` otherwise."""
    try:
        payload = json.loads(raw, object_pairs_hook=_unique_object, parse_constant=_no_constant)
    except BodyError:
        raise
    except RecursionError:
        raise BodyError("request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise BodyError("request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BodyError("request body must be a JSON object")
    return payload
