"""Make an application's PostgreSQL login role the owner of its database, idempotently.

The master connection is the RDS master user: ``CREATEDB CREATEROLE``, not a superuser.
What a run leaves behind:

- the role, ``LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS``, with
  the secret's password (set only when the role cannot log in with it already);
- the database, owned by the role (its ``public`` schema follows, PostgreSQL 15+);
- no ``CONNECT`` or ``TEMPORARY`` on it for ``PUBLIC``: only the owner (and the roles
  that are members of it, such as the master user) connect.

The password never reaches the server in clear text: the role gets a SCRAM-SHA-256
verifier computed here, so no statement (nor a server log of one) holds the password.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from typing import Any

import pg8000.native  # type: ignore[import-untyped]
import scramp  # type: ignore[import-untyped]

from apps.common.errors import ConfigError
from apps.pgowner.names import name_problem

MAINTENANCE_DATABASE = "postgres"
"""Where the master session runs (RDS always has it)."""
SCRAM_ITERATIONS = 4096
"""PostgreSQL's own iteration count for SCRAM-SHA-256 verifiers (``scram_iterations``)."""
LOGIN_REFUSED = frozenset({"28P01", "28000"})
"""SQLSTATEs of a refused login: wrong password, or the role may not log in."""
LEAST_PRIVILEGE = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
PUBLIC_PRIVILEGES = ("CONNECT", "TEMPORARY")
"""What PostgreSQL grants ``PUBLIC`` on a new database, and a run takes away."""


@dataclass(frozen=True)
class Server:
    """Where the instance listens, and the TLS context that verifies its certificate."""

    host: str
    port: int
    tls: ssl.SSLContext
    timeout_s: float = 30.0

    @classmethod
    def verified(cls, host: str, port: int, ca_file: str) -> Server:
        """TLS with the certificate checked against ``ca_file`` and ``host`` (no fallback
        to an unencrypted or unverified connection)."""
        context = ssl.create_default_context(cafile=ca_file)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        return cls(host, port, context)

    def connect(self, user: str, password: str, database: str) -> Any:
        """A ``pg8000.native.Connection`` (autocommit: each statement on its own)."""
        return pg8000.native.Connection(
            user,
            host=self.host,
            port=self.port,
            password=password,
            database=database,
            ssl_context=self.tls,
            timeout=self.timeout_s,
            application_name="pgowner",
        )


def check_name(field: str, name: str) -> str:
    """``name`` when it is a safe role or database name; ConfigError otherwise."""
    problem = name_problem(name)
    if problem:
        raise ConfigError("pgowner", field, repr(name), problem)
    return name


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (as ``psql``'s
    ``\\password`` sends it): the server keeps it as given and never sees the password."""
    if not password:
        raise ConfigError("pgowner", "password", "an empty password", "store a password")
    mechanism = scramp.ScramMechanism("SCRAM-SHA-256")
    salt_, stored_key, server_key, iterations = mechanism.make_auth_info(
        password, iteration_count=SCRAM_ITERATIONS, salt=salt
    )

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt_)}${b64(stored_key)}:{b64(server_key)}"


def _sqlstate(exc: Exception) -> str | None:
    detail = exc.args[0] if exc.args else None
    return str(detail.get("C")) if isinstance(detail, dict) else None


def can_log_in(server: Server, role: str, password: str, database: str) -> bool:
    """Whether ``role`` logs in to ``database`` with ``password`` (over verified TLS). Only
    a refused login is False; anything else (no route, a bad certificate) raises."""
    try:
        server.connect(role, password, database).close()
    except pg8000.native.DatabaseError as exc:
        if _sqlstate(exc) in LOGIN_REFUSED:
            return False
        raise
    return True


class _Owner:
    """One run's view of the master session."""

    def __init__(self, master: Any, role: str) -> None:
        self.master = master
        self.role = role
        self.version = int(master.run("SHOW server_version_num")[0][0])
        self.member_granted = False

    def run(self, sql: str, **params: Any) -> list[list[Any]]:
        rows: list[list[Any]] | None = self.master.run(sql, **params)
        return rows or []

    def act_as_owner(self) -> None:
        """Let the master user set the role as an owner, and act as it (PostgreSQL asks
        for membership in the new owner; 16+ also for its SET option)."""
        sql = "SELECT pg_has_role(current_user, :role, 'USAGE')"
        if self.version >= 160000:
            sql += " AND pg_has_role(current_user, :role, 'SET')"
        if self.run(sql, role=self.role)[0][0]:
            return
        grant = f"GRANT {pg8000.native.identifier(self.role)} TO CURRENT_USER"
        if self.version >= 160000:
            grant += " WITH INHERIT TRUE, SET TRUE"
        self.run(grant)
        self.member_granted = True

    def public_privileges(self, database: str) -> list[str]:
        rows = self.run(
            "SELECT a.privilege_type FROM pg_database d, "
            "aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a "
            "WHERE d.datname = :database AND a.grantee = 0 "
            "AND a.privilege_type IN ('CONNECT', 'TEMPORARY') ORDER BY 1",
            database=database,
        )
        return [str(row[0]) for row in rows]


def ensure_owner(
    master: Any, server: Server, *, role: str, password: str, database: str
) -> dict[str, Any]:
    """Idempotent. ``master`` is a master-user ``pg8000.native.Connection`` (to
    :data:`MAINTENANCE_DATABASE`); ``server`` is where the role's own login is tried.

    Returns a JSON-able summary without the password: what was created or changed.
    """
    check_name("role", role)
    check_name("database", database)
    verifier = scram_verifier(password)
    owner = _Owner(master, role)
    ident, db = pg8000.native.identifier(role), pg8000.native.identifier(database)

    found = owner.run(
        "SELECT rolsuper, rolreplication, rolbypassrls, rolcanlogin, rolcreatedb, "
        "rolcreaterole FROM pg_roles WHERE rolname = :role",
        role=role,
    )
    created_role = attributes_fixed = False
    if not found:
        owner.run(
            f"CREATE ROLE {ident} WITH {LEAST_PRIVILEGE} PASSWORD {pg8000.native.literal(verifier)}"
        )
        created_role = True
    else:
        superuser, replication, bypassrls, login, createdb, createrole = found[0]
        if superuser or replication or bypassrls:
            raise ConfigError(
                "pgowner",
                "role",
                f"{role!r}, a SUPERUSER, REPLICATION or BYPASSRLS role",
                "name a new role in the secret, or have a superuser take those attributes away",
            )
        if not login or createdb or createrole:
            owner.run(f"ALTER ROLE {ident} WITH LOGIN NOCREATEDB NOCREATEROLE")
            attributes_fixed = True

    current = owner.run(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :database",
        database=database,
    )
    created_database = owner_changed = False
    if not current:
        owner.act_as_owner()
        owner.run(f"CREATE DATABASE {db} OWNER {ident}")
        created_database = True
    elif current[0][0] != role:
        owner.act_as_owner()
        owner.run(f"ALTER DATABASE {db} OWNER TO {ident}")
        owner_changed = True

    revoked = owner.public_privileges(database)
    if revoked:
        owner.act_as_owner()  # a grant is revoked by its grantor: the owner
        owner.run(f"REVOKE {', '.join(PUBLIC_PRIVILEGES)} ON DATABASE {db} FROM PUBLIC")
        left = owner.public_privileges(database)
        if left:
            raise RuntimeError(f"PUBLIC keeps {', '.join(left)} on database {database}")

    password_set = created_role
    if not created_role and not can_log_in(server, role, password, database):
        owner.run(f"ALTER ROLE {ident} WITH PASSWORD {pg8000.native.literal(verifier)}")
        password_set = True
    if password_set and not can_log_in(server, role, password, database):
        raise RuntimeError(f"role {role} cannot log in to {database} with its new password")

    summary: dict[str, Any] = {
        "role": role,
        "database": database,
        "created_role": created_role,
        "attributes_fixed": attributes_fixed,
        "password": "set" if password_set else "unchanged",
        "created_database": created_database,
        "owner_changed": owner_changed,
        "public_revoked": revoked,
        "master_member_granted": owner.member_granted,
    }
    summary["changed"] = any(
        (
            created_role,
            attributes_fixed,
            password_set,
            created_database,
            owner_changed,
            revoked,
            owner.member_granted,
        )
    )
    return summary
