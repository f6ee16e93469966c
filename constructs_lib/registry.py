"""ECR repositories for the service images."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
)
from constructs import Construct

from .encryption import EncryptionKey
from .naming import Naming
from .policy import Statement

PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)


@dataclass(frozen=True)
class ContainerRepositoryProps:
    naming: Naming
    service: str
    """The service whose images the repository holds (``producer``)."""
    key: EncryptionKey
    """Encrypts the images."""
    keep_images: int = 30
    """Images kept; older ones expire. Unset: the last 30."""
    force_delete: bool = False
    """Let ``terraform destroy`` delete a repository that still holds images. Unset: refused."""


class ContainerRepository(Construct):
    """A private repository: immutable tags, scan on push, KMS-encrypted, pruned."""

    def __init__(self, scope: Construct, id_: str, *, props: ContainerRepositoryProps) -> None:
        super().__init__(scope, id_)
        self.repository = EcrRepository(
            self,
            "repository",
            name=f"{props.naming.project}/{props.naming.environment}/{props.service}",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configuration=[
                EcrRepositoryEncryptionConfiguration(encryption_type="KMS", kms_key=props.key.arn)
            ],
            force_delete=props.force_delete,
        )
        EcrLifecyclePolicy(
            self,
            "lifecycle",
            repository=self.repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {props.keep_images} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": props.keep_images,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
        )
        self.arn: str = self.repository.arn
        self.url: str = self.repository.repository_url

    def image(self, tag: str) -> str:
        """The image reference ``<repository url>:<tag>``."""
        return f"{self.url}:{tag}"

    def pull_statements(self) -> list[Statement]:
        """What an ECS execution role needs to pull from this repository, and no more.

        ``ecr:GetAuthorizationToken`` has no resource-level permissions: AWS requires ``*``.
        """
        return [
            Statement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            Statement(actions=list(PULL_ACTIONS), resources=[self.arn]),
        ]
