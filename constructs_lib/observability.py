"""Alarms, their SNS topic and one CloudWatch dashboard for an environment."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.cloudwatch_query_definition import CloudwatchQueryDefinition
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from constructs import Construct

from apps.common.contract import (
    BACKLOG_METRIC,
    DEAD_LETTERED_METRIC,
    METRICS_NAMESPACE,
    OLDEST_PENDING_AGE_METRIC,
    PROCESSED_METRIC,
    LogField,
    metric_dimensions,
)

from .alarms import AlarmSet, AlarmSpec, Watch, wanted
from .alarms import Metric as AlarmMetric
from .database import Database
from .encryption import EncryptionKey
from .errors import ConfigError
from .firewall import EdgeFirewall
from .frontend import Frontend
from .load_balancer import LoadBalancer
from .monitoring import (
    CONTAINER_INSIGHTS,
    ECS,
    RDS,
    alarm_topic,
    alarm_widget,
    check_alarm_email,
    check_database_thresholds,
    check_services,
    database_specs,
    db_event_subscription,
    flat,
    lay_out,
    metric_alarm,
    metric_widget,
    rds_events_grant,
    running_tasks_spec,
    spec_alarm,
)
from .naming import Naming
from .queue import Queue
from .service import FargateService

ALB = "AWS/ApplicationELB"
DB_CPU_HINT = "Look at the RDS slow query log and the consumer's batch size and task count."


@dataclass(frozen=True)
class Edge:
    """What CloudFront serves through and what guards it."""

    frontend: Frontend
    firewall: EdgeFirewall


@dataclass(frozen=True)
class ObservabilityProps:
    naming: Naming
    region: str
    """Region of the graphed metrics (dashboard widgets need it)."""
    account_id: str
    """Account of the alarms: the topic policy only accepts CloudWatch publishing on
    behalf of this account's alarms (``aws:SourceAccount`` / ``aws:SourceArn``)."""
    key: EncryptionKey
    """Encrypts the SNS topic. The construct lets ``cloudwatch.amazonaws.com`` use it
    (``kms:Decrypt``, ``kms:GenerateDataKey``), without which alarms cannot publish."""
    services: Sequence[FargateService]
    """At least one, each once: its running tasks are alarmed (below its ``min_tasks``)
    and its CPU and memory graphed."""
    load_balancer: LoadBalancer
    """Its 5xx answers and unhealthy targets are alarmed."""
    database: Database
    """Its CPU and free storage are alarmed, plus its own alarms (``Database.alarms``) and
    its failover, failure and low-storage events."""
    queue: Queue
    """Its own alarms (``Queue.alarms``)."""
    edge: Edge | None = None
    """The distribution and its web ACL: their alarms (5xx rate, blocked-request spikes)
    live in us-east-1 with their metrics, on a topic there. Unset: no edge alarms."""
    alarm_set: AlarmSet = AlarmSet.ALL
    """Which of the constructs' own alarms to create. Unset: all (production); the
    development tier passes ``BREAKAGE``."""
    queue_metric_namespace: str = METRICS_NAMESPACE
    """Namespace of the backlog metric the consumer publishes (Embedded Metric Format).
    Unset: the contract's ``METRICS_NAMESPACE``."""
    queue_backlog_metric: str = BACKLOG_METRIC
    """Unset: the contract's ``BACKLOG_METRIC`` (what the consumer emits)."""
    alarm_email: str | None = None
    """Subscribed (e-mail) to the environment's topic. Unset: no subscription."""
    alarm_topic_arn: str | None = None
    """An existing SNS topic (paging, chat) every alarm also notifies. Unset: only the
    environment's topic."""
    backlog_threshold: int = 1000
    """Alarm when the backlog maximum over 5 minutes exceeds this. Unset: 1000 messages."""
    alb_5xx_threshold: int = 10
    """Alarm when ALB plus target 5xx responses in 5 minutes reach this. Unset: 10."""
    db_cpu_threshold_percent: int = 80
    """Alarm when average DB CPU exceeds this for 15 minutes. Unset: 80 %."""
    db_free_storage_threshold_gb: int = 2
    """Alarm when free DB storage falls below this many GiB. Unset: 2 GiB."""


def metric_query(
    id_: str, metric: AlarmMetric, *, stat: str, period: int
) -> CloudwatchMetricAlarmMetricQuery:
    """One input of a metric-math alarm (not returned itself)."""
    namespace, name, dimensions = metric
    return CloudwatchMetricAlarmMetricQuery(
        id=id_,
        metric=CloudwatchMetricAlarmMetricQueryMetric(
            namespace=namespace, metric_name=name, dimensions=dimensions, stat=stat, period=period
        ),
        return_data=False,
    )


class Observability(Construct):
    """An encrypted alarm topic, the platform's alarms and an overview dashboard.

    Every alarm notifies :attr:`topic` when it fires *and* when it recovers. The topic
    policy admits only CloudWatch alarms of ``account_id`` named with this environment's
    prefix; principals of the account still need their own IAM permissions to use it.

    Alarms (:attr:`alarms`, by key): ``alb-5xx``, ``unhealthy-targets``, ``db-cpu``,
    ``db-free-storage``, ``queue-backlog`` and ``running-<service name>`` per service.
    """

    def __init__(self, scope: Construct, id_: str, *, props: ObservabilityProps) -> None:
        super().__init__(scope, id_)
        naming = props.naming
        self._naming = naming
        self._region = props.region
        self._services = [service.metrics for service in props.services]
        lb = props.load_balancer
        self._lb = {"LoadBalancer": lb.arn_suffix}
        self._target_group = {"TargetGroup": lb.target_group_arn_suffix, **self._lb}
        self._db = {"DBInstanceIdentifier": props.database.identifier}
        self._backlog = metric_dimensions(naming.environment)
        self._validate(props)

        topic = alarm_topic(
            self,
            naming=naming,
            account_id=props.account_id,
            region=props.region,
            key=props.key,
            email=props.alarm_email,
            # RDS sends the instance's events to the same topic.
            grants=(rds_events_grant(naming, account_id=props.account_id, region=props.region),),
        )
        self.topic = topic.topic
        self.topic_policy = topic.policy
        self.email_subscription = topic.email
        self.topic_arn: str = self.topic.arn

        self.alarm_actions: list[str] = [self.topic.arn]
        """Where every alarm (and its recovery) is sent."""
        if props.alarm_topic_arn is not None:
            self.alarm_actions.append(props.alarm_topic_arn)
        self.alarms: dict[str, CloudwatchMetricAlarm] = {}
        self._accepted: list[AlarmMetric] = []
        self._add_alarms(props)
        self._add_offered_alarms(props)
        self.queries = self._saved_queries(props)
        self.edge_topic: SnsTopic | None = None
        self.edge_alarms: dict[str, CloudwatchMetricAlarm] = {}
        """In us-east-1, on :attr:`edge_topic` (not on the regional dashboard's alarm list)."""
        if props.edge is not None:
            self._edge_alarms(props, props.edge)
        self.db_events = db_event_subscription(
            self, naming=naming, identifier=props.database.identifier, topic=topic
        )
        self.dashboard = CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=naming.name("overview"),
            dashboard_body=json.dumps({"widgets": self._widgets(props)}),
        )

    def _validate(self, props: ObservabilityProps) -> None:
        where = self.node.path
        check_services(where, self._services)
        check_alarm_email(where, props.alarm_email)
        positive = {
            "backlog_threshold": props.backlog_threshold,
            "alb_5xx_threshold": props.alb_5xx_threshold,
        }
        for field, value in positive.items():
            if value < 1:
                raise ConfigError(where, field, value, "give 1 or more")
        check_database_thresholds(
            where,
            cpu_percent=props.db_cpu_threshold_percent,
            free_storage_gb=props.db_free_storage_threshold_gb,
        )

    def _threshold(self, key: str, description: str, metric: AlarmMetric, watch: Watch) -> None:
        """Alarm ``key`` on one metric (``namespace, name, dimensions``) as ``watch`` says."""
        self._spec(AlarmSpec(key, description, metric, watch))

    def _spec(self, spec: AlarmSpec) -> None:
        """``spec`` as an alarm on the regional topic (and the extra one)."""
        self.alarms[spec.key] = spec_alarm(
            self, spec, naming=self._naming, actions=self.alarm_actions
        )

    def _add_alarms(self, props: ObservabilityProps) -> None:
        self._alb_5xx_alarm(props)
        self._threshold(
            "unhealthy-targets",
            "Targets of the producer target group failed health checks in 3 of the last "
            "5 minutes. Look at the ECS service events and the producer's /health logs.",
            (ALB, "UnHealthyHostCount", self._target_group),
            Watch("Maximum", 60, ">", 0, evaluations=5, datapoints=3),
        )
        for spec in database_specs(
            props.database.identifier,
            cpu_percent=props.db_cpu_threshold_percent,
            free_storage_gb=props.db_free_storage_threshold_gb,
            cpu_hint=DB_CPU_HINT,
        ):
            self._spec(spec)
        # The consumer publishes the backlog every interval and omits it when it cannot
        # read the queue depth, so silence means nobody is draining the queue.
        self._threshold(
            "queue-backlog",
            f"Queue backlog above {props.backlog_threshold} messages, or no backlog metric "
            "for 5 minutes (the consumer is down or cannot read the queue). Look at the "
            "consumer service's running tasks and logs, then database health.",
            (props.queue_metric_namespace, props.queue_backlog_metric, self._backlog),
            Watch("Maximum", 300, ">", props.backlog_threshold, missing="breaching"),
        )
        for service in self._services:
            self._spec(running_tasks_spec(service, naming=self._naming))

    def _edge_alarms(self, props: ObservabilityProps, edge: Edge) -> None:
        """CloudFront's and WAF's metrics exist only in us-east-1, and an alarm notifies a
        topic in its own region: a second topic there (the edge key encrypts it; the same
        e-mail subscribes). The extra ``alarm_topic_arn`` is notified too when it is in
        us-east-1 (an alarm cannot reach a topic in another region)."""
        firewall = edge.firewall
        topic = alarm_topic(
            self,
            naming=self._naming,
            account_id=props.account_id,
            region="us-east-1",
            key=firewall.key,
            email=props.alarm_email,
            name="edge-alarms",
            id_prefix="edge-",
            show_region=props.region != "us-east-1",
            provider=firewall.provider,
        )
        self.edge_topic = topic.topic
        actions = [topic.topic.arn]
        if props.alarm_topic_arn and props.alarm_topic_arn.split(":")[3] == "us-east-1":
            actions.append(props.alarm_topic_arn)
        specs = [
            AlarmSpec(
                "cloudfront-5xx",
                "Over 5 % of the distribution's answers were 5xx in 3 of the last 5 minutes "
                "(the API behind it, or the bucket). Look at alb-5xx and unhealthy-targets; "
                "if those are quiet, at the CloudFront and WAF logs.",
                (
                    "AWS/CloudFront",
                    "5xxErrorRate",
                    {"DistributionId": edge.frontend.distribution.id, "Region": "Global"},
                ),
                Watch("Average", 60, ">", 5, evaluations=5, datapoints=3),
            ),
            AlarmSpec(
                "waf-blocked-spike",
                "The web ACL blocked over 1000 requests in 5 minutes: an attack or a client "
                "gone wrong hitting the rate limit. Look at the WAF log group for the source "
                "IPs and the rule that blocked them.",
                ("AWS/WAFV2", "BlockedRequests", {"WebACL": firewall.name, "Rule": "ALL"}),
                Watch("Sum", 300, ">", 1000),
                breakage=False,
            ),
        ]
        for spec in wanted(specs, props.alarm_set):
            self.edge_alarms[spec.key] = spec_alarm(
                self, spec, naming=self._naming, actions=actions, provider=firewall.provider
            )

    def _saved_queries(self, props: ObservabilityProps) -> dict[str, CloudwatchQueryDefinition]:
        """Logs Insights queries over the services' JSON lines (``LogField``): errors by
        service, one value's trail (replace ``KEY``), the slowest requests."""
        f = LogField
        groups = [service.log_group.name for service in props.services]
        api = [s.log_group.name for s in props.services if s.props.load_balancer is not None]
        queries = {
            "errors-by-service": (
                groups,
                f"fields @timestamp, {f.SERVICE}, {f.LEVEL}, {f.MESSAGE}\n"
                f'| filter {f.LEVEL} in ["ERROR", "WARNING", "CRITICAL"]\n'
                f"| stats count(*) as lines by {f.SERVICE}, {f.LEVEL}, {f.MESSAGE}\n"
                "| sort lines desc",
            ),
            "value-trail": (
                groups,
                f"fields @timestamp, {f.SERVICE}, {f.MESSAGE}, {f.ENTRY_ID}, {f.VALUE}\n"
                # The consumer logs a batch per line (its key field is a list): match the
                # raw line, which holds the key in both services' lines.
                '| filter @message like "KEY"\n'
                "| sort @timestamp asc",
            ),
            "slowest-requests": (
                api,
                f"fields @timestamp, {f.PATH}, {f.STATUS}, {f.DURATION_MS}\n"
                f"| filter ispresent({f.DURATION_MS})\n"
                f"| sort {f.DURATION_MS} desc\n"
                "| limit 50",
            ),
        }
        return {
            key: CloudwatchQueryDefinition(
                self,
                f"query-{key}",
                name=f"{self._naming.prefix}/{key}",
                log_group_names=log_groups,
                query_string=query,
            )
            for key, (log_groups, query) in queries.items()
        }

    def _add_offered_alarms(self, props: ObservabilityProps) -> None:
        """The consumer's lag and dead letters, the API's 503s (counted from its JSON log
        lines), and the alarms the database, the queue and the load balancer offer."""
        metrics = props.queue_metric_namespace
        self._threshold(
            "consumer-dead-letters",
            "The consumer dead-lettered messages: values it can never store (refused by "
            "the database, malformed). Look at the consumer's dead-letter log lines; fix the "
            "cause, then replay them from the dead-letter stream (docs/runbook.md).",
            (metrics, DEAD_LETTERED_METRIC, self._backlog),
            Watch("Sum", 300, ">", 0),
        )
        self._threshold(
            "consumer-lag",
            "The oldest entry handed to a consumer and not yet acknowledged is over 5 "
            "minutes old, or the age was not reported: the consumers are stuck or too few. "
            "Look at the consumer's running tasks, its /health and the database alarms.",
            (metrics, OLDEST_PENDING_AGE_METRIC, self._backlog),
            Watch("Maximum", 60, ">", 300, evaluations=5, datapoints=3, missing="breaching"),
        )
        for service in props.services:
            if service.props.load_balancer is None:
                continue
            self._accepted.append(
                service.count_log_lines(
                    "accepted-answers",
                    pattern=f"{{ $.{LogField.STATUS} = 202 }}",
                    namespace=f"{METRICS_NAMESPACE}/{self._naming.environment}",
                    name=f"{service.name.capitalize()}AcceptedAnswers",
                )
            )
            unavailable = service.count_log_lines(
                "unavailable-answers",
                pattern=f"{{ $.{LogField.STATUS} = 503 }}",
                namespace=f"{METRICS_NAMESPACE}/{self._naming.environment}",
                name=f"{service.name.capitalize()}UnavailableAnswers",
            )
            self._threshold(
                f"{service.name}-503s",
                f"The {service.name} answered 503 more than 10 times in 5 minutes: the queue "
                "was unreachable or refused writes (outcome unknown / not_accepted). Look at "
                "the queue alarms and the service's logs.",
                unavailable,
                Watch("Sum", 300, ">", 10),
            )
        self._queue_specs = props.queue.alarms()  # graphed too: the "Queue engine" widget
        offered = [*props.database.alarms(), *self._queue_specs, *props.load_balancer.alarms()]
        for spec in wanted(offered, props.alarm_set):
            self._threshold(spec.key, spec.description, spec.metric, spec.watch)

    def _alb_5xx_alarm(self, props: ObservabilityProps) -> None:
        """ELB plus target 5xx: two metrics summed, a missing one counted as zero."""
        lb = self._lb
        self.alarms["alb-5xx"] = metric_alarm(
            self,
            "alb-5xx",
            name=self._naming.name("alb-5xx"),
            actions=self.alarm_actions,
            description=(
                f"{props.alb_5xx_threshold}+ HTTP 5xx answers in 5 minutes (load balancer plus "
                "targets). Look at the producer service's logs and the dashboard's ALB and "
                "target health widgets; ELB 5xx without target 5xx means no healthy target."
            ),
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=props.alb_5xx_threshold,
            evaluation_periods=1,
            treat_missing_data="notBreaching",
            metric_query=[
                metric_query("elb", (ALB, "HTTPCode_ELB_5XX_Count", lb), stat="Sum", period=300),
                metric_query(
                    "target", (ALB, "HTTPCode_Target_5XX_Count", lb), stat="Sum", period=300
                ),
                CloudwatchMetricAlarmMetricQuery(
                    id="errors",
                    expression="FILL(elb, 0) + FILL(target, 0)",
                    label="HTTP 5xx (ELB + targets)",
                    return_data=True,
                ),
            ],
        )

    def _metric_widget(
        self,
        title: str,
        metrics: list[list[Any]],
        *,
        stat: str = "Average",
        period: int = 60,
        y_label: str | None = None,
    ) -> dict[str, Any]:
        return metric_widget(
            self._region, title, metrics, stat=stat, period=period, y_label=y_label
        )

    def _flow_widgets(self, props: ObservabilityProps) -> list[dict[str, Any]]:
        """The write path left to right: accepted, waiting (backlog and lag), stored,
        dead-lettered."""
        ns, dims = props.queue_metric_namespace, flat(self._backlog)
        return [
            self._metric_widget(
                "1. Accepted (202) per minute",
                [[n, m, *flat(d), {"label": m}] for n, m, d in self._accepted],
                stat="Sum",
            ),
            self._metric_widget(
                "2. Waiting: backlog and oldest pending entry",
                [
                    [ns, props.queue_backlog_metric, *dims, {"label": "backlog"}],
                    [ns, OLDEST_PENDING_AGE_METRIC, *dims, {"label": "age (s)", "yAxis": "right"}],
                ],
                stat="Maximum",
            ),
            self._metric_widget(
                "3. Stored per minute",
                [[ns, PROCESSED_METRIC, *dims, {"label": "stored"}]],
                stat="Sum",
            ),
            self._metric_widget(
                "4. Dead-lettered per minute",
                [[ns, DEAD_LETTERED_METRIC, *dims, {"label": "dead-lettered"}]],
                stat="Sum",
            ),
        ]

    def _widgets(self, props: ObservabilityProps) -> list[dict[str, Any]]:
        lb = flat(self._lb)
        tg = flat(self._target_group)
        db = flat(self._db)
        widgets: list[dict[str, Any]] = [
            alarm_widget(props.region, list(self.alarms.values())),
            *self._flow_widgets(props),
            self._metric_widget(
                "ALB requests and 5xx",
                [
                    [ALB, "RequestCount", *lb, {"label": "requests"}],
                    [ALB, "HTTPCode_ELB_5XX_Count", *lb, {"label": "ELB 5xx"}],
                    [ALB, "HTTPCode_Target_5XX_Count", *lb, {"label": "target 5xx"}],
                ],
                stat="Sum",
            ),
            self._metric_widget(
                "ALB target response time",
                [
                    [ALB, "TargetResponseTime", *lb, {"stat": "p50", "label": "p50"}],
                    [ALB, "TargetResponseTime", *lb, {"stat": "p99", "label": "p99"}],
                ],
                y_label="seconds",
            ),
            self._metric_widget(
                "Healthy and unhealthy targets",
                [
                    [ALB, "HealthyHostCount", *tg, {"label": "healthy"}],
                    [ALB, "UnHealthyHostCount", *tg, {"label": "unhealthy"}],
                ],
                stat="Maximum",
            ),
        ]
        for service in self._services:
            dims = flat(service.dimensions)
            widgets.append(
                self._metric_widget(
                    f"{service.service_name}: CPU and memory",
                    [
                        [ECS, "CPUUtilization", *dims, {"label": "CPU"}],
                        [ECS, "MemoryUtilization", *dims, {"label": "memory"}],
                    ],
                    y_label="percent",
                )
            )
        widgets += [
            self._metric_widget(
                "Running tasks",
                [
                    [
                        CONTAINER_INSIGHTS,
                        "RunningTaskCount",
                        *flat(service.dimensions),
                        {"label": service.service_name},
                    ]
                    for service in self._services
                ],
                stat="Minimum",
            ),
            self._metric_widget(
                "Queue engine (what its alarms watch)",
                [
                    [n, m, *flat(d), {"label": spec.key, "stat": spec.watch.statistic}]
                    for spec in self._queue_specs
                    for n, m, d in [spec.metric]
                ],
            ),
            self._metric_widget(
                "RDS CPU and connections",
                [
                    [RDS, "CPUUtilization", *db, {"label": "CPU %"}],
                    [RDS, "DatabaseConnections", *db, {"label": "connections", "yAxis": "right"}],
                ],
            ),
            self._metric_widget(
                "RDS free storage",
                [[RDS, "FreeStorageSpace", *db, {"label": "free bytes"}]],
                stat="Minimum",
                y_label="bytes",
            ),
        ]
        return lay_out(widgets)
