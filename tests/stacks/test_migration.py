"""Deploy-time schema migration: the Lambda, its bundle, and its invocation on apply."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from environments import ENVIRONMENTS
from tests.support import ROOT, EnvStack, Synth, one, resources


def test_function_runs_in_the_private_subnets_and_is_invoked_after_the_database(
    env_stack: EnvStack,
) -> None:
    name, stack = env_stack
    function = migration_function(stack)
    assert function["function_name"] == f"pcp-{name}-migrate"
    assert function["handler"] == "apps.migrate.handler.handler"
    assert function["runtime"].startswith("python3.")
    assert function["publish"] is True  # a new version, and so a new invocation, per change
    subnets = function["vpc_config"]["subnet_ids"]
    assert subnets
    assert all("network_private-" in s for s in subnets)
    env = function["environment"]["variables"]
    assert env["MASTER_SECRET_ARN"].endswith(".master_user_secret[0].secret_arn}")
    assert env["DB_TLS"] == "verify"
    assert not any("PASSWORD" in k for k in env)
    invocation = one(stack, "aws_lambda_invocation")
    assert any(d.startswith("aws_db_instance.") for d in invocation["depends_on"])
    assert any(d.startswith("aws_secretsmanager_secret_version.") for d in invocation["depends_on"])
    assert set(invocation["triggers"]) == {"bundle", "function"}
    assert invocation["triggers"]["function"].endswith(".version}")
    # It runs during the apply: the rule to MySQL and the routes to NAT must exist first.
    assert any(
        d.startswith("aws_vpc_security_group_ingress_rule.database_ingress-3306-from-migration")
        for d in invocation["depends_on"]
    )
    routes = [d for d in invocation["depends_on"] if d.startswith("aws_route.")]
    assert len(routes) == len(ENVIRONMENTS[name].network.availability_zones)


def migration_function(stack: dict[str, Any]) -> dict[str, Any]:
    (function,) = [
        f
        for f in resources(stack, "aws_lambda_function").values()
        if f["handler"] == "apps.migrate.handler.handler"
    ]
    return function


def test_functions_share_one_bundle(env_stack: EnvStack) -> None:
    """The migration and both rotation functions run the same package (built once)."""
    _, stack = env_stack
    functions = resources(stack, "aws_lambda_function").values()
    assert len(functions) == 3
    assert len({f["source_code_hash"] for f in functions}) == 1


def test_bundle_is_referenced_relative_to_the_stack(synth: Synth) -> None:
    function = migration_function(synth.stack("dev"))
    assert function["filename"].startswith("assets/")
    bundle = synth.outdir / "stacks" / "dev" / function["filename"]
    assert bundle.is_file()


@pytest.fixture(scope="module")
def bundle(synth: Synth) -> Path:
    function = migration_function(synth.stack("dev"))
    return synth.outdir / "stacks" / "dev" / function["filename"]


def test_bundle_is_reproducible(bundle: Path) -> None:
    from constructs_lib.migration import build_bundle

    build_bundle.cache_clear()
    rebuilt = build_bundle(ROOT)
    assert rebuilt.read_bytes() == bundle.read_bytes()


def test_bundle_holds_only_what_the_handler_needs(bundle: Path) -> None:
    names = zipfile.ZipFile(bundle).namelist()
    assert "apps/migrate/handler.py" in names
    assert "pymysql/__init__.py" in names
    assert not [n for n in names if n.startswith(("apps/producer", "apps/consumer", "tests"))]


def test_bundle_imports_in_isolation(bundle: Path, tmp_path: Path) -> None:
    """The handler imports with nothing but the bundle on the path (as in Lambda)."""
    zipfile.ZipFile(bundle).extractall(tmp_path)
    probe = (
        "import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p];"
        f"sys.path.insert(0, {str(tmp_path)!r});"
        "import apps.migrate.handler as h, pymysql;"
        f"assert h.__file__.startswith({str(tmp_path)!r}), h.__file__;"
        f"assert pymysql.__file__.startswith({str(tmp_path)!r}), pymysql.__file__;"
        "print(h.handler.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "handler"


def test_invocation_input_is_json(env_stack: EnvStack) -> None:
    _, stack = env_stack
    assert json.loads(one(stack, "aws_lambda_invocation")["input"]) == {"action": "migrate"}
    assert resources(stack, "aws_lambda_function")
