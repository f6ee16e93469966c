"""What a user sees when an input is wrong: one line per error, ``error: <message>``, on
stderr, exit status 2 and no traceback, from every command the project ships.

The app (``main.py``, what ``cdktf synth`` and ``make synth`` run) is run as a user runs it,
in a subprocess: it must answer before the provider bindings load, so these tests never
import cdktf.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import IMAGE_TAG, REVIEW_ALARM_EMAIL, ROOT

BINDINGS = "cdktf_cdktf_provider_aws"
WAIT_S = 60
"""How long a run may take before the test gives up (the bindings alone take 13-19 s)."""

TAG_LATEST = (
    "error: prod.image_tag: got 'latest', production deploys an immutable tag: "
    "set IMAGE_TAG to a release or git SHA"
)
SYSTEMS_NOPE = (
    "error: app.SYSTEMS: got 'nope', name systems among dekart, metabase, metaflow, "
    "panintelligence, platform, comma-separated, or unset it"
)
PRODUCTION_ENVIRONMENTS = (
    ("prod", "prod"),
    ("metabase-prod", "metabase"),
    ("dekart-prod", "dekart"),
    ("metaflow-prod", "metaflow"),
    ("panintelligence-prod", "panintelligence"),
)


def no_alarm_target(where: str, file: str) -> str:
    return (
        f"error: {where}.alarm_email / alarm_topic_arn: got unset, production alarms must "
        f"reach someone: set alarm_email or alarm_topic_arn in environments/{file}.py, or "
        "PCP_ALARM_EMAIL or PCP_ALARM_TOPIC_ARN when you synthesize"
    )


def user_environ(**variables: str) -> dict[str, str]:
    """The shell of a user who set ``variables`` and none of the app's own."""
    own = ("IMAGE_TAG", "SYSTEMS", "PCP_ALARM_EMAIL", "PCP_ALARM_TOPIC_ARN", "TF_STATE_BUCKET")
    environ = {k: v for k, v in os.environ.items() if k not in own}
    return {**environ, **variables}


def run_app(**variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "main.py"],
        cwd=ROOT,
        env=user_environ(**variables),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )


def assert_one_line_errors(run: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stderr.splitlines() == list(expected)
    assert run.stdout == ""
    assert run.returncode == 2


# ------------------------------------------------------------------ the app (main.py)


def test_a_mutable_tag_for_production_is_one_line() -> None:
    run = run_app(IMAGE_TAG="latest", PCP_ALARM_EMAIL=REVIEW_ALARM_EMAIL)
    assert_one_line_errors(run, TAG_LATEST)


def test_an_unknown_system_is_one_line() -> None:
    run = run_app(IMAGE_TAG=IMAGE_TAG, SYSTEMS="nope", PCP_ALARM_EMAIL=REVIEW_ALARM_EMAIL)
    assert_one_line_errors(run, SYSTEMS_NOPE)


def test_no_production_alarm_target_is_one_line() -> None:
    run = run_app(IMAGE_TAG=IMAGE_TAG, SYSTEMS="platform")
    assert_one_line_errors(run, no_alarm_target("prod", "prod"))


def test_a_bad_state_bucket_is_one_line() -> None:
    run = run_app(IMAGE_TAG=IMAGE_TAG, PCP_ALARM_EMAIL=REVIEW_ALARM_EMAIL, TF_STATE_BUCKET="No")
    assert_one_line_errors(
        run,
        "error: state.bucket: got 'No', use 3-63 lower-case letters, digits, dots and "
        "hyphens (an S3 bucket name)",
    )


def test_every_wrong_input_is_reported_each_on_its_own_line() -> None:
    """A wrong SYSTEMS checks every system, so the alarm targets of all of them are named."""
    run = run_app(IMAGE_TAG="latest", SYSTEMS="nope")
    prod_alarm, *systems_alarms = (no_alarm_target(*p) for p in PRODUCTION_ENVIRONMENTS)
    assert_one_line_errors(run, SYSTEMS_NOPE, prod_alarm, TAG_LATEST, *systems_alarms)


def test_config_errors_come_before_the_provider_bindings_load() -> None:
    """The error is raised (and the process done) without the CDKTF or AWS provider modules
    ever imported: what was imported stays in ``sys.modules``."""
    probe = (
        "import sys, main\n"
        "code = main.main()\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in ({BINDINGS!r}, "
        "'cdktf', 'stacks'))\n"
        "print(code, loaded)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=user_environ(IMAGE_TAG="latest", PCP_ALARM_EMAIL=REVIEW_ALARM_EMAIL),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert run.stderr.splitlines() == [TAG_LATEST]
    assert run.stdout == "2 []\n"


def test_an_error_from_a_stack_is_shortened_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ConfigError raised while the stacks are built (a construct's own check) is the
    project's on purpose: one line as well."""
    import main
    from constructs_lib.errors import ConfigError

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise ConfigError("prod/queue", "node_type", "'cache.x1'", "use a cache.* class")

    monkeypatch.setattr(main, "build_stacks", refuse)
    environ = {"IMAGE_TAG": IMAGE_TAG, "PCP_ALARM_EMAIL": REVIEW_ALARM_EMAIL}
    assert main.main(environ) == 2
    err = capsys.readouterr().err
    assert err == "error: prod/queue.node_type: got 'cache.x1', use a cache.* class\n"


def test_an_unexpected_exception_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import main

    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError("producer")

    monkeypatch.setattr(main, "build_stacks", broken)
    with pytest.raises(KeyError, match="producer"):
        main.main({"IMAGE_TAG": IMAGE_TAG, "PCP_ALARM_EMAIL": REVIEW_ALARM_EMAIL})
