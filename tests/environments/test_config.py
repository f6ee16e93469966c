"""Environment configs: the rules each environment must meet, and every error path.

No synthesis here: configs are validated as they are built, before any construct.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from constructs_lib.errors import ConfigError
from constructs_lib.options import NatGateways, Tier
from constructs_lib.settings import ServiceSettings
from environments import DEV, ENVIRONMENTS, PROD, STAGE, TEST, EnvironmentConfig
from environments.config import EdgeConfig
from tests.support import EDGE, ZONE

NON_PROD = (DEV, TEST, STAGE)


def with_network(config: EnvironmentConfig, **changes: object) -> EnvironmentConfig:
    return replace(config, network=replace(config.network, **changes))  # type: ignore[arg-type]


def with_database(config: EnvironmentConfig, **changes: object) -> EnvironmentConfig:
    return replace(config, database=replace(config.database, **changes))  # type: ignore[arg-type]


def test_the_four_environments_in_promotion_order() -> None:
    assert list(ENVIRONMENTS) == ["dev", "test", "stage", "prod"]


@pytest.mark.parametrize("config", [*NON_PROD, PROD], ids=lambda c: c.name)
def test_region_defaults_to_eu_central_1_and_azs_are_explicit(config: EnvironmentConfig) -> None:
    assert config.region == "eu-central-1"
    assert all(
        az.startswith("eu-central-1") and len(az) == 13 for az in config.network.availability_zones
    )


def test_prod_is_highly_available() -> None:
    assert PROD.tier is Tier.PRODUCTION
    assert len(PROD.network.availability_zones) == 3
    assert PROD.network.nat_gateways is NatGateways.PER_AZ
    assert PROD.database.multi_az
    assert PROD.database.deletion_protection
    assert PROD.database.final_snapshot
    assert PROD.database.backup_retention_days >= 7


@pytest.mark.parametrize("config", NON_PROD, ids=lambda c: c.name)
def test_non_prod_is_cheap_and_disposable(config: EnvironmentConfig) -> None:
    assert config.tier is Tier.DEVELOPMENT
    assert len(config.network.availability_zones) == 2
    assert config.network.nat_gateways is NatGateways.SINGLE
    assert not config.database.multi_az
    assert not config.database.deletion_protection
    assert not config.database.final_snapshot


def test_environments_differ_only_in_values() -> None:
    assert {type(c) for c in ENVIRONMENTS.values()} == {EnvironmentConfig}
    vpcs = [c.network.vpc_cidr for c in ENVIRONMENTS.values()]
    assert len(set(vpcs)) == len(vpcs), "VPC ranges must not collide (peering, VPN)"


def test_configs_are_frozen() -> None:
    with pytest.raises(AttributeError):
        PROD.name = "other"  # type: ignore[misc]


# --- error paths: one test per rule ---------------------------------------------------


def test_prod_with_fewer_than_three_azs() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^prod\.network\.availability_zones: got 2 \(eu-central-1a, eu-central-1b\), "
        r"a production environment needs 3 \(one AZ can fail\)$",
    ):
        with_network(
            PROD,
            availability_zones=PROD.network.availability_zones[:2],
            public_subnet_cidrs=PROD.network.public_subnet_cidrs[:2],
            private_subnet_cidrs=PROD.network.private_subnet_cidrs[:2],
        )


def test_prod_with_a_single_nat_gateway() -> None:
    with pytest.raises(ConfigError, match=r"^prod\.network\.nat_gateways: got SINGLE, .*PER_AZ"):
        with_network(PROD, nat_gateways=NatGateways.SINGLE)


def test_duplicate_azs() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^dev\.network\.availability_zones: got eu-central-1a, eu-central-1a, "
        r"name each AZ once \(repeated: eu-central-1a\)$",
    ):
        with_network(DEV, availability_zones=("eu-central-1a", "eu-central-1a"))


def test_az_of_another_region() -> None:
    with pytest.raises(ConfigError, match=r"^dev\.network\.availability_zones: got 'us-east-1b'"):
        with_network(DEV, availability_zones=("eu-central-1a", "us-east-1b"))


def test_single_az() -> None:
    with pytest.raises(
        ConfigError, match=r"^dev\.network\.availability_zones: got 1, .*at least 2"
    ):
        with_network(
            DEV,
            availability_zones=("eu-central-1a",),
            public_subnet_cidrs=DEV.network.public_subnet_cidrs[:1],
            private_subnet_cidrs=DEV.network.private_subnet_cidrs[:1],
        )


@pytest.mark.parametrize(
    ("config", "changes", "message"),
    [
        pytest.param(
            DEV,
            {"public_subnet_cidrs": ("10.10.0.0/24", "10.10.0.0/25")},
            r"^dev\.network\.public_subnet_cidrs: got 10\.10\.0\.0/24 overlapping "
            r"10\.10\.0\.0/25, give every subnet its own range$",
            id="subnets_overlapping_each_other",
        ),
        pytest.param(
            DEV,
            {"public_subnet_cidrs": ("10.10.0.0/24", "10.10.16.0/24")},
            r"^dev\.network\.public_subnet_cidrs: got 10\.10\.16\.0/24 overlapping "
            r"10\.10\.16\.0/20",
            id="public_and_private_subnets_overlapping",
        ),
        pytest.param(
            STAGE,
            {"private_subnet_cidrs": ("10.99.16.0/20", "10.30.32.0/20")},
            r"^stage\.network\.private_subnet_cidrs: got 10\.99\.16\.0/20, "
            r"use a CIDR inside the VPC CIDR 10\.30\.0\.0/16$",
            id="subnet_outside_the_vpc",
        ),
        pytest.param(
            DEV,
            {"public_subnet_cidrs": ("10.10.0.1/24", "10.10.1.0/24")},
            r"^dev\.network\.public_subnet_cidrs: got '10\.10\.0\.1/24', use a network CIDR",
            id="subnet_cidr_that_is_not_a_network",
        ),
        pytest.param(
            DEV,
            {"vpc_cidr": "10.10.0.0/33"},
            r"^dev\.network\.vpc_cidr: got '10\.10\.0\.0/33'",
            id="invalid_vpc_cidr",
        ),
        pytest.param(
            DEV,
            {"private_subnet_cidrs": DEV.network.private_subnet_cidrs[:1]},
            r"^dev\.network\.private_subnet_cidrs: got 1, give one private subnet per AZ \(2\)$",
            id="private_subnet_count_must_match_azs",
        ),
    ],
)
def test_subnet_and_cidr_errors(
    config: EnvironmentConfig, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        with_network(config, **changes)


def test_fewer_public_subnets_than_nat_gateways_need() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^prod\.network\.public_subnet_cidrs: got 2, NAT gateways PER_AZ need 3 "
        r"public subnet\(s\), one per NAT gateway$",
    ):
        with_network(PROD, public_subnet_cidrs=PROD.network.public_subnet_cidrs[:2])


@pytest.mark.parametrize("days", [-1, 36])
def test_backup_retention_out_of_rds_range(days: int) -> None:
    with pytest.raises(
        ConfigError,
        match=rf"^test\.database\.backup_retention_days: got {days}, use 0-35 days \(the RDS range\)$",
    ):
        with_database(TEST, backup_retention_days=days)


def test_prod_backup_retention_below_seven_days() -> None:
    with pytest.raises(
        ConfigError, match=r"^prod\.database\.backup_retention_days: got 3, .*at least 7 days$"
    ):
        with_database(PROD, backup_retention_days=3)


@pytest.mark.parametrize(
    ("field", "fix"),
    [
        ("multi_az", "multi-AZ"),
        ("deletion_protection", "deletion protection"),
        ("final_snapshot", "final snapshot"),
    ],
)
def test_prod_database_safety_rules(field: str, fix: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"^prod\.database\.{field}: got False, set it to True: .*{fix}"
    ):
        with_database(PROD, **{field: False})


@pytest.mark.parametrize(
    "name", ["Prod", "p", "1dev", "dev_1", "dev-", "a-very-long-name", "dev--x", ""]
)
def test_environment_name_that_is_not_a_valid_resource_name_prefix(name: str) -> None:
    with pytest.raises(ConfigError, match=r"\.name: got '.*', use 2-12 lower-case letters"):
        replace(DEV, name=name)


def test_invalid_region() -> None:
    with pytest.raises(ConfigError, match=r"^dev\.region: got 'Frankfurt', use an AWS region"):
        replace(DEV, region="Frankfurt")


def test_storage_ceiling_below_allocation() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^dev\.database\.max_allocated_storage_gb: got 10, use at least allocated_storage_gb \(20\)$",
    ):
        with_database(DEV, max_allocated_storage_gb=10)


def test_log_retention_must_be_a_cloudwatch_period() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^dev\.network\.flow_log_retention_days: got 42, use a CloudWatch Logs retention period",
    ):
        with_network(DEV, flow_log_retention_days=42)


def with_services(config: EnvironmentConfig, **changes: object) -> EnvironmentConfig:
    return replace(config, services=replace(config.services, **changes))  # type: ignore[arg-type]


def test_prod_services_run_at_least_two_tasks() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^prod\.services\.consumer\.min_tasks: got 1, a production service runs at least 2 tasks",
    ):
        with_services(
            PROD, consumer=ServiceSettings(min_tasks=1, max_tasks=4, cpu=512, memory=1024)
        )


def test_service_bounds() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^dev\.services\.producer\.min_tasks/max_tasks: got 3/2, use 1 <= min_tasks <= max_tasks$",
    ):
        with_services(DEV, producer=ServiceSettings(min_tasks=3, max_tasks=2))


def test_fargate_memory_must_fit_the_cpu() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^dev\.services\.consumer\.memory: got 4096, use one of 512, 1024, 2048 MiB with 256 CPU units$",
    ):
        with_services(DEV, consumer=ServiceSettings(min_tasks=1, max_tasks=2, memory=4096))


def test_fargate_cpu_size() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^dev\.services\.producer\.cpu: got 300, use 256, 512, 1024, 2048, 4096$",
    ):
        with_services(DEV, producer=ServiceSettings(min_tasks=1, max_tasks=2, cpu=300))


def test_alarm_email_is_checked() -> None:
    with pytest.raises(
        ConfigError, match=r"^dev\.alarm_email: got 'ops-at-example', use an e-mail address"
    ):
        replace(DEV, alarm_email="ops-at-example")


def test_prod_alb_must_be_protected_and_logged() -> None:
    with pytest.raises(
        ConfigError, match=r"^prod\.edge\.alb_access_logs: got False, set it to True"
    ):
        replace(PROD, edge=replace(PROD.edge, alb_access_logs=False))


@pytest.mark.parametrize(
    ("edge", "message"),
    [
        (
            replace(EDGE, hosted_zone_id=None),
            r"^stage\.edge\.hosted_zone_id: got None, name the Route 53 zone of domain_name$",
        ),
        (
            replace(EDGE, cloudfront_certificate_arn=EDGE.alb_certificate_arn),
            r"^stage\.edge\.cloudfront_certificate_arn: got .*, use an ACM certificate ARN in us-east-1",
        ),
        (
            EdgeConfig(hosted_zone_id=ZONE),
            r"^stage\.edge\.hosted_zone_id: got set, set edge\.domain_name too, or unset it$",
        ),
        (
            replace(EDGE, allowed_cidrs=("0.0.0.0/0",)),
            r"^stage\.edge\.allowed_cidrs: got '0\.0\.0\.0/0', the allow-list must not admit",
        ),
        (
            replace(EDGE, allowed_cidrs=("203.0.113.0/24",)),
            r"^stage\.edge\.allowed_cidrs: got '203\.0\.113\.0/24', the load balancer is internal",
        ),
        (
            replace(EDGE, domain_name="not a domain"),
            r"^stage\.edge\.domain_name: got 'not a domain', use a DNS name$",
        ),
    ],
)
def test_edge_config_errors(edge: EdgeConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(STAGE, edge=edge)


def with_queue(config: EnvironmentConfig, **changes: object) -> EnvironmentConfig:
    return replace(config, queue=replace(config.queue, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"max_data_storage_gb": 0},
            r"^dev\.queue\.max_data_storage_gb: got 0, use 1-5000 GB \(the ElastiCache Serverless",
        ),
        (
            {"max_ecpu_per_second": 500},
            r"^dev\.queue\.max_ecpu_per_second: got 500, use 1000-15000000 ECPU/s",
        ),
        (
            {"log_retention_days": 45},
            r"^dev\.queue\.log_retention_days: got 45, use a CloudWatch Logs retention period",
        ),
    ],
    ids=["storage", "ecpu", "slow-log-retention"],
)
def test_queue_settings_out_of_the_elasticache_range(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        with_queue(DEV, **changes)


@pytest.mark.parametrize("shards", [0, 501])
def test_sharded_queue_shards_out_of_the_elasticache_range(shards: int) -> None:
    from constructs_lib.options import QueueMode

    with pytest.raises(
        ConfigError,
        match=rf"^prod\.queue\.shards: got {shards}, use 1-500 shards \(the ElastiCache",
    ):
        with_queue(PROD, mode=QueueMode.SHARDED, shards=shards)


def test_sharded_queue_stays_within_the_default_node_quota() -> None:
    """prod has three AZs: 30 shards are 90 nodes, the default quota; 31 are too many."""
    from constructs_lib.options import QueueMode

    assert with_queue(PROD, mode=QueueMode.SHARDED, shards=30).queue.shards == 30
    with pytest.raises(
        ConfigError,
        match=r"^prod\.queue\.shards: got 31 \(93 nodes: one per AZ in each shard\), use at "
        r"most 90 nodes, ElastiCache's default quota per cluster",
    ):
        with_queue(PROD, mode=QueueMode.SHARDED, shards=31)


def test_sharded_queue_keeps_snapshots() -> None:
    from constructs_lib.options import QueueMode

    with pytest.raises(
        ConfigError,
        match=r"^dev\.queue\.snapshot_retention_days: got 0, keep at least 1 day for a "
        r"sharded queue",
    ):
        with_queue(DEV, mode=QueueMode.SHARDED, snapshot_retention_days=0)
    assert with_queue(DEV, snapshot_retention_days=0).queue.snapshot_retention_days == 0


def test_shard_count_is_ignored_by_a_queue_that_is_not_sharded() -> None:
    from constructs_lib.options import QueueMode

    assert with_queue(DEV, shards=0).queue.shards == 0
    assert with_queue(PROD, mode=QueueMode.REPLICATION_GROUP, shards=0).queue.mode is (
        QueueMode.REPLICATION_GROUP
    )


def test_enhanced_monitoring_interval_rds_does_not_offer() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^dev\.database\.monitoring_interval_seconds: got 7, use one of 0, 1, 5, 10, 15, "
        r"30, 60 \(0 turns it off\)$",
    ):
        with_database(DEV, monitoring_interval_seconds=7)
