"""Autoscaling: producer on CPU and ALB requests per target, consumer on queue backlog."""

from __future__ import annotations

from typing import Any

from apps.common.contract import SYSTEM_CA_BUNDLE
from environments import ENVIRONMENTS
from tests.support import ROOT, EnvStack, resources

SYSTEM_CA = SYSTEM_CA_BUNDLE  # Debian's trust store, as in the images


def policies(stack: dict[str, Any], env: str, service: str) -> dict[str, dict[str, Any]]:
    prefix = f"pcp-{env}-{service}-scale-"
    return {
        p["name"].removeprefix(prefix): p["target_tracking_scaling_policy_configuration"]
        for p in resources(stack, "aws_appautoscaling_policy").values()
        if p["name"].startswith(prefix)
    }


def test_bounds_follow_the_environment_config(env_stack: EnvStack) -> None:
    name, stack = env_stack
    services = ENVIRONMENTS[name].services
    targets = list(resources(stack, "aws_appautoscaling_target").values())
    assert len(targets) == 2
    bounds = sorted((t["min_capacity"], t["max_capacity"]) for t in targets)
    expected = sorted((s.min_tasks, s.max_tasks) for s in (services.producer, services.consumer))
    assert bounds == expected
    for target in targets:
        assert target["scalable_dimension"] == "ecs:service:DesiredCount"
        assert target["resource_id"].startswith(f"service/pcp-{name}-cluster/")


def test_producer_scales_on_cpu_and_requests_per_target(env_stack: EnvStack) -> None:
    name, stack = env_stack
    services = ENVIRONMENTS[name].services
    producer = policies(stack, name, "producer")
    assert sorted(producer) == ["cpu", "requests"]
    cpu = producer["cpu"]["predefined_metric_specification"]
    assert cpu["predefined_metric_type"] == "ECSServiceAverageCPUUtilization"
    assert producer["cpu"]["target_value"] == services.producer_cpu_target_percent
    requests = producer["requests"]["predefined_metric_specification"]
    assert requests["predefined_metric_type"] == "ALBRequestCountPerTarget"
    assert "aws_lb." in requests["resource_label"]
    assert "aws_lb_target_group." in requests["resource_label"]


def queries(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["id"]: q for q in spec["metrics"]}


def test_consumer_scales_on_backlog_per_running_task(env_stack: EnvStack) -> None:
    name, stack = env_stack
    consumer = policies(stack, name, "consumer")
    assert sorted(consumer) == ["backlog"]
    spec = consumer["backlog"]["customized_metric_specification"]
    by_id = queries(spec)
    backlog = by_id["backlog"]["metric_stat"]["metric"]
    # The names the consumer writes in its Embedded Metric Format lines.
    assert backlog["namespace"] == "ProducerConsumer"
    assert backlog["metric_name"] == "QueueBacklog"
    assert backlog["dimensions"] == [{"name": "Environment", "value": name}]
    tasks = by_id["tasks"]["metric_stat"]["metric"]
    assert (tasks["namespace"], tasks["metric_name"]) == (
        "ECS/ContainerInsights",
        "RunningTaskCount",
    )
    assert {d["name"]: d["value"] for d in tasks["dimensions"]} == {
        "ClusterName": f"pcp-{name}-cluster",
        "ServiceName": f"pcp-{name}-consumer",
    }
    assert by_id["backlog_per_task"]["expression"] == "backlog / tasks"
    assert [q["id"] for q in spec["metrics"] if q.get("return_data")] == ["backlog_per_task"]
    assert (
        consumer["backlog"]["target_value"] == ENVIRONMENTS[name].services.consumer_backlog_target
    )


def test_the_containers_settings_load_and_emit_the_metric_the_policy_tracks(
    env_stack: EnvStack,
) -> None:
    """The contract between stack and apps: each service starts with the environment the
    stack gives it (secrets filled in), and the consumer's EMF record names the metric,
    namespace and dimension the backlog policy tracks."""
    from apps.consumer.service import emf_record
    from apps.consumer.settings import load_settings as consumer_settings
    from apps.producer.settings import load_settings as producer_settings
    from tests.support import containers

    name, stack = env_stack
    defined = containers(stack)

    def environ(service: str) -> dict[str, str]:
        container = defined[service]
        env = {e["name"]: e["value"] for e in container["environment"]}
        # Files in the image, found here at their repository paths.
        env["DB_TLS_CA"] = str(ROOT / env["DB_TLS_CA"].removeprefix("/app/"))
        env["REDIS_TLS_CA"] = SYSTEM_CA
        return env

    producer_settings(environ("producer"))
    settings = consumer_settings(environ("consumer"))
    record = emf_record(settings, backlog=7, processed=0, dead_lettered=0)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    spec = policies(stack, name, "consumer")["backlog"]["customized_metric_specification"]
    metric = queries(spec)["backlog"]["metric_stat"]["metric"]
    assert directive["Namespace"] == metric["namespace"]
    assert {"Name": metric["metric_name"], "Unit": "Count"} in directive["Metrics"]
    assert directive["Dimensions"] == [[d["name"] for d in metric["dimensions"]]]
    assert {d["name"]: record[d["name"]] for d in metric["dimensions"]} == {
        d["name"]: d["value"] for d in metric["dimensions"]
    }
    assert record[metric["metric_name"]] == 7
