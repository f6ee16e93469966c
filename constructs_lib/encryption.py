"""A customer-managed KMS key for one environment's data at rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from .naming import Naming
from .policy import Statement, policy_document

KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
"""What the account (and so IAM policies in it) may do with the key: the default key
policy's effect, spelled out so that no policy in the project carries a ``*`` action."""

KEY_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


@dataclass(frozen=True)
class ServiceAccess:
    """An AWS service principal that uses the key directly."""

    principal: str
    """E.g. ``cloudfront.amazonaws.com``."""
    actions: Sequence[str] = KEY_USE_ACTIONS
    """What the service may do with the key. Unset: encrypt, decrypt, data keys."""
    source_arn_like: str | None = None
    """Only on behalf of resources matching this ARN pattern (``AWS:SourceArn``).
    Unset: no pattern condition."""
    source_arn: str | None = None
    """Only on behalf of exactly this resource (``aws:SourceArn``, e.g. one CloudFront
    distribution). Unset: no exact condition. With neither, no source condition (for
    services that send none, e.g. CloudWatch alarm actions to an encrypted SNS topic)."""

    def statement(self) -> Statement:
        conditions: dict[str, dict[str, str]] = {}
        if self.source_arn_like:
            conditions["ArnLike"] = {"AWS:SourceArn": self.source_arn_like}
        if self.source_arn:
            conditions["StringEquals"] = {"aws:SourceArn": self.source_arn}
        return Statement(
            principals={"Service": self.principal}, actions=self.actions, conditions=conditions
        )


@dataclass(frozen=True)
class EncryptionKeyProps:
    naming: Naming
    account_id: str
    region: str
    description: str
    log_group_services: bool = True
    """Let CloudWatch Logs in ``region`` encrypt this account's log groups with the key.
    Unset: allowed."""
    services: Sequence[ServiceAccess] = ()
    """Further AWS services allowed to use the key directly. Unset: none beyond
    CloudWatch Logs."""
    deletion_window_days: int = 30
    """Waiting period before a scheduled deletion. Unset: 30 days (the maximum)."""
    provider: TerraformProvider | None = None
    """Create the key with this provider (another region). Unset: the stack's default."""
    alias_suffix: str | None = None
    """Appended to the alias (``alias/<prefix>-<suffix>``). Unset: ``alias/<prefix>``."""


class EncryptionKey(Construct):
    """A rotating KMS key with alias ``alias/<prefix>``.

    IAM policies of the account decide who may use it (the account-root statement), so
    services such as RDS, ElastiCache, Secrets Manager and S3 use it on behalf of callers
    that hold ``kms:*`` grants through their own least-privilege policies.
    """

    def __init__(self, scope: Construct, id_: str, *, props: EncryptionKeyProps) -> None:
        super().__init__(scope, id_)
        statements = [
            Statement(
                sid="AccountAdministersKey",
                principals={"AWS": f"arn:aws:iam::{props.account_id}:root"},
                actions=KEY_ADMIN_ACTIONS,
            )
        ]
        if props.log_group_services:
            statements.append(
                Statement(
                    sid="CloudWatchLogsUsesKey",
                    principals={"Service": f"logs.{props.region}.amazonaws.com"},
                    actions=KEY_USE_ACTIONS,
                    conditions={
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": (
                                f"arn:aws:logs:{props.region}:{props.account_id}:log-group:*"
                            )
                        }
                    },
                )
            )
        statements += [service.statement() for service in props.services]
        self._statements = statements
        self.key = KmsKey(
            self,
            "key",
            description=props.description,
            enable_key_rotation=True,
            deletion_window_in_days=props.deletion_window_days,
            policy=policy_document(*statements),
            provider=props.provider,
        )
        alias = props.naming.name(props.alias_suffix) if props.alias_suffix else props.naming.prefix
        self.alias = KmsAlias(
            self,
            "alias",
            name=f"alias/{alias}",
            target_key_id=self.key.key_id,
            provider=props.provider,
        )
        self.arn: str = self.key.arn

    def allow_service(self, service: ServiceAccess) -> None:
        """Let ``service`` use the key too: what a construct that encrypts with the key on
        a service's behalf calls (``Observability``: CloudWatch alarms publish to its
        encrypted topic), or a principal scoped to a resource that is created after the key
        (the CloudFront distribution that reads the bucket). Granting the same access
        twice adds nothing."""
        statement = service.statement()
        if statement in self._statements:
            return
        self._statements.append(statement)
        self.key.policy = policy_document(*self._statements)
