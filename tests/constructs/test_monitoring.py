"""Monitoring construct: a system's alarms, routed to an encrypted topic with a target.

Two small stacks are synthesized once per module: ``full`` (two services, the database,
the load balancer and a web load balancer's stand-in offering alarms, every optional prop
set) and ``bare`` (one service watched, no database given, no target by explicit choice,
the rest unset: the documented defaults)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from constructs_lib.alarms import AlarmSpec, Watch
from tests.support import (
    ACCOUNT_ID,
    NAMING,
    REGION,
    UnitStack,
    new_unit_stack,
    one,
    resources,
)

PAGER = "arn:aws:sns:eu-central-1:123456789012:pager"
SERVICES = {"pcp-unit-web": 2, "pcp-unit-worker": 1}
WEB_LB = {"LoadBalancer": "app/pcp-unit-web/0123"}


class WebStandIn:
    """What the lead's ``WebLoadBalancer`` offers: breakage and a capacity warning."""

    def alarms(self) -> list[AlarmSpec]:
        return [
            AlarmSpec(
                "web-5xx",
                "5xx answers. Look at the service's logs.",
                ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", WEB_LB),
                Watch("Sum", 300, ">", 5),
            ),
            AlarmSpec(
                "web-p99",
                "Slow answers. Look at the service's CPU.",
                ("AWS/ApplicationELB", "TargetResponseTime", WEB_LB),
                Watch("p99", 60, ">", 2.0, evaluations=5, datapoints=3),
                breakage=False,
            ),
        ]


DB_KEYS = {"db-cpu", "db-free-storage"}
CAPACITY_KEYS = {"db-connections", "db-freeable-memory", "alb-p99-latency", "web-p99"}
"""The capacity warnings the database, the load balancer and the stand-in offer."""
RUNNING_KEYS = {f"running-{s}" for s in SERVICES}
FULL_KEYS = RUNNING_KEYS | DB_KEYS | CAPACITY_KEYS | {"web-5xx"}


@dataclass(frozen=True)
class Unit:
    doc: dict[str, Any]
    alarm_ids: dict[str, str]
    """``{alarm key: logical id}`` of :attr:`Monitoring.alarms`."""
    topic_arn: str
    key_arn: str

    def alarm(self, key: str) -> dict[str, Any]:
        return resources(self.doc, "aws_cloudwatch_metric_alarm")[self.alarm_ids[key]]

    def key_grants(self) -> dict[str, dict[str, Any]]:
        """The key policy's statements for service principals, by service."""
        policy = json.loads(one(self.doc, "aws_kms_key")["policy"])
        return {
            s["Principal"]["Service"]: s
            for s in policy["Statement"]
            if "Service" in s.get("Principal", {})
        }


def props(unit: UnitStack, **overrides: Any) -> Any:
    """Props watching the unit stack's ``web`` (2 tasks at least) and ``worker`` (1), its
    database and load balancer, and the web stand-in; e-mail target."""
    from constructs_lib.monitoring import MonitoringProps

    values: dict[str, Any] = {
        "naming": NAMING,
        "account_id": ACCOUNT_ID,
        "region": REGION,
        "key": unit.key(),
        "services": [
            unit.service(name.removeprefix("pcp-unit-"), min_tasks=count)
            for name, count in SERVICES.items()
        ],
        "database": unit.database(),
        "alarmed": [unit.load_balancer(), WebStandIn()],
        "alarm_email": "ops@example.com",
    }
    values.update(overrides)
    return MonitoringProps(**values)


def synth_unit(build: Any) -> Unit:
    from constructs_lib.monitoring import Monitoring

    unit = new_unit_stack()
    monitoring = Monitoring(unit.stack, "monitoring", props=build(unit))
    alarm_ids = {k: unit.stack.get_logical_id(a) for k, a in monitoring.alarms.items()}
    doc = unit.synth()
    (topic_id,) = resources(doc, "aws_sns_topic")
    (key_id,) = resources(doc, "aws_kms_key")
    return Unit(
        doc,
        alarm_ids,
        topic_arn=f"${{aws_sns_topic.{topic_id}.arn}}",
        key_arn=f"${{aws_kms_key.{key_id}.arn}}",
    )


@pytest.fixture(scope="module")
def full() -> Unit:
    return synth_unit(
        lambda unit: props(
            unit,
            alarm_topic_arn=PAGER,
            db_cpu_threshold_percent=70,
            db_free_storage_threshold_gb=5,
            dashboard=True,
        )
    )


@pytest.fixture(scope="module")
def bare() -> Unit:
    return synth_unit(
        lambda unit: props(
            unit,
            services=[unit.service("web", min_tasks=2)],
            database=None,
            alarmed=(),
            alarm_email=None,
            allow_no_target=True,
        )
    )


@pytest.fixture(params=["full", "bare"])
def unit(request: pytest.FixtureRequest) -> Unit:
    found: Unit = request.getfixturevalue(request.param)
    return found


def test_topic_is_encrypted_with_the_given_key_which_cloudwatch_may_use(unit: Unit) -> None:
    topic = one(unit.doc, "aws_sns_topic")
    assert topic["kms_master_key_id"] == unit.key_arn
    assert topic["name"] == "pcp-unit-alarms"
    grant = unit.key_grants()["cloudwatch.amazonaws.com"]
    assert grant["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_topic_policy_admits_only_this_accounts_alarms_and_rds_events(full: Unit) -> None:
    policy = one(full.doc, "aws_sns_topic_policy")
    assert policy["arn"] == full.topic_arn
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    assert set(statements) == {"CloudWatchAlarmsPublish", "RdsEventsPublish"}
    sources = {
        "CloudWatchAlarmsPublish": (
            "cloudwatch.amazonaws.com",
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:pcp-unit-*",
        ),
        "RdsEventsPublish": (
            "events.rds.amazonaws.com",
            f"arn:aws:rds:{REGION}:{ACCOUNT_ID}:db:pcp-unit-*",
        ),
    }
    for sid, (service, source) in sources.items():
        statement = statements[sid]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": service}
        assert statement["Action"] == ["sns:Publish"]
        assert statement["Resource"] == [full.topic_arn]
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": source},
        }
    rds = full.key_grants()["events.rds.amazonaws.com"]
    assert rds["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_without_a_database_rds_may_neither_publish_nor_use_the_key(bare: Unit) -> None:
    policy = json.loads(one(bare.doc, "aws_sns_topic_policy")["policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["CloudWatchAlarmsPublish"]
    assert "events.rds.amazonaws.com" not in bare.key_grants()
    assert resources(bare.doc, "aws_db_event_subscription") == {}


def test_email_subscription_exists_only_when_given(full: Unit, bare: Unit) -> None:
    subscription = one(full.doc, "aws_sns_topic_subscription")
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == "ops@example.com"
    assert subscription["topic_arn"] == full.topic_arn
    assert resources(bare.doc, "aws_sns_topic_subscription") == {}


def test_each_service_the_database_and_every_offered_alarm_is_covered(
    full: Unit, bare: Unit
) -> None:
    assert set(full.alarm_ids) == FULL_KEYS
    assert set(bare.alarm_ids) == {"running-pcp-unit-web"}
    for unit in (full, bare):
        synthesized = resources(unit.doc, "aws_cloudwatch_metric_alarm")
        assert sorted(synthesized) == sorted(unit.alarm_ids.values())


def test_alarms_are_named_prefix_dash_key(full: Unit) -> None:
    for key in FULL_KEYS - RUNNING_KEYS:
        assert full.alarm(key)["alarm_name"] == f"pcp-unit-{key}"
    assert full.alarm("running-pcp-unit-web")["alarm_name"] == "pcp-unit-running-web"
    assert full.alarm("running-pcp-unit-worker")["alarm_name"] == "pcp-unit-running-worker"


def test_every_alarm_notifies_the_targets_when_firing_and_recovering(
    full: Unit, bare: Unit
) -> None:
    for unit, targets in ((full, [full.topic_arn, PAGER]), (bare, [bare.topic_arn])):
        alarms = resources(unit.doc, "aws_cloudwatch_metric_alarm")
        assert alarms
        for logical_id, alarm in alarms.items():
            assert alarm["actions_enabled"] is True, logical_id
            assert alarm["alarm_actions"] == targets, logical_id
            assert alarm["ok_actions"] == targets, logical_id


def test_running_task_alarm_per_service_with_its_minimum(full: Unit) -> None:
    for service, minimum in SERVICES.items():
        alarm = full.alarm(f"running-{service}")
        assert (alarm["namespace"], alarm["metric_name"]) == (
            "ECS/ContainerInsights",
            "RunningTaskCount",
        )
        assert alarm["dimensions"] == {"ClusterName": "pcp-unit-cluster", "ServiceName": service}
        assert (alarm["comparison_operator"], alarm["threshold"]) == ("LessThanThreshold", minimum)
        assert alarm["treat_missing_data"] == "breaching"


def test_database_cpu_and_storage_use_the_thresholds_and_its_identifier(full: Unit) -> None:
    db = {"DBInstanceIdentifier": "pcp-unit-mysql"}
    cpu = full.alarm("db-cpu")
    assert (cpu["namespace"], cpu["metric_name"], cpu["dimensions"]) == (
        "AWS/RDS",
        "CPUUtilization",
        db,
    )
    assert (cpu["comparison_operator"], cpu["threshold"]) == ("GreaterThanThreshold", 70)
    storage = full.alarm("db-free-storage")
    assert (storage["metric_name"], storage["dimensions"]) == ("FreeStorageSpace", db)
    assert (storage["comparison_operator"], storage["threshold"]) == (
        "LessThanThreshold",
        5 * 1024**3,
    )
    assert full.alarm("db-connections")["dimensions"] == db


def test_unset_database_thresholds_take_the_documented_defaults(unit_stack: UnitStack) -> None:
    from constructs_lib.monitoring import Monitoring

    monitoring = Monitoring(unit_stack.stack, "monitoring", props=props(unit_stack))
    doc = unit_stack.synth()
    by_name = {a["alarm_name"]: a for a in resources(doc, "aws_cloudwatch_metric_alarm").values()}
    assert set(monitoring.alarms) == FULL_KEYS
    assert by_name["pcp-unit-db-cpu"]["threshold"] == 80
    assert by_name["pcp-unit-db-free-storage"]["threshold"] == 2 * 1024**3
    assert resources(doc, "aws_cloudwatch_dashboard") == {}


def test_offered_alarms_keep_their_watch(full: Unit) -> None:
    p99 = full.alarm("web-p99")
    assert (p99["extended_statistic"], p99["evaluation_periods"], p99["datapoints_to_alarm"]) == (
        "p99",
        5,
        3,
    )
    assert p99["dimensions"] == WEB_LB
    assert full.alarm("web-5xx")["alarm_description"] == "5xx answers. Look at the service's logs."


def test_rds_events_go_to_the_topic_once_it_admits_them(full: Unit) -> None:
    subscription = one(full.doc, "aws_db_event_subscription")
    assert subscription["name"] == "pcp-unit-db-events"
    assert subscription["sns_topic"] == full.topic_arn
    assert (subscription["source_type"], subscription["source_ids"]) == (
        "db-instance",
        ["pcp-unit-mysql"],
    )
    assert set(subscription["event_categories"]) >= {"failover", "failure", "low storage"}
    (policy_id,) = resources(full.doc, "aws_sns_topic_policy")
    assert subscription["depends_on"] == [f"aws_sns_topic_policy.{policy_id}"]


def test_breakage_set_drops_the_capacity_warnings(unit_stack: UnitStack) -> None:
    from constructs_lib.alarms import AlarmSet
    from constructs_lib.monitoring import Monitoring

    monitoring = Monitoring(
        unit_stack.stack, "monitoring", props=props(unit_stack, alarm_set=AlarmSet.BREAKAGE)
    )
    assert set(monitoring.alarms) == FULL_KEYS - CAPACITY_KEYS


def test_dashboard_graphs_services_and_every_other_alarm_against_its_threshold(
    full: Unit, bare: Unit
) -> None:
    dashboard = one(full.doc, "aws_cloudwatch_dashboard")
    assert dashboard["dashboard_name"] == "pcp-unit-monitoring"
    status, *widgets = json.loads(dashboard["dashboard_body"])["widgets"]
    arns = {f"${{aws_cloudwatch_metric_alarm.{i}.arn}}" for i in full.alarm_ids.values()}
    assert set(status["properties"]["alarms"]) == arns
    titles = [w["properties"]["title"] for w in widgets]
    assert titles[:3] == [
        "pcp-unit-web: CPU and memory",
        "pcp-unit-worker: CPU and memory",
        "Running tasks",
    ]
    graphed = {t.split(":")[0]: w["properties"] for t, w in zip(titles, widgets, strict=True)}
    assert set(graphed) - {"pcp-unit-web", "pcp-unit-worker", "Running tasks"} == (
        FULL_KEYS - RUNNING_KEYS
    )
    cpu = graphed["db-cpu"]
    db_cpu = ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", "pcp-unit-mysql"]
    assert cpu["metrics"] == [[*db_cpu, {"label": "CPUUtilization"}]]
    assert cpu["annotations"]["horizontal"][0]["value"] == 70
    assert graphed["web-p99"]["stat"] == "p99"
    assert all(w["properties"]["region"] == REGION for w in widgets)
    assert resources(bare.doc, "aws_cloudwatch_dashboard") == {}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"alarm_email": None},
            r"^unit/monitoring\.alarm_email / alarm_topic_arn: got unset, alarms must reach "
            r"someone: .*allow_no_target=True",
        ),
        ({"alarm_email": "ops@localhost"}, r"^unit/monitoring\.alarm_email: got 'ops@localhost'"),
        ({"alarm_topic_arn": "pager"}, r"^unit/monitoring\.alarm_topic_arn: got 'pager', give an "),
        (
            {"alarm_topic_arn": "arn:aws:sns:us-east-1:123456789012:pager"},
            r"^unit/monitoring\.alarm_topic_arn: .*give a topic in eu-central-1",
        ),
        ({"services": []}, r"^unit/monitoring\.services: got \[\], give at least one"),
        (
            {"services": "dup"},
            r"^unit/monitoring\.services: got \['pcp-unit-web'\], give each service once$",
        ),
        ({"db_cpu_threshold_percent": 100}, r"^unit/monitoring\.db_cpu_threshold_percent: got 100"),
        (
            {"db_free_storage_threshold_gb": 0},
            r"^unit/monitoring\.db_free_storage_threshold_gb: got 0, give 1 or more$",
        ),
        (
            {"alarmed": "twice"},
            r"^unit/monitoring\.alarmed: got \['web-5xx', 'web-p99'\], give each construct once",
        ),
    ],
)
def test_invalid_props_are_refused_before_anything_is_built(
    unit_stack: UnitStack, overrides: dict[str, Any], message: str
) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.monitoring import Monitoring

    if overrides.get("services") == "dup":
        overrides["services"] = [unit_stack.service("web")] * 2
    if overrides.get("alarmed") == "twice":
        overrides["alarmed"] = [WebStandIn(), WebStandIn()]
    built = props(unit_stack, **overrides)
    with pytest.raises(ConfigError, match=message):
        Monitoring(unit_stack.stack, "monitoring", props=built)
    doc = unit_stack.synth()
    assert resources(doc, "aws_sns_topic") == {}
    assert resources(doc, "aws_cloudwatch_metric_alarm") == {}


def test_a_topic_arn_alone_is_a_target(unit_stack: UnitStack) -> None:
    from constructs_lib.monitoring import Monitoring

    monitoring = Monitoring(
        unit_stack.stack,
        "monitoring",
        props=props(unit_stack, alarm_email=None, alarm_topic_arn=PAGER),
    )
    assert monitoring.email_subscription is None
    doc = unit_stack.synth()
    (topic_id,) = resources(doc, "aws_sns_topic")
    db_cpu = unit_stack.stack.get_logical_id(monitoring.alarms["db-cpu"])
    alarm = resources(doc, "aws_cloudwatch_metric_alarm")[db_cpu]
    assert alarm["alarm_actions"] == [f"${{aws_sns_topic.{topic_id}.arn}}", PAGER]
    assert resources(doc, "aws_sns_topic_subscription") == {}
