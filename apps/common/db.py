"""MySQL/MariaDB connections (pymysql) with the DB_TLS modes."""

from __future__ import annotations

import ssl

import pymysql
import pymysql.cursors

from apps.common.config import DbSettings, TlsMode

ER_ACCESS_DENIED = 1045
ER_LOCK_WAIT_TIMEOUT = 1205
SQL_MODE = "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION"
DEFAULT_READ_TIMEOUT_S = 30
"""How long one statement (and the login) may wait for the server's answer: what ends a
wait on a server that accepted the connection and says nothing. A lock wait ends sooner,
after the session's ``innodb_lock_wait_timeout`` (``DB_LOCK_WAIT_S``)."""


def tls_context(mode: TlsMode, ca_file: str | None) -> ssl.SSLContext | None:
    """``off``: plain TCP; ``required``: TLS, no certificate check; ``verify``: CA + hostname."""
    if mode == "off":
        return None
    if mode == "required":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def connect(
    settings: DbSettings,
    *,
    database: bool = True,
    autocommit: bool = False,
    read_timeout_s: int | None = DEFAULT_READ_TIMEOUT_S,
) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
    """Open one connection; strict SQL mode so bad values fail instead of being clamped.

    A refused login is retried once with the credentials read again from their secret:
    after a rotation, the cached ones may have been retired.
    """
    source = settings.credentials()
    login = source.get()
    for attempt in (1, 2):
        try:
            return raw_connect(
                host=settings.host,
                port=settings.port,
                user=login.username,
                password=login.password,
                database=settings.name if database else None,
                tls=settings.tls,
                tls_ca=settings.tls_ca,
                connect_timeout_s=settings.connect_timeout_s,
                autocommit=autocommit,
                read_timeout_s=read_timeout_s,
                session=session_settings(settings),
            )
        except pymysql.err.OperationalError as exc:
            if attempt == 2 or exc.args[0] != ER_ACCESS_DENIED:
                raise
            fresh = source.refresh()
            if fresh == login:
                raise
            login = fresh
    raise AssertionError("unreachable")


def session_settings(settings: DbSettings) -> dict[str, int]:
    """The apps' session limits: a bounded lock wait, and an idle session (a task frozen or
    cut off mid-transaction) ended by the server, its locks released, within minutes."""
    return {
        "innodb_lock_wait_timeout": settings.lock_wait_s,
        "wait_timeout": settings.idle_timeout_s,
    }


def is_lock_wait_timeout(exc: BaseException) -> bool:
    """A statement waited ``innodb_lock_wait_timeout`` for a row lock and was rolled back."""
    return (
        isinstance(exc, pymysql.err.MySQLError)
        and bool(exc.args)
        and (exc.args[0] == ER_LOCK_WAIT_TIMEOUT)
    )


def raw_connect(
    *,
    host: str,
    port: int,
    user: str,
    password: str,
    database: str | None,
    tls: TlsMode,
    tls_ca: str | None = None,
    connect_timeout_s: int = 5,
    autocommit: bool = False,
    read_timeout_s: int | None = DEFAULT_READ_TIMEOUT_S,
    session: dict[str, int] | None = None,
) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
    ctx = tls_context(tls, tls_ca)
    assignments = [f"SESSION sql_mode = '{SQL_MODE}'"]
    assignments += [f"SESSION {name} = {int(value)}" for name, value in (session or {}).items()]
    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        ssl=ctx,
        ssl_disabled=ctx is None,
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        write_timeout=read_timeout_s,
        autocommit=autocommit,
        charset="utf8mb4",
        init_command="SET " + ", ".join(assignments),
    )
