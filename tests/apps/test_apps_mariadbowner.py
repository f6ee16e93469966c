"""The MariaDB owner function (apps/mariadbowner) against a real MariaDB shaped like RDS.

The server (Debian's MariaDB, ``scripts/apt-packages.txt``, started by
``apps.devtools.servers.MariaDBServer``) speaks TLS with a certificate signed by a test CA
and refuses connections without it (``require_secure_transport``); it has no anonymous
users. The master user has, as on RDS, the RDS master's global privileges ``WITH GRANT
OPTION`` (no ``DELETE HISTORY``, no ``SUPER``: ``GRANT ALL`` is refused to it). The
handler reads both secrets from a local Secrets Manager, with the variables the
DatabaseOwner construct gives the function. The harness's ``root`` inspects what it did.
"""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from apps.common.errors import ConfigError
from apps.devtools.servers import MariaDBServer, SecretsManager, make_tls

USER = "pi_app"
DATABASE = "pi_repo"
"""With ``_``, a wildcard in database-level grants: the function must escape it."""
LOOKALIKE = "pixrepo"
"""What an unescaped grant on ``pi_repo`` would also cover."""
OTHER = "other"
MASTER = "dbadmin"
MASTER_SECRET = "/local/mariadb/master"
APP_SECRET = "/local/mariadb/pi"
RDS_MASTER_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, "
    "ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, "
    "REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, "
    "CREATE USER, EVENT, TRIGGER, REPLICATION SLAVE"
)
"""The RDS for MariaDB master user's privileges (RDS user guide, master user account
privileges), granted ``ON *.* WITH GRANT OPTION``."""
OWNER_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER, "
    "CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, "
    "CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER"
)
EXPECTED_GRANTS = [
    f"GRANT USAGE ON *.* TO `{USER}`@`%` IDENTIFIED BY PASSWORD '<hash>' REQUIRE SSL",
    f"GRANT {OWNER_PRIVILEGES} ON `pi\\_repo`.* TO `{USER}`@`%`",
]
"""``SHOW GRANTS`` for the user after a run, password hash masked."""


def _secret() -> str:
    import secrets

    return secrets.token_urlsafe(24)


@dataclass
class Maria:
    server: MariaDBServer
    master_password: str

    def root(self) -> pymysql.connections.Connection[Any]:
        return self.server.root_connect()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = self.root()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def connect(
        self, user: str, password: str, database: str | None = None, *, tls: bool = True
    ) -> pymysql.connections.Connection[Any]:
        """``tls``: verified against the test CA, hostname included; False: plain TCP."""
        assert self.server.tls is not None
        context = self.server.tls.client_context() if tls else None
        return pymysql.connect(
            host="127.0.0.1", port=self.server.port, user=user, password=password,
            database=database, ssl=context, ssl_disabled=not tls, connect_timeout=5,
            autocommit=True,
        )  # fmt: skip


@pytest.fixture(scope="module")
def mariadb() -> Iterator[Maria]:
    base = Path(tempfile.mkdtemp(prefix="mariadbowner-"))
    server = MariaDBServer(base, tls=make_tls(base / "tls")).start()
    try:
        m = Maria(server, _secret())
        assert m.query("SELECT user, host FROM mysql.user WHERE user = ''") == []
        conn = m.root()
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_log_off = 1")  # out of the general log
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (MASTER, m.master_password))
                cur.execute(f"GRANT {RDS_MASTER_PRIVILEGES} ON *.* TO %s@'%%' WITH GRANT OPTION",
                            (MASTER,))  # fmt: skip
        finally:
            conn.close()
        yield m
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def secrets_manager() -> Iterator[SecretsManager]:
    sm = SecretsManager().start()
    yield sm
    sm.stop()


@dataclass
class Deployed:
    """The function's environment on the test server, and the secrets it reads."""

    maria: Maria
    sm: SecretsManager
    app_password: str
    monkeypatch: pytest.MonkeyPatch

    def put_app(self, username: str, password: str) -> None:
        self.app_password = password
        self.monkeypatch.setenv("APP_SECRET_ARN", self.sm.put(APP_SECRET, username, password))

    def run(self) -> dict[str, Any]:
        from apps.mariadbowner.handler import handler

        return handler({"action": "own"}, None)

    def app_connect(
        self, password: str | None = None, database: str | None = DATABASE, *, tls: bool = True
    ) -> pymysql.connections.Connection[Any]:
        return self.maria.connect(USER, password or self.app_password, database, tls=tls)

    def grants(self) -> list[str]:
        rows = self.maria.query(f"SHOW GRANTS FOR '{USER}'@'%'")
        masked = []
        for (grant,) in rows:
            head, found, tail = str(grant).partition("PASSWORD '*")
            masked.append(head + "PASSWORD '<hash>'" + tail[41:] if found else str(grant))
        return masked

    def state(self) -> list[Any]:
        """Everything a run may change, as root sees it."""
        return [
            self.maria.query("SELECT Priv FROM mysql.global_priv WHERE User = %s", USER),
            self.maria.query("SELECT * FROM mysql.db WHERE User = %s", USER),
            self.maria.query("SELECT * FROM mysql.roles_mapping WHERE User = %s", USER),
            self.maria.query(
                "SELECT * FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", DATABASE
            ),
        ]

    def exists(self) -> tuple[bool, bool]:
        user = self.maria.query("SELECT 1 FROM mysql.user WHERE User = %s", USER)
        database = self.maria.query(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", DATABASE
        )
        return bool(user), bool(database)


@pytest.fixture
def deployed(
    mariadb: Maria, secrets_manager: SecretsManager, monkeypatch: pytest.MonkeyPatch
) -> Deployed:
    """No application user, no application database; both secrets in Secrets Manager and
    the function's variables (``DatabaseOwner``) set."""
    maria = mariadb
    conn = maria.root()
    try:
        with conn.cursor() as cur:
            for name in (DATABASE, OTHER, LOOKALIKE):
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute("DROP USER IF EXISTS %s@'%%'", (USER,))
            cur.execute("DROP ROLE IF EXISTS reporting")
    finally:
        conn.close()
    master_arn = secrets_manager.put(MASTER_SECRET, MASTER, maria.master_password)
    assert maria.server.tls is not None
    for name, value in {
        "MASTER_SECRET_ARN": master_arn,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(maria.server.port),
        "DB_NAME": DATABASE,
        "DB_TLS_CA": str(maria.server.tls.ca),
        **secrets_manager.runtime_env(),
    }.items():
        monkeypatch.setenv(name, value)
    d = Deployed(maria, secrets_manager, "", monkeypatch)
    d.put_app(USER, _secret())
    return d


ALL = [p.strip() for p in OWNER_PRIVILEGES.split(",")]


def test_creates_the_user_and_its_database(deployed: Deployed) -> None:
    summary = deployed.run()
    assert summary == {
        "user": USER,
        "host": "%",
        "database": DATABASE,
        "created_database": True,
        "created_user": True,
        "tls": "required",
        "tls_changed": False,
        "password": "set",
        "granted": ALL,
        "revoked": [],
        "changed": True,
        "status": "ok",
    }
    json.dumps(summary)
    assert deployed.grants() == EXPECTED_GRANTS  # no global privilege, no GRANT OPTION
    assert deployed.maria.query(
        "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
        DATABASE,
    ) == [("utf8mb4",)]
    conn = deployed.app_connect()  # TLS verified against the CA, hostname included
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER(), DATABASE()")
            assert cur.fetchall() == ((f"{USER}@%", DATABASE),)
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            assert str(cur.fetchall()[0][1]).startswith("TLSv1.")
            cur.execute("CREATE TABLE report (id BIGINT PRIMARY KEY, name VARCHAR(20))")
            cur.execute("INSERT INTO report VALUES (1, 'ok')")
            cur.execute("CREATE VIEW report_names AS SELECT name FROM report")
            cur.execute("DROP VIEW report_names")
            cur.execute("SHOW DATABASES")
            assert {row[0] for row in cur.fetchall()} == {"information_schema", DATABASE}
    finally:
        conn.close()


def test_the_user_has_nothing_outside_its_database(deployed: Deployed) -> None:
    deployed.maria.query(f"CREATE DATABASE `{OTHER}`")
    deployed.maria.query(f"CREATE DATABASE `{LOOKALIKE}`")
    deployed.run()
    conn = deployed.app_connect(database=None)
    try:
        with conn.cursor() as cur:
            for statement in (
                f"CREATE TABLE `{OTHER}`.t (id INT)",
                f"CREATE TABLE `{LOOKALIKE}`.t (id INT)",  # the escaped _ matches only itself
                "CREATE DATABASE elsewhere",
                "SELECT user FROM mysql.user",
                f"GRANT SELECT ON `{DATABASE}`.* TO CURRENT_USER",
            ):
                with pytest.raises(pymysql.err.MySQLError) as refused:
                    cur.execute(statement)
                assert refused.value.args[0] in {1044, 1142, 1045}, statement
            cur.execute(f"USE `{DATABASE}`")
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        deployed.app_connect(database=OTHER).close()
    assert refused.value.args[0] == 1044  # access denied to database


def test_the_user_cannot_log_in_without_tls(deployed: Deployed) -> None:
    deployed.run()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        deployed.app_connect(tls=False).close()
    assert refused.value.args[0] == 1045
    # Its own REQUIRE SSL holds even if the instance's require_secure_transport were off.
    deployed.maria.query("SET GLOBAL require_secure_transport = OFF")
    try:
        with pytest.raises(pymysql.err.OperationalError) as refused:
            deployed.app_connect(tls=False).close()
        assert refused.value.args[0] == 1045
        deployed.maria.connect(MASTER, deployed.maria.master_password, tls=False).close()
    finally:
        deployed.maria.query("SET GLOBAL require_secure_transport = ON")
    deployed.app_connect().close()  # the same login over TLS works


@pytest.fixture
def offered(deployed: Deployed) -> Iterator[Deployed]:
    """The server as ``DatabaseTransport.TLS_OFFERED`` runs it (``require_secure_transport``
    off: TLS offered, plaintext admitted) and the function told so (``DB_LOGIN_TLS``)."""
    deployed.monkeypatch.setenv("DB_LOGIN_TLS", "optional")
    deployed.maria.query("SET GLOBAL require_secure_transport = OFF")
    try:
        yield deployed
    finally:
        deployed.maria.query("SET GLOBAL require_secure_transport = ON")


def test_where_tls_is_only_offered_the_user_may_log_in_without_it(offered: Deployed) -> None:
    summary = offered.run()
    assert (summary["created_user"], summary["tls"], summary["tls_changed"]) == (
        True,
        "optional",
        False,
    )
    assert offered.grants()[0] == (
        f"GRANT USAGE ON *.* TO `{USER}`@`%` IDENTIFIED BY PASSWORD '<hash>'"
    )
    plain = offered.app_connect(tls=False)  # a vendor's client that never asks for TLS
    try:
        with plain.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            assert cur.fetchall()[0][1] == ""
    finally:
        plain.close()
    offered.app_connect().close()  # a client that asks still gets verified TLS
    assert offered.run()["changed"] is False


def test_switching_the_login_tls_requirement_either_way_alters_the_user(
    offered: Deployed,
) -> None:
    offered.monkeypatch.setenv("DB_LOGIN_TLS", "required")
    assert offered.run()["tls_changed"] is False  # created with REQUIRE SSL
    offered.monkeypatch.setenv("DB_LOGIN_TLS", "optional")
    summary = offered.run()
    assert (summary["tls_changed"], summary["changed"]) == (True, True)
    offered.app_connect(tls=False).close()
    offered.monkeypatch.setenv("DB_LOGIN_TLS", "required")
    assert offered.run()["tls_changed"] is True
    with pytest.raises(pymysql.err.OperationalError) as refused:
        offered.app_connect(tls=False).close()
    assert refused.value.args[0] == 1045


def test_an_unknown_login_tls_value_is_named(deployed: Deployed) -> None:
    deployed.monkeypatch.setenv("DB_LOGIN_TLS", "sometimes")
    with pytest.raises(
        ConfigError,
        match=r"^environment\.DB_LOGIN_TLS: got 'sometimes', use one of required, optional$",
    ):
        deployed.run()
    assert deployed.exists() == (False, False)


def test_a_rerun_changes_nothing(deployed: Deployed) -> None:
    deployed.run()
    before = deployed.state()
    summary = deployed.run()
    assert summary["changed"] is False
    assert (summary["password"], summary["granted"], summary["revoked"]) == ("unchanged", [], [])
    assert not summary["created_user"]
    assert not summary["created_database"]
    assert deployed.state() == before  # same hash, same grants, same database
    deployed.app_connect().close()


def test_a_new_secret_password_takes_effect(deployed: Deployed) -> None:
    deployed.run()
    old = deployed.app_password
    deployed.put_app(USER, _secret())
    summary = deployed.run()
    assert (summary["password"], summary["changed"], summary["created_user"]) == (
        "set",
        True,
        False,
    )
    assert (summary["granted"], summary["revoked"]) == ([], [])
    with pytest.raises(pymysql.err.OperationalError) as refused:
        deployed.app_connect(old).close()
    assert refused.value.args[0] == 1045
    deployed.app_connect().close()
    assert deployed.grants() == EXPECTED_GRANTS


def test_a_ca_that_did_not_sign_the_server_certificate_fails_and_changes_nothing(
    deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_tls(tmp_path / "other-ca")
    monkeypatch.setenv("DB_TLS_CA", str(other.ca))
    with pytest.raises(pymysql.err.OperationalError) as failed:
        deployed.run()
    assert isinstance(
        getattr(failed.value, "original_exception", None), ssl.SSLCertVerificationError
    )
    assert deployed.exists() == (False, False)


def test_an_over_privileged_user_is_brought_to_its_database_alone(deployed: Deployed) -> None:
    """Whatever someone granted by hand (here ``root``, who holds more than the master) is
    revoked; the password and TLS requirement follow the secret and the rules."""
    for statement in (
        f"CREATE DATABASE `{OTHER}`",
        f"CREATE TABLE `{OTHER}`.t (i INT)",
        f"CREATE PROCEDURE `{OTHER}`.p() SELECT 1",
        f"CREATE USER '{USER}'@'%' IDENTIFIED BY 'elsewhere'",
        f"GRANT SELECT, SUPER ON *.* TO '{USER}'@'%'",
        f"GRANT ALL ON `{OTHER}`.* TO '{USER}'@'%' WITH GRANT OPTION",
        f"GRANT SELECT (i) ON `{OTHER}`.t TO '{USER}'@'%'",
        f"GRANT EXECUTE ON PROCEDURE `{OTHER}`.p TO '{USER}'@'%'",
        f"GRANT SELECT, DELETE HISTORY ON `{DATABASE}`.* TO '{USER}'@'%'",
        "CREATE ROLE reporting",
        f"GRANT reporting TO '{USER}'@'%'",
        f"SET DEFAULT ROLE reporting FOR '{USER}'@'%'",
        f"GRANT PROXY ON '{MASTER}'@'%' TO '{USER}'@'%'",
    ):
        deployed.maria.query(statement)
    summary = deployed.run()
    assert (summary["created_user"], summary["tls_changed"], summary["password"]) == (
        False,
        True,
        "set",
    )
    assert sorted(summary["revoked"]) == sorted([
        "SELECT ON *.*",
        "SUPER ON *.*",
        f"GRANT OPTION ON `{OTHER}`.*",
        *[f"{p} ON `{OTHER}`.*" for p in sorted([*ALL, "DELETE HISTORY"])],
        "SELECT ON `pi_repo`.*",  # the unescaped pattern also covers pixrepo
        "DELETE HISTORY ON `pi_repo`.*",
        f"SELECT (`i`) ON `{OTHER}`.`t`",
        f"Execute ON PROCEDURE `{OTHER}`.`p`",
        "role `reporting`",
        f"PROXY ON `{MASTER}`@`%`",
        "default role `reporting`",
    ])  # fmt: skip
    assert summary["granted"] == ALL
    assert deployed.grants() == EXPECTED_GRANTS
    assert deployed.maria.query("SELECT * FROM mysql.roles_mapping WHERE User = %s", USER) == []
    assert deployed.maria.query("SELECT * FROM mysql.proxies_priv WHERE User = %s", USER) == []
    deployed.app_connect().close()
    again = deployed.run()
    assert (again["changed"], again["revoked"]) == (False, [])


def test_a_database_rds_created_and_a_partial_grant_are_completed(deployed: Deployed) -> None:
    """RDS creates ``db_name`` at launch; a user may already hold part of the grant."""
    deployed.maria.query(f"CREATE DATABASE `{DATABASE}`")
    deployed.maria.query(f"CREATE TABLE `{DATABASE}`.kept (id INT)")
    pw_hash = "*" + "0" * 40
    deployed.maria.query(f"CREATE USER '{USER}'@'%' IDENTIFIED BY PASSWORD '{pw_hash}' REQUIRE SSL")
    deployed.maria.query(f"GRANT SELECT, INSERT ON `pi\\_repo`.* TO '{USER}'@'%'")
    summary = deployed.run()
    assert (summary["created_database"], summary["created_user"], summary["revoked"]) == (
        False,
        False,
        [],
    )
    assert summary["granted"] == [p for p in ALL if p not in {"SELECT", "INSERT"}]
    assert (summary["password"], summary["tls_changed"]) == ("set", False)
    assert deployed.grants() == EXPECTED_GRANTS
    conn = deployed.app_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM kept")
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("user", "database"),
    [("x'; DROP USER dbadmin; --", DATABASE), ("Pi_app", DATABASE), ("rdsadmin", DATABASE),
     ("root", DATABASE), (USER, "mysql"), (USER, "pi-repo"), (USER, "rdsdb")],
)  # fmt: skip
def test_unsafe_or_reserved_names_are_refused_before_anything_changes(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, user: str, database: str
) -> None:
    deployed.put_app(user, _secret())
    monkeypatch.setenv("DB_NAME", database)
    with pytest.raises(ConfigError, match=r"^mariadbowner\.(user|database): got "):
        deployed.run()
    assert deployed.exists() == (False, False)
    assert deployed.maria.query("SELECT 1 FROM mysql.user WHERE User = %s", MASTER) == [(1,)]


def test_the_master_user_is_not_taken_for_the_application(deployed: Deployed) -> None:
    deployed.put_app(MASTER, _secret())
    with pytest.raises(ConfigError, match=r"^mariadbowner\.user: got 'dbadmin', name the"):
        deployed.run()
    assert deployed.exists() == (False, False)
    deployed.maria.connect(MASTER, deployed.maria.master_password).close()


def test_a_non_ascii_password_is_refused_before_anything_changes(deployed: Deployed) -> None:
    deployed.put_app(USER, "pässwörd-" + _secret())
    with pytest.raises(ConfigError, match=r"^mariadbowner\.password: got non-ASCII characters"):
        deployed.run()
    assert deployed.exists() == (False, False)


def test_no_password_reaches_a_log_or_the_summary(
    deployed: Deployed, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="apps")
    general = tmp_path / "general.log"
    general.touch(mode=0o666)
    tmp_path.chmod(0o777)
    deployed.maria.query("SET GLOBAL general_log_file = %s", str(general))
    deployed.maria.query("SET GLOBAL log_output = 'FILE'")
    deployed.maria.query("SET GLOBAL general_log = ON")
    try:
        first = deployed.app_password
        summaries = [deployed.run()]
        deployed.put_app(USER, _secret())
        summaries.append(deployed.run())
    finally:
        deployed.maria.query("SET GLOBAL general_log = OFF")
    server_log = general.read_text(errors="replace")
    assert f"CREATE USER '{USER}'@'%' IDENTIFIED BY PASSWORD '*" in server_log  # the hash...
    assert f"ALTER USER '{USER}'@'%' IDENTIFIED BY PASSWORD '*" in server_log
    for password in (first, deployed.app_password, deployed.maria.master_password):
        assert password not in server_log  # ...never the password
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
    arn = client.create_secret(Name=f"/local/mariadb/bad-{_secret()}", SecretString="not json")
    monkeypatch.setenv("APP_SECRET_ARN", arn["ARN"])
    with pytest.raises(ConfigError, match=r"^secret\.APP_SECRET_ARN: got a value, store JSON"):
        deployed.run()
    assert deployed.exists() == (False, False)


class _MySqlSession:
    """A master session on a MySQL server: answers ``SELECT VERSION()`` and records."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def cursor(self) -> _MySqlSession:
        return self

    def __enter__(self) -> _MySqlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, args: Any = None) -> None:
        self.statements.append(sql)

    def fetchone(self) -> tuple[str]:
        return ("8.4.3",)


def test_a_mysql_server_is_refused_before_anything_changes() -> None:
    """The statements are MariaDB's (native password hashes, ``mysql.roles_mapping``);
    MySQL's application users come from SchemaMigration."""
    from apps.mariadbowner.owner import Server, ensure_owner

    master = _MySqlSession()
    with pytest.raises(ConfigError, match=r"^mariadbowner\.server: got version '8\.4\.3', point"):
        ensure_owner(
            master, Server("h", 3306, "/ca.pem"), master_user=MASTER, user=USER,
            password="pw", database=DATABASE,
        )  # fmt: skip
    assert master.statements == ["SELECT VERSION()"]
