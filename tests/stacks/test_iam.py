"""IAM: least privilege, no wildcard actions anywhere, roles scoped to their own resources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.support import Synth, resources

POLICY_ATTRIBUTES = {
    "aws_iam_role_policy": "policy",
    "aws_iam_role": "assume_role_policy",
    "aws_kms_key": "policy",
    "aws_s3_bucket_policy": "policy",
    "aws_sns_topic_policy": "policy",
}
RESOURCE_STAR_ALLOWED = {
    # Actions AWS offers no resource-level permission for.
    "ecr:GetAuthorizationToken",
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:UnassignPrivateIpAddresses",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
    "secretsmanager:GetRandomPassword",
    "elasticache:DescribeUsers",  # read-only; the queue rotation waits on the user's status
}


def statements(stack: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for type_, attribute in POLICY_ATTRIBUTES.items():
        for key, resource in resources(stack, type_).items():
            document = json.loads(resource[attribute])
            for statement in document["Statement"]:
                yield type_, key, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_policies_parse_and_exist(synth: Synth) -> None:
    for name, stack in synth.stacks.items():
        assert list(statements(stack)), name


def test_no_wildcard_actions_in_any_allow(synth: Synth) -> None:
    offenders = []
    for name, stack in synth.stacks.items():
        for type_, key, statement in statements(stack):
            if statement["Effect"] != "Allow":
                continue
            for action in as_list(statement["Action"]):
                if "*" in action:
                    offenders.append(f"{name} {type_}.{key}: {action}")
    assert offenders == []


def test_resource_star_only_where_aws_requires_it(synth: Synth) -> None:
    offenders = []
    for name, stack in synth.stacks.items():
        for type_, key, statement in statements(stack):
            if statement["Effect"] != "Allow" or type_ != "aws_iam_role_policy":
                continue
            if "*" in as_list(statement.get("Resource", [])):
                extra = set(as_list(statement["Action"])) - RESOURCE_STAR_ALLOWED
                if extra:
                    offenders.append(f"{name} {key}: {sorted(extra)}")
    assert offenders == []


def test_the_scan_catches_a_wildcard() -> None:
    stack = {
        "resource": {
            "aws_iam_role_policy": {
                "p": {
                    "policy": json.dumps(
                        {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
                    )
                }
            }
        }
    }
    assert [s["Action"] for _, _, s in statements(stack)] == ["s3:*"]


def role_policy(stack: dict[str, Any], role_name: str) -> list[dict[str, Any]]:
    roles = {k: r for k, r in resources(stack, "aws_iam_role").items()}
    (role_key,) = [k for k, r in roles.items() if r["name"] == role_name]
    out: list[dict[str, Any]] = []
    for policy in resources(stack, "aws_iam_role_policy").values():
        if policy["role"] == f"${{aws_iam_role.{role_key}.id}}":
            out.extend(json.loads(policy["policy"])["Statement"])
    return out


def test_execution_roles_pull_and_log_only(synth: Synth) -> None:
    for env in ("dev", "prod"):
        stack = synth.stack(env)
        repos = {
            r["name"].rsplit("/", 1)[1]: k
            for k, r in resources(stack, "aws_ecr_repository").items()
        }
        for service in ("producer", "consumer"):
            statements_ = role_policy(stack, f"pcp-{env}-{service}-execution")
            by_action = {a: s for s in statements_ for a in as_list(s["Action"])}
            assert by_action["ecr:BatchGetImage"]["Resource"] == [
                f"${{aws_ecr_repository.{repos[service]}.arn}}"
            ]
            # ECS injects nothing: the tasks read their credentials themselves.
            assert "secretsmanager:GetSecretValue" not in by_action


def test_task_roles_read_only_the_two_credentials_secrets(synth: Synth) -> None:
    # The one AWS API the apps call: GetSecretValue on their credentials (rotation); the
    # consumer publishes its metrics through its logs.
    stack = synth.stack("prod")
    for service in ("producer", "consumer"):
        statements_ = role_policy(stack, f"pcp-prod-{service}-task")
        by_action = {a: s for s in statements_ for a in as_list(s["Action"])}
        assert set(by_action) == {"secretsmanager:GetSecretValue", "kms:Decrypt"}
        secrets = by_action["secretsmanager:GetSecretValue"]["Resource"]
        assert len(secrets) == 2  # the app's database user and the queue user, nothing else
        assert all(s.startswith("${aws_secretsmanager_secret.") for s in secrets)
        assert by_action["kms:Decrypt"]["Condition"]["StringEquals"]["kms:ViaService"] == (
            "secretsmanager.eu-central-1.amazonaws.com"
        )


def test_migration_reads_only_the_master_and_app_secrets(synth: Synth) -> None:
    stack = synth.stack("dev")
    by_action = {a: s for s in role_policy(stack, "pcp-dev-migrate") for a in as_list(s["Action"])}
    resources_ = by_action["secretsmanager:GetSecretValue"]["Resource"]
    assert any("master_user_secret" in r for r in resources_)
    assert any(r.startswith("${aws_secretsmanager_secret.") for r in resources_)
    assert len(resources_) == 2


def test_queue_rotation_may_modify_only_the_app_user(synth: Synth) -> None:
    stack = synth.stack("prod")
    by_action = {
        a: s for s in role_policy(stack, "pcp-prod-rotate-queue") for a in as_list(s["Action"])
    }
    (user,) = [
        k for k, u in resources(stack, "aws_elasticache_user").items() if u["user_name"] == "app"
    ]
    assert by_action["elasticache:ModifyUser"]["Resource"] == [
        f"${{aws_elasticache_user.{user}.arn}}"
    ]
    assert "secretsmanager:PutSecretValue" in by_action
    assert not any(a.startswith("rds") for a in by_action)
