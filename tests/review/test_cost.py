"""The offline cost estimate: every synthesized resource type is classified, environments
cost in the expected order, and hand-built stacks price exactly from the pinned table."""

from __future__ import annotations

import datetime
import tomllib
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
    classify,
    estimate,
    load_prices,
)
from tools.review.model import Resource, Stack, load_stacks

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


def test_a_class_missing_from_the_table_fails_loudly() -> None:
    db = resource(
        "aws_db_instance",
        "db",
        "database/instance",
        engine="mysql",
        instance_class="db.x9.huge",
        allocated_storage=20,
        storage_type="gp3",
    )
    with pytest.raises(cost.MissingPriceError, match=r"db\.x9\.huge"):
        estimate(hand_stack(db))


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


def test_both_regions_price_the_same_keys() -> None:
    regions = tomllib.loads(PRICES_PATH.read_text(encoding="utf-8"))
    assert set(regions["eu-central-1"]) == set(regions["us-east-1"])


def test_priced_and_free_sets_are_disjoint_and_every_priced_type_has_a_pricer() -> None:
    assert not PRICED & FREE_OR_USAGE_ONLY
    assert set(cost._PRICERS) == PRICED


def test_disclaimer_says_it_is_an_estimate() -> None:
    assert "estimate" in DISCLAIMER
    assert DISCLAIMER.endswith(".")
    assert ". " not in DISCLAIMER  # one sentence
