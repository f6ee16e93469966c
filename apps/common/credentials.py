"""Credentials that follow a rotating secret, so a rotation needs no redeploy.

Deployed services are given the ARN of each credentials secret (``DB_CREDENTIALS_SECRET``,
``REDIS_CREDENTIALS_SECRET``) rather than its value. They read the secret's ``AWSCURRENT``
version from Secrets Manager at start-up, keep it in memory, and read it again when the
server refuses it. Rotation (``apps/rotate``) keeps the previous credentials valid until
the next rotation (a second MySQL user, a second ElastiCache password), so connections
opened with a cached value keep working and a refused login is retried once with the new
value: no request fails.

Without a secret (``make run``, unit tests), the plain ``*_USER``/``*_PASSWORD`` values
are used as they are.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


class CredentialSource(Protocol):
    def get(self) -> Credentials:
        """The credentials to log in with (cached)."""
        ...

    def refresh(self) -> Credentials:
        """The server refused :meth:`get`'s value: read the current one again."""
        ...


@dataclass(frozen=True)
class StaticCredentials:
    """Fixed credentials: :meth:`refresh` has nothing newer to offer."""

    credentials: Credentials

    def get(self) -> Credentials:
        return self.credentials

    def refresh(self) -> Credentials:
        return self.credentials


class SecretCredentials:
    """The ``AWSCURRENT`` value of a Secrets Manager secret holding ``username`` and
    ``password`` (JSON), read on first use and again on :meth:`refresh`.

    Refreshes are at most one per ``min_interval_s``, so a burst of refused logins (every
    pooled connection at once) costs one API call. Thread-safe.
    """

    def __init__(self, secret_id: str, *, client: Any = None, min_interval_s: float = 1.0):
        self.secret_id = secret_id
        self._client = client
        self._min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._value: Credentials | None = None
        self._read_at = float("-inf")
        self.reads = 0

    def __repr__(self) -> str:
        return f"SecretCredentials({self.secret_id!r})"

    def _sm(self) -> Any:
        if self._client is None:
            import boto3  # only deployed services (and tests of them) need it
            from botocore.config import Config  # type: ignore[import-untyped]

            # Bounded: a login waits on this call, and botocore's default read timeout
            # (60 s, retried) would stall the service far longer than the login's own timeout.
            config = Config(
                connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
            )
            self._client = boto3.client("secretsmanager", config=config)
        return self._client

    def _read(self) -> Credentials:
        reply = self._sm().get_secret_value(SecretId=self.secret_id, VersionStage="AWSCURRENT")
        data = json.loads(reply["SecretString"])
        self.reads += 1
        self._read_at = time.monotonic()
        self._value = Credentials(str(data["username"]), str(data["password"]))
        return self._value

    def get(self) -> Credentials:
        with self._lock:
            return self._value if self._value is not None else self._read()

    def refresh(self) -> Credentials:
        with self._lock:
            if self._value is not None and time.monotonic() - self._read_at < self._min_interval_s:
                return self._value
            return self._read()


_BY_SECRET: dict[str, SecretCredentials] = {}
_BY_SECRET_LOCK = threading.Lock()


def from_secret(secret_id: str) -> SecretCredentials:
    """One cache per secret per process, shared by every connection that uses it."""
    with _BY_SECRET_LOCK:
        source = _BY_SECRET.get(secret_id)
        if source is None:
            source = _BY_SECRET[secret_id] = SecretCredentials(secret_id)
        return source


def source(secret_id: str | None, username: str | None, password: str | None) -> CredentialSource:
    """The secret when there is one, else the static username and password."""
    if secret_id:
        return from_secret(secret_id)
    return StaticCredentials(Credentials(username or "", password or ""))


def forget() -> None:
    """Drop every cached secret (tests: a new local Secrets Manager, new values)."""
    with _BY_SECRET_LOCK:
        _BY_SECRET.clear()
