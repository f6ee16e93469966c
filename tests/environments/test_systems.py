"""The seed systems' environment configs (Metabase, Dekart): every rule and error path.

No synthesis: configs are validated as they are built. Each error names the stack
(``metabase-prod``), the field, the bad value and the fix.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from constructs_lib.errors import ConfigError
from constructs_lib.options import (
    DatabaseEngine,
    DatabaseTransport,
    NatGateways,
    RootFilesystem,
    Tier,
    WorkspaceRole,
)
from constructs_lib.settings import ServiceSettings
from environments import SYSTEM_ENVIRONMENTS, dekart, metabase
from environments.alarms import AlarmTarget
from environments.systems import (
    CognitoSettings,
    DataSource,
    ImageRuntime,
    SystemConfig,
    WebSettings,
    WorkspaceSettings,
)

PROD_CONFIGS = (metabase.PROD, dekart.PROD)
ALL_CONFIGS = (metabase.DEV, metabase.PROD, dekart.DEV, dekart.PROD)


def changed(config: SystemConfig, **changes: Any) -> SystemConfig:
    """``config`` with nested changes: ``web__domain_name=...`` changes ``config.web``."""
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        if "__" in key:
            part, field_ = key.split("__", 1)
            nested.setdefault(part, {})[field_] = value
        else:
            flat[key] = value
    for part, fields in nested.items():
        flat[part] = replace(getattr(config, part), **fields)
    return replace(config, **flat)


def fails(config: SystemConfig, pattern: str, **changes: Any) -> None:
    with pytest.raises(ConfigError, match=pattern):
        changed(config, **changes)


def test_stack_names_are_system_dash_environment() -> None:
    assert list(SYSTEM_ENVIRONMENTS) == [
        "metabase-dev",
        "metabase-prod",
        "dekart-dev",
        "dekart-prod",
        "metaflow-dev",
        "metaflow-prod",
        "panintelligence-dev",
        "panintelligence-prod",
    ]
    assert all(name == c.stack_name for name, c in SYSTEM_ENVIRONMENTS.items())


def test_metabase_runs_in_eu_west_1_with_its_azs() -> None:
    for config in (metabase.DEV, metabase.PROD):
        assert config.region == "eu-west-1"
        assert all(re.fullmatch(r"eu-west-1[abc]", az) for az in config.network.availability_zones)
    assert metabase.PROD.network.availability_zones == ("eu-west-1a", "eu-west-1b", "eu-west-1c")


def test_metabase_task_size_is_the_originals() -> None:
    for config in (metabase.DEV, metabase.PROD):
        assert (config.service.cpu, config.service.memory) == (512, 1024)


def test_azs_of_another_region_are_refused() -> None:
    fails(
        metabase.DEV,
        r"^metabase-dev\.network\.availability_zones: got 'eu-central-1a', name AZs of the "
        r"environment's region, e\.g\. eu-west-1a$",
        region="eu-west-1",
        network=dekart.DEV.network,
    )


@pytest.mark.parametrize("config", PROD_CONFIGS, ids=lambda c: c.stack_name)
def test_prod_tier_is_highly_available(config: SystemConfig) -> None:
    assert config.tier is Tier.PRODUCTION
    assert len(config.network.availability_zones) == 3
    assert config.network.nat_gateways is not NatGateways.SINGLE
    db = config.database
    assert db.engine is DatabaseEngine.POSTGRES
    assert db.multi_az
    assert db.deletion_protection
    assert db.final_snapshot
    assert db.backup_retention_days >= 7
    assert config.web.public
    assert config.web.deletion_protection
    assert config.web.access_logs


def test_metabase_prod_runs_two_tasks_dekart_one() -> None:
    assert metabase.PROD.service.min_tasks >= 2
    assert dekart.PROD.service.max_tasks == 1


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: c.stack_name)
def test_image_tags_are_pinned(config: SystemConfig) -> None:
    fails(
        config,
        rf"^{config.stack_name}\.image_tag: got 'latest', pin an upstream",
        image_tag="latest",
    )


def test_image_tag_syntax() -> None:
    fails(metabase.DEV, r"^metabase-dev\.image_tag: got 'v1 beta'", image_tag="v1 beta")


def test_database_must_be_postgres() -> None:
    fails(
        dekart.DEV,
        r"^dekart-dev\.database\.engine: got MYSQL, use DatabaseEngine\.POSTGRES",
        database__engine=DatabaseEngine.MYSQL,
    )


def test_dekart_never_runs_two_tasks() -> None:
    fails(
        dekart.DEV,
        r"^dekart-dev\.service\.max_tasks: got 2, dekart does not support more than one",
        service=ServiceSettings(min_tasks=1, max_tasks=2),
    )


@pytest.mark.parametrize(
    ("service", "pattern"),
    [
        (ServiceSettings(min_tasks=3, max_tasks=2), r"service\.min_tasks/max_tasks: got 3/2"),
        (ServiceSettings(min_tasks=1, max_tasks=1, cpu=300), r"service\.cpu: got 300"),
        (ServiceSettings(min_tasks=1, max_tasks=1, cpu=512, memory=512), r"service\.memory"),
    ],
)
def test_service_size_and_counts(service: ServiceSettings, pattern: str) -> None:
    fails(metabase.DEV, rf"^metabase-dev\.{pattern}", service=service)


def test_prod_metabase_needs_two_tasks() -> None:
    fails(
        metabase.PROD,
        r"^metabase-prod\.service\.min_tasks: got 1, a production service runs at least 2",
        service=ServiceSettings(min_tasks=1, max_tasks=4, cpu=512, memory=1024),
    )


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"web__hosted_zone_id": "Z123"}, r"web\.hosted_zone_id: got set, set web\.domain_name"),
        (
            {"web__certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/x"},
            r"web\.certificate_arn: got set, set web\.domain_name",
        ),
        (
            {"web__ingress_cidrs": ("0.0.0.0/0",)},
            r"web\.ingress_cidrs: got '0\.0\.0\.0/0', without web\.domain_name the load "
            r"balancer is internal and plain HTTP",
        ),
        (
            {"web__ingress_cidrs": ("8.8.8.0/24",)},
            r"web\.ingress_cidrs: got '8\.8\.8\.0/24', without web\.domain_name",
        ),
        ({"web__domain_name": "Metabase.Example.com"}, r"web\.domain_name: got 'Metabase"),
        (
            {"web__domain_name": "bi.example.com"},
            r"web\.hosted_zone_id: got None, name the Route 53 zone of web\.domain_name",
        ),
        (
            {"web__domain_name": "bi.example.com", "web__hosted_zone_id": "not-a-zone"},
            r"web\.hosted_zone_id: got 'not-a-zone', use a Route 53 hosted zone id",
        ),
    ],
)
def test_web_settings(changes: dict[str, Any], pattern: str) -> None:
    fails(metabase.DEV, rf"^metabase-dev\.{pattern}", **changes)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:acm:eu-central-1:123456789012:certificate/abc",  # another region
        "arn:aws:iam::123456789012:server-certificate/abc",
        "certificate/abc",
    ],
)
def test_bad_certificate_arn(arn: str) -> None:
    fails(
        metabase.PROD,
        rf"^metabase-prod\.web\.certificate_arn: got '{re.escape(arn)}', use an ACM "
        r"certificate ARN in eu-west-1",
        web__certificate_arn=arn,
    )


def test_a_domain_with_a_given_certificate_needs_no_zone() -> None:
    config = changed(metabase.PROD, web__hosted_zone_id=None)
    assert config.web.hosted_zone_id is None


def test_malformed_public_ingress_cidr() -> None:
    fails(
        metabase.PROD,
        r"^metabase-prod\.web\.ingress_cidrs: got '10\.0\.0\.0', use IPv4 CIDRs",
        web__ingress_cidrs=("10.0.0.0",),
    )


@pytest.mark.parametrize(
    ("field_", "pattern"),
    [
        ("deletion_protection", r"web\.deletion_protection: got False, set it to True"),
        ("access_logs", r"web\.access_logs: got False, set it to True"),
    ],
)
def test_prod_load_balancer_rules(field_: str, pattern: str) -> None:
    fails(metabase.PROD, rf"^metabase-prod\.{pattern}", **{f"web__{field_}": False})


def test_prod_is_served_over_https() -> None:
    fails(
        metabase.PROD,
        r"^metabase-prod\.web\.domain_name: got None, a production system is served over HTTPS",
        web=WebSettings(deletion_protection=True, access_logs=True),
    )


def test_prod_rules_shared_with_the_platform_apply() -> None:
    fails(
        dekart.PROD,
        r"^dekart-prod\.database\.multi_az: got False, set it to True",
        database__multi_az=False,
    )
    fails(
        metabase.PROD,
        r"^metabase-prod\.network\.nat_gateways: got SINGLE, a production environment needs",
        network__nat_gateways=NatGateways.SINGLE,
    )


def test_metabase_heap_share() -> None:
    fails(
        metabase.DEV,
        r"^metabase-dev\.java_max_ram_percent: got 95, use 25-90",
        java_max_ram_percent=95,
    )


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"athena__catalog": "hive"}, r"athena\.catalog: got 'hive', use AwsDataCatalog"),
        ({"athena__databases": ()}, r"athena\.databases: got none, name the Glue databases"),
        ({"athena__databases": ("Geo-Data",)}, r"athena\.databases: got 'Geo-Data'"),
        ({"athena__data_buckets": ("Bad_Bucket",)}, r"athena\.data_buckets: got 'Bad_Bucket'"),
        ({"athena__bytes_scanned_cutoff_gb": 0}, r"athena\.bytes_scanned_cutoff_gb: got 0"),
        (
            {"cognito": CognitoSettings()},
            r"cognito: got set, Cognito sign-in needs HTTPS: set web\.domain_name",
        ),
    ],
)
def test_dekart_settings(changes: dict[str, Any], pattern: str) -> None:
    fails(dekart.DEV, rf"^dekart-dev\.{pattern}", **changes)


def test_public_dekart_without_cognito_is_refused() -> None:
    fails(
        dekart.PROD,
        r"^dekart-prod\.cognito: got None, a Dekart served on the internet needs sign-in",
        cognito=None,
    )


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (
            {"user_pool_arn": "arn:aws:cognito-idp:eu-central-1:123456789012:userpool/eu_x"},
            "client_id",
        ),
        ({"user_pool_client_id": "abc", "user_pool_domain": "login"}, "user_pool_arn"),
    ],
)
def test_partial_cognito_settings_are_refused(given: dict[str, str], missing: str) -> None:
    fails(
        dekart.PROD,
        rf"^dekart-prod\.cognito\.(user_pool_)?{missing}: got None, give all three",
        cognito=CognitoSettings(**given),
    )


def test_cognito_pool_arn_is_checked() -> None:
    fails(
        dekart.PROD,
        r"^dekart-prod\.cognito\.user_pool_arn: got 'pool', use a Cognito user pool ARN",
        cognito=CognitoSettings(
            user_pool_arn="pool", user_pool_client_id="abc", user_pool_domain="login"
        ),
    )


def test_an_existing_pool_is_accepted() -> None:
    pool = "arn:aws:cognito-idp:eu-central-1:123456789012:userpool/eu-central-1_AbC"
    config = changed(
        dekart.PROD,
        cognito=CognitoSettings(
            user_pool_arn=pool, user_pool_client_id="abc", user_pool_domain="login"
        ),
    )
    assert config.cognito is not None
    assert config.cognito.existing


def test_prod_alarm_target_is_required_and_names_the_system_file() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^metabase-prod\.alarm_email / alarm_topic_arn: got unset, .* in "
        r"environments/metabase\.py, or PCP_ALARM_EMAIL",
    ):
        AlarmTarget().apply(metabase.PROD)
    applied = AlarmTarget(email="bi-oncall@example.com").apply(metabase.PROD)
    assert applied.alarm_email == "bi-oncall@example.com"
    assert isinstance(applied, type(metabase.PROD))


def test_dekart_reaches_aws_through_endpoints_and_only_sign_in_needs_nat() -> None:
    assert dekart.DEV.cognito is None
    assert dekart.DEV.network.nat_gateways is NatGateways.NONE
    assert dekart.PROD.cognito is not None
    assert dekart.PROD.network.nat_gateways is NatGateways.PER_AZ
    for config in (dekart.DEV, dekart.PROD):
        assert set(config.network.interface_endpoints) >= {
            "ecr.api",
            "ecr.dkr",
            "logs",
            "secretsmanager",
            "athena",
        }


def test_data_keys_must_be_kms_key_arns_of_the_region() -> None:
    fails(
        dekart.DEV,
        r"^dekart-dev\.athena\.data_kms_key_arns: got 'arn:aws:kms:us-east-1:123456789012:key/x', "
        r"use KMS key ARNs in eu-central-1",
        athena__data_kms_key_arns=("arn:aws:kms:us-east-1:123456789012:key/x",),
    )


# --- Metaflow -----------------------------------------------------------------------------


def test_metaflow_keeps_the_modules_defaults() -> None:
    from environments import metaflow

    config = metaflow.DEV
    assert (config.service.cpu, config.service.memory) == (512, 1024)
    assert config.enable_api_gateway
    assert config.enable_api_basic_auth
    assert config.database.database_name == "metaflow"


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"access_list_cidr_blocks": ()}, r"access_list_cidr_blocks: got none, name who may"),
        (
            {"access_list_cidr_blocks": ("0.0.0.0/0",)},
            r"access_list_cidr_blocks: got '0\.0\.0\.0/0', use IPv4 CIDRs narrower",
        ),
        (
            {"access_list_cidr_blocks": ("10.1.0.0/16",)},
            r"access_list_cidr_blocks: got 10\.1\.0\.0/16, the API Gateway endpoint is public",
        ),
        (
            {"datastore__bucket_arn": "my-bucket"},
            r"datastore\.bucket_arn: got 'my-bucket', use an S3 bucket ARN",
        ),
        (
            {"datastore__kms_key_arn": "alias/x"},
            r"datastore\.kms_key_arn: got 'alias/x', use a KMS key ARN in eu-central-1",
        ),
        ({"web": WebSettings(ingress_cidrs=("10.0.0.0/8",))}, r"web: got set, metaflow is not"),
    ],
)
def test_metaflow_settings(changes: dict[str, Any], pattern: str) -> None:
    from environments import metaflow

    fails(metaflow.DEV, rf"^metaflow-dev\.{pattern}", **changes)


def test_metaflow_without_gateway_needs_no_public_range() -> None:
    from environments import metaflow

    config = changed(
        metaflow.DEV, enable_api_gateway=False, access_list_cidr_blocks=("10.1.0.0/16",)
    )
    assert config.private_access_cidrs == ("10.1.0.0/16",)
    assert config.public_access_cidrs == ()


@pytest.mark.parametrize(
    ("database", "pattern"),
    [
        (
            {"endpoint": "db.example", "credentials_secret_arn": "x"},
            r"existing_database\.endpoint: got 'db\.example', use host:port",
        ),
        (
            {
                "endpoint": "db.example:5432",
                "credentials_secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:x",
            },
            r"existing_database\.credentials_secret_arn: got .*, use a Secrets Manager secret ARN in eu-central-1",
        ),
    ],
)
def test_metaflow_existing_database(database: dict[str, str], pattern: str) -> None:
    from environments import metaflow
    from environments.systems import ExistingDatabase

    fails(
        metaflow.DEV, rf"^metaflow-dev\.{pattern}", existing_database=ExistingDatabase(**database)
    )


def test_metaflow_prod_runs_two_tasks() -> None:
    from environments import metaflow

    fails(
        metaflow.PROD,
        r"^metaflow-prod\.service\.min_tasks: got 1, a production service runs at least 2",
        service=ServiceSettings(min_tasks=1, max_tasks=2, cpu=512, memory=1024),
    )


# --- Panintelligence ----------------------------------------------------------------------


def test_panintelligence_services_are_sized_per_the_datasheet() -> None:
    from environments import panintelligence

    config = panintelligence.PROD
    assert (config.service.cpu, config.service.memory) == (1024, 2048)
    assert (config.renderer.cpu, config.renderer.memory) == (2048, 4096)
    assert (config.pirana.cpu, config.pirana.memory) == (512, 1024)
    assert (config.scheduler.cpu, config.scheduler.memory) == (512, 1024)
    assert config.database.engine is DatabaseEngine.MARIADB


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        (
            {"scheduler": ServiceSettings(min_tasks=1, max_tasks=2, cpu=512, memory=1024)},
            r"scheduler\.max_tasks: got 2, use 1: two schedulers",
        ),
        (
            {"pirana": ServiceSettings(min_tasks=1, max_tasks=1, cpu=512, memory=512)},
            r"pirana\.cpu/memory: got 512/512, use a Fargate size \(0\.5 vCPU needs at least",
        ),
        (
            {"renderer": ServiceSettings(min_tasks=2, max_tasks=1, cpu=2048, memory=4096)},
            r"renderer\.min_tasks/max_tasks: got 2/1",
        ),
        (
            {"network__nat_gateways": NatGateways.NONE},
            r"network\.nat_gateways: got NONE, the dashboard reaches the licence server",
        ),
        ({"assets_force_token": "now please"}, r"assets_force_token: got 'now please'"),
        (
            {"database__engine": DatabaseEngine.POSTGRES},
            r"database\.engine: got POSTGRES, use DatabaseEngine\.MARIADB",
        ),
    ],
)
def test_panintelligence_settings(changes: dict[str, Any], pattern: str) -> None:
    from environments import panintelligence

    fails(panintelligence.DEV, rf"^panintelligence-dev\.{pattern}", **changes)


# --- sign-in needs the load balancer's public keys (issue 22) -----------------------------


def test_dekart_sign_in_needs_a_route_to_the_load_balancer_keys() -> None:
    fails(
        dekart.PROD,
        r"^dekart-prod\.network\.nat_gateways: got NONE, with Cognito sign-in Dekart verifies "
        r"each user's identity with the load balancer's public keys "
        r"\(public-keys\.auth\.elb\.eu-central-1\.amazonaws\.com, no VPC endpoint\): use "
        r"SINGLE or PER_AZ$",
        network__nat_gateways=NatGateways.NONE,
    )


# --- database transport: only Panintelligence may admit plaintext ------------------------


@pytest.mark.parametrize("config", [metabase.DEV, dekart.PROD], ids=lambda c: c.where)
def test_other_systems_refuse_a_database_that_admits_plaintext(config: SystemConfig) -> None:
    fails(
        config,
        rf"^{config.where}\.database\.transport: got TLS_OFFERED, use "
        r"DatabaseTransport\.TLS_REQUIRED: only a system whose vendor's client cannot use TLS "
        r"\(Panintelligence\) may admit plaintext connections$",
        database__transport=DatabaseTransport.TLS_OFFERED,
    )


def test_the_platform_refuses_a_database_that_admits_plaintext() -> None:
    from environments import PROD

    with pytest.raises(ConfigError, match=r"^prod\.database\.transport: got TLS_OFFERED, use "):
        replace(PROD, database=replace(PROD.database, transport=DatabaseTransport.TLS_OFFERED))


def test_panintelligence_offers_tls_by_default_and_may_require_it() -> None:
    from environments import panintelligence

    for config in (panintelligence.DEV, panintelligence.PROD):
        assert config.database.transport is DatabaseTransport.TLS_OFFERED
        hardened = changed(config, database__transport=DatabaseTransport.TLS_REQUIRED)
        assert hardened.database.transport.required


# --- Panintelligence's image runtime ------------------------------------------------------


def test_panintelligence_runs_its_images_as_the_vendor_does_by_default() -> None:
    from environments import panintelligence

    for config in (panintelligence.DEV, panintelligence.PROD):
        assert config.runtime == ImageRuntime()
        assert (config.runtime.user, config.runtime.read_only) == (None, False)


@pytest.mark.parametrize("user", ["0", "0:0", "10001:0", "root", "pi", "10001:", ""])
def test_panintelligence_runtime_user_is_a_non_root_uid_and_gid(user: str) -> None:
    from environments import panintelligence

    fails(
        panintelligence.DEV,
        rf"^panintelligence-dev\.runtime\.user: got {re.escape(repr(user))}, use a non-root "
        r'"<uid>:<gid>" \("10001:10001", the user images/panintelligence/Dockerfile adds\), '
        r"or None for the image's own$",
        runtime__user=user,
    )


def test_panintelligence_hardened_runtime_is_accepted() -> None:
    from environments import panintelligence

    config = changed(
        panintelligence.PROD,
        runtime__user="10001:10001",
        runtime__root_filesystem=RootFilesystem.READ_ONLY,
    )
    assert config.runtime.read_only


@pytest.mark.parametrize("path", ["tmp", "/var/../etc", "/", "/var/x/"])
def test_panintelligence_writable_paths_are_absolute_and_normalised(path: str) -> None:
    from environments import panintelligence

    fails(
        panintelligence.DEV,
        rf"^panintelligence-dev\.runtime\.writable_paths: got {re.escape(repr(path))}, use "
        r"absolute, normalised directory paths other than /$",
        runtime__root_filesystem=RootFilesystem.READ_ONLY,
        runtime__writable_paths=("/tmp", path),
    )


@pytest.mark.parametrize("paths", [("/tmp", "/tmp"), ("/var/log",)])
def test_panintelligence_writable_paths_are_unique_and_keep_tmp(paths: tuple[str, ...]) -> None:
    from environments import panintelligence

    fails(
        panintelligence.DEV,
        rf"^panintelligence-dev\.runtime\.writable_paths: got {re.escape(', '.join(paths))}, "
        r"name each directory once, /tmp included \(the derived image's HOME\)$",
        runtime__root_filesystem=RootFilesystem.READ_ONLY,
        runtime__writable_paths=paths,
    )


def test_panintelligence_writable_paths_are_not_checked_on_a_writable_root() -> None:
    from environments import panintelligence

    config = changed(panintelligence.DEV, runtime__writable_paths=())
    assert config.runtime.writable_paths == ()


# --- data sources -------------------------------------------------------------------------


WAREHOUSE = DataSource("warehouse", 5439, cidr="10.90.0.0/16")


def test_data_sources_default_to_none() -> None:
    assert all(c.data_sources == () for c in SYSTEM_ENVIRONMENTS.values())
    config = changed(
        metabase.PROD,
        data_sources=(
            WAREHOUSE,
            DataSource("lake", 5432, security_group_id="sg-0123456789abcdef0"),
        ),
    )
    assert [d.name for d in config.data_sources] == ["warehouse", "lake"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            DataSource("Warehouse", 5439, cidr="10.90.0.0/16"),
            r"data_sources\.name: got 'Warehouse', use a unique name of lower-case letters, "
            r"digits and hyphens \(up to 31\)",
        ),
        (
            DataSource("warehouse", 0, cidr="10.90.0.0/16"),
            r"data_sources\['warehouse'\]\.port: got 0, use a TCP port, 1-65535",
        ),
        (
            DataSource("warehouse", 5439),
            r"data_sources\['warehouse'\]: got neither, give exactly one of cidr and "
            r"security_group_id",
        ),
        (
            DataSource("warehouse", 5439, cidr="10.90.0.0/16", security_group_id="sg-01234567"),
            r"data_sources\['warehouse'\]: got cidr and security_group_id, give exactly one",
        ),
        (
            DataSource("warehouse", 5439, cidr="0.0.0.0/0"),
            r"data_sources\['warehouse'\]\.cidr: got '0\.0\.0\.0/0', use an IPv4 CIDR narrower "
            r"than the whole internet",
        ),
        (
            DataSource("warehouse", 5439, cidr="10.90.0.1/16"),
            r"data_sources\['warehouse'\]\.cidr: got '10\.90\.0\.1/16', use an IPv4 CIDR",
        ),
        (
            DataSource("warehouse", 5439, security_group_id="sg-xyz"),
            r"data_sources\['warehouse'\]\.security_group_id: got 'sg-xyz', use a security "
            r"group id",
        ),
    ],
    ids=["name", "port", "neither", "both", "anywhere", "host-bits", "group-id"],
)
def test_a_data_source_is_validated(source: DataSource, message: str) -> None:
    fails(metabase.DEV, rf"^metabase-dev\.{message}", data_sources=(source,))


def test_data_source_names_are_unique() -> None:
    fails(
        metabase.DEV,
        r"^metabase-dev\.data_sources\.name: got 'warehouse', use a unique name",
        data_sources=(WAREHOUSE, WAREHOUSE),
    )


def test_panintelligence_names_data_sources_by_range_for_its_network_acls() -> None:
    from environments import panintelligence

    fails(
        panintelligence.DEV,
        r"^panintelligence-dev\.data_sources\['lake'\]\.security_group_id: got "
        r"'sg-0123456789abcdef0', Panintelligence's subnets have network ACLs, which admit "
        r"address ranges only: name the data source by cidr$",
        data_sources=(DataSource("lake", 5432, security_group_id="sg-0123456789abcdef0"),),
    )


@pytest.mark.parametrize(
    "email", ["admin", "admin@localhost", "two words@example.com", "a@b@example.com"]
)
def test_dekart_workspace_admin_must_be_an_email(email: str) -> None:
    fails(
        dekart.PROD,
        rf"^dekart-prod\.workspace\.admin_email: got '{re.escape(email)}', use the "
        r"administrator's email address",
        workspace=WorkspaceSettings(admin_email=email),
    )


def test_dekart_workspace_admin_may_be_named() -> None:
    workspace = WorkspaceSettings(admin_email="maps.admin@example.com")
    assert replace(dekart.PROD, workspace=workspace).workspace == workspace


def test_dekart_users_are_editors_with_no_administrator_by_default() -> None:
    assert dekart.PROD.workspace == WorkspaceSettings(None, WorkspaceRole.EDITOR)
    assert dekart.DEV.workspace == dekart.PROD.workspace
