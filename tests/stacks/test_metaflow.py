"""The Metaflow metadata service's stacks: the module's resources and outputs, held to the
project's standards (the standards every system shares are in test_systems.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from environments import metaflow
from environments.systems import ExistingDatabase, MetaflowConfig
from tests.support import Synth, containers, one, resources

STACKS = ("metaflow-dev", "metaflow-prod")


def synth_config(config: MetaflowConfig) -> dict[str, Any]:
    """One Metaflow stack built from ``config`` (the session synthesis has the shipped ones)."""
    from cdktf import App, Testing

    from environments.state import StateConfig
    from stacks.metaflow import MetaflowStack

    found: dict[str, Any] = json.loads(
        Testing.synth(MetaflowStack(App(), config=config, state=StateConfig()))
    )
    return found


@pytest.mark.parametrize("name", STACKS)
def test_service_behind_an_internal_nlb_with_api_and_migration_ports(
    synth: Synth, name: str
) -> None:
    stack = synth.stack(name)
    nlb = one(stack, "aws_lb")
    assert nlb["load_balancer_type"] == "network"
    assert nlb["internal"] is True
    groups = {
        lid: (g["port"], g["protocol"])
        for lid, g in resources(stack, "aws_lb_target_group").items()
    }
    listeners = {
        l_["port"]: groups[l_["default_action"][0]["target_group_arn"].split(".")[1]]
        for l_ in resources(stack, "aws_lb_listener").values()
    }
    assert listeners == {80: (8080, "TCP"), 8082: (8082, "TCP")}
    service = one(stack, "aws_ecs_service")
    assert sorted(lb["container_port"] for lb in service["load_balancer"]) == [8080, 8082]
    (container,) = containers(stack).values()
    assert [p["containerPort"] for p in container["portMappings"]] == [8080, 8082]
    task = one(stack, "aws_ecs_task_definition")
    assert task["runtime_platform"]["cpu_architecture"] == "X86_64"  # amd64-only image
    assert (task["cpu"], task["memory"]) == ("512", "1024")  # the module's defaults


@pytest.mark.parametrize("name", STACKS)
def test_api_gateway_reaches_the_nlb_through_a_vpc_link_with_key_and_usage_plan(
    synth: Synth, name: str
) -> None:
    stack = synth.stack(name)
    (link,) = resources(stack, "aws_api_gateway_vpc_link").values()
    (nlb_id,) = resources(stack, "aws_lb")
    assert link["target_arns"] == [f"${{aws_lb.{nlb_id}.arn}}"]
    for method in resources(stack, "aws_api_gateway_method").values():
        assert method["api_key_required"] is True
    for integration in resources(stack, "aws_api_gateway_integration").values():
        assert integration["connection_type"] == "VPC_LINK"
        assert integration["type"] == "HTTP_PROXY"
    assert resources(stack, "aws_api_gateway_usage_plan")
    assert resources(stack, "aws_api_gateway_usage_plan_key")


@pytest.mark.parametrize("name", STACKS)
def test_the_access_list_splits_into_the_api_policy_and_the_nlb_security_group(
    synth: Synth, name: str
) -> None:
    stack = synth.stack(name)
    policy = json.loads(one(stack, "aws_api_gateway_rest_api_policy")["policy"])
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"]["NotIpAddress"]["aws:SourceIp"] == ["203.0.113.0/24"]
    (nlb_group,) = [
        lid
        for lid, g in resources(stack, "aws_security_group").items()
        if g["name"].endswith("-nlb")
    ]
    cidrs = {
        r.get("cidr_ipv4")
        for r in resources(stack, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == f"${{aws_security_group.{nlb_group}.id}}"
    }
    assert "172.16.0.0/12" in cidrs
    assert "203.0.113.0/24" not in cidrs
    assert "0.0.0.0/0" not in cidrs


@pytest.mark.parametrize("name", STACKS)
def test_the_migration_function_runs_after_the_service_through_the_migration_port(
    synth: Synth, name: str
) -> None:
    stack = synth.stack(name)
    (invocation,) = [
        i for lid, i in resources(stack, "aws_lambda_invocation").items() if "migration" in lid
    ]
    (service_id,) = resources(stack, "aws_ecs_service")
    assert f"aws_ecs_service.{service_id}" in invocation["depends_on"]
    assert invocation["triggers"]["image"] == metaflow.IMAGE_TAG
    (function,) = [
        f
        for f in resources(stack, "aws_lambda_function").values()
        if "db-migrate" in f["function_name"]
    ]
    url = function["environment"]["variables"]["MIGRATION_URL"]
    assert url.startswith("http://${aws_lb.")
    assert url.endswith(".dns_name}:8082")
    assert function["vpc_config"]["subnet_ids"]


@pytest.mark.parametrize("name", STACKS)
def test_outputs_are_the_modules_and_never_the_api_key(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    outputs = stack["output"]
    assert {
        "METAFLOW_SERVICE_URL",
        "METAFLOW_SERVICE_INTERNAL_URL",
        "api_gateway_rest_api_id_key_id",
        "api_gateway_rest_api_id",
        "metadata_service_security_group_id",
        "metadata_svc_ecs_task_role_arn",
        "migration_function_arn",
        "network_load_balancer_dns_name",
    } <= set(outputs)
    assert outputs["api_gateway_rest_api_id_key_id"]["value"].endswith(".id}")
    assert not any(".value}" in json.dumps(o) for o in outputs.values())


@pytest.mark.parametrize("name", STACKS)
def test_the_datastore_is_read_only_through_s3(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    roles = {r["name"]: lid for lid, r in resources(stack, "aws_iam_role").items()}
    task_role = roles[f"{name}-metaflow-task"]
    (policy,) = [
        json.loads(p["policy"])
        for p in resources(stack, "aws_iam_role_policy").values()
        if p["role"] == f"${{aws_iam_role.{task_role}.id}}"
    ]
    actions = sorted(a for statement in policy["Statement"] for a in statement["Action"])
    assert actions == ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"]


def test_without_api_gateway_the_service_url_is_empty_and_no_api_exists() -> None:
    doc = synth_config(replace(metaflow.DEV, enable_api_gateway=False))
    assert not resources(doc, "aws_api_gateway_rest_api")
    assert doc["output"]["METAFLOW_SERVICE_URL"]["value"] == ""


def test_an_existing_database_is_used_with_its_secret_and_admitted() -> None:
    secret = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:metaflow-db-AbCdEf"
    doc = synth_config(
        replace(
            metaflow.DEV,
            existing_database=ExistingDatabase(
                endpoint="metaflow.abc.eu-central-1.rds.amazonaws.com:5432",
                credentials_secret_arn=secret,
                security_group_id="sg-0123456789abcdef0",
            ),
        )
    )
    assert not resources(doc, "aws_db_instance")
    (container,) = containers(doc).values()
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["MF_METADATA_DB_HOST"] == "metaflow.abc.eu-central-1.rds.amazonaws.com"
    assert env["MF_METADATA_DB_PORT"] == "5432"
    values = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert values == {
        "MF_METADATA_DB_USER": f"{secret}:username::",
        "MF_METADATA_DB_PSWD": f"{secret}:password::",
    }
    ingress = [
        r
        for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
        if "existing-database-sg" in r["security_group_id"]
    ]
    assert [r["from_port"] for r in ingress] == [5432]


@pytest.mark.parametrize("name", STACKS)
def test_the_image_waits_a_minute_for_its_own_migration_server(synth: Synth, name: str) -> None:
    """The image's start script polls its migration server's port before it picks the
    service's version, MF_SERVICE_STARTUP_RETRIES times 1 s apart (upstream default 5: a
    task on 0.5 vCPU can miss it and exit)."""
    (container,) = containers(synth.stack(name)).values()
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert int(env["MF_SERVICE_STARTUP_RETRIES"]) >= 30
    assert "MF_SERVICE_STARTUP_WAITTIME_SECONDS" not in env  # 1 s, upstream's
