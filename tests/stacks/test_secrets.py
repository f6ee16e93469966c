"""No literal secret anywhere in the synthesized configuration."""

from __future__ import annotations

import re
from typing import Any

from tests.support import Synth

SECRET_KEY = re.compile(
    r"(password|passwd|secret_string|auth_token|token|private_key|secret_key)", re.I
)
ALLOWED_LITERALS = {
    "no-password-required",
    "password",
    "iam",
    "seconds",
    "minutes",
    "hours",
    "days",
    "",
}
"""Literals under secret-looking keys that are not secrets: auth modes, the units of a
Cognito client's token lifetimes (``token_validity_units.access_token = "hours"``), and
the empty string (the asset loader's unset ``force_token``, a trigger, not a secret)."""


def walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}"
            structure = isinstance(value, dict) or (
                isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)
            )
            if SECRET_KEY.search(key) and not structure and not isinstance(value, bool):
                found.append((child, value))
            found.extend(walk(value, child))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(walk(value, f"{path}[{i}]"))
    return found


def is_reference(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return all(isinstance(v, str) and v.startswith("${") and v.endswith("}") for v in values)


def test_secret_looking_values_are_references_only(synth: Synth) -> None:
    offenders = []
    for name, stack in synth.stacks.items():
        for path, value in walk(stack.get("resource", {})):
            literal = isinstance(value, str) and value in ALLOWED_LITERALS
            if is_reference(value) or literal or isinstance(value, (int, float)):
                continue
            offenders.append(f"{name}{path} = {value!r}")
    assert offenders == []


def test_the_scan_catches_a_literal_password() -> None:
    planted = {"aws_db_instance": {"db": {"password": "hunter2hunter2"}}}
    assert walk(planted) == [(".aws_db_instance.db.password", "hunter2hunter2")]
    assert not is_reference("hunter2hunter2")


def test_no_variable_defaults_or_outputs_leak_secrets(synth: Synth) -> None:
    for name, stack in synth.stacks.items():
        for output_name, output in stack.get("output", {}).items():
            if "database" in output_name or "secret" in output_name:
                assert output.get("sensitive") is True, f"{name}.{output_name}"
