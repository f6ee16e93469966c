"""The PostgreSQL owner function (apps/pgowner) against a real PostgreSQL shaped like RDS.

The server (Debian's PostgreSQL, ``scripts/apt-packages.txt``) speaks TLS with a
certificate signed by a test CA and admits only ``hostssl`` connections with SCRAM
passwords (``rds.force_ssl=1``); the master user is, as on RDS, ``CREATEDB CREATEROLE``
and not a superuser. The handler reads both secrets from a local Secrets Manager, with
the variables the DatabaseOwner construct gives the function. The harness's own
superuser inspects what the handler did. The server logs every statement, so a test can
show that no password reached it.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pg8000.native
import pytest

from apps.common.errors import ConfigError
from apps.devtools.servers import SecretsManager, TlsFiles, free_port, make_tls

ROLE = "metabase"
DATABASE = "metabase"
MASTER = "dbadmin"
MASTER_SECRET = "/local/postgres/master"
APP_SECRET = "/local/postgres/metabase"
OUTSIDER = "outsider"
"""Another login role on the instance: PUBLIC's privileges are what it would have."""


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major, reverse=True)
    path = found[0] if found else shutil.which(name)
    if not path:
        raise FileNotFoundError(
            f"{name} not found (install the Debian packages in scripts/apt-packages.txt)"
        )
    return path


def _major(path: str) -> int:
    return int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0


def _secret() -> str:
    import secrets

    return secrets.token_urlsafe(24)


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in its own temp directory, run by an unprivileged account
    when the tests run as root (PostgreSQL refuses to run as root)."""

    base: Path
    tls: TlsFiles
    port: int
    superuser_password: str
    master_password: str
    account: str | None

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", self.account, "--"] if self.account else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        self._own(self.base)
        self._run(
            _bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        pwfile.unlink()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "ssl": "on",
            "ssl_cert_file": f"'{self.tls.cert}'",
            "ssl_key_file": f"'{self.tls.key}'",
            "password_encryption": "'scram-sha-256'",
            "log_statement": "'all'",
            "log_connections": "on",
            "max_connections": "30",
            "shared_buffers": "16MB",
            "fsync": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        # Like RDS with rds.force_ssl=1: TCP with TLS only, SCRAM passwords, no local socket.
        (self.data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 scram-sha-256\n")
        self._own(self.base)

    def _own(self, path: Path) -> None:
        if not self.account:
            return
        entry = pwd.getpwnam(self.account)
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_file), "-w", "start")

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def connect(
        self,
        user: str,
        password: str,
        database: str = "postgres",
        tls: ssl.SSLContext | bool = True,
    ) -> Any:
        """``tls``: True verifies against the test CA; False sends no TLS request."""
        context = self.tls.client_context() if tls is True else tls
        return pg8000.native.Connection(
            user, host="127.0.0.1", port=self.port, password=password,
            database=database, ssl_context=context, timeout=10,
        )  # fmt: skip

    def superuser(self) -> Any:
        return self.connect("postgres", self.superuser_password)


def _account() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("no unprivileged account (postgres, nobody) to run PostgreSQL as")


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    base = Path(tempfile.mkdtemp(prefix="pgowner-"))
    try:
        server = PostgresServer(
            base, make_tls(base / "tls"), free_port(), _secret(), _secret(), _account()
        )
        server.init()
        server.start()
        try:
            admin = server.superuser()
            master = pg8000.native.literal(server.master_password)
            # The RDS master user: LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE. (The
            # harness's statement stays out of the log the tests search for passwords.)
            admin.run("SET log_statement = 'none'")
            admin.run(f"CREATE ROLE {MASTER} WITH LOGIN CREATEDB CREATEROLE PASSWORD {master}")
            admin.close()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def secrets_manager() -> Iterator[SecretsManager]:
    sm = SecretsManager().start()
    yield sm
    sm.stop()


@dataclass
class Deployed:
    """The function's environment on the test server, and the secrets it reads."""

    pg: PostgresServer
    sm: SecretsManager
    app_password: str
    monkeypatch: pytest.MonkeyPatch

    def put_app(self, username: str, password: str) -> None:
        self.app_password = password
        self.monkeypatch.setenv("APP_SECRET_ARN", self.sm.put(APP_SECRET, username, password))

    def run(self) -> dict[str, Any]:
        from apps.pgowner.handler import handler

        return handler({"action": "own"}, None)

    def owner_connect(self, password: str | None = None, tls: Any = True) -> Any:
        return self.pg.connect(ROLE, password or self.app_password, DATABASE, tls)

    def query(self, sql: str, **params: Any) -> list[list[Any]]:
        admin = self.pg.superuser()
        try:
            return admin.run(sql, **params) or []
        finally:
            admin.close()

    def state(self) -> list[list[Any]]:
        """Everything a run may change, as the superuser sees it."""
        return self.query(
            "SELECT r.oid, r.rolpassword, r.rolcanlogin, r.rolcreatedb, r.rolcreaterole, "
            "d.oid, pg_get_userbyid(d.datdba), d.datacl::text, "
            "(SELECT count(*) FROM pg_auth_members m WHERE m.roleid = r.oid) "
            "FROM pg_authid r LEFT JOIN pg_database d ON d.datname = :db "
            "WHERE r.rolname = :role",
            db=DATABASE,
            role=ROLE,
        )

    def exists(self) -> tuple[bool, bool]:
        role = self.query("SELECT 1 FROM pg_roles WHERE rolname = :r", r=ROLE)
        database = self.query("SELECT 1 FROM pg_database WHERE datname = :d", d=DATABASE)
        return bool(role), bool(database)


@pytest.fixture
def deployed(
    pg: PostgresServer, secrets_manager: SecretsManager, monkeypatch: pytest.MonkeyPatch
) -> Deployed:
    """No owner role, no application database; both secrets in Secrets Manager and the
    function's variables (``DatabaseOwner``) set."""
    admin = pg.superuser()
    try:
        admin.run(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.run(f"DROP ROLE IF EXISTS {ROLE}")
        admin.run(f"DROP ROLE IF EXISTS {OUTSIDER}")
    finally:
        admin.close()
    master_arn = secrets_manager.put(MASTER_SECRET, MASTER, pg.master_password)
    for name, value in {
        "MASTER_SECRET_ARN": master_arn,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(pg.port),
        "DB_NAME": DATABASE,
        "DB_TLS_CA": str(pg.tls.ca),
        **secrets_manager.runtime_env(),
    }.items():
        monkeypatch.setenv(name, value)
    d = Deployed(pg, secrets_manager, "", monkeypatch)
    d.put_app(ROLE, _secret())
    return d


def _sqlstate(exc: BaseException) -> str | None:
    detail = exc.args[0] if exc.args else None
    return detail.get("C") if isinstance(detail, dict) else None


def test_creates_the_owner_role_and_its_database(deployed: Deployed) -> None:
    summary = deployed.run()
    assert summary == {
        "role": ROLE,
        "database": DATABASE,
        "created_role": True,
        "attributes_fixed": False,
        "password": "set",
        "created_database": True,
        "owner_changed": False,
        "public_revoked": ["CONNECT", "TEMPORARY"],
        "master_member_granted": True,
        "changed": True,
        "status": "ok",
    }
    json.dumps(summary)
    conn = deployed.owner_connect()  # TLS verified against the CA, hostname included
    try:
        assert conn.run("SELECT current_user, current_database()") == [[ROLE, DATABASE]]
        assert conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[True]]
        conn.run("CREATE TABLE report_card (id bigint PRIMARY KEY)")  # owns public (PG 15+)
    finally:
        conn.close()
    assert deployed.query(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
        "rolcanlogin FROM pg_roles WHERE rolname = :r",
        r=ROLE,
    ) == [[False, False, False, False, False, True]]
    assert deployed.query(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :d", d=DATABASE
    ) == [[ROLE]]


def test_public_may_not_connect_or_create_temporary_tables(deployed: Deployed) -> None:
    deployed.run()
    password = _secret()
    deployed.query(f"CREATE ROLE {OUTSIDER} LOGIN PASSWORD {pg8000.native.literal(password)}")
    with pytest.raises(pg8000.native.DatabaseError) as refused:
        deployed.pg.connect(OUTSIDER, password, DATABASE).close()
    assert _sqlstate(refused.value) == "42501"  # permission denied for database
    assert deployed.query(
        "SELECT has_database_privilege(:o, :d, 'CONNECT'), "
        "has_database_privilege(:o, :d, 'TEMPORARY')",
        o=OUTSIDER,
        d=DATABASE,
    ) == [[False, False]]
    # The master user administers it as a member of the owner role.
    deployed.pg.connect(MASTER, deployed.pg.master_password, DATABASE).close()


def test_a_rerun_changes_nothing(deployed: Deployed) -> None:
    deployed.run()
    before = deployed.state()
    summary = deployed.run()
    assert summary["changed"] is False
    assert summary["password"] == "unchanged"
    assert not summary["created_role"]
    assert not summary["created_database"]
    assert summary["public_revoked"] == []
    assert deployed.state() == before  # same role, same verifier, same database and ACL
    deployed.owner_connect().close()


def test_a_new_secret_password_takes_effect(deployed: Deployed) -> None:
    deployed.run()
    old = deployed.app_password
    deployed.put_app(ROLE, _secret())
    summary = deployed.run()
    assert (summary["password"], summary["changed"], summary["created_role"]) == (
        "set",
        True,
        False,
    )
    with pytest.raises(pg8000.native.DatabaseError) as refused:
        deployed.owner_connect(old).close()
    assert _sqlstate(refused.value) == "28P01"
    deployed.owner_connect().close()
    ((verifier,),) = deployed.query("SELECT rolpassword FROM pg_authid WHERE rolname = :r", r=ROLE)
    assert verifier.startswith("SCRAM-SHA-256$4096:")


def test_the_server_refuses_a_connection_without_tls(deployed: Deployed) -> None:
    deployed.run()
    with pytest.raises(pg8000.native.DatabaseError) as refused:
        deployed.owner_connect(tls=False).close()
    assert _sqlstate(refused.value) == "28000"
    assert "no encryption" in str(refused.value)
    deployed.owner_connect().close()  # the same login over TLS works


def test_a_ca_that_did_not_sign_the_server_certificate_fails_and_changes_nothing(
    deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_tls(tmp_path / "other-ca")
    monkeypatch.setenv("DB_TLS_CA", str(other.ca))
    with pytest.raises(ssl.SSLCertVerificationError):
        deployed.run()
    assert deployed.exists() == (False, False)


def test_a_database_rds_created_for_the_master_is_handed_to_the_owner(
    deployed: Deployed,
) -> None:
    """RDS creates ``db_name`` at launch, owned by the master user."""
    deployed.query(f"CREATE DATABASE {DATABASE} OWNER {MASTER}")
    summary = deployed.run()
    assert (summary["created_database"], summary["owner_changed"]) == (False, True)
    assert summary["public_revoked"] == ["CONNECT", "TEMPORARY"]
    assert deployed.query(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :d", d=DATABASE
    ) == [[ROLE]]
    deployed.owner_connect().close()


def test_an_existing_role_is_brought_to_least_privilege_and_the_secret_password(
    deployed: Deployed,
) -> None:
    deployed.query(f"CREATE ROLE {ROLE} NOLOGIN CREATEDB CREATEROLE PASSWORD 'elsewhere'")
    summary = deployed.run()
    assert (summary["created_role"], summary["attributes_fixed"], summary["password"]) == (
        False,
        True,
        "set",
    )
    assert deployed.query(
        "SELECT rolcanlogin, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = :r", r=ROLE
    ) == [[True, False, False]]
    deployed.owner_connect().close()


def test_a_superuser_role_is_refused_before_anything_changes(deployed: Deployed) -> None:
    deployed.query(f"CREATE ROLE {ROLE} SUPERUSER LOGIN")
    with pytest.raises(ConfigError, match=r"SUPERUSER, REPLICATION or BYPASSRLS"):
        deployed.run()
    assert deployed.exists() == (True, False)


@pytest.mark.parametrize(
    ("role", "database"),
    [('x"; DROP ROLE dbadmin; --', DATABASE), ("Metabase", DATABASE), ("rds_x", DATABASE),
     (ROLE, "postgres"), (ROLE, "template1")],
)  # fmt: skip
def test_unsafe_or_reserved_names_are_refused_before_anything_changes(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, role: str, database: str
) -> None:
    deployed.put_app(role, _secret())
    monkeypatch.setenv("DB_NAME", database)
    with pytest.raises(ConfigError, match=r"^pgowner\.(role|database): got "):
        deployed.run()
    assert deployed.exists() == (False, False)
    assert deployed.query("SELECT 1 FROM pg_roles WHERE rolname = :r", r=MASTER) == [[1]]


def test_no_password_reaches_a_log_or_the_summary(
    deployed: Deployed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the function's log level (Lambda's JSON format default)
    caplog.set_level(logging.DEBUG, logger="apps")
    first = deployed.app_password
    start = deployed.pg.log_file.stat().st_size
    summaries = [deployed.run()]
    deployed.put_app(ROLE, _secret())
    summaries.append(deployed.run())
    server_log = deployed.pg.log_file.read_bytes()[start:].decode(errors="replace")
    assert 'CREATE ROLE "metabase"' in server_log  # statements are logged...
    assert "SCRAM-SHA-256$4096:" in server_log  # ...with the verifier only
    for password in (first, deployed.app_password, deployed.pg.master_password):
        assert password not in server_log
        assert password not in caplog.text
        assert password not in json.dumps(summaries)
    assert "database owner summary" in caplog.text


def test_a_missing_variable_is_named(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_TLS_CA")
    with pytest.raises(ConfigError, match=r"^environment\.DB_TLS_CA: got nothing"):
        deployed.run()


def test_a_secret_without_username_and_password_is_named(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = deployed.sm.client()
    name = f"/local/postgres/bad-{_secret()}"
    arn = client.create_secret(Name=name, SecretString="not json")["ARN"]
    monkeypatch.setenv("APP_SECRET_ARN", arn)
    with pytest.raises(ConfigError, match=r"^secret\.APP_SECRET_ARN: got a value, store JSON"):
        deployed.run()
    assert deployed.exists() == (False, False)


class _Recorder:
    """A master session that records statements and answers the lookups: no role, no
    database, no membership yet (what a version's SQL is, without that server)."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.statements: list[str] = []

    def run(self, sql: str, **params: Any) -> list[list[Any]] | None:
        self.statements.append(sql)
        if "server_version_num" in sql:
            return [[str(self.version)]]
        if "pg_has_role" in sql:
            return [[False]]
        return [] if sql.startswith("SELECT") else None


class _LogsIn:
    def connect(self, user: str, password: str, database: str) -> Any:
        return self

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("version", "check", "grant"),
    [
        (150004, "SELECT pg_has_role(current_user, :role, 'USAGE')",
         'GRANT "metabase" TO CURRENT_USER'),
        (170002, "SELECT pg_has_role(current_user, :role, 'USAGE') "
         "AND pg_has_role(current_user, :role, 'SET')",
         'GRANT "metabase" TO CURRENT_USER WITH INHERIT TRUE, SET TRUE'),
    ],
)  # fmt: skip
def test_the_master_asks_for_the_set_option_from_postgresql_16(
    version: int, check: str, grant: str
) -> None:
    """PostgreSQL 16 split membership into INHERIT and SET; the instance runs 17 by default
    (the server the tests start runs Debian's 15, so the 16+ statements are shown here)."""
    from apps.pgowner.owner import ensure_owner

    master = _Recorder(version)
    ensure_owner(master, _LogsIn(), role=ROLE, password="pw", database=DATABASE)
    assert check in master.statements
    assert grant in master.statements
    assert master.statements.index(grant) < master.statements.index(
        'CREATE DATABASE "metabase" OWNER "metabase"'
    )
