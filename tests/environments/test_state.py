"""Where Terraform keeps each environment's state: the bucket name and the shell's settings."""

from __future__ import annotations

import pytest

from constructs_lib.errors import ConfigError
from environments.state import StateConfig


def test_state_bucket_name_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"^state\.bucket: got 'My_Bucket', use 3-63 lower-case"):
        StateConfig(bucket="My_Bucket")


def test_state_config_reads_the_environment() -> None:
    state = StateConfig.from_environ(
        {"TF_STATE_BUCKET": "acme-tfstate", "TF_STATE_REGION": "eu-west-1"}
    )
    assert (state.bucket, state.region, state.key("prod")) == (
        "acme-tfstate",
        "eu-west-1",
        "prod/terraform.tfstate",
    )
