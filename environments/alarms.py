"""Who production alarms reach: from the environment's config, or from the shell at synth.

The production tier must name a target, so an alarm never fires into a topic nobody
reads. ``PCP_ALARM_EMAIL`` / ``PCP_ALARM_TOPIC_ARN`` (read when the app is synthesized)
fill in a production environment's ``alarm_email`` / ``alarm_topic_arn``, so a team can
keep its address out of the repository; a value in the config file wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from constructs_lib.errors import ConfigError

ALARM_EMAIL_VARIABLE = "PCP_ALARM_EMAIL"
ALARM_TOPIC_VARIABLE = "PCP_ALARM_TOPIC_ARN"


class Alarmed(Protocol):
    """A config with an alarm target: the platform's environments, the seed systems'."""

    @property
    def where(self) -> str: ...

    @property
    def is_production(self) -> bool: ...

    @property
    def alarm_email(self) -> str | None: ...

    @property
    def alarm_topic_arn(self) -> str | None: ...

    @property
    def config_file(self) -> str:
        """Where the config is written (``environments/prod.py``), for error messages."""
        ...


C = TypeVar("C", bound=Alarmed)


@dataclass(frozen=True)
class AlarmTarget:
    """Alarm target given at synth time (either may be None)."""

    email: str | None = None
    topic_arn: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AlarmTarget:
        return cls(
            email=environ.get(ALARM_EMAIL_VARIABLE) or None,
            topic_arn=environ.get(ALARM_TOPIC_VARIABLE) or None,
        )

    def apply(self, config: C) -> C:
        """``config`` with its alarm target; raises when a production one has none."""
        if not config.is_production:
            return config
        resolved = replace(
            config,  # type: ignore[type-var]  # every Alarmed config is a dataclass
            alarm_email=config.alarm_email or self.email,
            alarm_topic_arn=config.alarm_topic_arn or self.topic_arn,
        )  # re-validated: a bad address from the shell fails like one in the file
        if resolved.alarm_email is None and resolved.alarm_topic_arn is None:
            raise ConfigError(
                config.where,
                "alarm_email / alarm_topic_arn",
                "unset",
                f"production alarms must reach someone: set alarm_email or alarm_topic_arn "
                f"in {config.config_file}, or {ALARM_EMAIL_VARIABLE} or "
                f"{ALARM_TOPIC_VARIABLE} when you synthesize",
            )
        return resolved
