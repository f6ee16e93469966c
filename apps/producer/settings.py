"""Producer settings (environment variables, read once at start-up)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from apps.common.config import DbSettings, Env, RedisSettings, load_db, load_redis
from apps.common.contract import PRODUCER_PORT, EnvVar
from apps.common.redisq import DEFAULT_IDEMPOTENCY_TTL_S


@dataclass(frozen=True)
class ProducerSettings:
    port: int
    bind_host: str
    redis: RedisSettings
    db: DbSettings
    consumer_url: str | None
    environment: str
    threads: int
    connection_limit: int
    request_timeout_s: float
    idle_timeout_s: int
    graceful_timeout_s: float
    enqueue_attempts: int
    enqueue_backoff_ms: int
    status_timeout_s: float
    max_body_bytes: int
    idempotency_ttl_s: int
    log_level: str


def load_settings(environ: Mapping[str, str] | None = None) -> ProducerSettings:
    env = Env(environ)
    consumer_url = env.optional(EnvVar.CONSUMER_URL)
    return ProducerSettings(
        port=env.integer(EnvVar.PORT, PRODUCER_PORT, minimum=1, maximum=65535),
        bind_host=env.string("BIND_HOST", "0.0.0.0"),  # noqa: S104 - a container listens on all
        redis=load_redis(env),
        db=load_db(env),
        consumer_url=consumer_url.rstrip("/") if consumer_url else None,
        environment=env.string(EnvVar.ENVIRONMENT, "local"),
        threads=env.integer("THREADS", 8, minimum=1, maximum=64),
        connection_limit=env.integer("CONNECTION_LIMIT", 1000, minimum=10, maximum=60_000),
        request_timeout_s=env.number("REQUEST_TIMEOUT_S", 10.0, minimum=0.5, maximum=300),
        idle_timeout_s=env.integer("IDLE_TIMEOUT_S", 75, minimum=1, maximum=4000),
        graceful_timeout_s=env.number("GRACEFUL_TIMEOUT_S", 20.0, minimum=0, maximum=110),
        enqueue_attempts=env.integer("ENQUEUE_ATTEMPTS", 3, minimum=1, maximum=10),
        enqueue_backoff_ms=env.integer("ENQUEUE_BACKOFF_MS", 50, minimum=0, maximum=5000),
        status_timeout_s=env.number("STATUS_TIMEOUT_S", 1.0, minimum=0.05, maximum=30),
        max_body_bytes=env.integer("MAX_BODY_BYTES", 1024, minimum=64, maximum=1_048_576),
        idempotency_ttl_s=env.integer(
            "IDEMPOTENCY_TTL_S", DEFAULT_IDEMPOTENCY_TTL_S, minimum=60, maximum=7 * 86_400
        ),
        log_level=env.choice(EnvVar.LOG_LEVEL, "info", ("debug", "info", "warning", "error")),
    )
