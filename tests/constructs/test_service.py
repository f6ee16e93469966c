"""FargateService construct: what it takes from its cluster and load balancer, on a unit stack."""

from __future__ import annotations

import json

import pytest

from tests.support import UnitStack, one, resources


def test_a_service_takes_network_namespace_and_names_from_its_cluster(
    unit_stack: UnitStack,
) -> None:
    service = unit_stack.service("worker")
    assert service.discovery_name == "worker.unit.internal"
    assert service.url == "http://worker.unit.internal:8080"
    assert service.metrics.dimensions == {
        "ClusterName": "pcp-unit-cluster",
        "ServiceName": "pcp-unit-worker",
    }
    doc = unit_stack.synth()
    ecs = one(doc, "aws_ecs_service")
    (subnets,) = {tuple(ecs["network_configuration"]["subnets"])}
    private = sorted(k for k in resources(doc, "aws_subnet") if "private" in k)
    assert sorted(subnets) == sorted(f"${{aws_subnet.{k}.id}}" for k in private)
    (namespace_id,) = resources(doc, "aws_service_discovery_private_dns_namespace")
    assert one(doc, "aws_service_discovery_service")["dns_config"]["namespace_id"] == (
        f"${{aws_service_discovery_private_dns_namespace.{namespace_id}.id}}"
    )


def test_the_execution_role_pulls_only_from_the_service_repository(
    unit_stack: UnitStack,
) -> None:
    unit_stack.service("worker")
    doc = unit_stack.synth()
    (repository_id,) = resources(doc, "aws_ecr_repository")
    (policy,) = [
        p
        for p in resources(doc, "aws_iam_role_policy").values()
        if p["name"] == "pull-log-read-secrets"
    ]
    statements = json.loads(policy["policy"])["Statement"]
    pull = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert [s["Resource"] for s in pull] == [[f"${{aws_ecr_repository.{repository_id}.arn}}"]]


def test_a_load_balanced_service_admits_its_load_balancer_and_starts_after_it_forwards(
    unit_stack: UnitStack,
) -> None:
    lb = unit_stack.load_balancer()
    service = unit_stack.service("api", load_balancer=lb)
    service.scale_on_requests(500)
    doc = unit_stack.synth()
    service_sg = (
        f"${{aws_security_group.{unit_stack.stack.get_logical_id(service.security_group)}.id}}"
    )
    lb_sg = f"${{aws_security_group.{unit_stack.stack.get_logical_id(lb.security_group)}.id}}"
    (ingress,) = [
        r
        for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == service_sg
    ]
    assert ingress["referenced_security_group_id"] == lb_sg
    assert (ingress["from_port"], ingress["to_port"]) == (8080, 8080)
    assert ingress["description"] == "ALB to the api API"
    ecs = one(doc, "aws_ecs_service")
    assert ecs["load_balancer"][0]["container_port"] == 8080
    forwarding = {f"{r.terraform_resource_type}.{r.friendly_unique_id}" for r in lb.forwarding}
    assert forwarding <= set(ecs["depends_on"])
    (policy,) = resources(doc, "aws_appautoscaling_policy").values()
    spec = policy["target_tracking_scaling_policy_configuration"]["predefined_metric_specification"]
    (alb_id,) = resources(doc, "aws_lb")
    (tg_id,) = resources(doc, "aws_lb_target_group")
    assert spec["resource_label"] == (
        f"${{aws_lb.{alb_id}.arn_suffix}}/${{aws_lb_target_group.{tg_id}.arn_suffix}}"
    )


def test_scaling_on_requests_needs_a_load_balancer(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError

    service = unit_stack.service("worker")
    with pytest.raises(ConfigError, match=r"^unit/worker\.load_balancer: got None, give the"):
        service.scale_on_requests(500)


def test_a_service_is_refused_a_size_fargate_does_not_offer(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.settings import ServiceSettings

    with pytest.raises(ConfigError, match=r"^unit/worker\.cpu/memory: got 256/4096, use one of"):
        unit_stack.service(
            "worker", settings=ServiceSettings(min_tasks=1, max_tasks=2, cpu=256, memory=4096)
        )
