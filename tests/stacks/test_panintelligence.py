"""Panintelligence's stacks: four services, MariaDB, the EFS share and its loader, the
dashboard's load balancer (the standards every system shares are in test_systems.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from environments import panintelligence
from tests.support import Synth, containers, named, one, resources

STACKS = ("panintelligence-dev", "panintelligence-prod")
SIZES = {
    "dashboard": ("1024", "2048"),
    "renderer": ("2048", "4096"),
    "pirana": ("512", "1024"),
    "scheduler": ("512", "1024"),
}
PORTS = {"dashboard": 8224, "renderer": 9915, "scheduler": 9917, "pirana": 9918}


def tasks(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task definitions by their container's name."""
    out = {}
    for task in resources(stack, "aws_ecs_task_definition").values():
        (container,) = json.loads(task["container_definitions"])
        out[container["name"]] = task
    return out


def group_names(stack: dict[str, Any]) -> dict[str, str]:
    return {
        f"${{aws_security_group.{lid}.id}}": g["name"]
        for lid, g in resources(stack, "aws_security_group").items()
    }


@pytest.mark.parametrize("name", STACKS)
def test_four_services_sized_per_the_datasheet_on_x86(synth: Synth, name: str) -> None:
    found = tasks(synth.stack(name))
    assert set(found) == set(SIZES)
    for service, (cpu, memory) in SIZES.items():
        assert (found[service]["cpu"], found[service]["memory"]) == (cpu, memory), service
        assert found[service]["runtime_platform"]["cpu_architecture"] == "X86_64"
    for service, container in containers(synth.stack(name)).items():
        assert container["portMappings"][0]["containerPort"] == PORTS[service]


@pytest.mark.parametrize("name", STACKS)
def test_only_the_dashboard_is_load_balanced_the_others_are_private_names(
    synth: Synth, name: str
) -> None:
    stack = synth.stack(name)
    services = named(stack, "aws_ecs_service")
    balanced = {n for n, s in services.items() if s.get("load_balancer")}
    assert balanced == {f"{name}-dashboard"}
    discovery = {d["name"] for d in resources(stack, "aws_service_discovery_service").values()}
    assert discovery == {"dashboard", "renderer", "scheduler", "pirana"}
    env = {e["name"]: e["value"] for e in containers(stack)["dashboard"]["environment"]}
    namespace = f"{name.split('-')[1]}.panintelligence.internal"
    assert env["PAN_RENDERER_URL"] == f"http://renderer.{namespace}:9915"
    assert env["PI_VARIABLE_ANALYTICS_SERVER_URL"] == f"http://pirana.{namespace}:9918"
    # The dashboard's internal port (never the public HTTPS settings of 8224).
    assert env["RENDERER_DASHBOARD_URL"] == f"http://dashboard.{namespace}:28748/pi"


@pytest.mark.parametrize("name", STACKS)
def test_who_may_reach_each_service(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    groups = group_names(stack)
    admitted: dict[str, set[tuple[str, int]]] = {}
    for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values():
        target = groups.get(rule["security_group_id"], "")
        source = groups.get(rule.get("referenced_security_group_id", ""), rule.get("cidr_ipv4"))
        admitted.setdefault(target, set()).add((source, rule["from_port"]))
    p = f"{name}-"
    assert admitted[f"{p}renderer"] == {(f"{p}dashboard", 9915)}
    assert admitted[f"{p}pirana"] == {(f"{p}dashboard", 9918)}
    assert admitted[f"{p}scheduler"] == {(f"{p}dashboard", 9917)}
    assert admitted[f"{p}dashboard"] == {
        (f"{p}web", 8224),
        (f"{p}renderer", 28748),
        (f"{p}scheduler", 28748),
    }
    assert {s for s, _ in admitted[f"{p}mariadb"]} == {
        f"{p}dashboard",
        f"{p}scheduler",
        f"{p}mariadb-owner",
    }


def owner_variables(stack: dict[str, Any]) -> dict[str, str]:
    functions = named(stack, "aws_lambda_function", "function_name")
    owner = functions[f"{stack_name(stack)}-mariadb-owner"]
    variables: dict[str, str] = owner["environment"]["variables"]
    return variables


def stack_name(stack: dict[str, Any]) -> str:
    name: str = one(stack, "aws_db_instance")["identifier"].removesuffix("-mariadb")
    return name


@pytest.mark.parametrize("name", STACKS)
def test_repository_offers_tls_and_admits_plaintext_as_the_vendor_runs_it(
    synth: Synth, name: str
) -> None:
    """Panintelligence's deployments give the dashboard no TLS option: the server offers
    TLS (the RDS certificate) without refusing plaintext, and so does its user."""
    stack = synth.stack(name)
    db = one(stack, "aws_db_instance")
    assert db["engine"] == "mariadb"
    assert db["publicly_accessible"] is False
    group = one(stack, "aws_db_parameter_group")
    params = {p["name"]: p["value"] for p in group["parameter"]}
    assert params["require_secure_transport"] == "0"
    assert group["description"] == "MariaDB: utf8mb4, TLS-only connections, slow query log"
    assert owner_variables(stack)["DB_LOGIN_TLS"] == "optional"
    for service in ("dashboard", "scheduler"):
        secrets = {s["name"]: s["valueFrom"] for s in containers(stack)[service]["secrets"]}
        assert secrets["PI_DB_PASSWORD"].endswith(":password::")


@pytest.mark.parametrize("name", STACKS)
def test_the_share_is_encrypted_mounted_through_access_points(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    fs = one(stack, "aws_efs_file_system")
    assert fs["encrypted"] is True
    assert fs["kms_key_id"].startswith("${aws_kms_key.")
    private = [s for s in resources(stack, "aws_subnet").values() if s["tags"]["tier"] == "private"]
    assert len(resources(stack, "aws_efs_mount_target")) == len(private)
    points = {
        p["root_directory"]["path"] for p in resources(stack, "aws_efs_access_point").values()
    }
    assert points == {
        "/pi",
        "/pi/themes",
        "/pi/images",
        "/pi/svg",
        "/pi/locale",
        "/pi/custom_jdbc",
        "/pi/keys",
        "/pi/files",
    }
    dashboard = tasks(stack)["dashboard"]
    volumes = [v for v in dashboard["volume"] if "efs_volume_configuration" in v]
    assert len(volumes) == 7
    dashboard_mounts = {m["containerPath"] for m in containers(stack)["dashboard"]["mountPoints"]}
    # What users upload is shared by every dashboard task (and survives a replacement).
    assert (
        "/var/panintelligence/Dashboard/tomcat/webapps/panMISDashboardResources/files"
        in dashboard_mounts
    )
    for volume in volumes:
        efs = volume["efs_volume_configuration"]
        assert efs["transit_encryption"] == "ENABLED"
        assert efs["authorization_config"]["iam"] == "ENABLED"
    scheduler_mounts = {m["containerPath"] for m in containers(stack)["scheduler"]["mountPoints"]}
    assert "/var/panintelligence/Dashboard/keys" in scheduler_mounts


@pytest.mark.parametrize("name", STACKS)
def test_assets_are_loaded_before_the_dashboard_starts(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    (loader_id, loader) = next(
        (lid, i) for lid, i in resources(stack, "aws_lambda_invocation").items() if "asset" in lid
    )
    assert json.loads(loader["input"]) == {"force_token": "", "assets_version": ""}
    dashboard = named(stack, "aws_ecs_service")[f"{name}-dashboard"]
    assert f"aws_lambda_invocation.{loader_id}" in dashboard["depends_on"]
    (function,) = [
        f for f in resources(stack, "aws_lambda_function").values() if "asset" in f["function_name"]
    ]
    assert function["file_system_config"]["local_mount_path"] == "/mnt/assets"
    assert function["environment"]["variables"]["ASSETS_PREFIX"] == "dashboard/"


@pytest.mark.parametrize("name", STACKS)
def test_tomcat_gets_half_the_dashboard_tasks_memory(synth: Synth, name: str) -> None:
    """As Panintelligence's own ECS deployments: 1024 MiB of heap in a 2048 MiB task; only
    the dashboard runs Tomcat with that variable."""
    stack = synth.stack(name)
    tasks_by_name = tasks(stack)
    env = {e["name"]: e["value"] for e in containers(stack)["dashboard"]["environment"]}
    assert tasks_by_name["dashboard"]["memory"] == "2048"
    assert env["PI_TOMCAT_MAX_MEMORY"] == "1024"
    for other in ("renderer", "pirana", "scheduler"):
        names = {e["name"] for e in containers(stack)[other].get("environment", [])}
        assert "PI_TOMCAT_MAX_MEMORY" not in names, other


@pytest.mark.parametrize("name", STACKS)
def test_the_licence_comes_from_a_secret_and_leaves_through_nat(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    secrets = {s["name"]: s["valueFrom"] for s in containers(stack)["dashboard"]["secrets"]}
    assert secrets["PI_LICENCE"].startswith("${data.aws_secretsmanager_secret.licence")
    nat_routes = [
        r
        for r in resources(stack, "aws_route").values()
        if r["destination_cidr_block"] == "0.0.0.0/0" and "nat_gateway_id" in r
    ]
    private = [s for s in resources(stack, "aws_subnet").values() if s["tags"]["tier"] == "private"]
    assert len(nat_routes) == len(private)
    groups = group_names(stack)
    egress = [
        r
        for r in resources(stack, "aws_vpc_security_group_egress_rule").values()
        if groups.get(r["security_group_id"]) == f"{name}-dashboard" and r.get("cidr_ipv4")
    ]
    assert [(r["cidr_ipv4"], r["from_port"]) for r in egress] == [("0.0.0.0/0", 443)]


def test_the_dashboard_scales_on_cpu_never_memory(synth: Synth) -> None:
    stack = synth.stack("panintelligence-prod")
    policies = resources(stack, "aws_appautoscaling_policy").values()
    metrics = [
        p["target_tracking_scaling_policy_configuration"]["predefined_metric_specification"][
            "predefined_metric_type"
        ]
        for p in policies
    ]
    assert metrics == ["ECSServiceAverageCPUUtilization"]
    assert "Memory" not in json.dumps(list(policies))
    target_group = one(stack, "aws_lb_target_group")
    assert target_group["stickiness"]["type"] == "lb_cookie"
    assert target_group["health_check"]["path"] == "/pi/version"


def test_prod_dashboard_is_https_at_its_name(synth: Synth) -> None:
    stack = synth.stack("panintelligence-prod")
    records = named(stack, "aws_route53_record")
    assert records["dashboard.example.com"]["type"] == "A"
    certificate = one(stack, "aws_acm_certificate")
    assert certificate["domain_name"] == panintelligence.PROD.web.domain_name
    env = {e["name"]: e["value"] for e in containers(stack)["dashboard"]["environment"]}
    assert env["PI_PROXY_HOST"] == "dashboard.example.com"
    assert env["PI_PROXY_SCHEME"] == "https"


@pytest.mark.parametrize("name", STACKS)
def test_every_connection_the_security_groups_allow_passes_the_network_acls(
    synth: Synth, name: str
) -> None:
    """The two layers cannot drift: a security-group rule without a matching ACL flow
    fails here."""
    from tools.flows import StackNetwork

    network = StackNetwork(synth.stack(name))
    assert network.security_group_flows()
    blocked = network.blocked_by_acls()
    assert blocked == [], "\n".join(v.explain() for v in blocked)


@pytest.mark.parametrize(
    ("source", "destination", "port"),
    [
        ("web", "dashboard", 8224),
        ("dashboard", "renderer", 9915),
        ("dashboard", "pirana", 9918),
        ("dashboard", "scheduler", 9917),
        ("renderer", "dashboard", 28748),
        ("scheduler", "dashboard", 28748),
        ("dashboard", "mariadb", 3306),
        ("scheduler", "mariadb", 3306),
        ("dashboard", "share-efs", 2049),
        ("dashboard", "0.0.0.0/0", 443),
    ],
)
def test_each_flow_passes_both_layers(
    synth: Synth, source: str, destination: str, port: int
) -> None:
    from tools.flows import StackNetwork

    name = "panintelligence-prod"
    network = StackNetwork(synth.stack(name))
    target = destination if "/" in destination else f"{name}-{destination}"
    verdict = network.check(f"{name}-{source}", target, port)
    assert verdict.passes, verdict.explain()


def test_the_public_tier_never_reaches_the_database_port(synth: Synth) -> None:
    from tools.flows import StackNetwork

    name = "panintelligence-prod"
    network = StackNetwork(synth.stack(name))
    (public,) = [
        s["tags"]["Name"]
        for s in resources(synth.stack(name), "aws_subnet").values()
        if s["tags"]["tier"] == "public" and s["availability_zone"].endswith("a")
    ]
    verdict = network.check(public, f"{name}-mariadb", 3306)
    assert not verdict.passes
    # Both layers refuse it on their own: the ACLs as well as the database's group.
    assert verdict.layers() == {"security group", "network ACL"}


@pytest.mark.parametrize("name", STACKS)
def test_the_scheduler_is_never_two(synth: Synth, name: str) -> None:
    scheduler = named(synth.stack(name), "aws_ecs_service")[f"{name}-scheduler"]
    assert scheduler["desired_count"] == 1
    assert scheduler["deployment_maximum_percent"] == 100
    assert scheduler["deployment_minimum_healthy_percent"] == 0


@pytest.mark.parametrize("name", STACKS)
def test_the_repository_database_has_panintelligences_settings(synth: Synth, name: str) -> None:
    group = one(synth.stack(name), "aws_db_parameter_group")
    params = {p["name"]: (p["value"], p.get("apply_method")) for p in group["parameter"]}
    assert params["lower_case_table_names"] == ("1", "pending-reboot")
    assert params["sql_mode"] == ("NO_AUTO_VALUE_ON_ZERO", "pending-reboot")


def test_the_first_apply_creates_the_repositories_and_the_assets_bucket(synth: Synth) -> None:
    from tests.support import load_tool

    stack = synth.stack("panintelligence-dev")
    found = load_tool("ecr_targets").first_apply_targets(stack)
    repositories = [t for t in found if t.startswith("-target=aws_ecr_repository.")]
    assert len(repositories) == 4
    (bucket,) = [lid for lid in resources(stack, "aws_s3_bucket") if lid.startswith("assets")]
    assert f"-target=aws_s3_bucket.{bucket}" in found
    assert any(t.startswith("-target=aws_s3_bucket_policy.assets") for t in found)
    outputs = stack["output"]
    assert {"renderer_repository_url", "scheduler_repository_url", "pirana_repository_url"} <= set(
        outputs
    )


# --- how the images run: the vendor's way by default, hardening one setting away ---------


@pytest.mark.parametrize("name", STACKS)
def test_the_images_run_as_panintelligence_runs_them(synth: Synth, name: str) -> None:
    """Their own user on a writable root, no task volumes over the image's directories
    (only the EFS folders are mounted)."""
    for service, container in containers(synth.stack(name)).items():
        assert "user" not in container, service
        assert "HOME" not in {e["name"] for e in container["environment"]}, service
        assert container["readonlyRootFilesystem"] is False, service
        assert all(m["sourceVolume"].startswith("efs-") for m in container["mountPoints"]), service
    for service, task in tasks(synth.stack(name)).items():
        assert all("efs_volume_configuration" in v for v in task.get("volume", [])), service


def test_hardened_the_images_run_as_10001_on_a_read_only_root(
    system_variants: dict[str, dict[str, Any]],
) -> None:
    stack = system_variants["panintelligence-dev"]
    found = containers(stack)
    for service, container in found.items():
        assert container["user"] == "10001:10001", service
        assert container["readonlyRootFilesystem"] is True, service
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["HOME"] == "/tmp", service  # writable, whatever the vendor's image sets
    writable = {
        service: {
            m["containerPath"] for m in c["mountPoints"] if not m["sourceVolume"].startswith("efs-")
        }
        for service, c in found.items()
    }
    tomcat = "/var/panintelligence/Dashboard/tomcat"
    assert writable == {
        "dashboard": {"/tmp", f"{tomcat}/logs", f"{tomcat}/temp", f"{tomcat}/work"},
        "renderer": {"/tmp"},
        "scheduler": {"/tmp"},
        "pirana": {"/tmp"},
    }


def test_hardened_the_repository_and_its_user_require_tls(
    system_variants: dict[str, dict[str, Any]],
) -> None:
    stack = system_variants["panintelligence-dev"]
    group = one(stack, "aws_db_parameter_group")
    params = {p["name"]: p["value"] for p in group["parameter"]}
    assert params["require_secure_transport"] == "1"
    assert "DB_LOGIN_TLS" not in owner_variables(stack)  # the function's default: required


# --- data sources ------------------------------------------------------------------------


def test_a_data_source_is_reached_by_the_dashboard_and_the_scheduler_through_both_layers(
    system_variants: dict[str, dict[str, Any]],
) -> None:
    from tools.flows import StackNetwork

    stack = system_variants["panintelligence-dev"]
    groups = group_names(stack)
    egress = {
        (groups[r["security_group_id"]], r["cidr_ipv4"], r["from_port"])
        for r in resources(stack, "aws_vpc_security_group_egress_rule").values()
        if r.get("cidr_ipv4") == "198.51.100.0/24"
    }
    assert egress == {
        ("panintelligence-dev-dashboard", "198.51.100.0/24", 5439),
        ("panintelligence-dev-scheduler", "198.51.100.0/24", 5439),
    }
    network = StackNetwork(stack)
    blocked = network.blocked_by_acls()
    assert blocked == [], "\n".join(v.explain() for v in blocked)
    for service in ("dashboard", "scheduler"):
        verdict = network.check(f"panintelligence-dev-{service}", "198.51.100.0/24", 5439)
        assert verdict.passes, verdict.explain()
    refused = network.check("panintelligence-dev-renderer", "198.51.100.0/24", 5439)
    assert not refused.passes
