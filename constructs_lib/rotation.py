"""Scheduled rotation of a generated credentials secret by a function in the VPC.

The function is :func:`apps.rotate.handler.handler` from the shared bundle
(:mod:`constructs_lib.migration`): Secrets Manager calls its four steps on the schedule.
What it changes on the server (the other MySQL user, a second ElastiCache password) keeps
the credentials the services hold valid until the next rotation, and the services re-read
the secret when a login is refused, so a rotation needs no redeploy and fails no request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdktf import TerraformResource
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.secretsmanager_secret_rotation import (
    SecretsmanagerSecretRotation,
)
from constructs import Construct

from apps.common.contract import EnvVar

from .errors import ConfigError
from .migration import vpc_function
from .naming import Naming
from .network import Network
from .policy import Statement
from .secrets import GeneratedCredentials, RotationTarget
from .settings import DEFAULT_LOG_RETENTION_DAYS

HANDLER = "apps.rotate.handler.handler"


@dataclass(frozen=True)
class CredentialRotationProps:
    naming: Naming
    name: str
    """Function name suffix (``rotate-db``)."""
    project_root: Path
    network: Network
    """The function runs in its private subnets."""
    credentials: GeneratedCredentials
    """The secret to rotate; its key also encrypts the function's logs and environment."""
    target: RotationTarget
    """The system whose password changes, as its construct describes it."""
    schedule_days: int = 30
    """Days between rotations. Unset: 30."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Unset: 30 days."""


class CredentialRotation(Construct):
    """A rotation function with access to one secret, and the secret's rotation schedule.

    The function reaches only AWS APIs until granted more (``db.allow_from(rotation.
    security_group)``); :meth:`start_after` holds the schedule until those rules (and, for
    MySQL, the first migration) exist, since Secrets Manager tests the function when the
    schedule is created.
    """

    def __init__(self, scope: Construct, id_: str, *, props: CredentialRotationProps) -> None:
        super().__init__(scope, id_)
        if props.target.kind not in ("mysql", "elasticache"):
            raise ConfigError(
                self.node.path, "target.kind", repr(props.target.kind), "use mysql or elasticache"
            )
        if not 1 <= props.schedule_days <= 365:
            raise ConfigError(
                self.node.path, "schedule_days", props.schedule_days, "use 1 to 365 days"
            )
        secret_arn = props.credentials.arn
        name = props.naming.name(props.name)
        parts = vpc_function(
            self,
            name=name,
            description=f"Rotates {props.credentials.name} ({props.target.kind})",
            group_description=f"Credential rotation function ({props.target.kind})",
            handler=HANDLER,
            project_root=props.project_root,
            vpc_id=props.network.vpc.id,
            subnet_ids=props.network.private_subnet_ids,
            kms_key_arn=props.credentials.key.arn,
            account_id=props.network.account_id,
            statements=[
                Statement(
                    actions=[
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:UpdateSecretVersionStage",
                    ],
                    resources=[secret_arn],
                ),
                # No resource-level permission exists for this one.
                Statement(actions=["secretsmanager:GetRandomPassword"], resources=["*"]),
                Statement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[props.credentials.key.arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{props.network.region}.amazonaws.com"
                        }
                    },
                ),
                *props.target.statements,
            ],
            variables={EnvVar.ROTATION_TARGET: props.target.kind, **props.target.variables},
            log_retention_days=props.log_retention_days,
            timeout=300,
        )
        self.function = parts.function
        self.security_group = parts.security_group
        self.permission = LambdaPermission(
            self,
            "permission",
            statement_id="SecretsManagerRotation",
            action="lambda:InvokeFunction",
            function_name=parts.function.function_name,
            principal="secretsmanager.amazonaws.com",
            source_arn=secret_arn,
            source_account=props.network.account_id,
        )
        self.rotation = SecretsmanagerSecretRotation(
            self,
            "rotation",
            secret_id=secret_arn,
            rotation_lambda_arn=parts.function.arn,
            rotation_rules={"automatically_after_days": props.schedule_days},
            # The first rotation waits for the schedule: the services start on the value
            # Terraform generated, and nothing rotates during a deploy.
            rotate_immediately=False,
            depends_on=[self.permission, parts.egress_aws_apis],
        )

    def start_after(self, *resources: TerraformResource) -> None:
        """Create the schedule only once ``resources`` exist."""
        self.rotation.depends_on = [
            *(self.rotation.depends_on or []),
            *(f"{r.terraform_resource_type}.{r.friendly_unique_id}" for r in resources),
        ]
