"""Observability as each environment stack wires it: alarms to one topic, a dashboard."""

from __future__ import annotations

import json
from typing import Any

from environments import ENVIRONMENTS
from tests.support import (
    REVIEW_ALARM_EMAIL,
    EnvStack,
    Synth,
    cache_node_ids,
    one,
    ref,
    resources,
)

BREAKAGE_KEYS = (
    "alb-5xx",
    "unhealthy-targets",
    "db-cpu",
    "db-free-storage",
    "queue-backlog",
    "running-producer",
    "running-consumer",
    "consumer-dead-letters",
    "consumer-lag",
    "producer-503s",
)
"""What every environment is alarmed on."""
SERVERLESS_KEYS = ("queue-throttled", "queue-storage")
EDGE_KEYS = {"cloudfront-5xx"}
"""In us-east-1, on the edge topic (production adds ``waf-blocked-spike``)."""
PRODUCTION_KEYS = ("db-connections", "db-freeable-memory", "alb-p99-latency")
"""Capacity warnings: production only."""


def expected_alarm_keys(name: str) -> set[str]:
    """prod: a three-node replication group with all alarms; the development tier: a
    serverless queue with the breakage alarms only."""
    if name != "prod":
        return {*BREAKAGE_KEYS, *SERVERLESS_KEYS, *EDGE_KEYS}
    nodes = {
        f"queue-{node}-{kind}"
        for node in (1, 2, 3)
        for kind in ("evictions", "memory", "cpu", "connections")
    }
    return {*BREAKAGE_KEYS, *PRODUCTION_KEYS, *nodes, *EDGE_KEYS, "waf-blocked-spike"}


def test_every_alarm_notifies_the_environment_topic(env_stack: EnvStack) -> None:
    """Regional alarms notify the regional topic; CloudFront's and WAF's (us-east-1, where
    their metrics are) notify the edge topic there. Both topics are KMS-encrypted."""
    name, stack = env_stack
    topics = {t["name"]: k for k, t in resources(stack, "aws_sns_topic").items()}
    assert set(topics) == {f"pcp-{name}-alarms", f"pcp-{name}-edge-alarms"}
    regional = ref("aws_sns_topic", topics[f"pcp-{name}-alarms"], "arn")
    edge = ref("aws_sns_topic", topics[f"pcp-{name}-edge-alarms"], "arn")
    for topic in resources(stack, "aws_sns_topic").values():
        assert topic["kms_master_key_id"].startswith("${aws_kms_key.")
    alarms = {a["alarm_name"]: a for a in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    assert set(alarms) == {f"pcp-{name}-{key}" for key in expected_alarm_keys(name)}
    for alarm_name, alarm in alarms.items():
        at_edge = alarm_name.removeprefix(f"pcp-{name}-") in {*EDGE_KEYS, "waf-blocked-spike"}
        assert alarm.get("provider") == ("aws.us_east_1" if at_edge else None), alarm_name
        assert alarm["alarm_actions"] == [edge if at_edge else regional], alarm_name
        assert alarm["ok_actions"] == alarm["alarm_actions"], alarm_name


def test_running_task_alarms_use_the_environment_minimums(env_stack: EnvStack) -> None:
    name, stack = env_stack
    alarms = {a["alarm_name"]: a for a in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    services = ENVIRONMENTS[name].services
    for service, minimum in (
        ("producer", services.producer.min_tasks),
        ("consumer", services.consumer.min_tasks),
    ):
        alarm = alarms[f"pcp-{name}-running-{service}"]
        assert alarm["threshold"] == minimum
        assert alarm["comparison_operator"] == "LessThanThreshold"
        assert alarm["dimensions"]["ServiceName"] == f"pcp-{name}-{service}"


def test_backlog_alarm_reads_the_consumers_metric(env_stack: EnvStack) -> None:
    name, stack = env_stack
    alarms = {a["alarm_name"]: a for a in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    backlog = alarms[f"pcp-{name}-queue-backlog"]
    assert (backlog["namespace"], backlog["metric_name"]) == ("ProducerConsumer", "QueueBacklog")
    assert backlog["dimensions"] == {"Environment": name}


def test_alarm_e_mail_only_when_configured(env_stack: EnvStack) -> None:
    name, stack = env_stack
    subscriptions = resources(stack, "aws_sns_topic_subscription")
    expected = ENVIRONMENTS[name].alarm_email or (
        REVIEW_ALARM_EMAIL if ENVIRONMENTS[name].is_production else None
    )
    # The regional topic and the edge topic (us-east-1) each have the subscription.
    endpoints = [s["endpoint"] for s in subscriptions.values()]
    assert endpoints == ([expected, expected] if expected else [])
    assert all(s["protocol"] == "email" for s in subscriptions.values())


def test_one_dashboard_per_environment(env_stack: EnvStack) -> None:
    name, stack = env_stack
    dashboard = one(stack, "aws_cloudwatch_dashboard")
    assert dashboard["dashboard_name"] == f"pcp-{name}-overview"
    body = json.loads(dashboard["dashboard_body"])
    assert len(body["widgets"]) >= 8


def _dimension_values(alarm: dict[str, Any]) -> set[str]:
    values = set(alarm.get("dimensions", {}).values())
    for query in alarm.get("metric_query", []):
        values |= set(query.get("metric", {}).get("dimensions", {}).values())
    return values


def test_every_stateful_or_serving_resource_has_an_alarm(env_stack: EnvStack) -> None:
    """The database, the queue (each replication-group node), every ECS service, the load
    balancer and the distribution are named by some alarm's dimensions (and, in
    production, the web ACL)."""
    name, stack = env_stack
    alarmed = set().union(
        *(_dimension_values(a) for a in resources(stack, "aws_cloudwatch_metric_alarm").values())
    )
    served: dict[str, set[str]] = {
        f"aws_db_instance.{k}": {r["identifier"]}
        for k, r in resources(stack, "aws_db_instance").items()
    }
    served |= {
        f"aws_elasticache_serverless_cache.{k}": {r["name"]}
        for k, r in resources(stack, "aws_elasticache_serverless_cache").items()
    }
    served |= {
        f"aws_elasticache_replication_group.{k}": cache_node_ids(r)
        for k, r in resources(stack, "aws_elasticache_replication_group").items()
    }
    served |= {
        f"aws_ecs_service.{k}": {r["name"]} for k, r in resources(stack, "aws_ecs_service").items()
    }
    served |= {f"aws_lb.{k}": {f"${{aws_lb.{k}.arn_suffix}}"} for k in resources(stack, "aws_lb")}
    served |= {
        f"aws_cloudfront_distribution.{k}": {f"${{aws_cloudfront_distribution.{k}.id}}"}
        for k in resources(stack, "aws_cloudfront_distribution")
    }
    unalarmed = sorted(
        f"{resource}: {ids - alarmed}" for resource, ids in served.items() if ids - alarmed
    )
    assert not unalarmed, f"{name}: no alarm watches {unalarmed}"
    assert len(served) >= 6, served  # database, queue, 2 services, load balancer, CloudFront
    web_acls = {r["name"] for r in resources(stack, "aws_wafv2_web_acl").values()}
    if name == "prod":  # blocked-request spikes are a production alarm (no noise elsewhere)
        assert web_acls <= alarmed


def test_production_gets_the_capacity_alarms_and_development_does_not(synth: Synth) -> None:
    prod = {
        a["alarm_name"]
        for a in resources(synth.stack("prod"), "aws_cloudwatch_metric_alarm").values()
    }
    dev = {
        a["alarm_name"]
        for a in resources(synth.stack("dev"), "aws_cloudwatch_metric_alarm").values()
    }
    for key in PRODUCTION_KEYS:
        assert f"pcp-prod-{key}" in prod
        assert f"pcp-dev-{key}" not in dev
    assert "pcp-dev-consumer-dead-letters" in dev


def test_the_producer_503_alarm_counts_its_json_log_lines(env_stack: EnvStack) -> None:
    name, stack = env_stack
    filters = {f["name"]: f for f in resources(stack, "aws_cloudwatch_log_metric_filter").values()}
    unavailable = filters[f"pcp-{name}-producer-unavailable-answers"]
    assert unavailable["pattern"] == "{ $.status = 503 }"
    assert unavailable["log_group_name"].startswith("${aws_cloudwatch_log_group.producer_log-group")
    transformation = unavailable["metric_transformation"]
    alarm = next(
        a
        for a in resources(stack, "aws_cloudwatch_metric_alarm").values()
        if a["alarm_name"] == f"pcp-{name}-producer-503s"
    )
    assert (alarm["namespace"], alarm["metric_name"]) == (
        transformation["namespace"],
        transformation["name"],
    )
    assert transformation["default_value"] == "0"
