"""Give an application its own MariaDB user, with every privilege on its database and none
anywhere else, idempotently.

The master connection is the RDS master user: global privileges ``WITH GRANT OPTION``, but
not all of them (no ``DELETE HISTORY``, no ``SUPER``), so RDS refuses its ``GRANT ALL
PRIVILEGES ON db.*``. The user gets :data:`PRIVILEGES` by name instead: every
database-level privilege the master holds. What a run leaves behind:

- the database, ``utf8mb4`` (in the server's utf8mb4 collation, the parameter group's);
- the user ``'<user>'@'%'``, ``REQUIRE SSL`` (``REQUIRE NONE`` where the database only
  offers TLS: ``DB_LOGIN_TLS=optional``), with the secret's password (set only when
  the user cannot log in with it already);
- exactly :data:`PRIVILEGES` on ``<database>.*``, without ``GRANT OPTION``, and nothing
  else: no global privilege, no other database's, no table, column or routine privilege,
  no role, no proxy. Whatever else the user holds is revoked
  (``REVOKE ALL PRIVILEGES, GRANT OPTION``, then its roles and proxies) and reported.

The password never reaches the server in clear text: the user gets the
``mysql_native_password`` hash computed here (``IDENTIFIED BY PASSWORD``), because MariaDB
writes ``IDENTIFIED BY '<password>'`` verbatim to its general log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pymysql

from apps.common.db import raw_connect
from apps.common.errors import ConfigError
from apps.mariadbowner.names import database_problem, user_problem

HOST = "%"
"""The user's host: any (the security groups decide who reaches the instance)."""
PRIVILEGES = (
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES", "INDEX",
    "ALTER", "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE", "CREATE VIEW",
    "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "EVENT", "TRIGGER",
)  # fmt: skip
"""What the user holds on its database: the database-level privileges of the RDS master
user, which is all of them but ``DELETE HISTORY`` (system-versioned tables) and, before
11.4, ``SHOW CREATE ROUTINE``."""
ER_ACCESS_DENIED = 1045
"""A refused login (wrong password, or no TLS for a ``REQUIRE SSL`` user)."""


@dataclass(frozen=True)
class Server:
    """Where the instance listens; every login is over TLS verified against ``ca_file``,
    hostname included (``apps.common.db``'s ``verify`` mode; there is no other)."""

    host: str
    port: int
    ca_file: str
    timeout_s: int = 10

    def connect(self, user: str, password: str) -> pymysql.connections.Connection[Any]:
        """An autocommit session without a default database."""
        return raw_connect(
            host=self.host, port=self.port, user=user, password=password, database=None,
            tls="verify", tls_ca=self.ca_file, connect_timeout_s=self.timeout_s,
            autocommit=True,
        )  # fmt: skip


def check_names(user: str, database: str) -> None:
    """ConfigError unless ``user`` and ``database`` are safe, unreserved names."""
    for field, name, problem in (
        ("user", user, user_problem(user)),
        ("database", database, database_problem(database)),
    ):
        if problem:
            raise ConfigError("mariadbowner", field, repr(name), problem)


def native_hash(password: str) -> str:
    """The ``mysql_native_password`` hash MariaDB stores for ``password``
    (``*`` + hex SHA1(SHA1(password))), so the statement that sets it holds no password.
    ASCII only: clients disagree on how they encode anything else (pymysql: Latin-1)."""
    if not password:
        raise ConfigError("mariadbowner", "password", "an empty password", "store a password")
    if not password.isascii():
        raise ConfigError(
            "mariadbowner", "password", "non-ASCII characters", "store an ASCII password"
        )
    stage1 = hashlib.sha1(password.encode("ascii")).digest()  # noqa: S324 (the server's scheme)
    return "*" + hashlib.sha1(stage1).hexdigest().upper()  # noqa: S324


def grant_pattern(database: str) -> str:
    """``database`` as a database-level grant names it: ``_`` is a wildcard there (a grant
    on ``app_db`` would also cover ``appxdb``), so it is escaped."""
    return database.replace("_", "\\_")


def can_log_in(server: Server, user: str, password: str) -> bool:
    """Whether ``user`` logs in with ``password`` (over verified TLS). Only a refused login
    is False; anything else (no route, a bad certificate, a locked account) raises."""
    try:
        server.connect(user, password).close()
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == ER_ACCESS_DENIED:
            return False
        raise
    return True


class _Session:
    """One run's view of the master session."""

    def __init__(self, master: Any, user: str, database: str) -> None:
        self.master = master
        self.user = user
        self.database = database
        self.pattern = grant_pattern(database)
        self.grantee = f"'{user}'@'{HOST}'"  # as information_schema spells it

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.master.cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())

    def run(self, sql: str, *args: Any) -> None:
        with self.master.cursor() as cur:
            cur.execute(sql, args or None)

    def database_privileges(self) -> set[str]:
        rows = self.rows(
            "SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
            "WHERE GRANTEE = %s AND TABLE_SCHEMA = %s AND IS_GRANTABLE = 'NO'",
            self.grantee,
            self.pattern,
        )
        return {str(row[0]) for row in rows}

    def roles(self) -> list[str]:
        rows = self.rows(
            "SELECT Role FROM mysql.roles_mapping WHERE User = %s AND Host = %s ORDER BY 1",
            self.user,
            HOST,
        )
        return [str(row[0]) for row in rows]

    def proxies(self) -> list[tuple[str, str]]:
        rows = self.rows(
            "SELECT Proxied_user, Proxied_host FROM mysql.proxies_priv "
            "WHERE User = %s AND Host = %s ORDER BY 1, 2",
            self.user,
            HOST,
        )
        return [(str(u), str(h)) for u, h in rows]

    def default_role(self) -> str:
        rows = self.rows(
            "SELECT default_role FROM mysql.user WHERE User = %s AND Host = %s", self.user, HOST
        )
        return str(rows[0][0] or "") if rows else ""

    def extras(self) -> list[str]:
        """Everything the user holds beyond :data:`PRIVILEGES` on its database, readable."""
        found: list[str] = []
        for privilege, grantable in self.rows(
            "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES "
            "WHERE GRANTEE = %s ORDER BY 1",
            self.grantee,
        ):
            if privilege != "USAGE":
                found.append(f"{privilege} ON *.*")
            if grantable == "YES":
                found.append("GRANT OPTION ON *.*")
        grant_option_on: list[str] = []
        for schema, privilege, grantable in self.rows(
            "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE "
            "FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = %s ORDER BY 1, 2",
            self.grantee,
        ):
            if schema != self.pattern or privilege not in PRIVILEGES:
                found.append(f"{privilege} ON `{schema}`.*")
            if grantable == "YES" and schema not in grant_option_on:
                grant_option_on.append(schema)
        found.extend(f"GRANT OPTION ON `{schema}`.*" for schema in grant_option_on)
        for schema, table, privilege in self.rows(
            "SELECT TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE "
            "FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = %s ORDER BY 1, 2, 3",
            self.grantee,
        ):
            found.append(f"{privilege} ON `{schema}`.`{table}`")
        for schema, table, column, privilege in self.rows(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, PRIVILEGE_TYPE "
            "FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = %s ORDER BY 1, 2, 3, 4",
            self.grantee,
        ):
            found.append(f"{privilege} (`{column}`) ON `{schema}`.`{table}`")
        for schema, routine, kind, privileges in self.rows(
            "SELECT Db, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv "
            "WHERE User = %s AND Host = %s ORDER BY 1, 2, 3",
            self.user,
            HOST,
        ):
            if isinstance(privileges, set):  # a SET column, as pymysql may decode it
                privileges = ",".join(sorted(privileges))
            found.append(f"{privileges} ON {kind} `{schema}`.`{routine}`")
        found.extend(f"role `{role}`" for role in self.roles())
        found.extend(f"PROXY ON `{u}`@`{h}`" for u, h in self.proxies())
        if self.default_role():
            found.append(f"default role `{self.default_role()}`")
        return found

    def revoke_everything(self) -> None:
        """Take every privilege, role and proxy away from the user (its login stays)."""
        self.run("REVOKE ALL PRIVILEGES, GRANT OPTION FROM %s@%s", self.user, HOST)
        for role in self.roles():
            quoted = role.replace("`", "``")
            self.run(f"REVOKE `{quoted}` FROM %s@%s", self.user, HOST)
        for proxied_user, proxied_host in self.proxies():
            self.run(
                "REVOKE PROXY ON %s@%s FROM %s@%s", proxied_user, proxied_host, self.user, HOST
            )
        if self.default_role():
            self.run("SET DEFAULT ROLE NONE FOR %s@%s", self.user, HOST)


def _is_mariadb(master: Any) -> str | None:
    with master.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
    version = str(row[0]) if row else ""
    return None if "MariaDB" in version else version


def _ensure_user(
    session: _Session, user: str, password_hash: str, require_tls: bool
) -> tuple[bool, bool]:
    """The user exists with the TLS requirement asked for: whether it was created, and
    whether an existing user's requirement was changed."""
    clause = "REQUIRE SSL" if require_tls else "REQUIRE NONE"
    found = session.rows(
        "SELECT ssl_type FROM mysql.user WHERE User = %s AND Host = %s", user, HOST
    )
    if not found:
        session.run(
            f"CREATE USER %s@%s IDENTIFIED BY PASSWORD %s {clause}", user, HOST, password_hash
        )
        return True, False
    # mysql.user.ssl_type: '' for REQUIRE NONE, ANY for REQUIRE SSL (X509/SPECIFIED are
    # stricter requirements the function replaces by the one asked for).
    has = str(found[0][0]).upper()
    if has != ("ANY" if require_tls else ""):
        session.run(f"ALTER USER %s@%s {clause}", user, HOST)
        return False, True
    return False, False


def ensure_owner(
    master: Any,
    server: Server,
    *,
    master_user: str,
    user: str,
    password: str,
    database: str,
    require_tls: bool = True,
) -> dict[str, Any]:
    """Idempotent. ``master`` is an autocommit master-user session (no default database);
    ``server`` is where the user's own login is tried. ``require_tls``: the user is
    ``REQUIRE SSL`` (unset: yes); False makes it ``REQUIRE NONE``, for an application whose
    client cannot be told to use TLS on a server that offers it without requiring it.

    Returns a JSON-able summary without the password: what was created or changed.
    """
    check_names(user, database)
    if user == master_user:
        raise ConfigError(
            "mariadbowner", "user", repr(user), "name the application's own user, not the master"
        )
    password_hash = native_hash(password)
    other = _is_mariadb(master)
    if other is not None:
        raise ConfigError(
            "mariadbowner", "server", f"version {other!r}", "point DB_HOST at a MariaDB instance"
        )
    session = _Session(master, user, database)

    created_database = False
    if not session.rows(
        "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", database
    ):
        ((collation,),) = session.rows("SELECT @@collation_server")
        clause = f" COLLATE {collation}" if str(collation).startswith("utf8mb4_") else ""
        session.run(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4{clause}")
        created_database = True

    created_user, tls_changed = _ensure_user(session, user, password_hash, require_tls)

    revoked = session.extras()
    if revoked:
        session.revoke_everything()
        left = session.extras()
        if left:
            raise RuntimeError(f"user {user} keeps {', '.join(left)}")

    held = session.database_privileges()
    granted = [p for p in PRIVILEGES if p not in held]
    if granted:
        session.run(f"GRANT {', '.join(granted)} ON `{session.pattern}`.* TO %s@%s", user, HOST)

    password_set = created_user
    if not created_user and not can_log_in(server, user, password):
        session.run("ALTER USER %s@%s IDENTIFIED BY PASSWORD %s", user, HOST, password_hash)
        password_set = True
    if password_set and not can_log_in(server, user, password):
        raise RuntimeError(f"user {user} cannot log in with its new password")

    summary: dict[str, Any] = {
        "user": user,
        "host": HOST,
        "database": database,
        "created_database": created_database,
        "created_user": created_user,
        "tls": "required" if require_tls else "optional",
        "tls_changed": tls_changed,
        "password": "set" if password_set else "unchanged",
        "granted": granted,
        "revoked": revoked,
    }
    summary["changed"] = any(
        (created_database, created_user, tls_changed, password_set, granted, revoked)
    )
    return summary
