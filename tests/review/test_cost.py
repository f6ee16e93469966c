"""The offline cost estimate: every synthesized resource type is classified, environments
cost in the expected order, and hand-built stacks price exactly from the pinned table."""

from __future__ import annotations

import datetime
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from environments import SYSTEM_ENVIRONMENTS
from tests.support import Synth
from tools.review import cost
from tools.review.cost import (
    DISCLAIMER,
    FREE_OR_USAGE_ONLY,
    HOURS_PER_MONTH,
    PRICED,
    PRICES_PATH,
    CostReport,
    Prices,
    classify,
    estimate,
    load_prices,
)
from tools.review.model import Resource, Stack, load_stacks
from tools.review.report import review_stacks, stack_markdown

REGION = "eu-central-1"


@pytest.fixture(scope="module")
def stacks(synth: Synth) -> dict[str, Stack]:
    return load_stacks(Path(synth.outdir))


@pytest.fixture(scope="module")
def reports(stacks: dict[str, Stack]) -> dict[str, CostReport]:
    return {name: estimate(stack) for name, stack in stacks.items()}


def resource(type_: str, name: str, construct: str, **attrs: Any) -> Resource:
    return Resource(type=type_, name=name, attrs=attrs, path=f"hand/{construct}")


def hand_stack(*resources: Resource) -> Stack:
    return Stack(name="hand", resources={r.address: r for r in resources}, region=REGION)


def lines_of(report: CostReport, address: str) -> list[float]:
    return [line.usd_month for line in report.lines if line.address == address]


# ------------------------------------------------------------------ the synthesized stacks


def test_every_synthesized_resource_type_is_priced_or_free(stacks: dict[str, Stack]) -> None:
    assert {"bootstrap", "dev", "test", "stage", "prod"} <= set(stacks)
    unknown = {
        f"{name}: {type_}"
        for name, stack in stacks.items()
        for type_, kind in classify(r.type for r in stack.managed()).items()
        if kind == "unknown"
    }
    assert not unknown, "resource types in neither PRICED nor FREE_OR_USAGE_ONLY:\n" + "\n".join(
        sorted(unknown)
    )


def test_reports_name_no_unpriced_type(reports: dict[str, CostReport]) -> None:
    assert {name: r.unpriced for name, r in reports.items() if r.unpriced} == {}


def test_prod_costs_more_than_dev(reports: dict[str, CostReport]) -> None:
    assert reports["prod"].total > reports["dev"].total > 0


def test_each_line_names_quantity_and_unit(reports: dict[str, CostReport]) -> None:
    for name, report in reports.items():
        assert (
            report.region == SYSTEM_ENVIRONMENTS[name].region
            if name in SYSTEM_ENVIRONMENTS
            else REGION
        )
        assert report.total == pytest.approx(sum(line.usd_month for line in report.lines))
        for line in report.lines:
            assert line.usd_month >= 0
            assert line.what.endswith((f"{HOURS_PER_MONTH} h", "month", "(free)", "(free tier)")), (
                line
            )


def test_the_us_east_1_web_acl_is_priced_there(reports: dict[str, CostReport]) -> None:
    prices = load_prices()
    waf = [line for line in reports["prod"].lines if line.construct == "firewall/web-acl"]
    assert [line.what for line in waf] == [
        "1 x WAF web ACL (us-east-1), month",
        "4 x WAF rule (us-east-1), month",
    ]
    assert sum(line.usd_month for line in waf) == pytest.approx(
        prices.rate("us-east-1", "waf_web_acl_month")
        + 4 * prices.rate("us-east-1", "waf_rule_month")
    )


def test_usage_priced_parts_are_named(reports: dict[str, CostReport]) -> None:
    usage = " | ".join(reports["prod"].usage)
    for part in ("CloudFront:", "NAT gateway: data processed", "WAF", "CloudWatch Logs", "Lambda"):
        assert part in usage
    assert any(u.startswith("Data transfer") for u in reports["dev"].usage)


def test_services_run_at_their_minimum(
    stacks: dict[str, Stack], reports: dict[str, CostReport]
) -> None:
    prices = load_prices()
    stack = stacks["prod"]
    for service in stack.of_type("aws_ecs_service"):
        (target,) = [
            t
            for t in stack.of_type("aws_appautoscaling_target")
            if service.address in t.refs("resource_id")
        ]
        task = stack.target(service.attrs["task_definition"])
        assert task is not None
        hourly = int(task.attrs["cpu"]) / 1024 * prices.rate(
            REGION, "fargate_arm64_vcpu_hour"
        ) + int(task.attrs["memory"]) / 1024 * prices.rate(REGION, "fargate_arm64_gb_hour")
        expected = target.attrs["min_capacity"] * hourly * HOURS_PER_MONTH
        assert lines_of(reports["prod"], service.address) == [pytest.approx(expected)]


# ------------------------------------------------------------------ hand-built stacks


def test_nat_gateway_and_single_az_micro_database_price_exactly_from_the_table() -> None:
    prices = load_prices()
    nat = resource("aws_nat_gateway", "nat", "network/nat")
    db = resource(
        "aws_db_instance",
        "db",
        "database/instance",
        engine="mysql",
        instance_class="db.t4g.micro",
        allocated_storage=20,
        storage_type="gp3",
        multi_az=False,
    )
    subnet = resource("aws_subnet", "subnet", "network/subnet")
    report = estimate(hand_stack(nat, db, subnet), prices)

    nat_month = prices.rate(REGION, "nat_gateway_hour") * 730
    instance = prices.rate(REGION, "rds_instance_hour", "mysql", "db.t4g.micro") * 730
    storage = 20 * prices.rate(REGION, "rds_gp3_gb_month")
    assert lines_of(report, nat.address) == [pytest.approx(nat_month)]
    assert lines_of(report, db.address) == [pytest.approx(instance), pytest.approx(storage)]
    assert report.total == pytest.approx(nat_month + instance + storage)
    assert report.unpriced == ()
    assert [line.what for line in report.lines] == [
        "1 x db.t4g.micro MySQL instance, Single-AZ, 730 h",
        "1 x 20 GB gp3 storage, Single-AZ, month",
        "1 x NAT gateway, 730 h",
    ]

    multi = resource("aws_db_instance", "db", "database/instance", **{**db.attrs, "multi_az": True})
    doubled = estimate(hand_stack(nat, multi, subnet), prices)
    assert lines_of(doubled, db.address) == [
        pytest.approx(2 * instance),
        pytest.approx(2 * storage),
    ]
    assert doubled.total == pytest.approx(nat_month + 2 * (instance + storage))


def test_caches_price_nodes_and_the_serverless_minimum() -> None:
    prices = load_prices()
    group = resource(
        "aws_elasticache_replication_group",
        "rg",
        "queue/replication-group",
        engine="valkey",
        node_type="cache.t4g.small",
        num_node_groups=2,
        replicas_per_node_group=1,
    )
    serverless = resource(
        "aws_elasticache_serverless_cache", "sc", "queue/serverless", engine="valkey"
    )
    report = estimate(hand_stack(group, serverless), prices)
    node = prices.rate(REGION, "elasticache_node_hour", "valkey", "cache.t4g.small")
    assert lines_of(report, group.address) == [pytest.approx(4 * node * 730)]
    minimum = 0.1 * prices.rate(REGION, "elasticache_serverless_valkey_gb_hour") * 730
    assert lines_of(report, serverless.address) == [pytest.approx(minimum)]
    assert any("ECPU" in u for u in report.usage)


def test_unknown_types_are_reported_not_priced() -> None:
    odd = resource("aws_made_up_thing", "x", "odd/thing")
    report = estimate(hand_stack(odd))
    assert report.unpriced == ("aws_made_up_thing",)
    assert report.lines == ()
    assert classify(["aws_nat_gateway", "aws_subnet", "aws_made_up_thing"]) == {
        "aws_nat_gateway": "priced",
        "aws_subnet": "free/usage",
        "aws_made_up_thing": "unknown",
    }


def test_a_class_missing_from_the_table_is_named_and_the_total_is_a_lower_bound() -> None:
    prices = load_prices()
    nat = resource("aws_nat_gateway", "nat", "network/nat")
    db = resource(
        "aws_db_instance",
        "db",
        "database/instance",
        engine="mysql",
        instance_class="db.x9.huge",
        allocated_storage=20,
        storage_type="gp3",
    )
    report = estimate(hand_stack(nat, db), prices)
    assert report.missing == (
        "no price for db.x9.huge in eu-central-1: add it to tools/review/prices.toml",
    )
    nat_month = prices.rate(REGION, "nat_gateway_hour") * HOURS_PER_MONTH
    storage = 20 * prices.rate(REGION, "rds_gp3_gb_month")
    # The instance is left out, not guessed; its storage is priced.
    assert [line.what for line in report.lines] == [
        "1 x 20 GB gp3 storage, Single-AZ, month",
        "1 x NAT gateway, 730 h",
    ]
    assert report.total == pytest.approx(nat_month + storage)
    assert report.total_text == f"at least ${nat_month + storage:,.0f}"
    assert estimate(hand_stack(nat), prices).total_text == f"${nat_month:,.0f}"


def test_a_missing_rate_of_a_usage_note_is_named_too() -> None:
    bare = Prices(source="s", as_of="2025-06-01", regions={REGION: {"nat_gateway_hour": 0.05}})
    report = estimate(hand_stack(resource("aws_nat_gateway", "nat", "network/nat")), bare)
    assert report.lines[0].usd_month == pytest.approx(0.05 * HOURS_PER_MONTH)
    assert report.missing == (
        "no price for nat_gateway_gb in eu-central-1: add it to tools/review/prices.toml",
        "no price for data_transfer_out_gb in eu-central-1: add it to tools/review/prices.toml",
    )


# ------------------------------------------------------------------ a stack changed to a class

REGIONS = ("eu-central-1", "eu-west-1", "us-east-1")
"""Every region a stack uses today (us-east-1: the CloudFront web ACL)."""
RDS_FAMILIES = ("t3", "t4g", "m5", "m6g", "m6i", "m7g", "r5", "r6g", "r6i", "r7g")
RDS_SIZES = {
    "t3": ("micro", "small", "medium", "large", "xlarge", "2xlarge"),
    "t4g": ("micro", "small", "medium", "large", "xlarge", "2xlarge"),
}
CACHE_FAMILIES = ("t4g", "m6g", "m7g", "r6g", "r7g")
CACHE_SIZES = {"t4g": ("small", "medium")}
LARGE_UP = ("large", "xlarge", "2xlarge")
DATABASE_STACKS = ("prod", "metabase-prod", "panintelligence-dev")
"""MySQL Multi-AZ in eu-central-1, PostgreSQL Multi-AZ in eu-west-1, MariaDB Single-AZ."""


def changed(stack: Stack, type_: str, **attrs: Any) -> Stack:
    """``stack`` with every ``type_`` resource's ``attrs`` set (as if its config said so)."""
    resources = {
        address: replace(r, attrs={**r.attrs, **attrs}) if r.type == type_ else r
        for address, r in stack.resources.items()
    }
    return Stack(name=stack.name, resources=resources, region=stack.region)


def test_every_offered_class_is_priced_in_every_region() -> None:
    prices = load_prices()
    absent = []
    for region in REGIONS:
        for table in ("mysql", "postgres"):
            for family in RDS_FAMILIES:
                for size in RDS_SIZES.get(family, LARGE_UP):
                    klass = f"db.{family}.{size}"
                    try:
                        prices.rate(region, "rds_instance_hour", table, klass)
                    except cost.MissingPriceError as error:
                        absent.append(f"{table}: {error}")
        for engine in ("redis", "valkey"):
            for family in CACHE_FAMILIES:
                for size in CACHE_SIZES.get(family, LARGE_UP):
                    try:
                        prices.rate(
                            region, "elasticache_node_hour", engine, f"cache.{family}.{size}"
                        )
                    except cost.MissingPriceError as error:
                        absent.append(f"{engine}: {error}")
        for arch in ("x86_64", "arm64"):
            for unit in ("vcpu_hour", "gb_hour"):
                prices.rate(region, f"fargate_{arch}_{unit}")
    assert absent == []


@pytest.mark.parametrize("family", RDS_FAMILIES)
def test_a_database_changed_to_each_family_is_priced(
    family: str, stacks: dict[str, Stack], reports: dict[str, CostReport]
) -> None:
    prices = load_prices()
    klass = f"db.{family}.large"
    for name in DATABASE_STACKS:
        (before,) = stacks[name].of_type("aws_db_instance")
        stack = changed(stacks[name], "aws_db_instance", instance_class=klass)
        (review,) = review_stacks({name: stack})
        report = review.cost
        assert report.missing == (), name
        engine = str(before.attrs["engine"])
        table = "postgres" if engine == "postgres" else "mysql"  # MariaDB: MySQL's prices
        copies = 2 if before.attrs.get("multi_az") is True else 1
        old = prices.rate(report.region, "rds_instance_hour", table, before.attrs["instance_class"])
        new = prices.rate(report.region, "rds_instance_hour", table, klass)
        instance, *_rest = [line for line in report.lines if line.address == before.address]
        assert instance.what.startswith(f"{copies} x {klass} ")
        assert instance.usd_month == pytest.approx(copies * new * HOURS_PER_MONTH)
        assert report.total == pytest.approx(
            reports[name].total + copies * (new - old) * HOURS_PER_MONTH
        )
        assert "at least" not in review.summary_line()


@pytest.mark.parametrize("family", CACHE_FAMILIES)
def test_a_queue_changed_to_each_family_is_priced(
    family: str, stacks: dict[str, Stack], reports: dict[str, CostReport]
) -> None:
    prices = load_prices()
    node_type = f"cache.{family}.medium" if family == "t4g" else f"cache.{family}.large"
    (before,) = stacks["prod"].of_type("aws_elasticache_replication_group")
    nodes = float(before.attrs["num_cache_clusters"])
    old = prices.rate(REGION, "elasticache_node_hour", "valkey", before.attrs["node_type"])
    for engine in ("valkey", "redis"):
        stack = changed(
            stacks["prod"], "aws_elasticache_replication_group", node_type=node_type, engine=engine
        )
        (review,) = review_stacks({"prod": stack})
        assert review.cost.missing == ()
        new = prices.rate(REGION, "elasticache_node_hour", engine, node_type)
        assert lines_of(review.cost, before.address) == [
            pytest.approx(nodes * new * HOURS_PER_MONTH)
        ]
        assert review.cost.total == pytest.approx(
            reports["prod"].total + nodes * (new - old) * HOURS_PER_MONTH
        )


@pytest.mark.parametrize("architecture", ["X86_64", "ARM64"])
def test_services_on_each_fargate_architecture_are_priced(
    architecture: str, stacks: dict[str, Stack]
) -> None:
    prices = load_prices()
    platform = {"cpu_architecture": architecture, "operating_system_family": "LINUX"}
    stack = changed(stacks["prod"], "aws_ecs_task_definition", runtime_platform=platform)
    report = estimate(stack, prices)
    assert report.missing == ()
    arch = architecture.lower()
    for service in stack.of_type("aws_ecs_service"):
        task = stack.target(service.attrs["task_definition"])
        assert task is not None
        (line,) = [line for line in report.lines if line.address == service.address]
        assert f"Linux/{architecture})" in line.what
        hourly = int(task.attrs["cpu"]) / 1024 * prices.rate(
            REGION, f"fargate_{arch}_vcpu_hour"
        ) + int(task.attrs["memory"]) / 1024 * prices.rate(REGION, f"fargate_{arch}_gb_hour")
        assert line.usd_month == pytest.approx(
            cost._service_tasks(service, stack) * hourly * HOURS_PER_MONTH
        )


def test_a_stack_changed_to_an_unknown_class_is_reviewed_with_an_at_least_total(
    stacks: dict[str, Stack], reports: dict[str, CostReport]
) -> None:
    (db,) = stacks["prod"].of_type("aws_db_instance")
    stack = changed(stacks["prod"], "aws_db_instance", instance_class="db.x9.large")
    (review,) = review_stacks({"prod": stack})
    assert review.cost.missing == (
        "no price for db.x9.large in eu-central-1: add it to tools/review/prices.toml",
    )
    instance, *_rest = [line for line in reports["prod"].lines if line.address == db.address]
    assert review.cost.total == pytest.approx(reports["prod"].total - instance.usd_month)
    assert review.summary_line().endswith(f"at least ${review.cost.total:,.0f}/month")
    markdown = stack_markdown(review)
    assert f"## Monthly cost: at least ${review.cost.total:,.0f}" in markdown
    assert "no price for db.x9.large in eu-central-1" in markdown


# ------------------------------------------------------------------ the table and the sets


def test_price_file_states_its_source_and_date() -> None:
    text = PRICES_PATH.read_text(encoding="utf-8")
    meta = tomllib.loads(text)["meta"]
    assert "AWS" in meta["source"]
    assert "pricing" in meta["source"].lower()
    datetime.date.fromisoformat(meta["prices_as_of"])
    assert "refresh" in text.lower()
    prices = load_prices()
    assert prices.source == meta["source"]
    assert prices.as_of == meta["prices_as_of"]
    assert {"eu-central-1", "us-east-1"} <= set(prices.regions)


def test_every_region_prices_the_same_keys() -> None:
    regions = tomllib.loads(PRICES_PATH.read_text(encoding="utf-8"))
    assert set(regions["eu-central-1"]) == set(regions["us-east-1"]) == set(regions["eu-west-1"])


def test_priced_and_free_sets_are_disjoint_and_every_priced_type_has_a_pricer() -> None:
    assert not PRICED & FREE_OR_USAGE_ONLY
    assert set(cost._PRICERS) == PRICED


def test_disclaimer_says_it_is_an_estimate() -> None:
    assert "estimate" in DISCLAIMER
    assert DISCLAIMER.endswith(".")
    assert ". " not in DISCLAIMER  # one sentence
