"""Who production alarms reach: from the environment's config, or from the shell at synth.

The production tier must name a target, so an alarm never fires into a topic nobody
reads. ``PCP_ALARM_EMAIL`` / ``PCP_ALARM_TOPIC_ARN`` (read when the app is synthesized)
fill in a production environment's ``alarm_email`` / ``alarm_topic_arn``, so a team can
keep its address out of the repository; a value in the config file wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from constructs_lib.errors import ConfigError

from .config import EnvironmentConfig

ALARM_EMAIL_VARIABLE = "PCP_ALARM_EMAIL"
ALARM_TOPIC_VARIABLE = "PCP_ALARM_TOPIC_ARN"


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

    def apply(self, config: EnvironmentConfig) -> EnvironmentConfig:
        """``config`` with its alarm target; raises when a production one has none."""
        if not config.is_production:
            return config
        resolved = replace(
            config,
            alarm_email=config.alarm_email or self.email,
            alarm_topic_arn=config.alarm_topic_arn or self.topic_arn,
        )  # re-validated: a bad address from the shell fails like one in the file
        if resolved.alarm_email is None and resolved.alarm_topic_arn is None:
            raise ConfigError(
                config.name,
                "alarm_email / alarm_topic_arn",
                "unset",
                f"production alarms must reach someone: set alarm_email or alarm_topic_arn "
                f"in environments/{config.name}.py, or {ALARM_EMAIL_VARIABLE} or "
                f"{ALARM_TOPIC_VARIABLE} when you synthesize",
            )
        return resolved
