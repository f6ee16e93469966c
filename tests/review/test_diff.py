"""A diff of a known change names exactly that change (small stacks built here, and the
real prod stack with one edit)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import Synth
from tools.review.diff import diff_stack
from tools.review.model import parse_stack


@pytest.fixture(scope="module")
def prod_doc(synth: Synth) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        Path(synth.outdir, "stacks", "prod", "cdk.tf.json").read_text()
    )
    return doc


def _one(doc: dict[str, Any], type_: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    return next((k, v) for k, v in doc["resource"][type_].items() if k.startswith(prefix))


def test_unchanged_stack_has_no_change(prod_doc: dict[str, Any]) -> None:
    d = diff_stack(parse_stack("prod", prod_doc), parse_stack("prod", copy.deepcopy(prod_doc)))
    assert d.changes == []
    assert d.widening == []


def test_a_port_opened_is_that_change_and_a_widening(prod_doc: dict[str, Any]) -> None:
    after = copy.deepcopy(prod_doc)
    name, rule = _one(after, "aws_vpc_security_group_ingress_rule", "producer_ingress")
    rule["from_port"] = rule["to_port"] = 22
    d = diff_stack(parse_stack("prod", prod_doc), parse_stack("prod", after))
    assert [(c.kind, c.address) for c in d.changes] == [
        ("changed", f"aws_vpc_security_group_ingress_rule.{name}")
    ]
    assert {a.path for a in d.changes[0].attrs} == {"from_port", "to_port"}
    assert d.widening == ["new ingress: load-balancer/alb -> producer/service on tcp/22"]
    assert d.risky == []


def test_an_instance_class_change_is_in_place_and_not_risky(prod_doc: dict[str, Any]) -> None:
    after = copy.deepcopy(prod_doc)
    _, db = _one(after, "aws_db_instance")
    db["instance_class"] = "db.r7g.large"
    d = diff_stack(parse_stack("prod", prod_doc), parse_stack("prod", after))
    (change,) = d.changes
    assert change.kind == "changed"
    assert [(a.path, a.before, a.after) for a in change.attrs] == [
        ("instance_class", "db.t4g.medium", "db.r7g.large")
    ]
    assert d.risky == []


def test_a_forcing_change_on_the_database_is_a_risky_replacement(prod_doc: dict[str, Any]) -> None:
    after = copy.deepcopy(prod_doc)
    _, db = _one(after, "aws_db_instance")
    db["storage_encrypted"] = False
    d = diff_stack(parse_stack("prod", prod_doc), parse_stack("prod", after))
    (change,) = d.changes
    assert change.kind == "replaced"
    assert d.risky == [change]
    assert any(w.startswith("turned off: database/instance storage_encrypted") for w in d.widening)


def test_a_renamed_construct_is_shown_as_a_rename_that_replaces(prod_doc: dict[str, Any]) -> None:
    after = copy.deepcopy(prod_doc)
    buckets = after["resource"]["aws_s3_bucket"]
    old_name, bucket = _one(after, "aws_s3_bucket", "frontend")
    del buckets[old_name]
    bucket["//"]["metadata"]["path"] = "prod/site/bucket"
    buckets["site_bucket_0123ABCD"] = bucket
    d = diff_stack(parse_stack("prod", prod_doc), parse_stack("prod", after))
    renamed = [c for c in d.changes if c.kind == "renamed"]
    assert [(c.old_address, c.address) for c in renamed] == [
        (f"aws_s3_bucket.{old_name}", "aws_s3_bucket.site_bucket_0123ABCD")
    ]
    assert renamed[0].risky
    assert "moved" in renamed[0].note
    assert not [c for c in d.changes if c.kind in ("added", "removed")]


def test_a_new_iam_action_is_a_widening() -> None:
    def stack(actions: list[str]) -> dict[str, Any]:
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": ["*"]}],
        }
        meta = {"//": {"metadata": {"path": "s/app/role"}}}
        return {
            "resource": {
                "aws_iam_role": {"role": {**meta, "name": "r"}},
                "aws_iam_role_policy": {
                    "p": {
                        "//": {"metadata": {"path": "s/app/policy"}},
                        "role": "${aws_iam_role.role.id}",
                        "policy": json.dumps(policy),
                    }
                },
            }
        }

    d = diff_stack(
        parse_stack("s", stack(["s3:GetObject"])), parse_stack("s", stack(["s3:GetObject", "s3:*"]))
    )
    assert d.widening == ["new IAM grant: app/role may s3:* on *"]
