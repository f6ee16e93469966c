"""What every stack declares: the AWS provider with default tags, and version constraints."""

from __future__ import annotations

from pathlib import Path

from cdktf import TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider

from constructs_lib.naming import Naming

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Repository root: where ``apps/`` (Lambda packages, the frontend's files) lives."""

TERRAFORM_VERSION = ">= 1.10, < 2.0"
"""1.10 brought S3-native state locking (``use_lockfile``)."""
AWS_PROVIDER_VERSION = "~> 6.25.0"
"""The provider release the prebuilt bindings (cdktf-cdktf-provider-aws 21.22.1) describe."""


def provider(
    stack: TerraformStack,
    id_: str,
    *,
    naming: Naming,
    region: str,
    extra_tags: dict[str, str],
    alias: str | None = None,
) -> AwsProvider:
    """An AWS provider in ``region`` that tags every resource with the project's tags."""
    tags = {**naming.default_tags(), **extra_tags}
    return AwsProvider(stack, id_, alias=alias, region=region, default_tags=[{"tags": tags}])


def declare_versions(stack: TerraformStack) -> None:
    """The Terraform and provider versions the synthesized configuration was written for."""
    stack.add_override("terraform.required_version", TERRAFORM_VERSION)
    stack.add_override("terraform.required_providers.aws.version", AWS_PROVIDER_VERSION)
