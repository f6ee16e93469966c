"""Database construct: its security-group grants and its subnet rule, on a unit stack."""

from __future__ import annotations

import pytest

from tests.support import NAMING, ONE_AZ_NETWORK, UnitStack


def test_allow_from_adds_the_matching_ingress_and_egress_pair(unit_stack: UnitStack) -> None:
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    stack = unit_stack.stack
    db = unit_stack.database()
    peer = SecurityGroup(stack, "peer", vpc_id="vpc-1", description="peer")
    db.allow_from(peer, description="peer to MySQL")
    doc = unit_stack.synth()
    (ingress,) = doc["resource"]["aws_vpc_security_group_ingress_rule"].values()
    (egress,) = [
        r
        for r in doc["resource"]["aws_vpc_security_group_egress_rule"].values()
        if r["security_group_id"] == "${aws_security_group.peer.id}"
    ]
    assert ingress["security_group_id"].startswith("${aws_security_group.db_security-group")
    assert ingress["referenced_security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["referenced_security_group_id"] == ingress["security_group_id"]
    assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (3306, 3306, "tcp")
    assert (egress["from_port"], egress["to_port"]) == (3306, 3306)


def test_database_construct_needs_a_network_of_two_azs(unit_stack: UnitStack) -> None:
    from constructs_lib.database import Database, DatabaseProps
    from constructs_lib.errors import ConfigError

    network = unit_stack.network(ONE_AZ_NETWORK)
    props = DatabaseProps(naming=NAMING, network=network, key=unit_stack.key())
    with pytest.raises(
        ConfigError, match=r"^unit/db\.network: got 1, give a network of 2 or more AZs$"
    ):
        Database(unit_stack.stack, "db", props=props)
