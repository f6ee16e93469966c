"""Deploy-time schema migration: a Lambda in the VPC that Terraform invokes during apply.

The function runs :func:`apps.migrate.handler.handler`: it creates the database if needed,
applies the schema migrations (idempotent, under a MySQL named lock) and creates or
rotates the least-privilege application user from its Secrets Manager secret. Terraform
invokes it again whenever the bundled code (and so possibly the schema) changes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cdktf import AssetType, ITerraformDependable, TerraformAsset, TerraformResource
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction
from cdktf_cdktf_provider_aws.lambda_invocation import LambdaInvocation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from .naming import Naming
from .policy import Statement, assume_role_policy, policy_document, read_secrets

HANDLER = "apps.migrate.handler.handler"
BUNDLED_PACKAGES = ("apps/common", "apps/migrate")
"""Project packages in the bundle (plus ``apps/__init__.py`` and pymysql)."""
_EPOCH = (1980, 1, 1, 0, 0, 0)


@functools.cache
def build_bundle(project_root: Path) -> Path:
    """Write the Lambda zip (byte-for-byte reproducible) and return its path.

    Holds ``apps/__init__.py``, ``apps/common``, ``apps/migrate`` and the pure-Python
    ``pymysql`` package taken from the locked environment.
    """
    import pymysql

    files: list[tuple[str, Path]] = [("apps/__init__.py", project_root / "apps" / "__init__.py")]
    for package in BUNDLED_PACKAGES:
        for path in sorted((project_root / package).rglob("*.py")):
            files.append((path.relative_to(project_root).as_posix(), path))
    pymysql_dir = Path(pymysql.__file__).parent
    for path in sorted(pymysql_dir.rglob("*.py")):
        files.append((f"pymysql/{path.relative_to(pymysql_dir).as_posix()}", path))
    out = Path(tempfile.mkdtemp(prefix="pcp-migration-")) / "migration.zip"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, path in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, path.read_bytes())
    return out


@dataclass(frozen=True)
class SchemaMigrationProps:
    naming: Naming
    project_root: Path
    """Repository root, where ``apps/`` lives."""
    vpc_id: str
    subnet_ids: Sequence[str]
    kms_key_arn: str
    region: str
    db_host: str
    db_port: int
    db_name: str
    master_secret_arn: str
    """The RDS-managed master secret (``username``, ``password``)."""
    app_secret_arn: str
    """The application user's secret (``username``, ``password``) the function provisions."""
    depends_on: Sequence[ITerraformDependable] = ()
    """What must exist before the first invocation: the instance, the secret version, the
    security-group rules to the database, the private routes to NAT (Secrets Manager).
    Unset: nothing beyond the references."""
    db_tls: str = "required"
    """``required`` (TLS, server certificate not verified: the RDS CA bundle is not
    shipped) or ``verify`` (needs ``DB_TLS_CA``). Unset: required."""
    log_retention_days: int = 30
    """Unset: 30 days."""


class SchemaMigration(Construct):
    """The migration function, its least-privilege role, and its invocation on apply."""

    def __init__(self, scope: Construct, id_: str, *, props: SchemaMigrationProps) -> None:
        super().__init__(scope, id_)
        naming = props.naming
        name = naming.name("migrate")
        bundle = build_bundle(props.project_root)
        self.bundle_sha256 = hashlib.sha256(bundle.read_bytes()).hexdigest()
        asset = TerraformAsset(self, "bundle", path=str(bundle), type=AssetType.FILE)

        self.log_group = CloudwatchLogGroup(
            self,
            "log-group",
            name=f"/aws/lambda/{name}",
            retention_in_days=props.log_retention_days,
            kms_key_id=props.kms_key_arn,
        )
        self.security_group = SecurityGroup(
            self,
            "security-group",
            name=name,
            description="Schema migration function",
            vpc_id=props.vpc_id,
            tags={"Name": name},
        )
        VpcSecurityGroupEgressRule(
            self,
            "egress-aws-apis",
            security_group_id=self.security_group.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="Secrets Manager over HTTPS via NAT",
        )
        self.role = IamRole(
            self,
            "role",
            name=name,
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
        )
        policy = IamRolePolicy(
            self,
            "policy",
            role=self.role.id,
            name="migrate",
            policy=policy_document(
                Statement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"{self.log_group.arn}:*"],
                ),
                *read_secrets(
                    [props.master_secret_arn, props.app_secret_arn],
                    kms_key_arn=props.kms_key_arn,
                    region=props.region,
                ),
                Statement(
                    # Lambda's VPC networking; these EC2 actions have no resource scoping.
                    actions=[
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:CreateNetworkInterface",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                ),
                Statement(
                    actions=["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                    resources=["*"],
                ),
            ),
        )
        self.function = LambdaFunction(
            self,
            "function",
            function_name=name,
            description="Creates the database, migrates the schema, provisions the app user",
            role=self.role.arn,
            runtime="python3.12",
            architectures=["arm64"],
            handler=HANDLER,
            filename=asset.path,
            source_code_hash=self.bundle_sha256,
            timeout=120,
            memory_size=256,
            publish=True,  # a new version on every code or configuration change
            kms_key_arn=props.kms_key_arn,
            tracing_config={"mode": "Active"},
            vpc_config={
                "subnet_ids": list(props.subnet_ids),
                "security_group_ids": [self.security_group.id],
            },
            environment={
                "variables": {
                    "MASTER_SECRET_ARN": props.master_secret_arn,
                    "APP_SECRET_ARN": props.app_secret_arn,
                    "DB_HOST": props.db_host,
                    "DB_PORT": str(props.db_port),
                    "DB_NAME": props.db_name,
                    "DB_TLS": props.db_tls,
                }
            },
            logging_config={"log_format": "JSON", "log_group": self.log_group.name},
            # Lambda checks the VPC permissions when it creates the function.
            depends_on=[self.log_group, policy],
        )
        self.invocation = LambdaInvocation(
            self,
            "invocation",
            function_name=self.function.function_name,
            input=json.dumps({"action": "migrate"}),
            triggers={"bundle": self.bundle_sha256, "function": self.function.version},
            depends_on=list(props.depends_on),
        )

    def run_after(self, *resources: TerraformResource) -> None:
        """Invoke only once ``resources`` exist (e.g. the security-group rules to MySQL)."""
        current = list(self.invocation.depends_on or [])
        self.invocation.depends_on = current + [
            f"{r.terraform_resource_type}.{r.friendly_unique_id}" for r in resources
        ]
