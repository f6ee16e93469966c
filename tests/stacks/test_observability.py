"""Observability as each environment stack wires it: alarms to one topic, a dashboard."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from constructs_lib.errors import ConfigError
from environments import ENVIRONMENTS
from environments.alarms import AlarmTarget
from tests.support import IMAGE_TAG, REVIEW_ALARM_EMAIL, one, ref, resources

PAGER = "arn:aws:sns:eu-central-1:123456789012:pager"


def test_every_alarm_notifies_the_environment_topic(env_stack: tuple[str, dict[str, Any]]) -> None:
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


def test_running_task_alarms_use_the_environment_minimums(
    env_stack: tuple[str, dict[str, Any]],
) -> None:
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


def test_backlog_alarm_reads_the_consumers_metric(env_stack: tuple[str, dict[str, Any]]) -> None:
    name, stack = env_stack
    alarms = {a["alarm_name"]: a for a in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    backlog = alarms[f"pcp-{name}-queue-backlog"]
    assert (backlog["namespace"], backlog["metric_name"]) == ("ProducerConsumer", "QueueBacklog")
    assert backlog["dimensions"] == {"Environment": name}


def test_alarm_e_mail_only_when_configured(env_stack: tuple[str, dict[str, Any]]) -> None:
    name, stack = env_stack
    subscriptions = resources(stack, "aws_sns_topic_subscription")
    expected = ENVIRONMENTS[name].alarm_email or (
        REVIEW_ALARM_EMAIL if ENVIRONMENTS[name].is_production else None
    )
    assert [s["endpoint"] for s in subscriptions.values()] == ([expected] if expected else [])
    assert all(s["protocol"] == "email" for s in subscriptions.values())


def test_production_alarms_must_reach_someone() -> None:
    prod = ENVIRONMENTS["prod"]
    assert prod.alarm_email is None  # shipped: the target comes from the shell
    assert prod.alarm_topic_arn is None
    with pytest.raises(ConfigError) as err:
        AlarmTarget().apply(prod)
    message = str(err.value)
    for part in (
        "prod",
        "alarm_email",
        "alarm_topic_arn",
        "PCP_ALARM_EMAIL",
        "PCP_ALARM_TOPIC_ARN",
    ):
        assert part in message


def test_synth_fails_for_production_without_an_alarm_target() -> None:
    import main

    with pytest.raises(ConfigError, match="PCP_ALARM_EMAIL"):
        main.build_app(outdir=None, environ={"IMAGE_TAG": IMAGE_TAG})


def test_alarm_target_from_the_shell_reaches_production_only() -> None:
    target = AlarmTarget.from_environ(
        {"PCP_ALARM_EMAIL": "oncall@corp.example", "PCP_ALARM_TOPIC_ARN": PAGER}
    )
    prod = target.apply(ENVIRONMENTS["prod"])
    assert (prod.alarm_email, prod.alarm_topic_arn) == ("oncall@corp.example", PAGER)
    assert target.apply(ENVIRONMENTS["dev"]) == ENVIRONMENTS["dev"]
    configured = replace(ENVIRONMENTS["prod"], alarm_email="team@corp.example")
    assert target.apply(configured).alarm_email == "team@corp.example"  # the file wins


@pytest.mark.parametrize(
    ("variable", "value", "field_"),
    [("PCP_ALARM_EMAIL", "not-an-address", "alarm_email"),
     ("PCP_ALARM_TOPIC_ARN", "arn:aws:sqs:eu-central-1:123456789012:q", "alarm_topic_arn")],
)  # fmt: skip
def test_a_bad_alarm_target_from_the_shell_is_named(variable: str, value: str, field_: str) -> None:
    with pytest.raises(ConfigError) as err:
        AlarmTarget.from_environ({variable: value}).apply(ENVIRONMENTS["prod"])
    assert field_ in str(err.value)
    assert value in str(err.value)


def test_one_dashboard_per_environment(env_stack: tuple[str, dict[str, Any]]) -> None:
    name, stack = env_stack
    dashboard = one(stack, "aws_cloudwatch_dashboard")
    assert dashboard["dashboard_name"] == f"pcp-{name}-overview"
    body = json.loads(dashboard["dashboard_body"])
    assert len(body["widgets"]) >= 8
