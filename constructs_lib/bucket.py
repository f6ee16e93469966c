"""A private S3 bucket with the protections every bucket of the project needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA
from constructs import Construct

from .encryption import EncryptionKey
from .policy import Statement, policy_document


@dataclass(frozen=True)
class SecureBucketProps:
    bucket_name: str
    key: EncryptionKey | None = None
    """Unset: SSE-S3 (AES-256), which is what log-delivery services such as ALB accept;
    set it to encrypt with a customer-managed KMS key (with an S3 bucket key)."""
    versioned: bool = True
    """Unset: versioning on."""
    noncurrent_version_expiration_days: int = 90
    """Days a replaced or deleted object version is kept. Unset: 90."""
    expiration_days: int | None = None
    """Expire current objects after this many days (for log buckets). Unset: never."""
    expire_prefixes: Mapping[str, int] = field(default_factory=dict)
    """Key prefix (``athena/``) to the days after which objects under it expire, for
    scratch data kept beside lasting data. Unset: none."""
    force_destroy: bool = False
    """Let ``terraform destroy`` delete a non-empty bucket. Unset: refused."""


class SecureBucket(Construct):
    """Owner-enforced, public-access-blocked, encrypted, TLS-only, versioned bucket.

    The bucket policy always denies requests not made over TLS; further statements are
    added with :meth:`allow` (e.g. CloudFront's read access).
    """

    def __init__(self, scope: Construct, id_: str, *, props: SecureBucketProps) -> None:
        super().__init__(scope, id_)
        self.bucket = S3Bucket(
            self, "bucket", bucket=props.bucket_name, force_destroy=props.force_destroy
        )
        self.arn: str = self.bucket.arn
        S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
        )
        self.public_access_block = S3BucketPublicAccessBlock(
            self,
            "public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        # Nested blocks are built from the typed structs: plain dicts inside lists lose
        # their keys on the way through jsii.
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                            sse_algorithm="aws:kms" if props.key else "AES256",
                            kms_master_key_id=props.key.arn if props.key else None,
                        )
                    ),
                    bucket_key_enabled=props.key is not None,
                )
            ],
        )
        if props.versioned:
            S3BucketVersioningA(
                self,
                "versioning",
                bucket=self.bucket.id,
                versioning_configuration={"status": "Enabled"},
            )
        S3BucketLifecycleConfiguration(
            self,
            "lifecycle",
            bucket=self.bucket.id,
            rule=[
                S3BucketLifecycleConfigurationRule(
                    id="housekeeping",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    abort_incomplete_multipart_upload=[
                        S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                            days_after_initiation=7
                        )
                    ],
                    noncurrent_version_expiration=[
                        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                            noncurrent_days=props.noncurrent_version_expiration_days
                        )
                    ],
                    expiration=(
                        [S3BucketLifecycleConfigurationRuleExpiration(days=props.expiration_days)]
                        if props.expiration_days
                        else None
                    ),
                ),
                *(
                    S3BucketLifecycleConfigurationRule(
                        id=f"expire-{prefix.strip('/').replace('/', '-')}",
                        status="Enabled",
                        filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=prefix)],
                        expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=days)],
                        noncurrent_version_expiration=[
                            S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                                noncurrent_days=1
                            )
                        ],
                    )
                    for prefix, days in sorted(props.expire_prefixes.items())
                ),
            ],
        )

        self._statements: list[Statement] = [
            Statement(
                sid="DenyInsecureTransport",
                effect="Deny",
                principals={"AWS": "*"},
                actions=["s3:*"],
                resources=[self.bucket.arn, f"{self.bucket.arn}/*"],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        ]
        self.policy = S3BucketPolicy(
            self,
            "policy",
            bucket=self.bucket.id,
            policy=policy_document(*self._statements),
            depends_on=[self.public_access_block],
        )

    def allow(self, statement: Statement) -> None:
        """Add ``statement`` to the bucket policy (after the TLS-only deny)."""
        self._statements.append(statement)
        self.policy.policy = policy_document(*self._statements)
