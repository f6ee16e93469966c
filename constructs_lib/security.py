"""Security-group rules between two groups, always written as a matching pair.

The one way to open a path: the construct that receives connections offers
``allow_from(peer, *, description) -> RulePair`` (``Database``, ``Queue``,
``FargateService``), and ``peer`` is any construct with a ``security_group`` (or a group).
"""

from __future__ import annotations

from typing import Protocol, TypedDict

from cdktf_cdktf_provider_aws.data_aws_security_group import DataAwsSecurityGroup
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import (
    VpcSecurityGroupIngressRule,
)
from constructs import Construct


class HasSecurityGroup(Protocol):
    """A construct whose network interfaces sit in one security group (a service, the
    load balancer, a Lambda function in the VPC)."""

    @property
    def security_group(self) -> SecurityGroup: ...


Peer = SecurityGroup | HasSecurityGroup
"""Who may connect: a construct with a security group, or the group itself."""

ANYWHERE = "0.0.0.0/0"
"""Every IPv4 address (a default route, egress to AWS APIs through NAT)."""
HTTPS = 443


class _TcpRule(TypedDict):
    """What the two rules of a pair share."""

    ip_protocol: str
    from_port: int
    to_port: int
    description: str


RulePair = tuple[VpcSecurityGroupIngressRule, VpcSecurityGroupEgressRule]
"""The ingress rule on the target and the matching egress rule on the source."""


def allow_tcp(
    scope: Construct,
    *,
    source: Peer,
    target: SecurityGroup | DataAwsSecurityGroup,
    port: int,
    description: str,
) -> RulePair:
    """Let ``source`` open TCP connections to ``target`` on ``port`` (``target`` may be a
    group this project does not manage, looked up by id, such as an existing database's).

    Adds the ingress rule on ``target`` and the egress rule on ``source``, so that both
    groups can keep a deny-by-default posture. The construct ids derive from the
    source group's unique id, so granting a new peer never renames existing rules.
    """
    source = security_group_of(source)
    peer = source.friendly_unique_id
    rule: _TcpRule = {
        "ip_protocol": "tcp",
        "from_port": port,
        "to_port": port,
        "description": description,
    }
    ingress = VpcSecurityGroupIngressRule(
        scope,
        f"ingress-{port}-from-{peer}",
        security_group_id=target.id,
        referenced_security_group_id=source.id,
        **rule,
    )
    egress = VpcSecurityGroupEgressRule(
        scope,
        f"egress-{port}-from-{peer}",
        security_group_id=source.id,
        referenced_security_group_id=target.id,
        **rule,
    )
    return ingress, egress


def security_group_of(peer: Peer) -> SecurityGroup:
    """The security group of ``peer``."""
    return peer if isinstance(peer, SecurityGroup) else peer.security_group


def security_group(scope: Construct, *, name: str, description: str, vpc_id: str) -> SecurityGroup:
    """An empty security group ``name`` (also its ``Name`` tag), id ``security-group`` in
    ``scope``: it admits and sends nothing until :func:`allow_tcp` opens a path."""
    return SecurityGroup(
        scope,
        "security-group",
        name=name,
        description=description,
        vpc_id=vpc_id,
        tags={"Name": name},
    )


def allow_https_to_aws(
    scope: Construct, group: SecurityGroup, *, description: str
) -> VpcSecurityGroupEgressRule:
    """Let ``group`` reach AWS APIs (HTTPS anywhere, through NAT): the one path a private
    workload has before it is granted more; id ``egress-aws-apis`` in ``scope``."""
    return VpcSecurityGroupEgressRule(
        scope,
        "egress-aws-apis",
        security_group_id=group.id,
        cidr_ipv4=ANYWHERE,
        ip_protocol="tcp",
        from_port=HTTPS,
        to_port=HTTPS,
        description=description,
    )
