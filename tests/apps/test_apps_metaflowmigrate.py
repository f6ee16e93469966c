"""The Metaflow schema-upgrade function against an HTTP server speaking the metadata
service's migration contract (``GET /db_schema_status``, ``PATCH /upgrade`` on its
migration port, as in Netflix/metaflow-service's ``migration_service``). The real service
ships only as a container image, which cannot run here, so this server plays its
migration endpoints: what it answers follows that source; the test is about what the
function sends and when it fails."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from apps.common.errors import ConfigError
from apps.metaflowmigrate.handler import MigrationError, handler, migrate, settings


class MigrationServer:
    """A schema at ``version`` of ``latest``; ``PATCH /upgrade`` moves it to ``latest``
    unless ``broken`` and answers as the service does, in plain text (``upgrade success``,
    or ``upgrade failed`` with 500 when ``refuses``); every request is recorded."""

    def __init__(self, version: int, latest: int) -> None:
        self.version, self.latest = version, latest
        self.broken = False
        self.refuses = False
        self.fail_status: int | None = None
        self.in_progress = False
        self.requests: list[str] = []

    def status(self) -> dict[str, Any]:
        return {
            "is_up_to_date": self.version == self.latest,
            "current_version": f"{self.version}",
            "migration_in_progress": self.in_progress,
        }


@pytest.fixture
def server() -> Iterator[tuple[MigrationServer, str]]:
    state = MigrationServer(version=1, latest=3)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, body: dict[str, Any] | str) -> None:
            text = isinstance(body, str)
            data = (body if text else json.dumps(body)).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            state.requests.append(f"GET {self.path}")
            if state.fail_status:
                self._answer(state.fail_status, {"error": "down"})
            elif self.path == "/db_schema_status":
                self._answer(200, state.status())
            else:
                self._answer(404, {})

        def do_PATCH(self) -> None:
            state.requests.append(f"PATCH {self.path}")
            if self.path != "/upgrade":
                self._answer(404, {})
                return
            if state.refuses:
                self._answer(500, "upgrade failed")
                return
            if not state.broken:
                state.version = state.latest
            self._answer(200, "upgrade success")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_schema_behind_is_upgraded_once_and_checked(
    server: tuple[MigrationServer, str],
) -> None:
    state, url = server
    result = migrate(url, 5)
    assert result["upgraded"] is True
    assert result["upgrade"] == "upgrade success"
    assert result["after"]["current_version"] == "3"
    assert state.requests == [
        "GET /db_schema_status",
        "PATCH /upgrade",
        "GET /db_schema_status",
    ]


def test_an_up_to_date_schema_is_left_alone(server: tuple[MigrationServer, str]) -> None:
    state, url = server
    state.version = state.latest
    assert migrate(url, 5)["upgraded"] is False
    assert state.requests == ["GET /db_schema_status"]


def test_an_upgrade_that_leaves_the_schema_behind_fails_the_apply(
    server: tuple[MigrationServer, str],
) -> None:
    state, url = server
    state.broken = True
    with pytest.raises(MigrationError, match="schema still behind after the upgrade"):
        migrate(url, 5)


def test_a_refused_upgrade_fails_with_the_services_answer(
    server: tuple[MigrationServer, str],
) -> None:
    state, url = server
    state.refuses = True
    with pytest.raises(MigrationError, match=r"PATCH .*/upgrade: HTTP 500 b'upgrade failed'"):
        migrate(url, 5)


def test_a_running_migration_is_not_started_twice(server: tuple[MigrationServer, str]) -> None:
    state, url = server
    state.in_progress = True
    with pytest.raises(MigrationError, match="already running"):
        migrate(url, 5)
    assert "PATCH /upgrade" not in state.requests


def test_a_server_error_fails(server: tuple[MigrationServer, str]) -> None:
    state, url = server
    state.fail_status = 500
    with pytest.raises(MigrationError, match="HTTP 500"):
        migrate(url, 5)


def test_the_handler_reads_its_address_per_invocation(
    server: tuple[MigrationServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = server
    monkeypatch.setenv("MIGRATION_URL", url)
    assert handler({}, None)["upgraded"] is True
    state.requests.clear()
    assert handler({"tf": {"action": "delete"}}, None) == {"upgraded": False, "skipped": "delete"}
    assert state.requests == []


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({}, "MIGRATION_URL"),
        ({"MIGRATION_URL": "https://nlb:8082"}, "MIGRATION_URL"),
        ({"MIGRATION_URL": "http://nlb:8082/upgrade"}, "MIGRATION_URL"),
        ({"MIGRATION_URL": "http://nlb:8082", "MIGRATION_TIMEOUT_S": "0"}, "MIGRATION_TIMEOUT_S"),
        ({"MIGRATION_URL": "http://nlb:8082", "MIGRATION_TIMEOUT_S": "x"}, "MIGRATION_TIMEOUT_S"),
    ],
)
def test_bad_settings_are_refused(environ: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^metaflowmigrate\.{field}: got "):
        settings(environ)
