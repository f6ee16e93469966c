"""Log groups: created by the construct that writes to them, encrypted, with a retention."""

from __future__ import annotations

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct


def log_group(
    scope: Construct,
    id_: str,
    *,
    name: str,
    retention_days: int,
    kms_key_arn: str | None,
    provider: TerraformProvider | None = None,
) -> CloudwatchLogGroup:
    """The log group ``name``, kept ``retention_days`` and encrypted with ``kms_key_arn``
    (None: the CloudWatch Logs service key), made before AWS would make it without either."""
    return CloudwatchLogGroup(
        scope,
        id_,
        name=name,
        retention_in_days=retention_days,
        kms_key_id=kms_key_arn,
        provider=provider,
    )
