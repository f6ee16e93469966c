"""Dekart on the construct library (``dekart-dev``, ``dekart-prod``): maps over Athena.

What differs from the original (``../shared/reference/002-dekart-ecs-terraform.md``) and
why is in the README's Dekart section. Facts about Dekart this stack relies on (read in
its source, v0.23): the split ``DEKART_POSTGRES_*`` variables build a URL with
``sslmode=disable``, so the stack gives ``DEKART_POSTGRES_URL`` (TLS verified) and the
password as ``PGPASSWORD`` (lib/pq reads it); PostgreSQL metadata needs
``DEKART_LICENSE_KEY``; queries run in ``DEKART_ATHENA_WORKGROUP`` (the ``primary``
workgroup when unset); the image has no shell tools, so the load balancer's check on
``/health`` is the only health check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from cdktf import TerraformOutput
from cdktf_cdktf_provider_aws.athena_workgroup import (
    AthenaWorkgroup,
    AthenaWorkgroupConfiguration,
    AthenaWorkgroupConfigurationResultConfiguration,
    AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration,
)
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret import (
    DataAwsSecretsmanagerSecret,
)

from constructs_lib.bucket import SecureBucket, SecureBucketProps
from constructs_lib.options import Deployment
from constructs_lib.policy import Statement
from constructs_lib.secrets import SecretRef
from constructs_lib.user_pool import UserPool, UserPoolProps
from constructs_lib.web_load_balancer import CognitoAuthentication
from environments.systems import DekartConfig, WorkspaceSettings

from .system import RDS_CA_PATH, SystemStack

DEKART_PORT = 8080
HEALTH_PATH = "/health"
ATHENA_PREFIX = "athena"
"""Where the workgroup writes query results in the bucket; Dekart copies them to the
bucket's root (its storage)."""
GLUE_READ = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
)
"""What Athena needs of the caller to plan a query over Glue tables."""
RESULTS_ACCESS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
"""What Dekart does with its results and storage: ``DeleteObject`` when a report is
unpublished (its public copies go)."""
ATHENA_RESULTS_DAYS = 7
"""Days Athena's own result files are kept (Dekart serves its copies)."""
BUCKET_ACCESS = ("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")


def workspace_environment(workspace: WorkspaceSettings) -> dict[str, str]:
    """Dekart's role settings: the role every user gets at their first sign-in, always
    named (left unset, and with no administrator named, Dekart makes every user an
    administrator), and the one administrator when the config names one."""
    env = {"DEKART_DEFAULT_WORKSPACE_ROLE": workspace.default_role.value}
    if workspace.admin_email is not None:
        env["DEKART_DEFAULT_WORKSPACE_ADMIN"] = workspace.admin_email
    return env


class DekartStack(SystemStack):
    """Dekart behind Cognito sign-in at the load balancer, querying Athena."""

    config: DekartConfig
    port: ClassVar[int] = DEKART_PORT
    health_check_path: ClassVar[str] = HEALTH_PATH
    """200 whenever the process serves (no database check)."""
    container_user: ClassVar[str] = "1000:1000"
    """The image's ``appuser``."""
    deployment: ClassVar[Deployment] = Deployment.REPLACE
    """One task that keeps its query jobs in memory and migrates its database at start:
    a deploy stops it before the new version starts (a short outage)."""

    def data_step(self) -> None:
        """PostgreSQL and its owner (the shared step), the bucket for results and
        storage, the Athena workgroup, and the secrets the operator provides."""
        super().data_step()
        config, naming = self.config, self.naming
        self.bucket = SecureBucket(
            self,
            "storage",
            props=SecureBucketProps(
                bucket_name=f"{naming.prefix}-storage-{self.account_id}",
                key=self.key,
                force_destroy=not config.is_production,
                # Athena's originals: Dekart copies each result to the bucket's root.
                expire_prefixes={f"{ATHENA_PREFIX}/": ATHENA_RESULTS_DAYS},
            ),
        )
        self.workgroup = AthenaWorkgroup(
            self,
            "workgroup",
            name=naming.prefix,
            description="Dekart's queries: results encrypted in its bucket, scans capped",
            state="ENABLED",
            force_destroy=not config.is_production,
            configuration=AthenaWorkgroupConfiguration(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=config.athena.bytes_scanned_cutoff_gb * 1024**3,
                result_configuration=AthenaWorkgroupConfigurationResultConfiguration(
                    output_location=f"s3://{self.bucket.bucket.bucket}/{ATHENA_PREFIX}/",
                    encryption_configuration=(
                        AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration(
                            encryption_option="SSE_KMS", kms_key_arn=self.key.arn
                        )
                    ),
                ),
            ),
        )
        # Created by the operator before the first deploy (README): a plan fails at once,
        # naming the secret, when one is missing.
        self.license_key = DataAwsSecretsmanagerSecret(
            self, "license-key", name=naming.path("license-key")
        )
        self.mapbox_token = DataAwsSecretsmanagerSecret(
            self, "mapbox-token", name=naming.path("mapbox-token")
        )

    def authentication(self) -> CognitoAuthentication | None:
        cognito, web = self.config.cognito, self.config.web
        if cognito is None:
            return None
        if cognito.existing:
            return CognitoAuthentication(
                user_pool_arn=cognito.user_pool_arn or "",
                user_pool_client_id=cognito.user_pool_client_id or "",
                user_pool_domain=cognito.user_pool_domain or "",
            )
        self.user_pool = UserPool(
            self,
            "user-pool",
            props=UserPoolProps(
                naming=self.naming,
                domain_prefix=f"{self.naming.prefix}-{self.account_id}",
                callback_domain=web.domain_name or "",
                deletion_protection=self.config.is_production,
            ),
        )
        return self.user_pool.authentication()

    def environment(self) -> Mapping[str, str]:
        config, db = self.config, self.database
        user = self.db_credentials.username
        env = {
            "AWS_REGION": config.region,
            "DEKART_POSTGRES_URL": (
                f"postgres://{user}@{db.endpoint_address}:{db.port}/{db.database_name}"
                f"?sslmode=verify-full&sslrootcert={RDS_CA_PATH}"
            ),
            "DEKART_STORAGE": "S3",
            "DEKART_CLOUD_STORAGE_BUCKET": self.bucket.bucket.bucket,
            "DEKART_DATASOURCE": "ATHENA",
            "DEKART_ATHENA_CATALOG": config.athena.catalog,
            "DEKART_ATHENA_WORKGROUP": self.workgroup.name,
            "DEKART_ATHENA_S3_OUTPUT_LOCATION": f"{self.bucket.bucket.bucket}/{ATHENA_PREFIX}",
            # Nothing leaves for Dekart's own services: no version check, no usage statistics.
            "DEKART_UX_DISABLE_VERSION_CHECK": "1",
            "DEKART_DISABLE_USAGE_STATS": "1",
        }
        if config.web.domain_name:
            env["DEKART_CORS_ORIGIN"] = f"https://{config.web.domain_name}"
        if config.cognito is not None:
            # Each user is who the load balancer's signed x-amzn-oidc-data says (verified
            # with its regional public keys, AWS_REGION): maps have owners. Without it,
            # every signed-in user is one anonymous user who may edit or delete any map.
            env["DEKART_REQUIRE_AMAZON_OIDC"] = "1"
        return {**env, **workspace_environment(config.workspace)}

    def secrets(self) -> Mapping[str, SecretRef]:
        return {
            "PGPASSWORD": self.db_credentials.field("password"),
            "DEKART_LICENSE_KEY": SecretRef(self.license_key.arn),
            "DEKART_MAPBOX_TOKEN": SecretRef(self.mapbox_token.arn),
        }

    def task_statements(self) -> Sequence[Statement]:
        """Queries in its workgroup over the configured Glue databases and data buckets,
        results and storage in its bucket; nothing else (no wildcard action)."""
        config, region, account = self.config, self.config.region, self.account_id
        glue = f"arn:aws:glue:{region}:{account}"
        databases = config.athena.databases
        data = [f"arn:aws:s3:::{b}" for b in config.athena.data_buckets]
        statements = [
            Statement(
                sid="QueriesInTheWorkgroup",
                actions=["athena:StartQueryExecution", "athena:GetQueryExecution"],
                resources=[self.workgroup.arn],
            ),
            Statement(
                sid="GlueTablesOfTheConfiguredDatabases",
                actions=list(GLUE_READ),
                resources=[
                    f"{glue}:catalog",
                    *(f"{glue}:database/{d}" for d in databases),
                    *(f"{glue}:table/{d}/*" for d in databases),
                ],
            ),
            Statement(
                sid="ResultsAndStorage",
                actions=list(RESULTS_ACCESS),
                resources=[f"{self.bucket.arn}/*"],
            ),
            Statement(
                sid="TheBuckets",
                actions=list(BUCKET_ACCESS),
                resources=[self.bucket.arn, *data],
            ),
            Statement(
                sid="ObjectsThroughS3",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.key.arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            ),
        ]
        if config.athena.lake_formation:
            statements.append(
                Statement(
                    sid="LakeFormationGovernedTables",
                    actions=["lakeformation:GetDataAccess"],
                    # No resource-level permissions: Lake Formation's grants decide.
                    resources=["*"],
                )
            )
        if config.athena.data_kms_key_arns:
            statements.append(
                Statement(
                    sid="DecryptTheDataThroughS3",
                    actions=["kms:Decrypt"],
                    resources=list(config.athena.data_kms_key_arns),
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                )
            )
        if data:
            statements.append(
                Statement(
                    sid="ReadTheDataBuckets",
                    actions=["s3:GetObject"],
                    resources=[f"{arn}/*" for arn in data],
                )
            )
        return statements

    def outputs(self) -> None:
        super().outputs()
        TerraformOutput(self, "storage_bucket", value=self.bucket.bucket.bucket)
        TerraformOutput(self, "athena_workgroup", value=self.workgroup.name)
