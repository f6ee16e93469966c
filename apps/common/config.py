"""Settings read from environment variables at start-up (never at import time)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from apps.common import contract, credentials
from apps.common.contract import EnvVar
from apps.common.errors import env_error

TlsMode = Literal["off", "required", "verify"]
Num = TypeVar("Num", int, float)

BIGINT_MIN = contract.COUNT_MIN
BIGINT_MAX = contract.COUNT_MAX


class Env:
    """Typed accessors over an environment mapping; errors name the variable."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env: Mapping[str, str] = os.environ if environ is None else environ

    def required(self, name: str, *, allow_empty: bool = False) -> str:
        value = self._env.get(name)
        if value is None or (not allow_empty and value.strip() == ""):
            raise env_error(name, "nothing", "set it (required)")
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
        return self._bounded(name, default, int, "an integer", minimum, maximum)

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        return self._bounded(name, default, float, "a number", minimum, maximum)

    def _bounded(
        self,
        name: str,
        default: Num,
        parse: Callable[[str], Num],
        what: str,
        minimum: Num,
        maximum: Num,
    ) -> Num:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = parse(raw.strip())
        except ValueError:
            raise env_error(name, repr(raw), f"use {what}") from None
        if not minimum <= value <= maximum:
            raise env_error(name, value, f"use {minimum} to {maximum}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(name, default).lower()
        if value not in choices:
            raise env_error(name, repr(value), f"use one of {', '.join(choices)}")
        return value


@dataclass(frozen=True)
class RedisSettings:
    url: str
    username: str | None
    password: str | None
    stream: str
    socket_timeout_s: float
    connect_timeout_s: float
    tls_ca: str | None = None
    """CA bundle that verifies a ``rediss://`` server; None: the system trust store."""
    credentials_secret: str | None = None
    """Secrets Manager secret (``username``, ``password``) that the app user's credentials
    are read from, and re-read after a rotation; None: ``username``/``password``."""
    cluster: bool = False
    """REDIS_CLUSTER=on: a cluster-aware client (topology from CLUSTER SLOTS, MOVED and ASK
    followed) for a cache with several shards; off: one connection pool to REDIS_URL."""

    def credentials(self) -> credentials.CredentialSource | None:
        """Where connections get their login; None: no AUTH (a local server without ACLs)."""
        if self.credentials_secret is None and self.username is None and self.password is None:
            return None
        return credentials.source(
            self.credentials_secret, self.username or "default", self.password
        )

    @property
    def dead_letter_stream(self) -> str:
        return contract.dead_letter_stream(self.stream)

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
    lock_wait_s: int = contract.DB_LOCK_WAIT_S
    """The session's ``innodb_lock_wait_timeout``."""
    idle_timeout_s: int = contract.DB_IDLE_TIMEOUT_S
    """The session's ``wait_timeout``: the server ends the session after this long idle."""
    credentials_secret: str | None = None
    """Secrets Manager secret (``username``, ``password``) the login is read from, and
    re-read after a rotation; None: ``user``/``password``."""

    def credentials(self) -> credentials.CredentialSource:
        return credentials.source(self.credentials_secret, self.user, self.password)

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
    url = env.required(EnvVar.REDIS_URL)
    if not url.startswith(("redis://", "rediss://")):
        raise env_error(EnvVar.REDIS_URL, redact_url(url), "use a redis:// or rediss:// URL")
    stream = env.string(EnvVar.QUEUE_STREAM, contract.QUEUE_STREAM)
    if contract.hash_tag(stream) is None:
        raise env_error(
            EnvVar.QUEUE_STREAM,
            repr(stream),
            f"use a key with a cluster hash tag such as {contract.QUEUE_STREAM} (the stream "
            "and its dead-letter stream must share a slot on cluster-mode Redis)",
        )
    tls_ca = env.optional(EnvVar.REDIS_TLS_CA)
    if tls_ca is not None:
        if not url.startswith("rediss://"):
            raise env_error(EnvVar.REDIS_TLS_CA, repr(tls_ca), "use it with a rediss:// REDIS_URL")
        if not os.path.isfile(tls_ca):
            raise env_error(EnvVar.REDIS_TLS_CA, repr(tls_ca), "name an existing CA bundle file")
    return RedisSettings(
        url=url,
        username=env.optional("REDIS_USERNAME"),
        password=env.optional("REDIS_PASSWORD"),
        stream=stream,
        socket_timeout_s=env.number("REDIS_SOCKET_TIMEOUT_S", 5.0, minimum=0.1, maximum=120),
        connect_timeout_s=env.number("REDIS_CONNECT_TIMEOUT_S", 2.0, minimum=0.1, maximum=60),
        tls_ca=tls_ca,
        credentials_secret=env.optional(EnvVar.REDIS_CREDENTIALS_SECRET),
        cluster=env.choice(EnvVar.REDIS_CLUSTER, "off", ("on", "off")) == "on",
    )


def load_db(env: Env) -> DbSettings:
    host = env.required(EnvVar.DB_HOST)
    name = env.required(EnvVar.DB_NAME)
    secret = env.optional(EnvVar.DB_CREDENTIALS_SECRET)
    if secret is None:
        user = env.required("DB_USER")
        password = env.required("DB_PASSWORD", allow_empty=True)
    else:  # the secret names the user: rotation alternates between two
        user, password = "", ""
    tls = env.choice(EnvVar.DB_TLS, "off", ("off", "required", "verify"))
    tls_ca = env.optional(EnvVar.DB_TLS_CA)
    if tls == "verify":
        if tls_ca is None:
            raise env_error(EnvVar.DB_TLS_CA, "nothing", "set it: DB_TLS=verify needs a CA bundle")
        if not os.path.isfile(tls_ca):
            raise env_error(EnvVar.DB_TLS_CA, repr(tls_ca), "name an existing CA bundle file")
    mode: TlsMode = "off" if tls == "off" else ("required" if tls == "required" else "verify")
    return DbSettings(
        host=host,
        port=env.integer(EnvVar.DB_PORT, 3306, minimum=1, maximum=65535),
        name=name,
        user=user,
        password=password,
        tls=mode,
        tls_ca=tls_ca,
        connect_timeout_s=env.integer("DB_CONNECT_TIMEOUT_S", 5, minimum=1, maximum=60),
        lock_wait_s=env.integer("DB_LOCK_WAIT_S", contract.DB_LOCK_WAIT_S, minimum=1, maximum=25),
        idle_timeout_s=env.integer(
            "DB_IDLE_TIMEOUT_S", contract.DB_IDLE_TIMEOUT_S, minimum=2, maximum=28_800
        ),
        credentials_secret=secret,
    )


def hostname() -> str:
    return socket.gethostname()
