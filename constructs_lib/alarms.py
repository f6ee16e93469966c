"""What a construct says about its own alarms: plain data, turned into CloudWatch alarms
(routed to the environment's topic) by :class:`~constructs_lib.observability.Observability`
and :class:`~constructs_lib.monitoring.Monitoring`.

A construct that owns a stateful or serving resource offers ``alarms() -> list[AlarmSpec]``
(``Database``, ``Queue``, ``LoadBalancer``: :class:`HasAlarms`); every spec says whether it
signals breakage (every environment gets it) or pressure (the production tier only:
``AlarmSet``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Protocol

from .options import Tier

COMPARISONS = {">": "GreaterThanThreshold", "<": "LessThanThreshold"}

Metric = tuple[str, str, dict[str, str]]
"""``(namespace, metric name, dimensions)``."""


class AlarmSet(Enum):
    """Which alarms an environment gets."""

    ALL = "all"
    """Breakage and pressure (production)."""
    BREAKAGE = "breakage"
    """Only what says something is broken or losing data; no capacity warnings (the
    development tier: nobody is paged for a busy test database)."""

    @classmethod
    def for_tier(cls, tier: Tier) -> AlarmSet:
        """What an environment of ``tier`` gets: everything in production, breakage
        elsewhere."""
        return cls.ALL if tier is Tier.PRODUCTION else cls.BREAKAGE


@dataclass(frozen=True)
class Watch:
    """How one metric is judged: its statistic over ``period`` seconds compared with
    ``threshold`` in ``datapoints`` of the last ``evaluations`` periods (all of them
    when unset); ``missing`` data counts as ``notBreaching`` unless said otherwise.
    A percentile statistic (``p99``) becomes CloudWatch's extended statistic."""

    statistic: str
    period: int
    compare: Literal[">", "<"]
    """``>`` or ``<`` (see :data:`COMPARISONS`)."""
    threshold: float
    evaluations: int = 1
    datapoints: int | None = None
    missing: str = "notBreaching"

    def config(self) -> dict[str, Any]:
        """The alarm's arguments."""
        percentile = self.statistic.startswith("p")
        return {
            "statistic": None if percentile else self.statistic,
            "extended_statistic": self.statistic if percentile else None,
            "period": self.period,
            "evaluation_periods": self.evaluations,
            "datapoints_to_alarm": self.datapoints,
            "comparison_operator": COMPARISONS[self.compare],
            "threshold": self.threshold,
            "treat_missing_data": self.missing,
        }


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm a construct asks for."""

    key: str
    """Stable: the alarm is named ``<prefix>-<key>`` (unless ``name`` says otherwise) and
    has a section in docs/runbook.md."""
    description: str
    """What it means and where to look first (the runbook has the commands)."""
    metric: Metric
    watch: Watch
    breakage: bool = True
    """True: every environment gets it; False: a capacity warning, production only."""
    name: str | None = None
    """The alarm's full name. Unset: ``<prefix>-<key>``."""


class HasAlarms(Protocol):
    """A construct that offers its alarms."""

    def alarms(self) -> list[AlarmSpec]:
        """What to alarm on (filtered by the environment's :class:`AlarmSet`)."""
        ...


def wanted(specs: list[AlarmSpec], alarm_set: AlarmSet) -> list[AlarmSpec]:
    """The specs ``alarm_set`` keeps."""
    return [s for s in specs if s.breakage or alarm_set is AlarmSet.ALL]
