"""Consumer settings (environment variables, read once at start-up)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from apps.common.config import (
    DbSettings,
    Env,
    RedisSettings,
    hostname,
    load_db,
    load_redis,
)
from apps.common.contract import CONSUMER_PORT, METRICS_NAMESPACE, QUEUE_GROUP, EnvVar
from apps.common.errors import env_error


@dataclass(frozen=True)
class ConsumerSettings:
    port: int
    bind_host: str
    redis: RedisSettings
    db: DbSettings
    group: str
    consumer_name: str
    batch_size: int
    block_ms: int
    max_attempts: int
    claim_idle_ms: int
    claim_interval_ms: int
    metrics_interval_s: float
    metrics_namespace: str
    environment: str
    db_migrate: str
    backoff_max_s: float
    prune_idle_ms: int
    stall_after_s: float
    stop_timeout_s: float
    """After SIGTERM the process exits within this (ECS kills a task that outlives its stop
    timeout, 30 s by default)."""
    log_level: str


def load_settings(environ: Mapping[str, str] | None = None) -> ConsumerSettings:
    env = Env(environ)
    block_ms = env.integer("BLOCK_MS", 2000, minimum=10, maximum=60_000)
    prune_idle_ms = env.integer(
        "CONSUMER_PRUNE_IDLE_MS", 3_600_000, minimum=1000, maximum=30 * 86_400_000
    )
    if prune_idle_ms < 4 * block_ms:
        # A live consumer is idle for up to one blocking read; pruning it would be harmless
        # (its next read recreates it) but would churn the group.
        raise env_error(
            "CONSUMER_PRUNE_IDLE_MS",
            prune_idle_ms,
            f"use at least 4 x BLOCK_MS ({4 * block_ms}), or lower BLOCK_MS",
        )
    return ConsumerSettings(
        port=env.integer(EnvVar.PORT, CONSUMER_PORT, minimum=0, maximum=65535),
        bind_host=env.string("BIND_HOST", "0.0.0.0"),  # noqa: S104 - a container listens on all
        redis=load_redis(env),
        db=load_db(env),
        group=env.string("QUEUE_GROUP", QUEUE_GROUP),
        consumer_name=env.string("CONSUMER_NAME", f"{hostname()}-{os.getpid()}"),
        batch_size=env.integer("BATCH_SIZE", 1000, minimum=1, maximum=10_000),
        block_ms=block_ms,
        max_attempts=env.integer("MAX_ATTEMPTS", 5, minimum=1, maximum=1000),
        claim_idle_ms=env.integer("CLAIM_IDLE_MS", 30_000, minimum=100, maximum=86_400_000),
        claim_interval_ms=env.integer("CLAIM_INTERVAL_MS", 5_000, minimum=100, maximum=3_600_000),
        metrics_interval_s=env.number(EnvVar.METRICS_INTERVAL, 60.0, minimum=0.1, maximum=3600),
        metrics_namespace=env.string(EnvVar.METRICS_NAMESPACE, METRICS_NAMESPACE),
        environment=env.string(EnvVar.ENVIRONMENT, "local"),
        db_migrate=env.choice(EnvVar.DB_MIGRATE, "auto", ("auto", "off")),
        backoff_max_s=env.number("BACKOFF_MAX_S", 5.0, minimum=0.05, maximum=300),
        prune_idle_ms=prune_idle_ms,
        stall_after_s=env.number("STALL_AFTER_S", 15.0, minimum=0.5, maximum=3600),
        stop_timeout_s=env.number("STOP_TIMEOUT_S", 20.0, minimum=6, maximum=120),
        log_level=env.choice(EnvVar.LOG_LEVEL, "info", ("debug", "info", "warning", "error")),
    )
