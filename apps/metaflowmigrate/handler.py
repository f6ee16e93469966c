"""Upgrade the Metaflow metadata service's database schema through its migration server.

The metadata service image runs two servers: the API on 8080 and a migration server on
8082 with ``GET /db_schema_status`` (JSON: ``{"is_up_to_date": bool, "current_version":
..., "migration_in_progress": bool}``) and ``PATCH /upgrade`` (plain text: ``upgrade
success``, or ``upgrade failed`` with status 500). The Terraform module's
``db_migrate`` function calls status, upgrade, status; the stack invokes this function
on every deploy that changes the service's image (``aws_lambda_invocation``), after the
service is steady, through the internal load balancer's migration listener.

Unlike the module's function, this one:

* upgrades only when the status says the schema is behind (an up-to-date schema is left
  alone: no ``PATCH``);
* fails (raises, so the apply fails) when the upgrade does not leave the schema up to
  date, instead of returning the bad status as a success;
* takes its address from ``MIGRATION_URL`` (``http://<nlb>:8082``) and refuses anything
  but ``http://`` inside the VPC.

Settings are read per invocation, never at import.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from apps.common.errors import ConfigError

MIGRATION_URL_VAR = "MIGRATION_URL"
TIMEOUT_VAR = "MIGRATION_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 300.0

log = logging.getLogger("metaflowmigrate")


class MigrationError(RuntimeError):
    """The schema is not up to date after the upgrade, or the server refused."""


def settings(environ: Mapping[str, str]) -> tuple[str, float]:
    """``(base url, timeout)`` from the environment."""
    url = environ.get(MIGRATION_URL_VAR, "").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(
            "metaflowmigrate",
            MIGRATION_URL_VAR,
            repr(url),
            "give http://<host>:<port> of the migration listener",
        )
    raw = environ.get(TIMEOUT_VAR, str(DEFAULT_TIMEOUT_S))
    try:
        timeout = float(raw)
    except ValueError:
        timeout = -1.0
    if not 1 <= timeout <= 900:
        raise ConfigError("metaflowmigrate", TIMEOUT_VAR, repr(raw), "give 1-900 seconds")
    return url, timeout


def _send(method: str, url: str, timeout: float) -> str:
    """The answer's body; :class:`MigrationError` on an HTTP error status."""
    request = urllib.request.Request(url, method=method)  # noqa: S310 (http in the VPC, checked)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return str(answer.read().decode())
    except urllib.error.HTTPError as err:
        raise MigrationError(f"{method} {url}: HTTP {err.code} {err.read()[:500]!r}") from err


def _call(method: str, url: str, timeout: float) -> dict[str, Any]:
    """A JSON answer (the schema status)."""
    body = _send(method, url, timeout)
    try:
        document = json.loads(body) if body.strip() else {}
    except json.JSONDecodeError as err:
        raise MigrationError(f"{method} {url}: not JSON: {body[:200]!r}") from err
    if not isinstance(document, dict):
        raise MigrationError(f"{method} {url}: expected an object, got {body[:200]!r}")
    return document


def migrate(base: str, timeout: float) -> dict[str, Any]:
    """Status, upgrade when behind, status again; the summary, or :class:`MigrationError`."""
    before = _call("GET", f"{base}/db_schema_status", timeout)
    if before.get("is_up_to_date") is True:
        version = before.get("current_version")
        log.info(json.dumps({"message": "schema up to date", "version": version}))
        return {"upgraded": False, "before": before, "after": before}
    if before.get("migration_in_progress") is True:
        raise MigrationError(f"a migration is already running: {before}")
    # Plain text; a failed upgrade answers 500 (an error here). Whether it worked is what
    # the status says next.
    upgrade = _send("PATCH", f"{base}/upgrade", timeout).strip()
    after = _call("GET", f"{base}/db_schema_status", timeout)
    if after.get("is_up_to_date") is not True:
        raise MigrationError(f"schema still behind after the upgrade: {after} ({upgrade})")
    log.info(
        json.dumps(
            {
                "message": "schema upgraded",
                "from": before.get("current_version"),
                "to": after.get("current_version"),
            }
        )
    )
    return {"upgraded": True, "before": before, "after": after, "upgrade": upgrade}


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point. A Terraform ``delete`` action (the invocation being destroyed)
    does nothing."""
    logging.getLogger().setLevel(logging.INFO)
    if isinstance(event.get("tf"), dict) and event["tf"].get("action") == "delete":
        return {"upgraded": False, "skipped": "delete"}
    base, timeout = settings(os.environ)
    return migrate(base, timeout)
