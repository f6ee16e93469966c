"""The app's stacks: names, remote state, version constraints, default tags."""

from __future__ import annotations

import json
import re
from typing import Any

import cdktf
import pytest

from constructs_lib.errors import ConfigError
from environments import SYSTEM_ENVIRONMENTS
from tests.support import ENVIRONMENT_STACKS, SYNTH_ENVIRON, Synth, load_tool

SYSTEM_STACKS = tuple(SYSTEM_ENVIRONMENTS)


def test_one_stack_per_environment_and_system_environment_plus_bootstrap(synth: Synth) -> None:
    assert sorted(synth.stacks) == sorted([*ENVIRONMENT_STACKS, *SYSTEM_STACKS, "bootstrap"])
    assert set(SYSTEM_STACKS) == {
        f"{system}-{env}"
        for system in ("metabase", "dekart", "metaflow", "panintelligence")
        for env in ("dev", "prod")
    }


@pytest.mark.parametrize(
    ("systems", "stacks"),
    [
        ("metabase", ["bootstrap", "metabase-dev", "metabase-prod"]),
        ("platform, dekart", ["bootstrap", *ENVIRONMENT_STACKS, "dekart-dev", "dekart-prod"]),
    ],
)
def test_systems_selects_what_is_synthesized(
    systems: str, stacks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which stacks ``build_app`` asks for (recorded, not built: the session synthesis
    builds every stack once)."""
    import main

    built: list[str] = []
    monkeypatch.setattr("stacks.BootstrapStack", lambda _app, id_, **_: built.append(id_))
    monkeypatch.setattr("stacks.PlatformStack", lambda _app, id_, **_: built.append(id_))
    classes = main.system_stacks()
    monkeypatch.setattr(
        main,
        "system_stacks",
        lambda: {
            name: lambda _app, *, config, **_: built.append(config.stack_name) for name in classes
        },
    )
    main.build_app(outdir="/nonexistent", environ={**SYNTH_ENVIRON, "SYSTEMS": systems})
    assert sorted(built) == sorted(stacks)


def test_an_unknown_system_is_refused() -> None:
    import main

    with pytest.raises(ConfigError, match=r"^app\.SYSTEMS: got 'metabse', name systems among"):
        main.selected_systems({"SYSTEMS": "metabse"})


def test_environment_stacks_use_the_s3_backend_with_native_locking(synth: Synth) -> None:
    keys = []
    for name in (*ENVIRONMENT_STACKS, *SYSTEM_STACKS):
        backend = synth.stack(name)["terraform"]["backend"]
        assert list(backend) == ["s3"], name
        s3: dict[str, Any] = backend["s3"]
        assert s3["bucket"] == "pcp-terraform-state"
        assert s3["encrypt"] is True
        assert s3["use_lockfile"] is True
        assert "dynamodb_table" not in s3
        keys.append(s3["key"])
    assert keys == [f"{n}/terraform.tfstate" for n in (*ENVIRONMENT_STACKS, *SYSTEM_STACKS)]
    assert len(set(keys)) == len(keys)


def test_bootstrap_keeps_local_state(synth: Synth) -> None:
    backend = synth.stack("bootstrap")["terraform"]["backend"]
    # Relative to cdktf.out/stacks/bootstrap: the project root, on any machine.
    assert backend == {"local": {"path": "../../../terraform.bootstrap.tfstate"}}


def test_every_stack_pins_terraform_and_the_aws_provider(synth: Synth) -> None:
    for name, stack in synth.stacks.items():
        terraform = stack["terraform"]
        assert terraform["required_version"] == ">= 1.10, < 2.0", name
        assert terraform["required_providers"]["aws"]["version"] == "~> 6.25.0", name


def test_provider_default_tags(synth: Synth) -> None:
    for name in ENVIRONMENT_STACKS:
        providers = {p.get("alias"): p for p in synth.stack(name)["provider"]["aws"]}
        # The default provider, and us-east-1 for CloudFront-scoped resources (WAF).
        assert {a: p["region"] for a, p in providers.items()} == {
            None: "eu-central-1",
            "us_east_1": "us-east-1",
        }
        for provider in providers.values():
            assert provider["default_tags"] == [
                {"tags": {"project": "pcp", "environment": name, "managed-by": "cdktf"}}
            ]


def test_testing_helpers_see_the_stack(synth: Synth) -> None:
    # The cdktf Testing matchers take the synthesized JSON text; they return bools.
    assert cdktf.Testing.to_have_provider_with_properties(
        synth.text("prod"), "aws", {"region": "eu-central-1"}
    )
    assert cdktf.Testing.to_have_resource_with_properties(
        synth.text("prod"), "aws_vpc", {"enable_dns_support": True, "enable_dns_hostnames": True}
    )
    assert not cdktf.Testing.to_have_resource_with_properties(
        synth.text("prod"), "aws_vpc", {"enable_dns_support": False}
    )


def test_ecr_targets_name_both_repositories(synth: Synth) -> None:
    found = load_tool("ecr_targets").targets(synth.stack("dev"))
    assert len([t for t in found if t.startswith("-target=aws_ecr_repository.")]) == 2
    assert len([t for t in found if t.startswith("-target=aws_ecr_lifecycle_policy.")]) == 2


_REFERENCE = re.compile(r"\b((?:data\.)?aws_[a-z0-9_]+\.[A-Za-z0-9_-]+)")


def dependency_graph(stack: dict[str, Any]) -> dict[str, set[str]]:
    """Resource address -> the addresses it refers to or depends on (as Terraform sees it)."""
    nodes: dict[str, dict[str, Any]] = {}
    for kind, prefix in (("resource", ""), ("data", "data.")):
        for type_, items in stack.get(kind, {}).items():
            for name, body in items.items():
                nodes[f"{prefix}{type_}.{name}"] = body
    graph: dict[str, set[str]] = {}
    for address, body in nodes.items():
        refs = set(_REFERENCE.findall(json.dumps({k: v for k, v in body.items() if k != "//"})))
        graph[address] = {r for r in refs if r in nodes and r != address}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_dependency_cycle(synth: Synth) -> None:
    """``terraform validate`` cannot run here (no providers): check what it would."""
    for name in ("bootstrap", *ENVIRONMENT_STACKS):
        assert find_cycle(dependency_graph(synth.stack(name))) is None, name


def test_the_cycle_check_finds_a_cycle() -> None:
    stack = {
        "resource": {
            "aws_kms_key": {"k": {"policy": "${aws_cloudfront_distribution.d.arn}"}},
            "aws_cloudfront_distribution": {"d": {"x": "${aws_kms_key.k.arn}"}},
        }
    }
    assert find_cycle(dependency_graph(stack)) == [
        "aws_cloudfront_distribution.d",
        "aws_kms_key.k",
        "aws_cloudfront_distribution.d",
    ]
