"""Settings read from environment variables at start-up (never at import time)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

TlsMode = Literal["off", "required", "verify"]

BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1


class ConfigError(Exception):
    """A required environment variable is missing or a value is invalid."""


class Env:
    """Typed accessors over an environment mapping; errors name the variable."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env: Mapping[str, str] = os.environ if environ is None else environ

    def required(self, name: str, *, allow_empty: bool = False) -> str:
        value = self._env.get(name)
        if value is None or (not allow_empty and value.strip() == ""):
            raise ConfigError(f"missing required environment variable {name}")
        return value

    def optional(self, name: str) -> str | None:
        value = self._env.get(name)
        if value is None or value == "":
            return None
        return value

    def string(self, name: str, default: str) -> str:
        value = self._env.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(
                f"environment variable {name} must be an integer, got {raw!r}"
            ) from None
        if not minimum <= value <= maximum:
            raise ConfigError(
                f"environment variable {name} must be between {minimum} and {maximum}, got {value}"
            )
        return value

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(
                f"environment variable {name} must be a number, got {raw!r}"
            ) from None
        if not minimum <= value <= maximum:
            raise ConfigError(
                f"environment variable {name} must be between {minimum} and {maximum}, got {value}"
            )
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(name, default).lower()
        if value not in choices:
            raise ConfigError(
                f"environment variable {name} must be one of {', '.join(choices)}, got {value!r}"
            )
        return value


@dataclass(frozen=True)
class RedisSettings:
    url: str
    username: str | None
    password: str | None
    stream: str
    socket_timeout_s: float
    connect_timeout_s: float

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.stream}:dead"

    def __repr__(self) -> str:  # never print credentials
        return f"RedisSettings(url={redact_url(self.url)!r}, stream={self.stream!r})"


@dataclass(frozen=True)
class DbSettings:
    host: str
    port: int
    name: str
    user: str
    password: str
    tls: TlsMode
    tls_ca: str | None
    connect_timeout_s: int

    def __repr__(self) -> str:  # never print the password
        return (
            f"DbSettings(host={self.host!r}, port={self.port}, name={self.name!r}, "
            f"user={self.user!r}, tls={self.tls!r})"
        )


def redact_url(url: str) -> str:
    """Hide the userinfo part of a URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def load_redis(env: Env) -> RedisSettings:
    url = env.required("REDIS_URL")
    if not url.startswith(("redis://", "rediss://")):
        raise ConfigError("environment variable REDIS_URL must start with redis:// or rediss://")
    stream = env.string("QUEUE_STREAM", "counts")
    return RedisSettings(
        url=url,
        username=env.optional("REDIS_USERNAME"),
        password=env.optional("REDIS_PASSWORD"),
        stream=stream,
        socket_timeout_s=env.number("REDIS_SOCKET_TIMEOUT_S", 5.0, minimum=0.1, maximum=120),
        connect_timeout_s=env.number("REDIS_CONNECT_TIMEOUT_S", 2.0, minimum=0.1, maximum=60),
    )


def load_db(env: Env) -> DbSettings:
    host = env.required("DB_HOST")
    name = env.required("DB_NAME")
    user = env.required("DB_USER")
    password = env.required("DB_PASSWORD", allow_empty=True)
    tls = env.choice("DB_TLS", "off", ("off", "required", "verify"))
    tls_ca = env.optional("DB_TLS_CA")
    if tls == "verify":
        if tls_ca is None:
            raise ConfigError("missing required environment variable DB_TLS_CA (DB_TLS=verify)")
        if not os.path.isfile(tls_ca):
            raise ConfigError(f"environment variable DB_TLS_CA: no such file {tls_ca!r}")
    mode: TlsMode = "off" if tls == "off" else ("required" if tls == "required" else "verify")
    return DbSettings(
        host=host,
        port=env.integer("DB_PORT", 3306, minimum=1, maximum=65535),
        name=name,
        user=user,
        password=password,
        tls=mode,
        tls_ca=tls_ca,
        connect_timeout_s=env.integer("DB_CONNECT_TIMEOUT_S", 5, minimum=1, maximum=60),
    )


def hostname() -> str:
    return socket.gethostname()
