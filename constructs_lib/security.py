"""Security-group rules between two groups, always written as a matching pair."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import (
    VpcSecurityGroupIngressRule,
)
from constructs import Construct

RulePair = tuple[VpcSecurityGroupIngressRule, VpcSecurityGroupEgressRule]
"""The ingress rule on the target and the matching egress rule on the source."""


def allow_tcp(
    scope: Construct,
    *,
    source: SecurityGroup,
    target: SecurityGroup,
    port: int,
    description: str,
) -> RulePair:
    """Let ``source`` open TCP connections to ``target`` on ``port``.

    Adds the ingress rule on ``target`` and the egress rule on ``source``, so that both
    groups can keep a deny-by-default posture. The construct ids derive from the
    source group's unique id, so granting a new peer never renames existing rules.
    """
    peer = source.friendly_unique_id
    ingress = VpcSecurityGroupIngressRule(
        scope,
        f"ingress-{port}-from-{peer}",
        security_group_id=target.id,
        referenced_security_group_id=source.id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=description,
    )
    egress = VpcSecurityGroupEgressRule(
        scope,
        f"egress-{port}-from-{peer}",
        security_group_id=source.id,
        referenced_security_group_id=target.id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=description,
    )
    return ingress, egress
