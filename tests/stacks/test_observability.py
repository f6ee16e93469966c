"""Observability as each environment stack wires it: alarms to one topic, a dashboard."""

from __future__ import annotations

import json

from environments import ENVIRONMENTS
from tests.support import REVIEW_ALARM_EMAIL, EnvStack, one, ref, resources


def test_every_alarm_notifies_the_environment_topic(env_stack: EnvStack) -> None:
    name, stack = env_stack
    topic_key = next(iter(resources(stack, "aws_sns_topic")))
    topic = ref("aws_sns_topic", topic_key, "arn")
    assert one(stack, "aws_sns_topic")["kms_master_key_id"].startswith("${aws_kms_key.")
    alarms = {a["alarm_name"]: a for a in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    assert set(alarms) == {
        f"pcp-{name}-{key}"
        for key in (
            "alb-5xx",
            "unhealthy-targets",
            "db-cpu",
            "db-free-storage",
            "queue-backlog",
            "running-producer",
            "running-consumer",
        )
    }
    for alarm in alarms.values():
        assert alarm["alarm_actions"] == [topic]
        assert alarm["ok_actions"] == [topic]


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
    assert [s["endpoint"] for s in subscriptions.values()] == ([expected] if expected else [])
    assert all(s["protocol"] == "email" for s in subscriptions.values())


def test_one_dashboard_per_environment(env_stack: EnvStack) -> None:
    name, stack = env_stack
    dashboard = one(stack, "aws_cloudwatch_dashboard")
    assert dashboard["dashboard_name"] == f"pcp-{name}-overview"
    body = json.loads(dashboard["dashboard_body"])
    assert len(body["widgets"]) >= 8
