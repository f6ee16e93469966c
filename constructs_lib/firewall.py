"""AWS WAF in front of CloudFront or a regional load balancer: managed rule groups, a
per-IP rate limit, logging."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclRule,
    Wafv2WebAclRuleAction,
    Wafv2WebAclRuleActionBlock,
    Wafv2WebAclRuleOverrideAction,
    Wafv2WebAclRuleOverrideActionNone,
    Wafv2WebAclRuleVisibilityConfig,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_logging_configuration import (
    Wafv2WebAclLoggingConfiguration,
    Wafv2WebAclLoggingConfigurationRedactedFields,
    Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader,
)
from constructs import Construct

from .encryption import EncryptionKey
from .errors import ConfigError
from .logs import log_group
from .naming import Naming
from .settings import DEFAULT_LOG_RETENTION_DAYS

COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    COMMON_RULE_SET,
    "AWSManagedRulesKnownBadInputsRuleSet",
)
"""AWS's baseline groups: known-bad sources, OWASP-style common rules, and known bad
inputs (including the Log4j JNDI lookups)."""
REDACTED_HEADERS = ("authorization", "cookie")
"""Headers the WAF log never records: session cookies (the load balancer's Cognito
session, the application's own) and credentials would let whoever reads the log replay a
session."""


class WafScope(Enum):
    """What a web ACL protects."""

    CLOUDFRONT = "CLOUDFRONT"
    """A CloudFront distribution: the ACL lives in us-east-1."""
    REGIONAL = "REGIONAL"
    """A regional resource (an internet-facing load balancer) in the stack's region."""


@dataclass(frozen=True)
class EdgeFirewallProps:
    naming: Naming
    provider: TerraformProvider | None
    """An AWS provider for us-east-1 with ``CLOUDFRONT`` (CloudFront web ACLs and their
    logs live there); ``None`` (the stack's provider) with ``REGIONAL``."""
    log_key: EncryptionKey
    """A key in the ACL's region that CloudWatch Logs may use for the WAF log group."""
    scope: WafScope = WafScope.CLOUDFRONT
    """Unset: for CloudFront."""
    name: str = "edge"
    """The ACL is ``<prefix>-<name>``. Unset: ``edge``."""
    count_only: tuple[str, ...] = ()
    """Rules of the managed groups that only count (are logged) instead of blocking, by
    rule name, e.g. ``SizeRestrictions_BODY`` (the common rule set blocks bodies over
    8 KB, which an application saving dashboards or uploading files sends). Unset: every
    rule blocks."""
    rate_limit_per_5_minutes: int = 2000
    """Requests one IP may send in 5 minutes before it is blocked. Unset: 2000."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Unset: WAF logs kept 30 days."""


class EdgeFirewall(Construct):
    """A web ACL: CloudFront-scoped (attach it with ``Frontend``'s ``firewall``; it sees
    every request to the site and the API, since the load balancer is internal and only
    CloudFront's VPC origin reaches it), or regional (``WebLoadBalancer(web_acl_arn=)``).
    """

    def __init__(self, scope: Construct, id_: str, *, props: EdgeFirewallProps) -> None:
        super().__init__(scope, id_)
        if not 100 <= props.rate_limit_per_5_minutes <= 2_000_000_000:
            raise ConfigError(
                self.node.path,
                "rate_limit_per_5_minutes",
                props.rate_limit_per_5_minutes,
                "use 100 or more (the WAF minimum)",
            )
        if (props.scope is WafScope.CLOUDFRONT) != (props.provider is not None):
            raise ConfigError(
                self.node.path,
                "provider",
                props.provider,
                "give a us-east-1 provider for CLOUDFRONT, none for REGIONAL",
            )
        name = props.naming.name(props.name)
        rules = [
            Wafv2WebAclRule(
                name="rate-limit-per-ip",
                priority=0,
                action=Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock()),
                # ``statement`` is untyped in the bindings: Terraform's block structure.
                statement={
                    "rate_based_statement": {
                        "limit": props.rate_limit_per_5_minutes,
                        "aggregate_key_type": "IP",
                    }
                },
                visibility_config=_visibility(f"{name}-rate-limit"),
            )
        ]
        for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
            rules.append(
                Wafv2WebAclRule(
                    name=group,
                    priority=priority,
                    override_action=Wafv2WebAclRuleOverrideAction(
                        none=Wafv2WebAclRuleOverrideActionNone()
                    ),
                    statement={
                        "managed_rule_group_statement": {
                            "name": group,
                            "vendor_name": "AWS",
                            **(
                                {
                                    "rule_action_override": [
                                        {"name": rule, "action_to_use": {"count": {}}}
                                        for rule in props.count_only
                                    ]
                                }
                                if props.count_only and group == COMMON_RULE_SET
                                else {}
                            ),
                        }
                    },
                    visibility_config=_visibility(f"{name}-{group}"),
                )
            )
        self.web_acl = Wafv2WebAcl(
            self,
            "web-acl",
            provider=props.provider,
            name=name,
            description=(
                "CloudFront: managed rule groups and a per-IP rate limit"
                if props.scope is WafScope.CLOUDFRONT
                else "Load balancer: managed rule groups and a per-IP rate limit"
            ),
            scope=props.scope.value,
            default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()),
            visibility_config=Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True,
                metric_name=name,
                sampled_requests_enabled=True,
            ),
            rule=rules,
        )
        self.log_group = log_group(
            self,
            "log-group",
            provider=props.provider,
            name=f"aws-waf-logs-{name}",  # WAF requires the aws-waf-logs- prefix
            retention_days=props.log_retention_days,
            kms_key_arn=props.log_key.arn,
        )
        self.logging = Wafv2WebAclLoggingConfiguration(
            self,
            "logging",
            provider=props.provider,
            resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_group.arn],
            redacted_fields=[
                Wafv2WebAclLoggingConfigurationRedactedFields(
                    single_header=Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(
                        name=header
                    )
                )
                for header in REDACTED_HEADERS
            ],
        )
        self.arn: str = self.web_acl.arn
        self.name = name
        self.provider = props.provider
        """The us-east-1 provider for CloudFront (the web ACL's and CloudFront's metrics live
        there); None for a regional ACL."""
        self.key = props.log_key


def _visibility(metric: str) -> Wafv2WebAclRuleVisibilityConfig:
    return Wafv2WebAclRuleVisibilityConfig(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )
