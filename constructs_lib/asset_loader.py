"""Deploy-time asset load: a Lambda in the VPC that Terraform invokes during apply to copy an
S3 prefix onto an EFS access point once.

The function runs :func:`apps.assetloader.handler.handler` (see :mod:`apps.assetloader`): it
copies every object under the prefix onto the mounted file system, writes a marker last,
and from then on skips, so files users changed on the share are never overwritten by a
re-deploy. A reload is explicit: a new ``force_token`` restores the shipped files, backing
up every file it replaces.

Terraform invokes the function again when its code or configuration, the ``force_token``
or the ``assets_version`` changes. Such a re-run without a new ``force_token`` is a no-op
by the handler's design (the marker is there): it changes nothing on the file system and
only logs, as a warning, whether the shipped assets differ from the loaded ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cdktf import ITerraformDependable, TerraformResource, Token
from cdktf_cdktf_provider_aws.efs_access_point import EfsAccessPoint
from cdktf_cdktf_provider_aws.lambda_invocation import LambdaInvocation
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
)
from constructs import Construct

from apps.assetloader.bundle import BUNDLED_DATA, BUNDLED_MODULES, BUNDLED_PACKAGES, HANDLER
from apps.assetloader.loader import BUCKET_VAR, MOUNT_PATH_VAR, PREFIX_VAR

from .bucket import SecureBucket
from .errors import ConfigError
from .file_system import FileSystem
from .migration import Bundle, vpc_function
from .naming import Naming
from .policy import Statement
from .settings import DEFAULT_LOG_RETENTION_DAYS

__all__ = ["BUNDLE", "MOUNT_PATH", "AssetLoader", "AssetLoaderProps", "bucket_key_arn"]

BUNDLE = Bundle("assetloader", BUNDLED_PACKAGES, BUNDLED_MODULES, BUNDLED_DATA)
"""The function's package (:mod:`apps.assetloader.bundle`): ``apps/common`` and
``apps/assetloader``, nothing third-party (boto3 is the runtime's)."""
MOUNT_PATH = "/mnt/assets"
"""Where the function sees the access point's root directory (``ASSETS_MOUNT_PATH``)."""
MIN_TIMEOUT_S = 60
MAX_TIMEOUT_S = 900
"""Lambda's longest run."""
PREFIX = re.compile(r"[A-Za-z0-9_.!()=+@,-]+(/[A-Za-z0-9_.!()=+@,-]+)*/?")
"""A key prefix naming a folder: ``/``-separated segments of S3's safe characters, no
leading ``/``. No ``*``, ``?`` or ``$``: the prefix goes into IAM resources and conditions,
where those are wildcards and policy variables."""
PREFIX_MAX = 512
MARK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=@/-]{0,255}")
"""A ``force_token`` or ``assets_version``: a date, a name, a version or a hash, at most 256
characters (what the handler accepts), nothing Terraform or JSON would interpret."""


@dataclass(frozen=True)
class AssetLoaderProps:
    naming: Naming
    project_root: Path
    """Repository root, where ``apps/`` lives."""
    file_system: FileSystem
    """The function runs in its network's private subnets, is admitted to it (NFS, 2049),
    granted mount and write through ``access_point`` only, and created after its mount
    targets. Its key encrypts the function's logs and environment."""
    access_point: EfsAccessPoint
    """One of ``file_system``'s access points (the one the application mounts, so the
    files are written as its POSIX user); mounted at :data:`MOUNT_PATH`."""
    bucket: SecureBucket
    """Where the assets are: the function may list the prefix and read the objects under
    it, and decrypt them through S3 with the bucket's KMS key when it has one."""
    prefix: str = ""
    """The folder of the assets in the bucket (``assets`` or ``assets/``: object
    ``assets/a/b.css`` becomes ``/a/b.css`` in the access point). Segments of letters,
    digits and ``_.!()=+@,-``, no leading ``/``. Unset: the whole bucket."""
    force_token: str = ""
    """Set a new value (e.g. today's date, ``2024-06-01``) in the environment's
    configuration to force one reload on the next apply: the shipped files are restored
    (every replaced file backed up first, files users added untouched). A token is consumed
    once: leaving it set does not reload again; only another new value does. Unset: never
    forces."""
    assets_version: str | None = None
    """What the loaded assets are, e.g. a hash of the files the stack uploads: recorded in
    the marker, and a change re-invokes the function, which then only reports (logs) that
    the shipped assets differ. Up to 256 letters, digits and ``._:+=@/-``, or a Terraform
    expression (e.g. ``Fn.filesha256(...)``) giving such a string. Unset: the handler
    records a hash of the listing."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Unset: 30 days."""
    timeout_seconds: int = MAX_TIMEOUT_S
    """The function's timeout, 60 to 900 s. Unset: 900 s (Lambda's maximum; the handler
    judges a lock untouched that long to be a dead run's)."""


class AssetLoader(Construct):
    """The asset loader function in the private subnets with the access point mounted at
    :data:`MOUNT_PATH`, its least-privilege role, and its invocation on apply.

    - environment ``ASSETS_BUCKET``, ``ASSETS_PREFIX`` (absent: the whole bucket),
      ``ASSETS_MOUNT_PATH``;
    - role: ``s3:ListBucket`` on the bucket for the prefix only, ``s3:GetObject`` on the
      objects under it, ``kms:Decrypt`` of the bucket's key through S3 (when the bucket has
      one), ``ClientMount`` and ``ClientWrite`` through the access point only, plus logs,
      X-Ray and Lambda's VPC networking (``migration.vpc_function``);
    - network: its own security group, admitted by the file system's on 2049, with HTTPS
      egress (S3 through the VPC's gateway endpoint);
    - invocation input ``{"force_token": ..., "assets_version": ...}``, re-run when the
      code or configuration, the token or the version changes; a re-run without a new token
      writes nothing (see the module docstring). :meth:`run_after` orders it after the
      resources that upload the assets.

    ``ready`` is the invocation: a service that must find the assets starts after it
    (``depends_on=[loader.ready]``).
    """

    def __init__(self, scope: Construct, id_: str, *, props: AssetLoaderProps) -> None:
        super().__init__(scope, id_)
        self.prefix = self._validate(props)
        """The prefix as the function gets it: ``""`` or a folder ending in ``/``."""
        file_system, bucket = props.file_system, props.bucket
        network = file_system.network
        key_arn = bucket_key_arn(bucket)
        parts = vpc_function(
            self,
            name=props.naming.name("asset-loader"),
            description="Copies the shipped assets from S3 onto EFS once (never overwrites)",
            group_description="Asset loader function (S3 to EFS)",
            handler=HANDLER,
            project_root=props.project_root,
            vpc_id=network.vpc.id,
            subnet_ids=network.private_subnet_ids,
            kms_key_arn=file_system.key.arn,
            account_id=network.account_id,
            statements=[
                *self._s3_statements(bucket.arn, key_arn, network.region),
                *file_system.client_statements(props.access_point, write=True),
            ],
            variables={
                BUCKET_VAR: bucket.bucket.bucket,
                **({PREFIX_VAR: self.prefix} if self.prefix else {}),
                MOUNT_PATH_VAR: MOUNT_PATH,
            },
            log_retention_days=props.log_retention_days,
            timeout=props.timeout_seconds,
            bundle=BUNDLE,
            file_system_config=file_system.lambda_file_system_config(
                props.access_point, mount_path=MOUNT_PATH
            ),
            egress_description="S3 over HTTPS (gateway endpoint)",
        )
        self.log_group = parts.log_group
        self.security_group = parts.security_group
        self.role = parts.role
        self.function = parts.function
        self.bundle_sha256 = parts.bundle_sha256
        mount = file_system.admit(
            self,
            role=self.role,
            access_point=props.access_point,
            write=True,
            description="asset loader function to EFS",
        )
        # Lambda refuses a file system without mount targets in the function's AZs.
        _add_depends_on(self.function, mount)
        mark = props.assets_version or ""
        self.invocation = LambdaInvocation(
            self,
            "invocation",
            function_name=self.function.function_name,
            input=json.dumps({"force_token": props.force_token, "assets_version": mark}),
            triggers={
                "bundle": self.bundle_sha256,
                "function": self.function.version,
                "force_token": props.force_token,
                "assets_version": mark,
            },
            # The invocation runs during the apply: the mount's network path and grant,
            # and the function's route to S3 must exist before it.
            depends_on=[*mount, parts.egress_aws_apis, network.s3_endpoint],
        )
        self.ready = self.invocation
        """Done once the assets are on the file system (or were already)."""

    def run_after(self, *resources: TerraformResource) -> None:
        """Invoke only once ``resources`` exist (e.g. the ``S3Object`` uploads of the
        assets: an empty prefix fails the load)."""
        _add_depends_on(self.invocation, resources)

    def _s3_statements(self, bucket_arn: str, key_arn: str | None, region: str) -> list[Statement]:
        listing = Statement(actions=["s3:ListBucket"], resources=[bucket_arn])
        if self.prefix:
            listing = Statement(
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{self.prefix}*"]}},
            )
        statements = [
            listing,
            Statement(actions=["s3:GetObject"], resources=[f"{bucket_arn}/{self.prefix}*"]),
        ]
        if key_arn is not None:
            statements.append(
                Statement(
                    actions=["kms:Decrypt"],
                    resources=[key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                        # The bucket's ARN with an S3 bucket key, else the object's.
                        "StringLike": {
                            "kms:EncryptionContext:aws:s3:arn": [
                                bucket_arn,
                                f"{bucket_arn}/{self.prefix}*",
                            ]
                        },
                    },
                )
            )
        return statements

    def _validate(self, props: AssetLoaderProps) -> str:
        """The normalised prefix, once every prop is checked."""
        where = self.node.path
        prefix = props.prefix
        if prefix and (len(prefix) > PREFIX_MAX or not PREFIX.fullmatch(prefix)):
            raise ConfigError(
                where,
                "prefix",
                repr(prefix),
                "give a folder such as assets/ (letters, digits, _.!()=+@,- between single "
                f"slashes, no leading /, at most {PREFIX_MAX}), or leave it unset",
            )
        if any(segment in (".", "..") for segment in prefix.split("/")):
            raise ConfigError(where, "prefix", repr(prefix), "use no . or .. segment")
        for field, value in (
            ("force_token", props.force_token),
            ("assets_version", props.assets_version or ""),
        ):
            if value and not Token.is_unresolved(value) and not MARK.fullmatch(value):
                raise ConfigError(
                    where,
                    field,
                    repr(value),
                    "give up to 256 letters, digits and ._:+=@/- starting with a letter or "
                    "digit (e.g. a date), or leave it unset",
                )
        timeout = props.timeout_seconds
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int)
            or not MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S
        ):
            raise ConfigError(
                where,
                "timeout_seconds",
                timeout,
                f"give {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S} seconds (Lambda's maximum)",
            )
        if not props.file_system.owns(props.access_point):
            raise ConfigError(
                where,
                "access_point",
                props.access_point.node.path,
                "give one of file_system's access points (FileSystem.access_point)",
            )
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return prefix


def bucket_key_arn(bucket: SecureBucket) -> str | None:
    """The ARN of the KMS key ``bucket`` encrypts with (``SecureBucketProps.key``); None with
    SSE-S3. Read from the bucket's own default-encryption configuration, the one place a
    ``SecureBucket`` keeps it."""
    config = bucket.node.try_find_child("encryption")
    if not isinstance(config, S3BucketServerSideEncryptionConfigurationA):
        raise TypeError(f"{bucket.node.path} has no default-encryption configuration")
    rules = config.rule_input
    if not isinstance(rules, list):
        raise TypeError(f"{bucket.node.path}: its encryption rules are not readable")
    for rule in rules:
        default = rule.apply_server_side_encryption_by_default
        if default is not None and default.kms_master_key_id:
            return default.kms_master_key_id
    return None


def _add_depends_on(resource: TerraformResource, after: Sequence[ITerraformDependable]) -> None:
    """Add ``after`` (resources) to ``resource``'s ``depends_on``, as Terraform names them."""
    names = []
    for dependency in after:
        if not isinstance(dependency, TerraformResource):
            raise TypeError(f"{dependency!r}: give resources (depends_on by type and name)")
        names.append(f"{dependency.terraform_resource_type}.{dependency.friendly_unique_id}")
    resource.depends_on = [*(resource.depends_on or []), *names]
