"""ECS: cluster, the producer and consumer services, their containers and discovery."""

from __future__ import annotations

import json
import re

import pytest

from environments import ENVIRONMENTS
from tests.support import (
    IMAGE_TAG,
    EnvStack,
    Synth,
    containers,
    logical_id,
    named,
    one,
    ref,
    resources,
)

SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL")


def test_cluster_has_container_insights(env_stack: EnvStack) -> None:
    name, stack = env_stack
    cluster = one(stack, "aws_ecs_cluster")
    assert cluster["name"] == f"pcp-{name}-cluster"
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enhanced"}]
    insights = named(stack, "aws_cloudwatch_log_group")[
        f"/aws/ecs/containerinsights/pcp-{name}-cluster/performance"
    ]
    assert insights["kms_key_id"].startswith("${aws_kms_key.")


def test_services_run_privately_on_fargate_with_rollback(env_stack: EnvStack) -> None:
    name, stack = env_stack
    services = named(stack, "aws_ecs_service")
    assert sorted(services) == [f"pcp-{name}-consumer", f"pcp-{name}-producer"]
    private = sorted(
        ref("aws_subnet", k)
        for k, s in resources(stack, "aws_subnet").items()
        if s["tags"]["tier"] == "private"
    )
    for service in services.values():
        assert service["launch_type"] == "FARGATE"
        net = service["network_configuration"]
        assert net["assign_public_ip"] is False
        assert sorted(net["subnets"]) == private  # every AZ: ECS spreads tasks across them
        assert service["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
        assert service["availability_zone_rebalancing"] == "ENABLED"
        assert service["lifecycle"] == {"ignore_changes": ["desired_count"]}


def test_only_the_producer_is_behind_the_load_balancer(env_stack: EnvStack) -> None:
    name, stack = env_stack
    services = named(stack, "aws_ecs_service")
    target_group = logical_id(stack, "aws_lb_target_group", "target_type", "ip")
    (binding,) = services[f"pcp-{name}-producer"]["load_balancer"]
    assert binding == {
        "container_name": "producer",
        "container_port": 5080,
        "target_group_arn": ref("aws_lb_target_group", target_group, "arn"),
    }
    assert "load_balancer" not in services[f"pcp-{name}-consumer"]


def test_services_start_after_the_schema_migration_and_the_queue_acl(env_stack: EnvStack) -> None:
    """New tasks need this release's schema and this release's queue ACL (the producer's
    enqueue script is refused with NOPERM under the previous one)."""
    _, stack = env_stack
    (invocation,) = resources(stack, "aws_lambda_invocation")
    app_user = next(
        address
        for address, user in resources(stack, "aws_elasticache_user").items()
        if user["user_name"] != "default"
    )
    for service in resources(stack, "aws_ecs_service").values():
        assert f"aws_lambda_invocation.{invocation}" in service["depends_on"]
        assert f"aws_elasticache_user.{app_user}" in service["depends_on"]


def test_both_services_register_in_the_environment_namespace(env_stack: EnvStack) -> None:
    name, stack = env_stack
    namespace = one(stack, "aws_service_discovery_private_dns_namespace")
    assert namespace["name"] == f"{name}.pcp.internal"
    assert namespace["vpc"].startswith("${aws_vpc.")
    ns_id = ref(
        "aws_service_discovery_private_dns_namespace",
        next(iter(resources(stack, "aws_service_discovery_private_dns_namespace"))),
    )
    discovery = resources(stack, "aws_service_discovery_service")
    assert sorted(d["name"] for d in discovery.values()) == ["consumer", "producer"]
    for key, entry in discovery.items():
        assert entry["dns_config"]["namespace_id"] == ns_id
        assert entry["dns_config"]["dns_records"] == [{"ttl": 10, "type": "A"}]
        service = named(stack, "aws_ecs_service")[f"pcp-{name}-{entry['name']}"]
        assert service["service_registries"]["registry_arn"] == ref(
            "aws_service_discovery_service", key, "arn"
        )


def test_producer_reaches_the_consumer_by_its_cloud_map_name(env_stack: EnvStack) -> None:
    name, stack = env_stack
    env = {e["name"]: e["value"] for e in containers(stack)["producer"]["environment"]}
    assert env["CONSUMER_URL"] == f"http://consumer.{name}.pcp.internal:8081"


def test_containers_are_hardened(env_stack: EnvStack) -> None:
    _, stack = env_stack
    for name, container in containers(stack).items():
        assert container["readonlyRootFilesystem"] is True, name
        assert container["user"].isdigit(), name
        assert int(container["user"]) > 0, name
        assert container["healthCheck"]["command"][:4] == [
            "CMD",
            "python",
            "-m",
            "apps.healthcheck",
        ]
        # Liveness only: readiness (the producer's /ready) is the load balancer's check,
        # so the producer's container check asks "/".
        expected = {"producer": "/", "consumer": "/health"}[name]
        assert container["healthCheck"]["command"][4].endswith(
            f":{container['portMappings'][0]['containerPort']}{expected}"
        )
        assert container["logConfiguration"]["logDriver"] == "awslogs"
        assert container["mountPoints"] == [
            {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
        ]
        assert container["image"].endswith(f":{IMAGE_TAG}")


def test_each_service_logs_to_its_own_encrypted_group(env_stack: EnvStack) -> None:
    name, stack = env_stack
    groups = named(stack, "aws_cloudwatch_log_group")
    for service, container in containers(stack).items():
        group = container["logConfiguration"]["options"]["awslogs-group"]
        key = logical_id(stack, "aws_cloudwatch_log_group", "name", f"/pcp/{name}/ecs/{service}")
        assert group == ref("aws_cloudwatch_log_group", key, "name")
        assert (
            groups[f"/pcp/{name}/ecs/{service}"]["retention_in_days"]
            == ENVIRONMENTS[name].services.log_retention_days
        )
        assert groups[f"/pcp/{name}/ecs/{service}"]["kms_key_id"].startswith("${aws_kms_key.")


def test_no_secret_looking_plain_environment_variables(env_stack: EnvStack) -> None:
    _, stack = env_stack
    for name, container in containers(stack).items():
        plain = [e["name"] for e in container["environment"]]
        secret_arns = {"DB_CREDENTIALS_SECRET", "REDIS_CREDENTIALS_SECRET"}  # ARNs, not values
        assert not [
            v for v in plain if v not in secret_arns and any(w in v.upper() for w in SECRET_WORDS)
        ], name
        env = {e["name"]: e["value"] for e in container["environment"]}
        for arn in secret_arns:
            assert re.fullmatch(r"\$\{aws_secretsmanager_secret\.[\w-]+\.arn\}", env[arn])
        for variable in container["environment"]:
            assert "password" not in variable["value"].lower(), (name, variable)


def test_credentials_come_from_secrets_manager(env_stack: EnvStack) -> None:
    name, stack = env_stack
    secrets = named(stack, "aws_secretsmanager_secret")
    app_db = ref(
        "aws_secretsmanager_secret",
        logical_id(stack, "aws_secretsmanager_secret", "name", f"/pcp/{name}/mysql/app"),
        "arn",
    )
    queue = ref(
        "aws_secretsmanager_secret",
        logical_id(stack, "aws_secretsmanager_secret", "name", f"/pcp/{name}/queue/app"),
        "arn",
    )
    assert f"/pcp/{name}/mysql/app" in secrets
    for service, container in containers(stack).items():
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["DB_CREDENTIALS_SECRET"] == app_db, service
        assert env["REDIS_CREDENTIALS_SECRET"] == queue, service
        assert "secrets" not in container, service  # read at run time, not injected
        # The services never see the RDS master secret.
        assert "master_user_secret" not in json.dumps(container)


def test_services_connect_with_tls(env_stack: EnvStack) -> None:
    _, stack = env_stack
    for container in containers(stack).values():
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["DB_TLS"] == "verify"
        assert env["REDIS_URL"].startswith("rediss://")


def test_prod_runs_at_least_two_tasks_of_each_service(synth: Synth) -> None:
    prod = synth.stack("prod")
    for service in resources(prod, "aws_ecs_service").values():
        assert service["desired_count"] >= 2
    for target in resources(prod, "aws_appautoscaling_target").values():
        assert target["min_capacity"] >= 2
        assert target["max_capacity"] > target["min_capacity"]


@pytest.mark.parametrize("name", ["dev", "test", "stage"])
def test_non_prod_starts_with_one_task(synth: Synth, name: str) -> None:
    for target in resources(synth.stack(name), "aws_appautoscaling_target").values():
        assert target["min_capacity"] == 1


def test_repositories_are_immutable_scanned_encrypted_and_pruned(env_stack: EnvStack) -> None:
    name, stack = env_stack
    repos = named(stack, "aws_ecr_repository")
    assert sorted(repos) == [f"pcp/{name}/consumer", f"pcp/{name}/producer"]
    for repo in repos.values():
        assert repo["image_tag_mutability"] == "IMMUTABLE"
        assert repo["image_scanning_configuration"] == {"scan_on_push": True}
        assert repo["encryption_configuration"][0]["encryption_type"] == "KMS"
    for policy in resources(stack, "aws_ecr_lifecycle_policy").values():
        (rule,) = json.loads(policy["policy"])["rules"]
        assert rule["selection"]["countType"] == "imageCountMoreThan"
        assert rule["action"] == {"type": "expire"}
