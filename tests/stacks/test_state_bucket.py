"""Bootstrap stack: the remote-state bucket and its protections."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import Synth, one


@pytest.fixture(scope="module")
def bootstrap(synth: Synth) -> dict[str, Any]:
    return synth.stack("bootstrap")


def test_state_bucket_is_versioned(bootstrap: dict[str, Any]) -> None:
    assert one(bootstrap, "aws_s3_bucket")["bucket"] == "pcp-terraform-state"
    versioning = one(bootstrap, "aws_s3_bucket_versioning")
    assert versioning["versioning_configuration"] == {"status": "Enabled"}


def test_state_bucket_is_encrypted_with_a_rotating_kms_key(bootstrap: dict[str, Any]) -> None:
    (rule,) = one(bootstrap, "aws_s3_bucket_server_side_encryption_configuration")["rule"]
    default = rule["apply_server_side_encryption_by_default"]
    assert default["sse_algorithm"] == "aws:kms"
    assert default["kms_master_key_id"].startswith("${aws_kms_key.")
    assert rule["bucket_key_enabled"] is True
    assert one(bootstrap, "aws_kms_key")["enable_key_rotation"] is True


def test_state_bucket_blocks_all_public_access(bootstrap: dict[str, Any]) -> None:
    block = one(bootstrap, "aws_s3_bucket_public_access_block")
    for flag in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert block[flag] is True, flag
    assert one(bootstrap, "aws_s3_bucket_ownership_controls")["rule"] == {
        "object_ownership": "BucketOwnerEnforced"
    }


def test_state_bucket_policy_denies_non_tls_access(bootstrap: dict[str, Any]) -> None:
    policy = json.loads(one(bootstrap, "aws_s3_bucket_policy")["policy"])
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Action"] == ["s3:*"]
    assert len(deny["Resource"]) == 2  # the bucket and every object in it


def test_noncurrent_versions_expire(bootstrap: dict[str, Any]) -> None:
    (rule,) = one(bootstrap, "aws_s3_bucket_lifecycle_configuration")["rule"]
    assert rule["status"] == "Enabled"
    assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": 90}]
    assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 7}]
