"""The stacks: wiring of the constructs for the bootstrap and for each environment.

This is the one place where constructs meet; the constructs themselves never reach
into each other. Importing this module loads the AWS provider bindings (slow).
"""

from __future__ import annotations

from cdktf import S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from constructs_lib.bucket import SecureBucket, SecureBucketProps
from constructs_lib.database import Database, DatabaseProps
from constructs_lib.encryption import EncryptionKey, EncryptionKeyProps
from constructs_lib.naming import Naming
from constructs_lib.network import Network, NetworkProps
from constructs_lib.queue import Queue, QueueProps

from .config import EnvironmentConfig
from .state import StateConfig

TERRAFORM_VERSION = ">= 1.10, < 2.0"
"""1.10 brought S3-native state locking (``use_lockfile``)."""
AWS_PROVIDER_VERSION = "~> 6.25.0"
"""The provider release the prebuilt bindings (cdktf-cdktf-provider-aws 21.22.1) describe."""


def _base(stack: TerraformStack, naming: Naming, region: str, extra_tags: dict[str, str]) -> None:
    """Provider with default tags and the version constraints every stack declares."""
    AwsProvider(
        stack,
        "aws",
        region=region,
        default_tags=[{"tags": {**naming.default_tags(), **extra_tags}}],
    )
    stack.add_override("terraform.required_version", TERRAFORM_VERSION)
    stack.add_override("terraform.required_providers.aws.version", AWS_PROVIDER_VERSION)


class BootstrapStack(TerraformStack):
    """Creates the remote-state bucket. Its own state stays local.."""

    def __init__(self, scope: Construct, id_: str, *, state: StateConfig) -> None:
        super().__init__(scope, id_)
        naming = Naming("state")
        _base(self, naming, state.region, {})
        identity = DataAwsCallerIdentity(self, "caller")
        key = EncryptionKey(
            self,
            "state-key",
            props=EncryptionKeyProps(
                naming=naming,
                account_id=identity.account_id,
                region=state.region,
                description="Terraform remote state",
                log_group_services=False,
            ),
        )
        self.bucket = SecureBucket(
            self,
            "state-bucket",
            props=SecureBucketProps(bucket_name=state.bucket, kms_key_arn=key.arn),
        )
        TerraformOutput(self, "state_bucket", value=self.bucket.bucket.bucket)


class PlatformStack(TerraformStack):
    """Everything one environment runs, in its own state file."""

    def __init__(
        self, scope: Construct, id_: str, *, config: EnvironmentConfig, state: StateConfig
    ) -> None:
        super().__init__(scope, id_)
        self.config = config
        naming = Naming(config.name)
        _base(self, naming, config.region, config.extra_tags)
        S3Backend(
            self,
            bucket=state.bucket,
            key=state.key(config.name),
            region=state.region,
            encrypt=True,
        )
        # cdktf 0.21's S3Backend predates S3-native locking: set it directly.
        self.add_override("terraform.backend.s3.use_lockfile", True)

        identity = DataAwsCallerIdentity(self, "caller")
        account_id = identity.account_id
        self.key = EncryptionKey(
            self,
            "key",
            props=EncryptionKeyProps(
                naming=naming,
                account_id=account_id,
                region=config.region,
                description=f"{naming.prefix}: data at rest",
            ),
        )
        net = config.network
        self.network = Network(
            self,
            "network",
            props=NetworkProps(
                naming=naming,
                account_id=account_id,
                region=config.region,
                vpc_cidr=net.vpc_cidr,
                availability_zones=net.availability_zones,
                public_subnet_cidrs=net.public_subnet_cidrs,
                private_subnet_cidrs=net.private_subnet_cidrs,
                nat_gateways=net.nat_gateways,
                flow_log_retention_days=net.flow_log_retention_days,
                flow_log_kms_key_arn=self.key.arn,
            ),
        )
        db = config.database
        self.database = Database(
            self,
            "database",
            props=DatabaseProps(
                naming=naming,
                account_id=account_id,
                vpc_id=self.network.vpc.id,
                subnet_ids=self.network.private_subnet_ids,
                kms_key_arn=self.key.arn,
                instance_class=db.instance_class,
                multi_az=db.multi_az,
                deletion_protection=db.deletion_protection,
                backup_retention_days=db.backup_retention_days,
                final_snapshot=db.final_snapshot,
                allocated_storage_gb=db.allocated_storage_gb,
                max_allocated_storage_gb=db.max_allocated_storage_gb,
                engine_version=db.engine_version,
                database_name=db.database_name,
                performance_insights=db.performance_insights,
                log_retention_days=db.log_retention_days,
            ),
        )
        queue = config.queue
        self.queue = Queue(
            self,
            "queue",
            props=QueueProps(
                naming=naming,
                vpc_id=self.network.vpc.id,
                subnet_ids=self.network.private_subnet_ids,
                kms_key_arn=self.key.arn,
                mode=queue.mode,
                engine=queue.engine,
                node_type=queue.node_type,
                snapshot_retention_days=queue.snapshot_retention_days,
                secret_recovery_window_days=30 if config.is_production else 0,
            ),
        )
        TerraformOutput(self, "vpc_id", value=self.network.vpc.id)
        TerraformOutput(self, "queue_endpoint", value=self.queue.endpoint_address)
        TerraformOutput(
            self, "database_endpoint", value=self.database.endpoint_address, sensitive=True
        )
