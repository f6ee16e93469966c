"""Producer settings (environment variables, read once at start-up)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from apps.common.config import DbSettings, Env, RedisSettings, load_db, load_redis


@dataclass(frozen=True)
class ProducerSettings:
    port: int
    bind_host: str
    redis: RedisSettings
    db: DbSettings
    consumer_url: str | None
    environment: str
    workers: int
    threads: int
    enqueue_attempts: int
    enqueue_backoff_ms: int
    status_timeout_s: float
    max_body_bytes: int
    log_level: str
    tmp_dir: str


def load_settings(environ: Mapping[str, str] | None = None) -> ProducerSettings:
    env = Env(environ)
    consumer_url = env.optional("CONSUMER_URL")
    return ProducerSettings(
        port=env.integer("PORT", 5080, minimum=1, maximum=65535),
        bind_host=env.string("BIND_HOST", "0.0.0.0"),  # noqa: S104 - a container listens on all
        redis=load_redis(env),
        db=load_db(env),
        consumer_url=consumer_url.rstrip("/") if consumer_url else None,
        environment=env.string("ENVIRONMENT", "local"),
        workers=env.integer("WEB_CONCURRENCY", 2, minimum=1, maximum=64),
        threads=env.integer("GUNICORN_THREADS", 4, minimum=1, maximum=64),
        enqueue_attempts=env.integer("ENQUEUE_ATTEMPTS", 3, minimum=1, maximum=10),
        enqueue_backoff_ms=env.integer("ENQUEUE_BACKOFF_MS", 50, minimum=0, maximum=5000),
        status_timeout_s=env.number("STATUS_TIMEOUT_S", 1.0, minimum=0.05, maximum=30),
        max_body_bytes=env.integer("MAX_BODY_BYTES", 1024, minimum=64, maximum=1_048_576),
        log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        tmp_dir=env.string("TMPDIR", "/tmp"),  # noqa: S108 - gunicorn heartbeat files only
    )
