"""The project's style rule: no function or method longer than 120 lines (its signature,
docstring and body), in every Python file the project ships or runs."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

LIMIT = 120
SOURCES = ("apps", "bench", "constructs_lib", "environments", "scripts", "stacks", "tests", "tools")


def long_functions(root: Path = ROOT) -> list[str]:
    """``path:line name (N lines)`` for every function over :data:`LIMIT` lines."""
    files = [root / "main.py", *(p for d in SOURCES for p in sorted((root / d).rglob("*.py")))]
    found = []
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - first + 1
                if length > LIMIT:
                    found.append(f"{path.relative_to(root)}:{first} {node.name} ({length} lines)")
    return found


def test_no_function_is_longer_than_120_lines() -> None:
    assert long_functions() == []


def test_the_rule_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "long.py").write_text(f"def long() -> None:\n{body}\n")
    (tmp_path / "main.py").write_text("")
    assert long_functions(tmp_path) == ["stacks/long.py:1 long (121 lines)"]
