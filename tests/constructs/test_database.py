"""Database construct: its security-group grants and its subnet rule, on a unit stack."""

from __future__ import annotations

import pytest

from tests.support import ACCOUNT_ID, KMS_KEY_ARN, NAMING, UnitStack


def test_allow_from_adds_the_matching_ingress_and_egress_pair(unit_stack: UnitStack) -> None:
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    from constructs_lib.database import Database, DatabaseProps

    stack = unit_stack.stack
    db = Database(
        stack,
        "db",
        props=DatabaseProps(
            naming=NAMING,
            account_id=ACCOUNT_ID,
            vpc_id="vpc-1",
            subnet_ids=["subnet-a", "subnet-b"],
            kms_key_arn=KMS_KEY_ARN,
        ),
    )
    peer = SecurityGroup(stack, "peer", vpc_id="vpc-1", description="peer")
    db.allow_from(peer, description="peer to MySQL")
    doc = unit_stack.synth()
    (ingress,) = doc["resource"]["aws_vpc_security_group_ingress_rule"].values()
    (egress,) = doc["resource"]["aws_vpc_security_group_egress_rule"].values()
    assert ingress["security_group_id"].startswith("${aws_security_group.db_security-group")
    assert ingress["referenced_security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["referenced_security_group_id"] == ingress["security_group_id"]
    assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (3306, 3306, "tcp")
    assert (egress["from_port"], egress["to_port"]) == (3306, 3306)


def test_database_construct_needs_two_subnets(unit_stack: UnitStack) -> None:
    from constructs_lib.database import Database, DatabaseProps
    from constructs_lib.errors import ConfigError

    props = DatabaseProps(
        naming=NAMING,
        account_id=ACCOUNT_ID,
        vpc_id="vpc-1",
        subnet_ids=["subnet-a"],
        kms_key_arn=KMS_KEY_ARN,
    )
    with pytest.raises(
        ConfigError, match=r"^unit/db\.subnet_ids: got 1, give subnets in 2 or more AZs$"
    ):
        Database(unit_stack.stack, "db", props=props)
