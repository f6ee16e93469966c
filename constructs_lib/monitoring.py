"""Alarms with a target for any system built from this library.

The pieces every system's monitoring needs, as functions taking the ``scope`` they build
into (``Observability``, the producer/consumer platform's monitoring, calls them under
its own construct ids), and :class:`Monitoring`, which puts them together for a system of
Fargate services, an optional database and whatever else offers ``alarms()``: an
encrypted topic with a target, one running-task alarm per service, the database's alarms
and RDS events, the offered alarms, and optionally a compact dashboard.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.db_event_subscription import DbEventSubscription
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from .alarms import AlarmSet, AlarmSpec, HasAlarms, Watch, wanted
from .database import Database
from .encryption import EncryptionKey, ServiceAccess
from .errors import ConfigError
from .naming import Naming
from .options import Deployment
from .policy import Statement, policy_document
from .service import FargateService, ServiceMetrics
from .settings import EMAIL_ADDRESS

__all__ = [
    "AlarmTopic",
    "HasAlarms",
    "Monitoring",
    "MonitoringProps",
    "TopicGrant",
    "alarm_topic",
    "database_specs",
    "db_event_subscription",
    "metric_alarm",
    "rds_events_grant",
    "running_tasks_spec",
    "spec_alarm",
]

ECS = "AWS/ECS"
CONTAINER_INSIGHTS = "ECS/ContainerInsights"
RDS = "AWS/RDS"
CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"
RDS_EVENTS_SERVICE = "events.rds.amazonaws.com"
DB_EVENT_CATEGORIES = ("availability", "failover", "failure", "low storage")
"""RDS events sent to the alarm topic: the instance went down or came back, failed over
to its standby, failed, or is running out of storage."""
GIB = 1024**3
ALARM_HEIGHT = 4
SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}$")
"""A standard SNS topic's ARN; the group is its region."""
DB_CPU_HINT = "Look at Performance Insights' top SQL and the clients' task and connection counts."
"""Where :func:`database_specs` sends the reader of a ``db-cpu`` alarm unless told."""


# --- the topic ----------------------------------------------------------------------------


class TopicGrant(NamedTuple):
    """A service that may publish to an alarm topic (and use its key)."""

    sid: str
    service: str
    """Its service principal, e.g. ``events.rds.amazonaws.com``."""
    source: str = ""
    """ARN pattern of the resources it publishes for (``aws:SourceArn``). Unset: the
    topic's alarms (``arn:aws:cloudwatch:<region>:<account>:alarm:<prefix>-*``)."""


CLOUDWATCH_GRANT = TopicGrant("CloudWatchAlarmsPublish", CLOUDWATCH_SERVICE)


@dataclass(frozen=True)
class AlarmTopic:
    """What :func:`alarm_topic` built."""

    topic: SnsTopic
    policy: SnsTopicPolicy
    """Alarms and RDS event subscriptions should depend on it: without it they cannot
    publish."""
    email: SnsTopicSubscription | None
    """Unset when no address was given."""


def rds_events_grant(naming: Naming, *, account_id: str, region: str) -> TopicGrant:
    """RDS may publish the events of this system's instances (``<prefix>-*``)."""
    pattern = f"arn:aws:rds:{region}:{account_id}:db:{naming.prefix}-*"
    return TopicGrant("RdsEventsPublish", RDS_EVENTS_SERVICE, pattern)


def alarm_topic(
    scope: Construct,
    *,
    naming: Naming,
    account_id: str,
    region: str,
    key: EncryptionKey,
    email: str | None,
    name: str = "alarms",
    id_prefix: str = "",
    show_region: bool = False,
    provider: TerraformProvider | None = None,
    grants: Sequence[TopicGrant] = (),
) -> AlarmTopic:
    """An SNS topic ``<prefix>-<name>`` in ``region`` (construct ids ``<id_prefix>topic``,
    ``<id_prefix>topic-policy``, ``<id_prefix>email`` under ``scope``), encrypted with
    ``key``. CloudWatch may publish for this system's alarms (``<prefix>-*``) of
    ``account_id`` in ``region``, and each of ``grants`` for its sources; each of them may
    use the key (``kms:Decrypt``, ``kms:GenerateDataKey``). ``email`` (when given)
    subscribes. ``show_region`` adds ``(<region>)`` to the display name (a second topic
    outside the system's region)."""
    everyone = (CLOUDWATCH_GRANT, *grants)
    for grant in everyone:
        key.allow_service(
            ServiceAccess(grant.service, actions=("kms:Decrypt", "kms:GenerateDataKey"))
        )
    alarms = f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{naming.prefix}-*"
    topic = SnsTopic(
        scope,
        f"{id_prefix}topic",
        provider=provider,
        name=naming.name(name),
        display_name=f"{naming.prefix} {name.replace('-', ' ')}"
        + (f" ({region})" if show_region else ""),
        kms_master_key_id=key.arn,
    )
    policy = SnsTopicPolicy(
        scope,
        f"{id_prefix}topic-policy",
        provider=provider,
        arn=topic.arn,
        policy=policy_document(
            *(
                _publish(g.sid, g.service, topic.arn, account_id, g.source or alarms)
                for g in everyone
            )
        ),
    )
    subscription = None
    if email is not None:
        subscription = SnsTopicSubscription(
            scope,
            f"{id_prefix}email",
            provider=provider,
            topic_arn=topic.arn,
            protocol="email",
            endpoint=email,
        )
    return AlarmTopic(topic, policy, subscription)


def _publish(sid: str, service: str, topic_arn: str, account_id: str, source: str) -> Statement:
    """Let ``service`` publish to the topic on behalf of this account's resources whose ARN
    matches ``source``."""
    return Statement(
        sid=sid,
        principals={"Service": service},
        actions=["sns:Publish"],
        resources=[topic_arn],
        conditions={
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {"aws:SourceArn": source},
        },
    )


# --- alarms -----------------------------------------------------------------------------


def metric_alarm(
    scope: Construct,
    key: str,
    *,
    name: str,
    description: str,
    actions: Sequence[str],
    provider: TerraformProvider | None = None,
    **config: Any,
) -> CloudwatchMetricAlarm:
    """Alarm ``name`` (construct id ``alarm-<key>``) notifying ``actions`` when it fires
    and when it recovers; ``config`` says what it watches (the metric, or a metric-math
    ``metric_query``, and how it is judged)."""
    notify = list(actions)
    return CloudwatchMetricAlarm(
        scope,
        f"alarm-{key}",
        provider=provider,
        alarm_name=name,
        alarm_description=description,
        actions_enabled=True,
        alarm_actions=notify,
        ok_actions=notify,
        **config,
    )


def spec_alarm(
    scope: Construct,
    spec: AlarmSpec,
    *,
    naming: Naming,
    actions: Sequence[str],
    provider: TerraformProvider | None = None,
) -> CloudwatchMetricAlarm:
    """``spec`` as an alarm named ``<prefix>-<key>`` (or ``spec.name``) notifying
    ``actions`` when it fires and when it recovers (:func:`metric_alarm`)."""
    namespace, metric_name, dimensions = spec.metric
    return metric_alarm(
        scope,
        spec.key,
        name=spec.name or naming.name(spec.key),
        description=spec.description,
        actions=actions,
        provider=provider,
        namespace=namespace,
        metric_name=metric_name,
        dimensions=dimensions,
        **spec.watch.config(),
    )


def running_tasks_spec(service: ServiceMetrics, *, naming: Naming, minutes: int = 3) -> AlarmSpec:
    """Fewer than the service's ``min_running_tasks`` for ``minutes`` (unset: 3), or no
    report (key ``running-<service name>``, alarm ``<prefix>-running-<short name>``)."""
    short = service.service_name.removeprefix(f"{naming.prefix}-")
    return AlarmSpec(
        f"running-{service.service_name}",
        f"ECS service {service.service_name} ran fewer than "
        f"{service.min_running_tasks} task(s) for {minutes} minutes, or reported nothing. "
        "Look at the service's events (failed health checks, image pulls, "
        "stopped-task reasons) and its logs.",
        (CONTAINER_INSIGHTS, "RunningTaskCount", service.dimensions),
        Watch(
            "Minimum", 60, "<", service.min_running_tasks, evaluations=minutes, missing="breaching"
        ),
        name=naming.name("running", short),
    )


def _outage_minutes(service: FargateService) -> int:
    """How long a service may run short before its running-task alarm fires: 3 minutes,
    plus, when its deploys stop the old tasks first (``Deployment.REPLACE``), the time a
    deploy takes to stop them and start new ones (stop timeout, image pull, start-up
    grace), so that a deploy does not page."""
    props = service.props
    if props.deployment is not Deployment.REPLACE:
        return 3
    return 3 + math.ceil((props.stop_timeout_seconds + props.startup_grace_seconds) / 60) + 1


def database_specs(
    identifier: str,
    *,
    cpu_percent: int = 80,
    free_storage_gb: int = 2,
    cpu_hint: str = DB_CPU_HINT,
) -> list[AlarmSpec]:
    """``db-cpu`` (average CPU over ``cpu_percent`` for 15 minutes; ``cpu_hint`` says
    where to look) and ``db-free-storage`` (under ``free_storage_gb`` GiB) of RDS instance
    ``identifier``. Both signal breakage (every environment gets them)."""
    db = {"DBInstanceIdentifier": identifier}
    return [
        AlarmSpec(
            "db-cpu",
            f"Database CPU averaged over {cpu_percent}% for 15 minutes. {cpu_hint}",
            (RDS, "CPUUtilization", db),
            Watch("Average", 300, ">", cpu_percent, evaluations=3),
        ),
        AlarmSpec(
            "db-free-storage",
            f"Database free storage below {free_storage_gb} GiB. Look at "
            "table growth and raise max_allocated_storage before autoscaling runs out.",
            (RDS, "FreeStorageSpace", db),
            Watch("Minimum", 300, "<", free_storage_gb * GIB),
        ),
    ]


def db_event_subscription(
    scope: Construct, *, naming: Naming, identifier: str, topic: AlarmTopic
) -> DbEventSubscription:
    """RDS instance ``identifier``'s availability, failover, failure and low-storage events
    (:data:`DB_EVENT_CATEGORIES`) sent to ``topic`` (construct id ``db-events``; the topic
    needs :func:`rds_events_grant`)."""
    return DbEventSubscription(
        scope,
        "db-events",
        name=naming.name("db-events"),
        sns_topic=topic.topic.arn,
        source_type="db-instance",
        source_ids=[identifier],
        event_categories=list(DB_EVENT_CATEGORIES),
        depends_on=[topic.policy],
    )


# --- the rules ----------------------------------------------------------------------------


def check_services(where: str, services: Sequence[ServiceMetrics]) -> None:
    """At least one service, each once."""
    if not services:
        raise ConfigError(where, "services", "[]", "give at least one ECS service to watch")
    names = [s.service_name for s in services]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(where, "services", duplicates, "give each service once")


def check_alarm_email(where: str, email: str | None) -> None:
    """Unset, or an e-mail address (:data:`~constructs_lib.settings.EMAIL_ADDRESS`)."""
    if email is not None and not EMAIL_ADDRESS.match(email):
        raise ConfigError(where, "alarm_email", repr(email), "give an address like ops@example.com")


def check_database_thresholds(where: str, *, cpu_percent: int, free_storage_gb: int) -> None:
    """CPU 1 to 99 %, free storage 1 GiB or more."""
    if free_storage_gb < 1:
        raise ConfigError(where, "db_free_storage_threshold_gb", free_storage_gb, "give 1 or more")
    if not 1 <= cpu_percent <= 99:
        raise ConfigError(where, "db_cpu_threshold_percent", cpu_percent, "give 1 to 99")


# --- dashboards ---------------------------------------------------------------------------


def metric_widget(
    region: str,
    title: str,
    metrics: list[list[Any]],
    *,
    stat: str = "Average",
    period: int = 60,
    y_label: str | None = None,
) -> dict[str, Any]:
    """A time-series dashboard widget of ``metrics`` (CloudWatch's
    ``[namespace, name, dimension, value, ..., {options}]`` rows) in ``region``."""
    properties: dict[str, Any] = {
        "title": title,
        "view": "timeSeries",
        "stacked": False,
        "region": region,
        "stat": stat,
        "period": period,
        "metrics": metrics,
    }
    if y_label:
        properties["yAxis"] = {"left": {"label": y_label, "showUnits": False}}
    return {"type": "metric", "properties": properties}


def alarm_widget(region: str, alarms: Sequence[CloudwatchMetricAlarm]) -> dict[str, Any]:
    """The status of ``alarms``."""
    return {
        "type": "alarm",
        "properties": {
            "title": "Alarms",
            "region": region,
            "alarms": [alarm.arn for alarm in alarms],
        },
    }


def lay_out(widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alarm status widget (first) across the top, then the metric widgets two to a
    row (the grid is 24 units wide)."""
    status, *metrics = widgets
    status.update(x=0, y=0, width=24, height=ALARM_HEIGHT)
    for index, widget in enumerate(metrics):
        row, column = divmod(index, 2)
        widget.update(x=12 * column, y=ALARM_HEIGHT + 6 * row, width=12, height=6)
    return widgets


def flat(dimensions: dict[str, str]) -> list[str]:
    """``{"A": "1", "B": "2"}`` as a dashboard metric's ``"A", "1", "B", "2"``."""
    return [item for pair in dimensions.items() for item in pair]


# --- a system's monitoring ----------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringProps:
    naming: Naming
    account_id: str
    """Account of the alarms and the database: the topic policy only accepts CloudWatch
    (and RDS events) publishing on behalf of this account's resources named
    ``<prefix>-*``."""
    region: str
    """The system's region: its alarms, its topic, its dashboard."""
    key: EncryptionKey
    """Encrypts the topic; the construct lets CloudWatch (and RDS events, with a
    database) use it."""
    services: Sequence[FargateService]
    """At least one, each once: an alarm when fewer than its ``min_tasks`` run."""
    database: Database | None
    """Its CPU and free storage are alarmed, plus its own alarms (``Database.alarms``)
    and its availability, failover, failure and low-storage events. None: a system
    without a database."""
    alarmed: Sequence[HasAlarms] = ()
    """Further constructs whose ``alarms()`` are created (a load balancer). Unset: none."""
    alarm_set: AlarmSet = AlarmSet.ALL
    """Which offered alarms to create (running tasks, database CPU and free storage are
    always created). Unset: all (production); a development tier passes ``BREAKAGE``."""
    alarm_email: str | None = None
    """Subscribed (e-mail) to the topic. Unset: no subscription."""
    alarm_topic_arn: str | None = None
    """An existing SNS topic in ``region`` (paging, chat) every alarm also notifies.
    Unset: only the system's topic."""
    allow_no_target: bool = False
    """True: neither ``alarm_email`` nor ``alarm_topic_arn`` is needed; the alarms fire
    into a topic nobody reads until someone subscribes (a development system, a team
    that subscribes outside Terraform). Unset: one of them is required."""
    db_cpu_threshold_percent: int = 80
    """Alarm when average DB CPU exceeds this for 15 minutes. Unset: 80 %."""
    db_free_storage_threshold_gb: int = 2
    """Alarm when free DB storage falls below this many GiB. Unset: 2 GiB."""
    dashboard: bool = False
    """True: a dashboard ``<prefix>-monitoring`` with the alarms' status, each service's
    CPU, memory and running tasks, and every alarmed metric against its threshold.
    Unset: none (CloudWatch bills dashboards beyond three per account)."""


class Monitoring(Construct):
    """An encrypted alarm topic with a target, and the alarms of one system.

    Every alarm notifies :attr:`topic` (and ``alarm_topic_arn``) when it fires *and*
    when it recovers. The topic policy admits only CloudWatch alarms of ``account_id``
    named with this system's prefix, and with a database, RDS events of its instances.

    Alarms (:attr:`alarms`, by key): ``running-<service name>`` per service; with a
    database ``db-cpu``, ``db-free-storage`` and the database's own; then those of
    ``alarmed``. Offered alarms (the database's own and ``alarmed``'s) are filtered by
    ``alarm_set``.
    """

    def __init__(self, scope: Construct, id_: str, *, props: MonitoringProps) -> None:
        super().__init__(scope, id_)
        naming = props.naming
        self._props = props
        specs = self._specs(props)
        self._validate(props, specs)

        database = props.database
        grants: tuple[TopicGrant, ...] = ()
        if database is not None:
            grants = (rds_events_grant(naming, account_id=props.account_id, region=props.region),)
        built = alarm_topic(
            self,
            naming=naming,
            account_id=props.account_id,
            region=props.region,
            key=props.key,
            email=props.alarm_email,
            grants=grants,
        )
        self.topic: SnsTopic = built.topic
        self.topic_policy: SnsTopicPolicy = built.policy
        self.email_subscription: SnsTopicSubscription | None = built.email
        self.alarm_actions: list[str] = [self.topic.arn]
        """Where every alarm (and its recovery) is sent."""
        if props.alarm_topic_arn is not None:
            self.alarm_actions.append(props.alarm_topic_arn)

        self.alarms: dict[str, CloudwatchMetricAlarm] = {
            spec.key: spec_alarm(self, spec, naming=naming, actions=self.alarm_actions)
            for spec in specs
        }
        self.specs: dict[str, AlarmSpec] = {spec.key: spec for spec in specs}
        """What each of :attr:`alarms` watches."""
        self.db_events: DbEventSubscription | None = None
        if database is not None:
            self.db_events = db_event_subscription(
                self, naming=naming, identifier=database.identifier, topic=built
            )
        self.dashboard: CloudwatchDashboard | None = None
        if props.dashboard:
            self.dashboard = CloudwatchDashboard(
                self,
                "dashboard",
                dashboard_name=naming.name("monitoring"),
                dashboard_body=json.dumps({"widgets": self._widgets(props)}),
            )

    @staticmethod
    def _specs(props: MonitoringProps) -> list[AlarmSpec]:
        """Every alarm to create, in order: running tasks, the database's, the offered."""
        always = [
            running_tasks_spec(s.metrics, naming=props.naming, minutes=_outage_minutes(s))
            for s in props.services
        ]
        offered: list[AlarmSpec] = []
        if props.database is not None:
            always += database_specs(
                props.database.identifier,
                cpu_percent=props.db_cpu_threshold_percent,
                free_storage_gb=props.db_free_storage_threshold_gb,
            )
            offered += props.database.alarms()
        for construct in props.alarmed:
            offered += construct.alarms()
        return [*always, *wanted(offered, props.alarm_set)]

    def _validate(self, props: MonitoringProps, specs: list[AlarmSpec]) -> None:
        where = self.node.path
        check_services(where, [s.metrics for s in props.services])
        check_alarm_email(where, props.alarm_email)
        topic_arn = props.alarm_topic_arn
        if topic_arn is not None:
            match = SNS_TOPIC_ARN.match(topic_arn)
            if match is None:
                raise ConfigError(
                    where,
                    "alarm_topic_arn",
                    repr(topic_arn),
                    "give an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)",
                )
            if match.group(1) != props.region:
                raise ConfigError(
                    where,
                    "alarm_topic_arn",
                    repr(topic_arn),
                    f"give a topic in {props.region}: an alarm cannot notify another region",
                )
        if props.alarm_email is None and topic_arn is None and not props.allow_no_target:
            raise ConfigError(
                where,
                "alarm_email / alarm_topic_arn",
                "unset",
                "alarms must reach someone: give alarm_email or alarm_topic_arn, or "
                "allow_no_target=True to subscribe later",
            )
        check_database_thresholds(
            where,
            cpu_percent=props.db_cpu_threshold_percent,
            free_storage_gb=props.db_free_storage_threshold_gb,
        )
        keys = [spec.key for spec in specs]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ConfigError(
                where, "alarmed", duplicates, "give each construct once; alarm keys must differ"
            )

    def _widgets(self, props: MonitoringProps) -> list[dict[str, Any]]:
        """Alarm status; per service CPU and memory; running tasks; every other alarm's
        metric with its threshold."""
        region = props.region
        services = [s.metrics for s in props.services]
        widgets = [alarm_widget(region, list(self.alarms.values()))]
        for service in services:
            dims = flat(service.dimensions)
            widgets.append(
                metric_widget(
                    region,
                    f"{service.service_name}: CPU and memory",
                    [
                        [ECS, "CPUUtilization", *dims, {"label": "CPU"}],
                        [ECS, "MemoryUtilization", *dims, {"label": "memory"}],
                    ],
                    y_label="percent",
                )
            )
        widgets.append(
            metric_widget(
                region,
                "Running tasks",
                [
                    [
                        CONTAINER_INSIGHTS,
                        "RunningTaskCount",
                        *flat(s.dimensions),
                        {"label": s.service_name},
                    ]
                    for s in services
                ],
                stat="Minimum",
            )
        )
        running = {running_tasks_spec(s, naming=props.naming).key for s in services}
        for key, spec in self.specs.items():
            if key in running:
                continue
            namespace, name, dimensions = spec.metric
            widget = metric_widget(
                region,
                f"{key}: {name}",
                [[namespace, name, *flat(dimensions), {"label": name}]],
                stat=spec.watch.statistic,
                period=spec.watch.period,
            )
            widget["properties"]["annotations"] = {
                "horizontal": [{"label": "alarm threshold", "value": spec.watch.threshold}]
            }
            widgets.append(widget)
        return lay_out(widgets)
