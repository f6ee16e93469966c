"""AWS Lambda entry point ``apps.rotate.handler.handler``: a Secrets Manager rotation
function (the four steps ``createSecret``, ``setSecret``, ``testSecret``,
``finishSecret``, each idempotent, as Secrets Manager may retry any of them).

Environment:

- ``ROTATION_TARGET``: ``mysql`` or ``elasticache``;
- mysql: ``MASTER_SECRET_ARN``, ``DB_HOST``, ``DB_PORT``, ``DB_NAME``, ``DB_TLS``
  (``verify`` with ``DB_TLS_CA``), ``APP_USER_HOST`` (``%``);
- elasticache: ``QUEUE_USER_ID`` (the ElastiCache user id), ``REDIS_URL``
  (``rediss://host:port``, for the test step), optional ``REDIS_TLS_CA``.

boto3 comes from the Lambda runtime and is imported lazily.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from apps.common.config import Env, RedisSettings
from apps.common.contract import EnvVar
from apps.common.credentials import Credentials
from apps.common.db import raw_connect
from apps.common.errors import ConfigError
from apps.migrate.provision import partner, set_app_user

log = logging.getLogger("apps.rotate")
log.setLevel(logging.INFO)

CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
PASSWORD_LENGTH = 40
EXCLUDE_CHARACTERS = "/@\"'\\` :;%,{}[]#&?|<>"
"""Characters kept out of generated passwords: ElastiCache refuses ``/``, ``"``, ``@``
and spaces; the rest stay clear of URL, shell and JSON quoting."""


class Target(Protocol):
    """What a rotation changes: the server side of one credentials secret."""

    def next_credentials(self, current: Credentials, password: str) -> Credentials:
        """The pending credentials, given the current ones and a new password."""
        ...

    def set(self, current: Credentials, pending: Credentials) -> None:
        """Make ``pending`` valid, keeping ``current`` valid too."""
        ...

    def test(self, pending: Credentials) -> None:
        """Log in with ``pending`` and do what the application does; raise if refused."""
        ...


@dataclass(frozen=True)
class MySqlAlternatingUsers:
    """``set`` gives the password to the partner of the current user, with the app's
    grants; the current user is untouched until the next rotation."""

    master: Credentials
    host: str
    port: int
    database: str
    tls: str
    tls_ca: str | None
    user_host: str = "%"

    def _connect(self, login: Credentials, database: str | None) -> Any:
        return raw_connect(
            host=self.host, port=self.port, user=login.username, password=login.password,
            database=database, tls="verify" if self.tls == "verify" else "required",
            tls_ca=self.tls_ca, connect_timeout_s=10, autocommit=False,
        )  # fmt: skip

    def next_credentials(self, current: Credentials, password: str) -> Credentials:
        return Credentials(partner(current.username), password)

    def set(self, current: Credentials, pending: Credentials) -> None:
        if pending.username == current.username:
            raise ValueError("the pending user must be the current user's partner")
        conn = self._connect(self.master, None)
        try:
            with conn.cursor() as cur:
                set_app_user(
                    cur, database=self.database, user=pending.username,
                    password=pending.password, host=self.user_host,
                )  # fmt: skip
            conn.commit()
        finally:
            conn.close()

    def test(self, pending: Credentials) -> None:
        conn = self._connect(pending, self.database)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM counts WHERE id < 0")
        finally:
            conn.close()


class QueueUsers(Protocol):
    """Sets an ElastiCache user's passwords (at most two)."""

    def set_passwords(self, passwords: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class ElastiCacheUser:
    """``ModifyUser`` on the real service, then wait until the user is active again."""

    client: Any
    user_id: str
    timeout_s: float = 300.0

    def set_passwords(self, passwords: Sequence[str]) -> None:
        self.client.modify_user(UserId=self.user_id, Passwords=list(passwords))
        deadline = time.monotonic() + self.timeout_s
        while True:
            (user,) = self.client.describe_users(UserId=self.user_id)["Users"]
            if user["Status"] == "active":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"ElastiCache user {self.user_id} is still {user['Status']}")
            time.sleep(5)


@dataclass(frozen=True)
class RedisTwoPasswords:
    users: QueueUsers
    redis: RedisSettings

    def next_credentials(self, current: Credentials, password: str) -> Credentials:
        return Credentials(current.username, password)

    def set(self, current: Credentials, pending: Credentials) -> None:
        if pending.username != current.username:
            raise ValueError("an ElastiCache rotation keeps the user name")
        self.users.set_passwords([current.password, pending.password])

    def test(self, pending: Credentials) -> None:
        from dataclasses import replace

        from apps.common import redisq

        settings = replace(
            self.redis, username=pending.username, password=pending.password,
            credentials_secret=None,
        )  # fmt: skip
        client = redisq.make_redis(settings)
        try:
            client.ping()
        finally:
            client.close()


def _credentials(secret_string: str, name: str) -> Credentials:
    try:
        data = json.loads(secret_string)
        return Credentials(str(data["username"]), str(data["password"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            "secret", name, "a value", 'store JSON {"username": ..., "password": ...}'
        ) from None


def _value(sm: Any, secret_id: str, **version: str) -> Credentials:
    reply = sm.get_secret_value(SecretId=secret_id, **version)
    return _credentials(reply["SecretString"], secret_id)


def rotate(sm: Any, target: Target, step: str, secret_id: str, token: str) -> None:
    """Run one rotation step for ``secret_id``'s version ``token``.

    Secrets Manager invokes the function only for secrets whose rotation it has enabled,
    and labels ``token`` AWSPENDING before ``createSecret``; neither is required here, so
    the local tests can play Secrets Manager's part against moto."""
    meta = sm.describe_secret(SecretId=secret_id)
    stages: Mapping[str, list[str]] = meta.get("VersionIdsToStages", {})
    if CURRENT in stages.get(token, []):
        log.info("%s: version %s is already current", step, token)
        return
    if step != "createSecret" and PENDING not in stages.get(token, []):
        raise ValueError(f"version {token} of {secret_id} is not pending")
    current = _value(sm, secret_id, VersionStage=CURRENT)
    if step == "createSecret":
        try:
            _value(sm, secret_id, VersionId=token, VersionStage=PENDING)
            return  # created by an earlier attempt
        except sm.exceptions.ResourceNotFoundException:
            pass
        password = sm.get_random_password(
            PasswordLength=PASSWORD_LENGTH, ExcludeCharacters=EXCLUDE_CHARACTERS
        )["RandomPassword"]
        pending = target.next_credentials(current, password)
        sm.put_secret_value(
            SecretId=secret_id,
            ClientRequestToken=token,
            SecretString=json.dumps({"username": pending.username, "password": pending.password}),
            VersionStages=[PENDING],
        )
    elif step == "setSecret":
        target.set(current, _value(sm, secret_id, VersionId=token, VersionStage=PENDING))
    elif step == "testSecret":
        target.test(_value(sm, secret_id, VersionId=token, VersionStage=PENDING))
    elif step == "finishSecret":
        (current_version,) = [v for v, s in stages.items() if CURRENT in s]
        sm.update_secret_version_stage(
            SecretId=secret_id,
            VersionStage=CURRENT,
            MoveToVersionId=token,
            RemoveFromVersionId=current_version,
        )
    else:
        raise ValueError(f"unknown rotation step {step!r}")
    log.info("%s done for %s version %s", step, secret_id, token)


def target_from_env(env: Env, sm: Any, aws: Any) -> Target:
    """The target ``ROTATION_TARGET`` names, configured from the environment."""
    kind = env.choice(EnvVar.ROTATION_TARGET, "mysql", ("mysql", "elasticache"))
    if kind == "mysql":
        master = _value(sm, env.required(EnvVar.MASTER_SECRET_ARN), VersionStage=CURRENT)
        return MySqlAlternatingUsers(
            master=master,
            host=env.required(EnvVar.DB_HOST),
            port=env.integer(EnvVar.DB_PORT, 3306, minimum=1, maximum=65535),
            database=env.required(EnvVar.DB_NAME),
            tls=env.choice(EnvVar.DB_TLS, "verify", ("required", "verify")),
            tls_ca=env.optional(EnvVar.DB_TLS_CA),
            user_host=env.string("APP_USER_HOST", "%"),
        )
    from apps.common.config import load_redis

    return RedisTwoPasswords(
        users=ElastiCacheUser(aws("elasticache"), env.required(EnvVar.QUEUE_USER_ID)),
        redis=load_redis(env),
    )


def handler(event: Mapping[str, Any], context: Any) -> None:
    import boto3  # provided by the Lambda runtime

    sm = boto3.client("secretsmanager")
    target = target_from_env(Env(os.environ), sm, boto3.client)
    rotate(sm, target, event["Step"], event["SecretId"], event["ClientRequestToken"])
