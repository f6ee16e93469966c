"""The bootstrap stack: the encrypted bucket that holds every environment's state."""

from __future__ import annotations

from cdktf import LocalBackend, TerraformOutput
from constructs import Construct

from constructs_lib.bucket import SecureBucket, SecureBucketProps
from constructs_lib.naming import Naming
from environments.state import StateConfig

from .base import ProjectStack


class BootstrapStack(ProjectStack):
    """Creates the remote-state bucket. Its own state stays local."""

    def __init__(self, scope: Construct, id_: str, *, state: StateConfig) -> None:
        super().__init__(scope, id_, naming=Naming("state"), region=state.region, extra_tags={})
        # Relative to where Terraform runs (cdktf.out/stacks/bootstrap): the project root,
        # so the file survives `rm -rf cdktf.out` and no machine's absolute path is baked in.
        LocalBackend(self, path="../../../terraform.bootstrap.tfstate")
        key = self.encryption_key(
            "state-key", state.region, "Terraform remote state", log_group_services=False
        )
        self.bucket = SecureBucket(
            self,
            "state-bucket",
            props=SecureBucketProps(bucket_name=state.bucket, key=key),
        )
        TerraformOutput(self, "state_bucket", value=self.bucket.bucket.bucket)
