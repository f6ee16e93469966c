"""Observability construct: encrypted alarm topic, alarms on the platform, one dashboard.

Two small stacks are synthesized once per module: ``full`` sets every optional prop to a
non-default value (so a prop that is ignored shows up as a default), ``minimal`` leaves
them unset (so the documented defaults are checked).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import (
    ACCOUNT_ID,
    NAMING,
    REGION,
    UnitStack,
    new_unit_stack,
    one,
    resources,
)

SERVICES = {"pcp-unit-producer": 2, "pcp-unit-consumer": 1}
FIXED_KEYS = {"alb-5xx", "unhealthy-targets", "db-cpu", "db-free-storage", "queue-backlog"}
OFFERED_KEYS = {
    "consumer-dead-letters",
    "consumer-lag",
    "queue-throttled",
    "queue-storage",
    "queue-ecpu",
    "db-connections",
    "db-freeable-memory",
    "alb-p99-latency",
}
"""The consumer's own alarms and those the (serverless) queue, the database and the load
balancer offer; the unit services have no load balancer, so no 503 alarm."""
ALL_KEYS = FIXED_KEYS | OFFERED_KEYS | {f"running-{s}" for s in SERVICES}
PAGER = "arn:aws:sns:eu-central-1:123456789012:pager"


@dataclass(frozen=True)
class Unit:
    doc: dict[str, Any]
    alarm_keys: set[str]
    alarm_ids: dict[str, str]
    """``{alarm key: logical id}`` of the synthesized alarms."""
    lb: str
    """The load balancer's ``arn_suffix`` reference (its metrics' dimension)."""
    tg: str
    """The target group's ``arn_suffix`` reference."""
    key_arn: str

    def alarm(self, key: str) -> dict[str, Any]:
        return resources(self.doc, "aws_cloudwatch_metric_alarm")[self.alarm_ids[key]]

    def dashboard(self) -> dict[str, Any]:
        body = one(self.doc, "aws_cloudwatch_dashboard")["dashboard_body"]
        assert isinstance(body, str)
        parsed: dict[str, Any] = json.loads(body)
        return parsed


def props(unit: UnitStack, **overrides: Any) -> Any:
    """Props watching the unit stack's real services (``pcp-unit-producer`` with 2 tasks
    at least, ``pcp-unit-consumer`` with 1), load balancer and database."""
    from constructs_lib.observability import ObservabilityProps

    values: dict[str, Any] = {
        "naming": NAMING,
        "region": REGION,
        "account_id": ACCOUNT_ID,
        "key": unit.key(),
        "services": [
            unit.service(name.removeprefix("pcp-unit-"), min_tasks=count)
            for name, count in SERVICES.items()
        ],
        "load_balancer": unit.load_balancer(),
        "database": unit.database(),
        "queue": unit.queue(),
    }
    values.update(overrides)
    return ObservabilityProps(**values)


def synth_unit(**overrides: Any) -> Unit:
    from constructs_lib.observability import Observability

    unit = new_unit_stack()
    obs = Observability(unit.stack, "obs", props=props(unit, **overrides))
    alarm_ids = {key: unit.stack.get_logical_id(alarm) for key, alarm in obs.alarms.items()}
    doc = unit.synth()
    ((alb_id, _),) = resources(doc, "aws_lb").items()
    ((tg_id, _),) = resources(doc, "aws_lb_target_group").items()
    (key_id,) = resources(doc, "aws_kms_key")
    return Unit(
        doc,
        set(obs.alarms),
        alarm_ids,
        lb=f"${{aws_lb.{alb_id}.arn_suffix}}",
        tg=f"${{aws_lb_target_group.{tg_id}.arn_suffix}}",
        key_arn=f"${{aws_kms_key.{key_id}.arn}}",
    )


@pytest.fixture(scope="module")
def full() -> Unit:
    return synth_unit(
        alarm_email="ops@example.com",
        alarm_topic_arn=PAGER,
        queue_backlog_metric="Backlog",
        backlog_threshold=250,
        alb_5xx_threshold=25,
        db_cpu_threshold_percent=70,
        db_free_storage_threshold_gb=3,
    )


@pytest.fixture(scope="module")
def minimal() -> Unit:
    return synth_unit()


@pytest.fixture(params=["full", "minimal"])
def unit(request: pytest.FixtureRequest) -> Unit:
    found: Unit = request.getfixturevalue(request.param)
    return found


def topic_arn(unit: Unit) -> str:
    (logical_id,) = resources(unit.doc, "aws_sns_topic")
    return f"${{aws_sns_topic.{logical_id}.arn}}"


def test_topic_is_encrypted_with_the_given_key(unit: Unit) -> None:
    topic = one(unit.doc, "aws_sns_topic")
    assert topic["kms_master_key_id"] == unit.key_arn
    assert topic["name"] == "pcp-unit-alarms"


def test_topic_policy_admits_only_alarms_and_rds_events_of_this_account(unit: Unit) -> None:
    policy = one(unit.doc, "aws_sns_topic_policy")
    assert policy["arn"] == topic_arn(unit)
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    assert set(statements) == {"CloudWatchAlarmsPublish", "RdsEventsPublish"}
    rds = statements["RdsEventsPublish"]
    assert rds["Principal"] == {"Service": "events.rds.amazonaws.com"}
    assert rds["Action"] == ["sns:Publish"]
    assert rds["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": f"arn:aws:rds:{REGION}:{ACCOUNT_ID}:db:pcp-unit-*"},
    }
    statement = statements["CloudWatchAlarmsPublish"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == ["sns:Publish"]
    assert statement["Resource"] == [topic_arn(unit)]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:pcp-unit-*"},
    }


def test_email_subscription_exists_only_when_configured(full: Unit, minimal: Unit) -> None:
    subscription = one(full.doc, "aws_sns_topic_subscription")
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == "ops@example.com"
    assert subscription["topic_arn"] == topic_arn(full)
    assert resources(minimal.doc, "aws_sns_topic_subscription") == {}


def test_alarm_set_is_complete(unit: Unit) -> None:
    assert unit.alarm_keys == ALL_KEYS
    synthesized = resources(unit.doc, "aws_cloudwatch_metric_alarm")
    assert sorted(synthesized) == sorted(unit.alarm_ids.values())
    names = {a["alarm_name"] for a in synthesized.values()}
    assert names == {f"pcp-unit-{k}" for k in FIXED_KEYS | OFFERED_KEYS} | {
        "pcp-unit-running-producer",
        "pcp-unit-running-consumer",
    }


def test_every_alarm_notifies_the_topic_when_firing_and_recovering(unit: Unit) -> None:
    alarms = resources(unit.doc, "aws_cloudwatch_metric_alarm")
    assert alarms
    for logical_id, alarm in alarms.items():
        assert alarm["actions_enabled"] is True, logical_id
        assert alarm["alarm_actions"][0] == topic_arn(unit), logical_id
        assert alarm["ok_actions"] == alarm["alarm_actions"], logical_id
        assert "Look at" in alarm["alarm_description"], logical_id


def test_alb_5xx_sums_elb_and_target_errors_with_gaps_as_zero(full: Unit) -> None:
    alarm = full.alarm("alb-5xx")
    assert "metric_name" not in alarm
    assert alarm["threshold"] == 25
    assert alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    queries = {q["id"]: q for q in alarm["metric_query"]}
    (returned,) = [q for q in queries.values() if q["return_data"] is True]
    expression = returned["expression"]
    inputs = {q["metric"]["metric_name"]: q for q in queries.values() if q["return_data"] is False}
    assert set(inputs) == {"HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"}
    for query in inputs.values():
        assert query["metric"]["namespace"] == "AWS/ApplicationELB"
        assert query["metric"]["dimensions"] == {"LoadBalancer": full.lb}
        assert (query["metric"]["stat"], query["metric"]["period"]) == ("Sum", 300)
        assert f"FILL({query['id']}, 0)" in expression
    assert "+" in expression


def test_unhealthy_targets_alarm_on_the_target_group(unit: Unit) -> None:
    alarm = unit.alarm("unhealthy-targets")
    assert alarm["namespace"] == "AWS/ApplicationELB"
    assert alarm["metric_name"] == "UnHealthyHostCount"
    assert alarm["dimensions"] == {"TargetGroup": unit.tg, "LoadBalancer": unit.lb}
    assert alarm["statistic"] == "Maximum"
    assert (alarm["comparison_operator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)
    assert (alarm["period"], alarm["datapoints_to_alarm"], alarm["evaluation_periods"]) == (
        60,
        3,
        5,
    )


def test_database_alarms_use_the_configured_thresholds(full: Unit) -> None:
    cpu = full.alarm("db-cpu")
    storage = full.alarm("db-free-storage")
    for alarm in (cpu, storage):
        assert alarm["namespace"] == "AWS/RDS"
        assert alarm["dimensions"] == {"DBInstanceIdentifier": "pcp-unit-mysql"}
    assert (cpu["metric_name"], cpu["comparison_operator"]) == (
        "CPUUtilization",
        "GreaterThanThreshold",
    )
    assert cpu["threshold"] == 70
    assert (storage["metric_name"], storage["comparison_operator"]) == (
        "FreeStorageSpace",
        "LessThanThreshold",
    )
    assert storage["threshold"] == 3 * 1024**3  # the metric is in bytes


def test_queue_backlog_alarm_reads_the_consumer_metric_and_fires_on_silence(full: Unit) -> None:
    alarm = full.alarm("queue-backlog")
    assert alarm["namespace"] == "ProducerConsumer"
    assert alarm["metric_name"] == "Backlog"
    assert alarm["dimensions"] == {"Environment": "unit"}
    assert (alarm["statistic"], alarm["period"]) == ("Maximum", 300)
    assert (alarm["comparison_operator"], alarm["threshold"]) == ("GreaterThanThreshold", 250)
    assert alarm["treat_missing_data"] == "breaching"


def test_running_task_alarm_per_service_with_its_minimum(unit: Unit) -> None:
    for service, minimum in SERVICES.items():
        alarm = unit.alarm(f"running-{service}")
        assert alarm["namespace"] == "ECS/ContainerInsights"
        assert alarm["metric_name"] == "RunningTaskCount"
        assert alarm["dimensions"] == {"ClusterName": "pcp-unit-cluster", "ServiceName": service}
        assert (alarm["comparison_operator"], alarm["threshold"]) == ("LessThanThreshold", minimum)
        assert alarm["treat_missing_data"] == "breaching"


def test_unset_thresholds_take_the_documented_defaults(minimal: Unit) -> None:
    assert minimal.alarm("alb-5xx")["threshold"] == 10
    assert minimal.alarm("db-cpu")["threshold"] == 80
    assert minimal.alarm("db-free-storage")["threshold"] == 2 * 1024**3
    backlog = minimal.alarm("queue-backlog")
    assert (backlog["metric_name"], backlog["threshold"]) == ("QueueBacklog", 1000)


def test_dashboard_has_the_widget_set(full: Unit) -> None:
    assert one(full.doc, "aws_cloudwatch_dashboard")["dashboard_name"] == "pcp-unit-overview"
    widgets = full.dashboard()["widgets"]
    metric_widgets = {
        w["properties"]["title"]: w["properties"] for w in widgets if w["type"] == "metric"
    }
    assert set(metric_widgets) == {
        "ALB requests and 5xx",
        "ALB target response time",
        "Healthy and unhealthy targets",
        "pcp-unit-producer: CPU and memory",
        "pcp-unit-consumer: CPU and memory",
        "Running tasks",
        "1. Accepted (202) per minute",
        "2. Waiting: backlog and oldest pending entry",
        "3. Stored per minute",
        "4. Dead-lettered per minute",
        "Queue engine (what its alarms watch)",
        "RDS CPU and connections",
        "RDS free storage",
    }
    assert all(p["region"] == REGION for p in metric_widgets.values())

    def series(title: str) -> list[tuple[str, ...]]:
        """Each line as (namespace, metric, dimension pairs..., stat override or '')."""
        lines = []
        for line in metric_widgets[title]["metrics"]:
            *fields, options = line
            lines.append((*fields, options.get("stat", "")))
        return lines

    assert ("AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", full.lb, "p50") in series(
        "ALB target response time"
    )
    assert ("AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", full.lb, "p99") in series(
        "ALB target response time"
    )
    assert {s[1] for s in series("ALB requests and 5xx")} == {
        "RequestCount",
        "HTTPCode_ELB_5XX_Count",
        "HTTPCode_Target_5XX_Count",
    }
    assert (
        "AWS/ApplicationELB",
        "UnHealthyHostCount",
        "TargetGroup",
        full.tg,
        "LoadBalancer",
        full.lb,
        "",
    ) in series("Healthy and unhealthy targets")
    for service in SERVICES:
        dims = ("ClusterName", "pcp-unit-cluster", "ServiceName", service)
        assert set(series(f"{service}: CPU and memory")) == {
            ("AWS/ECS", "CPUUtilization", *dims, ""),
            ("AWS/ECS", "MemoryUtilization", *dims, ""),
        }
        assert ("ECS/ContainerInsights", "RunningTaskCount", *dims, "") in series("Running tasks")
    assert series("2. Waiting: backlog and oldest pending entry") == [
        ("ProducerConsumer", "Backlog", "Environment", "unit", ""),
        ("ProducerConsumer", "OldestPendingAgeSeconds", "Environment", "unit", ""),
    ]
    assert series("3. Stored per minute") == [
        ("ProducerConsumer", "MessagesProcessed", "Environment", "unit", "")
    ]
    rds = ("DBInstanceIdentifier", "pcp-unit-mysql", "")
    assert {s[1] for s in series("RDS CPU and connections")} == {
        "CPUUtilization",
        "DatabaseConnections",
    }
    assert series("RDS free storage") == [("AWS/RDS", "FreeStorageSpace", *rds)]


def test_dashboard_alarm_widget_lists_every_alarm(full: Unit) -> None:
    (alarm_widget,) = [w for w in full.dashboard()["widgets"] if w["type"] == "alarm"]
    expected = {
        f"${{aws_cloudwatch_metric_alarm.{logical_id}.arn}}"
        for logical_id in full.alarm_ids.values()
    }
    assert set(alarm_widget["properties"]["alarms"]) == expected
    assert len(expected) == len(ALL_KEYS)


def test_dashboard_widgets_fit_the_grid_without_overlapping(full: Unit) -> None:
    cells: set[tuple[int, int]] = set()
    for widget in full.dashboard()["widgets"]:
        x, y, w, h = widget["x"], widget["y"], widget["width"], widget["height"]
        assert x + w <= 24
        area = {(i, j) for i in range(x, x + w) for j in range(y, y + h)}
        assert not cells & area, widget["properties"]["title"]
        cells |= area


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alarm_email": "ops.example.com"}, r"^unit/obs\.alarm_email: got 'ops\.example\.com', "),
        ({"alarm_email": "ops@localhost"}, r"^unit/obs\.alarm_email: got 'ops@localhost', "),
        ({"services": []}, r"^unit/obs\.services: got \[\], give at least one ECS service"),
        (
            {"services": "dup"},
            r"^unit/obs\.services: got \['pcp-unit-producer'\], give each service once$",
        ),
        ({"db_cpu_threshold_percent": 100}, r"^unit/obs\.db_cpu_threshold_percent: got 100, "),
        ({"backlog_threshold": 0}, r"^unit/obs\.backlog_threshold: got 0, give 1 or more$"),
    ],
)
def test_invalid_props_are_refused(
    unit_stack: UnitStack, overrides: dict[str, Any], message: str
) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.observability import Observability

    if overrides.get("services") == "dup":
        overrides["services"] = [unit_stack.service("producer")] * 2
    with pytest.raises(ConfigError, match=message):
        Observability(unit_stack.stack, "obs", props=props(unit_stack, **overrides))


def test_cloudwatch_may_use_the_topic_key_even_when_the_key_was_made_without_it(
    unit: Unit,
) -> None:
    """The topic's requirement of its key is met by the construct: the unit key is made
    with no service access, and alarms must still be able to publish."""
    policy = json.loads(one(unit.doc, "aws_kms_key")["policy"])
    (statement,) = [
        s
        for s in policy["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == ["*"]


def test_alarms_also_notify_the_given_topic(full: Unit, minimal: Unit) -> None:
    for key in ALL_KEYS:
        assert full.alarm(key)["alarm_actions"] == [topic_arn(full), PAGER]
        assert full.alarm(key)["ok_actions"] == [topic_arn(full), PAGER]
        assert minimal.alarm(key)["alarm_actions"] == [topic_arn(minimal)]


def test_rds_failover_failure_and_storage_events_go_to_the_topic(unit: Unit) -> None:
    subscription = one(unit.doc, "aws_db_event_subscription")
    assert subscription["sns_topic"] == topic_arn(unit)
    assert subscription["source_type"] == "db-instance"
    assert subscription["source_ids"] == ["pcp-unit-mysql"]
    assert set(subscription["event_categories"]) >= {"failover", "failure", "low storage"}
    policy = json.loads(one(unit.doc, "aws_kms_key")["policy"])
    (grant,) = [
        s
        for s in policy["Statement"]
        if s.get("Principal") == {"Service": "events.rds.amazonaws.com"}
    ]
    assert grant["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_development_tier_gets_only_the_breakage_alarms(unit_stack: UnitStack) -> None:
    from constructs_lib.alarms import AlarmSet
    from constructs_lib.observability import Observability

    obs = Observability(
        unit_stack.stack, "obs", props=props(unit_stack, alarm_set=AlarmSet.BREAKAGE)
    )
    capacity = {"queue-ecpu", "db-connections", "db-freeable-memory", "alb-p99-latency"}
    assert set(obs.alarms) == ALL_KEYS - capacity


def test_saved_queries_read_the_services_json_fields(unit: Unit) -> None:
    queries = {
        q["name"]: q for q in resources(unit.doc, "aws_cloudwatch_query_definition").values()
    }
    assert set(queries) == {
        "pcp-unit/errors-by-service",
        "pcp-unit/value-trail",
        "pcp-unit/slowest-requests",
    }
    trail = queries["pcp-unit/value-trail"]
    assert 'filter @message like "KEY"' in trail["query_string"]
    assert len(trail["log_group_names"]) == len(SERVICES)
