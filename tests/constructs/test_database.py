"""Database construct: its security-group grants and its subnet rule, on a unit stack."""

from __future__ import annotations

import json

import pytest


def test_allow_from_adds_the_matching_ingress_and_egress_pair() -> None:
    from cdktf import TerraformStack, Testing
    from cdktf_cdktf_provider_aws.provider import AwsProvider
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    from constructs_lib.database import Database, DatabaseProps
    from constructs_lib.naming import Naming

    stack = TerraformStack(Testing.app(), "unit")
    AwsProvider(stack, "aws", region="eu-central-1")
    db = Database(
        stack,
        "db",
        props=DatabaseProps(
            naming=Naming("unit"),
            account_id="123456789012",
            vpc_id="vpc-1",
            subnet_ids=["subnet-a", "subnet-b"],
            kms_key_arn="arn:aws:kms:eu-central-1:123456789012:key/k",
        ),
    )
    peer = SecurityGroup(stack, "peer", vpc_id="vpc-1", description="peer")
    db.allow_from(peer, description="peer to MySQL")
    doc = json.loads(Testing.synth(stack))
    (ingress,) = doc["resource"]["aws_vpc_security_group_ingress_rule"].values()
    (egress,) = doc["resource"]["aws_vpc_security_group_egress_rule"].values()
    assert ingress["security_group_id"].startswith("${aws_security_group.db_security-group")
    assert ingress["referenced_security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["referenced_security_group_id"] == ingress["security_group_id"]
    assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (3306, 3306, "tcp")
    assert (egress["from_port"], egress["to_port"]) == (3306, 3306)


def test_database_construct_needs_two_subnets() -> None:
    from cdktf import TerraformStack, Testing

    from constructs_lib.database import Database, DatabaseProps
    from constructs_lib.errors import ConfigError
    from constructs_lib.naming import Naming

    stack = TerraformStack(Testing.app(), "unit")
    props = DatabaseProps(
        naming=Naming("unit"),
        account_id="123456789012",
        vpc_id="vpc-1",
        subnet_ids=["subnet-a"],
        kms_key_arn="arn:aws:kms:eu-central-1:123456789012:key/k",
    )
    with pytest.raises(
        ConfigError, match=r"^unit/db\.subnet_ids: got 1, give subnets in 2 or more AZs$"
    ):
        Database(stack, "db", props=props)
