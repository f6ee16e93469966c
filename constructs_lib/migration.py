"""Deploy-time schema migration: a Lambda in the VPC that Terraform invokes during apply.

The function runs :func:`apps.migrate.handler.handler`: it creates the database if needed,
applies the schema migrations (idempotent, under a MySQL named lock) and creates or
rotates the least-privilege application user from its Secrets Manager secret. Terraform
invokes it again whenever the bundled code (and so possibly the schema) changes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import json
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cdktf import AssetType, TerraformAsset, TerraformResource
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction
from cdktf_cdktf_provider_aws.lambda_invocation import LambdaInvocation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from apps.common.contract import LAMBDA_RDS_CA_BUNDLE, EnvVar

from .database import Database
from .logs import log_group
from .naming import Naming
from .options import CPU_ARCHITECTURE
from .policy import Statement, assume_role_policy, policy_document, read_secrets
from .secrets import GeneratedCredentials
from .security import allow_https_to_aws, security_group
from .settings import DEFAULT_LOG_RETENTION_DAYS

LAMBDA_VPC_ACTIONS = (
    "AssignPrivateIpAddresses",
    "CreateNetworkInterface",
    "DeleteNetworkInterface",
    "DescribeNetworkInterfaces",
    "DescribeSubnets",
    "UnassignPrivateIpAddresses",
)
"""The EC2 actions (``ec2:``) a function in a VPC needs for its network interfaces."""

HANDLER = "apps.migrate.handler.handler"
BUNDLED_DATA = ("apps/common/certs/rds-ca-bundle.pem",)
"""Non-Python files the functions read: the RDS CA bundle (``DB_TLS_CA``)."""
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    """What one Lambda deployment package holds: project packages, data files and
    third-party pure-Python modules (nothing compiled: the zip runs on either CPU)."""

    name: str
    """The zip's file name without ``.zip``."""
    packages: tuple[str, ...]
    """Project packages (their ``*.py``), plus ``apps/__init__.py`` always."""
    modules: tuple[str, ...]
    """Third-party import names from the locked environment: a package's ``*.py``, or a
    single-file module."""
    data: tuple[str, ...] = BUNDLED_DATA
    """Non-Python project files. Unset: the RDS CA bundle."""
    metadata: tuple[str, ...] = ()
    """Distributions whose ``METADATA`` ships too, because they read their own version at
    import (``importlib.metadata``). Unset: none."""


MIGRATION_BUNDLE = Bundle(
    "migration", ("apps/common", "apps/migrate", "apps/rotate"), ("pymysql", "redis")
)
"""The migration and the credential rotation functions' shared package (pymysql, redis)."""


def _module_files(name: str) -> list[tuple[str, Path]]:
    module = importlib.import_module(name)
    source = Path(module.__file__ or "")
    if source.name != "__init__.py":  # a single-file module (six)
        return [(source.name, source)]
    root = source.parent
    return [
        (f"{root.name}/{path.relative_to(root).as_posix()}", path)
        for path in sorted(root.rglob("*.py"))
    ]


def _metadata_file(distribution: str) -> tuple[str, Path]:
    dist = importlib.metadata.distribution(distribution)
    for file in dist.files or ():
        if file.name == "METADATA" and file.parent.name.endswith(".dist-info"):
            return file.as_posix(), Path(str(dist.locate_file(file)))
    raise FileNotFoundError(f"{distribution} has no METADATA in the environment")


@functools.cache
def build_bundle(project_root: Path, bundle: Bundle = MIGRATION_BUNDLE) -> Path:
    """Write ``bundle``'s Lambda zip (byte-for-byte reproducible) and return its path.

    Holds ``apps/__init__.py``, the bundle's packages, data files and third-party modules
    taken from the locked environment.
    """
    files: list[tuple[str, Path]] = [("apps/__init__.py", project_root / "apps" / "__init__.py")]
    for package in bundle.packages:
        for path in sorted((project_root / package).rglob("*.py")):
            files.append((path.relative_to(project_root).as_posix(), path))
    for data in bundle.data:
        if not (project_root / data).is_file():
            raise FileNotFoundError(f"{data} is missing: run scripts/refresh-rds-ca.py")
        files.append((data, project_root / data))
    for module in bundle.modules:
        files.extend(_module_files(module))
    files.extend(_metadata_file(distribution) for distribution in bundle.metadata)
    out = Path(tempfile.mkdtemp(prefix=f"pcp-{bundle.name}-")) / f"{bundle.name}.zip"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return out


@dataclass(frozen=True)
class VpcFunctionParts:
    """What :func:`vpc_function` creates."""

    log_group: CloudwatchLogGroup
    security_group: SecurityGroup
    egress_aws_apis: VpcSecurityGroupEgressRule
    role: IamRole
    policy: IamRolePolicy
    function: LambdaFunction
    bundle_sha256: str


def vpc_function(
    scope: Construct,
    *,
    name: str,
    description: str,
    group_description: str,
    handler: str,
    project_root: Path,
    vpc_id: str,
    subnet_ids: Sequence[str],
    kms_key_arn: str,
    account_id: str,
    statements: Sequence[Statement],
    variables: dict[str, str],
    log_retention_days: int,
    timeout: int,
    bundle: Bundle = MIGRATION_BUNDLE,
    file_system_config: Mapping[str, str] | None = None,
    egress_description: str = "Secrets Manager over HTTPS via NAT",
) -> VpcFunctionParts:
    """A function from ``bundle`` (unset: the migration and rotation functions' shared
    one) in the private subnets, in ``scope``: its own encrypted log group, a security
    group that may only reach AWS APIs (HTTPS) until granted more, and a role with
    ``statements`` plus logging and VPC networking.

    ``file_system_config``: an EFS access point mounted into the function
    (``FileSystem.lambda_file_system_config``); unset: none. ``egress_description``: the
    HTTPS egress rule's description (what the function reaches); unset: Secrets Manager."""
    zip_path = build_bundle(project_root, bundle)
    bundle_sha256 = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    asset = TerraformAsset(scope, "bundle", path=str(zip_path), type=AssetType.FILE)
    logs = log_group(
        scope,
        "log-group",
        name=f"/aws/lambda/{name}",
        retention_days=log_retention_days,
        kms_key_arn=kms_key_arn,
    )
    group = security_group(scope, name=name, description=group_description, vpc_id=vpc_id)
    egress = allow_https_to_aws(scope, group, description=egress_description)
    role = IamRole(
        scope,
        "role",
        name=name,
        assume_role_policy=assume_role_policy("lambda.amazonaws.com", source_account=account_id),
    )
    policy = IamRolePolicy(
        scope,
        "policy",
        role=role.id,
        name=name.rsplit("-", 1)[-1],
        policy=policy_document(
            Statement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{logs.arn}:*"],
            ),
            *statements,
            Statement(
                # Lambda's VPC networking; these EC2 actions have no resource scoping.
                actions=[f"ec2:{action}" for action in LAMBDA_VPC_ACTIONS],
                resources=["*"],
            ),
            Statement(
                actions=["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                resources=["*"],
            ),
        ),
    )
    function = LambdaFunction(
        scope,
        "function",
        function_name=name,
        description=description,
        role=role.arn,
        runtime="python3.12",
        architectures=[CPU_ARCHITECTURE.lambda_name],
        handler=handler,
        filename=asset.path,
        source_code_hash=bundle_sha256,
        timeout=timeout,
        memory_size=256,
        publish=True,  # a new version on every code or configuration change
        kms_key_arn=kms_key_arn,
        tracing_config={"mode": "Active"},
        vpc_config={
            "subnet_ids": list(subnet_ids),
            "security_group_ids": [group.id],
        },
        environment={"variables": variables},
        file_system_config=dict(file_system_config) if file_system_config else None,
        logging_config={"log_format": "JSON", "log_group": logs.name},
        # Lambda checks the VPC permissions when it creates the function.
        depends_on=[logs, policy],
    )
    return VpcFunctionParts(logs, group, egress, role, policy, function, bundle_sha256)


@dataclass(frozen=True)
class SchemaMigrationProps:
    naming: Naming
    project_root: Path
    """Repository root, where ``apps/`` lives."""
    database: Database
    """Migrated over verified TLS from its network's private subnets; the function is
    admitted to it (``allow_from``) and invoked once the instance, the rules and the
    private routes to NAT (Secrets Manager) exist. Its key encrypts the function's logs
    and environment."""
    app_credentials: GeneratedCredentials
    """The application user's secret (``username``, ``password``) the function provisions."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Unset: 30 days."""


class SchemaMigration(Construct):
    """The migration function, its least-privilege role, and its invocation on apply.

    It connects with ``DB_TLS=verify`` against the RDS CA bundle in its package."""

    def __init__(self, scope: Construct, id_: str, *, props: SchemaMigrationProps) -> None:
        super().__init__(scope, id_)
        database, key = props.database, props.database.key.arn
        network = database.network
        app_secret_arn = props.app_credentials.arn
        parts = vpc_function(
            self,
            name=props.naming.name("migrate"),
            description="Creates the database, migrates the schema, provisions the app user",
            group_description="Schema migration function",
            handler=HANDLER,
            project_root=props.project_root,
            vpc_id=network.vpc.id,
            subnet_ids=network.private_subnet_ids,
            kms_key_arn=key,
            account_id=network.account_id,
            statements=read_secrets(
                [database.master_secret_arn, app_secret_arn],
                kms_key_arn=key,
                region=network.region,
            ),
            variables={
                EnvVar.MASTER_SECRET_ARN: database.master_secret_arn,
                EnvVar.APP_SECRET_ARN: app_secret_arn,
                **database.connection_environment(ca_bundle=LAMBDA_RDS_CA_BUNDLE),
            },
            log_retention_days=props.log_retention_days,
            timeout=120,
        )
        self.log_group = parts.log_group
        self.security_group = parts.security_group
        self.role = parts.role
        self.function = parts.function
        self.bundle_sha256 = parts.bundle_sha256
        self.invocation = LambdaInvocation(
            self,
            "invocation",
            function_name=self.function.function_name,
            input=json.dumps({"action": "migrate"}),
            triggers={"bundle": self.bundle_sha256, "function": self.function.version},
            depends_on=[
                database.instance,
                props.app_credentials.version,
                *network.private_default_routes,
                parts.egress_aws_apis,
            ],
        )
        # The invocation runs during the apply: the rules must exist before it.
        self.run_after(*database.allow_from(self, description="schema migration to MySQL"))

    def run_after(self, *resources: TerraformResource) -> None:
        """Invoke only once ``resources`` exist (e.g. the security-group rules to MySQL)."""
        current = list(self.invocation.depends_on or [])
        self.invocation.depends_on = current + [
            f"{r.terraform_resource_type}.{r.friendly_unique_id}" for r in resources
        ]
