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
from pathlib import Path

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
    """When the error is raised (a spy on ``check_inputs`` looks then), and when the process
    is done, no CDKTF, AWS provider or stack module has been imported."""
    probe = (
        "import sys, main\n"
        "def loaded():\n"
        f"    return sorted(m for m in sys.modules if m.split('.')[0] in ({BINDINGS!r}, "
        "'cdktf', 'stacks'))\n"
        "check = main.check_inputs\n"
        "def spy(environ):\n"
        "    try:\n"
        "        return check(environ)\n"
        "    except main.InputsError:\n"
        "        print('raised', loaded())\n"
        "        raise\n"
        "main.check_inputs = spy\n"
        "code = main.main()\n"
        "print(code, loaded())\n"
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
    assert run.stdout.splitlines() == ["raised []", "2 []"]


def test_an_environment_file_breaking_a_rule_is_one_line() -> None:
    """A config is checked as it is built, when ``environments`` is imported: the app reports
    that too in one line. The probe tightens a rule before the import, as an edited file
    would break it."""
    probe = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('environments.config', "
        "'environments/config.py')\n"
        "config = importlib.util.module_from_spec(spec)\n"
        "sys.modules['environments.config'] = config\n"
        "spec.loader.exec_module(config)\n"
        "config.PRODUCTION_MIN_TASKS = 4\n"
        "import main\n"
        "sys.exit(main.main())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=user_environ(IMAGE_TAG=IMAGE_TAG, PCP_ALARM_EMAIL=REVIEW_ALARM_EMAIL),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert_one_line_errors(
        run,
        "error: metabase-prod.service.min_tasks: got 2, a production service runs at least 4 "
        "tasks (one AZ can fail)",
    )


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


# ------------------------------------------------------------------ the other commands


def run_command(*argv: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``argv`` run from the project root with only PATH and ``variables`` set."""
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **variables},
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )


REPLAY = ("-m", "apps.consumer.replay")
QUEUE = {"REDIS_URL": "rediss://cache:6379"}


def test_replay_without_its_queue_settings_is_one_line() -> None:
    run = run_command(*REPLAY, "--all")
    assert_one_line_errors(run, "error: environment.REDIS_URL: got nothing, set it (required)")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--id", "abc"], "argument --id: 'abc' is not a stream entry id (<ms>-<seq>)"),
        (["--limit", "0"], "argument --limit: 0 is not at least 1"),
        (["--dry-run"], "--dry-run goes with --id or --all"),
        (["--id", "1-0", "--all"], "argument --all: not allowed with argument --id"),
        (["--id", "1-0", "--limit", "3"], "--limit goes with --list or --all, not --id"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_a_replay_usage_error_is_one_line(argv: list[str], message: str) -> None:
    assert_one_line_errors(run_command(*REPLAY, *argv, **QUEUE), f"error: {message}")


def test_the_checkov_gate_without_a_synth_is_one_line(tmp_path: Path) -> None:
    run = run_command("tools/checkov_scan.py", str(tmp_path))
    assert_one_line_errors(
        run, f"error: no */cdk.tf.json under {tmp_path}: synthesize first (make synth)"
    )


def test_the_checkov_gate_refuses_an_unknown_option_in_one_line() -> None:
    run = run_command("tools/checkov_scan.py", "--unjustifed")
    assert_one_line_errors(
        run,
        "error: unknown argument '--unjustifed': use python tools/checkov_scan.py "
        "[--unjustified] [STACKS_DIR]",
    )


def test_the_checkov_gate_without_checkov_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools import checkov_scan

    (tmp_path / "stacks" / "dev").mkdir(parents=True)
    (tmp_path / "stacks" / "dev" / "cdk.tf.json").write_text("{}")
    missing = tmp_path / "checkov" / "bin" / "checkov"
    monkeypatch.setattr(checkov_scan, "CHECKOV", missing)
    assert checkov_scan.main([str(tmp_path / "stacks")]) == 2
    assert capsys.readouterr().err == (
        f"error: {missing} is missing: run `make test` (it installs checkov)\n"
    )


def test_a_malformed_justification_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools import checkov_scan

    file = tmp_path / "justifications.toml"
    file.write_text('[[justify]]\ncheck = "CKV_AWS_18"\npaths = ["bucket/bucket"]\n')
    monkeypatch.setattr(checkov_scan, "JUSTIFICATIONS", file)
    assert checkov_scan.main([]) == 2
    assert capsys.readouterr().err == (
        f"error: {file}: justification #1 (CKV_AWS_18): give the reason this check may fail "
        "on these paths\n"
    )


def test_a_wrong_bench_setting_is_one_line_each() -> None:
    run = run_command("-m", "bench", BENCH_BATCHED_N="abc", BENCH_HTTP_ROUNDS="0")
    assert_one_line_errors(
        run,
        "error: environment.BENCH_BATCHED_N: got 'abc', use a whole number of at least 1 or "
        "unset it (default 100000)",
        "error: environment.BENCH_HTTP_ROUNDS: got '0', use a whole number of at least 1 or "
        "unset it (default 3)",
    )


def test_the_review_bench_names_the_step_that_failed_in_one_line() -> None:
    run = run_command("-m", "bench.review", IMAGE_TAG="latest", HOME=os.environ.get("HOME", "/tmp"))
    assert_one_line_errors(
        run, f"error: `cdktf synth` exited 1 ({TAG_LATEST}): run it alone to see why"
    )


REFRESH = "scripts/refresh-rds-ca.py"


def test_refresh_rds_ca_without_the_named_file_is_one_line(tmp_path: Path) -> None:
    run = run_command(REFRESH, "--pem", str(tmp_path / "global-bundle.pem"))
    assert_one_line_errors(
        run, f"error: --pem {tmp_path / 'global-bundle.pem'}: No such file or directory"
    )


def test_refresh_rds_ca_with_a_file_that_is_not_pem_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bundle.pem").write_text("not a certificate\n")
    run = run_command(REFRESH, "--pem", str(tmp_path / "bundle.pem"))
    assert_one_line_errors(run, "error: file bundle.pem: not a PEM certificate bundle")


def test_refresh_rds_ca_with_no_rds_ca_in_the_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "other.pem").write_bytes(self_signed_ca("Example Corp Root CA"))
    run = run_command(REFRESH, "--pem", str(tmp_path / "other.pem"))
    assert_one_line_errors(run, "error: no usable Amazon RDS CA certificate in file other.pem")


def test_refresh_rds_ca_usage_error_is_one_line() -> None:
    assert_one_line_errors(run_command(REFRESH, "--pin"), "error: unrecognized arguments: --pin")


def test_refresh_rds_ca_with_only_a_certificate_without_basic_constraints_is_one_line(
    tmp_path: Path,
) -> None:
    """A certificate that does not say it is a CA (no BasicConstraints) is not one: left out,
    not a traceback."""
    (tmp_path / "leaf.pem").write_bytes(self_signed_ca("Amazon RDS leaf", ca=False))
    run = run_command(REFRESH, "--pem", str(tmp_path / "leaf.pem"))
    assert_one_line_errors(run, "error: no usable Amazon RDS CA certificate in file leaf.pem")


def self_signed_ca(common_name: str, *, ca: bool = True) -> bytes:
    """A valid CA certificate in PEM that is not Amazon RDS's (``ca=False``: a certificate
    without the BasicConstraints extension)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)
