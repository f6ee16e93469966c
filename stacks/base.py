"""What every stack declares: the AWS provider with default tags, version constraints, the
caller's account, and the keys it makes."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict, Unpack

from cdktf import S3Backend, TerraformProvider, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from constructs_lib.cluster import Cluster, ClusterProps
from constructs_lib.database import Database, DatabaseProps
from constructs_lib.encryption import EncryptionKey, EncryptionKeyProps
from constructs_lib.naming import Naming
from constructs_lib.network import Network, NetworkProps
from constructs_lib.settings import DatabaseSettings, NetworkSettings
from environments.state import StateConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Repository root: where ``apps/`` (Lambda packages, the frontend's files) lives."""

TERRAFORM_VERSION = ">= 1.10, < 2.0"
"""1.10 brought S3-native state locking (``use_lockfile``)."""
AWS_PROVIDER_VERSION = "~> 6.25.0"
"""The provider release the prebuilt bindings (cdktf-cdktf-provider-aws 21.22.1) describe."""
AWS_PROVIDER_SOURCE = "hashicorp/aws"
"""Explicit: the two engines' bindings default to different spellings (engine.py)."""


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


class ProjectStack(TerraformStack):
    """What every stack of the project declares: the AWS provider (default tags), the
    Terraform and provider versions it was written for, and the caller's account."""

    def __init__(
        self, scope: Construct, id_: str, *, naming: Naming, region: str, extra_tags: dict[str, str]
    ) -> None:
        super().__init__(scope, id_)
        self.naming = naming
        provider(self, "aws", naming=naming, region=region, extra_tags=extra_tags)
        self.add_override("terraform.required_version", TERRAFORM_VERSION)
        self.add_override("terraform.required_providers.aws.version", AWS_PROVIDER_VERSION)
        self.add_override("terraform.required_providers.aws.source", AWS_PROVIDER_SOURCE)
        self.account_id: str = DataAwsCallerIdentity(self, "caller").account_id

    def keep_state(self, state: StateConfig) -> None:
        """Keep this stack's state in the state bucket, under the stack's own key, locked
        with S3-native locking."""
        key = state.key(self.node.id)
        S3Backend(self, bucket=state.bucket, key=key, region=state.region, encrypt=True)
        # cdktf 0.21's S3Backend predates S3-native locking: set it directly.
        self.add_override("terraform.backend.s3.use_lockfile", True)

    def key_and_network(
        self, region: str, settings: NetworkSettings
    ) -> tuple[EncryptionKey, Network]:
        """An environment's key (id ``key``: data at rest) and its VPC (id ``network``),
        whose flow logs the key encrypts."""
        key = self.encryption_key("key", region, f"{self.naming.prefix}: data at rest")
        network = Network(
            self,
            "network",
            props=NetworkProps(
                naming=self.naming,
                account_id=self.account_id,
                region=region,
                settings=settings,
                flow_log_key=key,
            ),
        )
        return key, network

    def environment_database(
        self, network: Network, key: EncryptionKey, settings: DatabaseSettings
    ) -> Database:
        """The environment's database (id ``database``) in ``network``'s private subnets."""
        props = DatabaseProps(naming=self.naming, network=network, key=key, settings=settings)
        return Database(self, "database", props=props)

    def environment_cluster(
        self, network: Network, key: EncryptionKey, *, namespace: str, log_retention_days: int
    ) -> Cluster:
        """The environment's ECS cluster (id ``cluster``) and its Cloud Map ``namespace``."""
        props = ClusterProps(
            naming=self.naming,
            network=network,
            key=key,
            namespace_name=namespace,
            log_retention_days=log_retention_days,
        )
        return Cluster(self, "cluster", props=props)

    def encryption_key(
        self, id_: str, region: str, description: str, **options: Unpack[KeyOptions]
    ) -> EncryptionKey:
        """A key of this stack's account in ``region`` (``alias/<prefix>``, or
        ``alias/<prefix>-<alias_suffix>``)."""
        props = EncryptionKeyProps(self.naming, self.account_id, region, description, **options)
        return EncryptionKey(self, id_, props=props)


class KeyOptions(TypedDict, total=False):
    """The optional :class:`EncryptionKeyProps` a stack's keys use."""

    log_group_services: bool
    provider: TerraformProvider
    alias_suffix: str
