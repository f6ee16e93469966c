"""Production's alarm target: set in the environment file or given by the shell, and a
synthesis that refuses production alarms reaching nobody."""

from __future__ import annotations

from dataclasses import replace

import pytest

from constructs_lib.errors import ConfigError, InputsError
from environments import ENVIRONMENTS
from environments.alarms import AlarmTarget
from tests.support import IMAGE_TAG

PAGER = "arn:aws:sns:eu-central-1:123456789012:pager"


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

    with pytest.raises(InputsError) as err:
        main.check_inputs({"IMAGE_TAG": IMAGE_TAG, "SYSTEMS": "platform"})
    assert [e.where for e in err.value.errors] == ["prod"]
    assert "PCP_ALARM_EMAIL" in str(err.value)


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
