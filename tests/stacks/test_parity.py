"""Production parity (issue 7): what the stacks deploy is what the app tests run against.

One test per defect the review of the synthesized JSON found; each failed before its fix.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from apps.common import contract
from tests.support import ENVIRONMENT_STACKS, ROOT, EnvStack, Synth, containers, one, resources


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def addresses(resource: dict[str, Any]) -> set[str]:
    return set(resource.get("depends_on", []))


def address_of(stack: dict[str, Any], type_: str, predicate: Any) -> set[str]:
    return {f"{type_}.{key}" for key, r in resources(stack, type_).items() if predicate(r)}


# --- 1. CROSSSLOT: one hash tag for the stream and its dead-letter stream -----------------


def test_services_use_the_contract_stream_with_a_hash_tag(env_stack: EnvStack) -> None:
    _, stack = env_stack
    for container in containers(stack).values():
        stream = env_of(container)["QUEUE_STREAM"]
        assert stream == contract.QUEUE_STREAM
        assert contract.hash_tag(stream) == contract.hash_tag(contract.dead_letter_stream(stream))


# --- 4. DB TLS verified against the RDS CA bundle ----------------------------------------


def test_services_verify_the_database_certificate(env_stack: EnvStack) -> None:
    _, stack = env_stack
    for container in containers(stack).values():
        env = env_of(container)
        assert env["DB_TLS"] == "verify"
        assert env["DB_TLS_CA"] == contract.RDS_CA_BUNDLE
        assert env["REDIS_TLS_CA"] == contract.SYSTEM_CA_BUNDLE


def test_migration_verifies_the_database_certificate(env_stack: EnvStack) -> None:
    _, stack = env_stack
    for function in resources(stack, "aws_lambda_function").values():
        variables = function["environment"]["variables"]
        if "DB_HOST" in variables:
            assert variables["DB_TLS"] == "verify"
            assert variables["DB_TLS_CA"] == contract.LAMBDA_RDS_CA_BUNDLE


def test_the_image_path_of_the_ca_bundle_is_the_repository_file() -> None:
    relative = contract.RDS_CA_BUNDLE.removeprefix("/app/")
    assert (ROOT / relative).is_file()
    assert "/var/task/" + relative == contract.LAMBDA_RDS_CA_BUNDLE
    stages = dockerfile_stages((ROOT / "apps" / "Dockerfile").read_text())
    for service in ("producer", "consumer"):
        image = "".join(stages_of_image(stages, service))
        assert "WORKDIR /app" in image, service
        assert re.search(r"^COPY .*apps/common", image, re.M), service
        assert re.search(rf"^COPY apps/{service} apps/{service}$", stages[service][1], re.M)
        users = re.findall(r"^USER (\S+)$", image, re.M)
        assert users, service
        assert users[-1] == "10001:10001", service  # the last USER is the one it runs as


def dockerfile_stages(text: str) -> dict[str, tuple[str, str]]:
    """Each named stage of a multi-stage Dockerfile: name -> (base image or stage, body)."""
    stages: dict[str, tuple[str, str]] = {}
    for block in re.split(r"^(?=FROM )", text, flags=re.M)[1:]:
        header, _, body = block.partition("\n")
        match = re.fullmatch(r"FROM (\S+) AS (\S+)", header.strip())
        assert match, header
        stages[match[2]] = (match[1], body)
    return stages


def stages_of_image(stages: dict[str, tuple[str, str]], target: str) -> list[str]:
    """The bodies of ``target`` and of the stages it is built ``FROM``, base first."""
    bodies = []
    while target in stages:
        target, body = stages[target]
        bodies.insert(0, body)
    return bodies


# --- 6. MySQL 8.4 --------------------------------------------------------------------------


def test_database_runs_mysql_8_4(env_stack: EnvStack) -> None:
    _, stack = env_stack
    instance = one(stack, "aws_db_instance")
    assert instance["engine"] == "mysql"
    assert instance["engine_version"] == "8.4"
    assert one(stack, "aws_db_parameter_group")["family"] == "mysql8.4"


# --- 7. Ordering: what the apply needs exists before it runs -----------------------------


def _rules_between(stack: dict[str, Any], group_key: str, port: int) -> set[str]:
    """The ingress and egress rules that involve security group ``group_key`` on ``port``."""
    sg = f"${{aws_security_group.{group_key}.id}}"
    out = set()
    for type_ in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
        for key, rule in resources(stack, type_).items():
            if rule.get("from_port") == port and sg in (
                rule.get("security_group_id"),
                rule.get("referenced_security_group_id"),
            ):
                out.add(f"{type_}.{key}")
    return out


def _group_key(stack: dict[str, Any], name: str) -> str:
    (key,) = [k for k, g in resources(stack, "aws_security_group").items() if g["name"] == name]
    return key


def test_services_and_migration_wait_for_their_network_rules(env_stack: EnvStack) -> None:
    name, stack = env_stack
    for service in ("producer", "consumer"):
        group = _group_key(stack, f"pcp-{name}-{service}")
        needed = (
            _rules_between(stack, group, 3306)
            | _rules_between(stack, group, 6379)
            | _rules_between(stack, group, 443)
        )
        assert len(needed) == 5  # MySQL pair, queue pair, HTTPS egress
        ecs = next(
            s for s in resources(stack, "aws_ecs_service").values() if s["name"].endswith(service)
        )
        assert needed <= addresses(ecs), service
    migration = _group_key(stack, f"pcp-{name}-migrate")
    needed = _rules_between(stack, migration, 3306) | _rules_between(stack, migration, 443)
    assert len(needed) == 3
    invocation = one(stack, "aws_lambda_invocation")
    assert needed <= addresses(invocation)


# --- 8. A deploy fails when tasks never become healthy --------------------------------------


def test_services_wait_for_a_steady_state(env_stack: EnvStack) -> None:
    _, stack = env_stack
    for service in resources(stack, "aws_ecs_service").values():
        assert service["wait_for_steady_state"] is True


# --- 9. HA pinned: one cache node per AZ ---------------------------------------------------


def test_prod_cache_nodes_are_pinned_one_per_az(synth: Synth) -> None:
    from environments import ENVIRONMENTS

    group = one(synth.stack("prod"), "aws_elasticache_replication_group")
    zones = list(ENVIRONMENTS["prod"].network.availability_zones)
    assert group["preferred_cache_cluster_azs"] == zones
    assert group["num_cache_clusters"] == len(zones)


# --- 10. Least privilege -------------------------------------------------------------------


def test_queue_user_has_exactly_the_contract_access_string(env_stack: EnvStack) -> None:
    _, stack = env_stack
    users = {u["user_name"]: u for u in resources(stack, "aws_elasticache_user").values()}
    assert users["app"]["access_string"] == contract.queue_access_string(contract.QUEUE_STREAM)


def test_cloudfront_may_decrypt_only_for_this_distribution(env_stack: EnvStack) -> None:
    _, stack = env_stack
    (distribution,) = resources(stack, "aws_cloudfront_distribution")
    found = []
    for type_, attribute in (("aws_kms_key", "policy"), ("aws_kms_key_policy", "policy")):
        for key in resources(stack, type_).values():
            for statement in json.loads(key[attribute])["Statement"]:
                if statement.get("Principal", {}).get("Service") == "cloudfront.amazonaws.com":
                    found.append(statement)
    assert found
    for statement in found:
        source = statement["Condition"]["StringEquals"]["aws:SourceArn"]
        assert source == f"${{aws_cloudfront_distribution.{distribution}.arn}}"


def test_every_trust_policy_names_the_source_account(synth: Synth) -> None:
    for name in ("bootstrap", *ENVIRONMENT_STACKS):
        stack = synth.stack(name)
        for key, role in resources(stack, "aws_iam_role").items():
            for statement in json.loads(role["assume_role_policy"])["Statement"]:
                condition = statement.get("Condition", {}).get("StringEquals", {})
                assert condition.get("aws:SourceAccount"), f"{name}: {key}"


def test_iam_database_authentication_is_off(env_stack: EnvStack) -> None:
    _, stack = env_stack
    assert one(stack, "aws_db_instance")["iam_database_authentication_enabled"] is False


# --- 11. One CPU architecture: Graviton ------------------------------------------------------


def test_tasks_and_functions_run_on_arm64(env_stack: EnvStack) -> None:
    _, stack = env_stack
    for task in resources(stack, "aws_ecs_task_definition").values():
        assert task["runtime_platform"]["cpu_architecture"] == "ARM64"
    for function in resources(stack, "aws_lambda_function").values():
        assert function["architectures"] == ["arm64"]


def test_documented_image_builds_target_arm64() -> None:
    for doc in ("README.md", "apps/README.md"):
        builds = [line for line in (ROOT / doc).read_text().splitlines() if "docker build" in line]
        assert builds, doc
        assert all("--platform linux/arm64" in line for line in builds), doc


# --- 2. Rotation without a redeploy --------------------------------------------------------


def test_services_read_their_credentials_from_the_secrets_at_run_time(env_stack: EnvStack) -> None:
    _, stack = env_stack
    names = {s["name"]: key for key, s in resources(stack, "aws_secretsmanager_secret").items()}
    queue = next(k for n, k in names.items() if n.endswith("/queue/app"))
    db = next(k for n, k in names.items() if n.endswith("/mysql/app"))
    for container in containers(stack).values():
        env = env_of(container)
        assert env["REDIS_CREDENTIALS_SECRET"] == f"${{aws_secretsmanager_secret.{queue}.arn}}"
        assert env["DB_CREDENTIALS_SECRET"] == f"${{aws_secretsmanager_secret.{db}.arn}}"
        assert not {"DB_USER", "DB_PASSWORD", "REDIS_USERNAME", "REDIS_PASSWORD"} & set(env)
        assert not container.get("secrets")


def test_both_app_secrets_rotate_on_a_schedule(env_stack: EnvStack) -> None:
    _, stack = env_stack
    rotations = resources(stack, "aws_secretsmanager_secret_rotation")
    secrets = resources(stack, "aws_secretsmanager_secret")
    rotated = {
        secrets[r["secret_id"].split(".")[1]]["name"].rsplit("/", 2)[-2] for r in rotations.values()
    }
    assert rotated == {"mysql", "queue"}
    functions = resources(stack, "aws_lambda_function")
    for rotation in rotations.values():
        assert rotation["rotation_rules"]["automatically_after_days"] <= 30
        function_key = rotation["rotation_lambda_arn"].split(".")[1]
        target = functions[function_key]["environment"]["variables"]["ROTATION_TARGET"]
        assert target in ("mysql", "elasticache")
        assert functions[function_key]["handler"] == "apps.rotate.handler.handler"


def test_terraform_leaves_rotated_passwords_alone(env_stack: EnvStack) -> None:
    _, stack = env_stack
    users = {u["user_name"]: u for u in resources(stack, "aws_elasticache_user").values()}
    assert "authentication_mode" in users["app"]["lifecycle"]["ignore_changes"]


@pytest.mark.parametrize("secret_suffix", ["/queue/app", "/mysql/app"])
def test_task_roles_may_read_the_credentials_secrets(
    env_stack: EnvStack, secret_suffix: str
) -> None:
    _, stack = env_stack
    names = {s["name"]: key for key, s in resources(stack, "aws_secretsmanager_secret").items()}
    secret = next(k for n, k in names.items() if n.endswith(secret_suffix))
    arn = f"${{aws_secretsmanager_secret.{secret}.arn}}"
    roles = {
        k: r for k, r in resources(stack, "aws_iam_role").items() if r["name"].endswith("-task")
    }
    assert len(roles) == 2
    policies = resources(stack, "aws_iam_role_policy").values()
    for key in roles:
        (policy,) = [p for p in policies if p["role"] == f"${{aws_iam_role.{key}.id}}"]
        statements = json.loads(policy["policy"])["Statement"]
        reads = [s for s in statements if s["Action"] == ["secretsmanager:GetSecretValue"]]
        assert any(arn in s["Resource"] for s in reads)
