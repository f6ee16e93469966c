"""FargateService construct: what it takes from its cluster and load balancer, on a unit stack."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support import ONE_AZ_NETWORK, UnitStack, containers, one, resources


def test_a_service_takes_network_namespace_and_names_from_its_cluster(
    unit_stack: UnitStack,
) -> None:
    service = unit_stack.service("worker")
    assert service.discovery_name == "worker.unit.internal"
    assert service.url == "http://worker.unit.internal:8080"
    assert service.metrics.dimensions == {
        "ClusterName": "pcp-unit-cluster",
        "ServiceName": "pcp-unit-worker",
    }
    doc = unit_stack.synth()
    ecs = one(doc, "aws_ecs_service")
    (subnets,) = {tuple(ecs["network_configuration"]["subnets"])}
    private = sorted(k for k in resources(doc, "aws_subnet") if "private" in k)
    assert sorted(subnets) == sorted(f"${{aws_subnet.{k}.id}}" for k in private)
    (namespace_id,) = resources(doc, "aws_service_discovery_private_dns_namespace")
    assert one(doc, "aws_service_discovery_service")["dns_config"]["namespace_id"] == (
        f"${{aws_service_discovery_private_dns_namespace.{namespace_id}.id}}"
    )


def test_the_execution_role_pulls_only_from_the_service_repository(
    unit_stack: UnitStack,
) -> None:
    unit_stack.service("worker")
    doc = unit_stack.synth()
    (repository_id,) = resources(doc, "aws_ecr_repository")
    (policy,) = [
        p
        for p in resources(doc, "aws_iam_role_policy").values()
        if p["name"] == "pull-log-read-secrets"
    ]
    statements = json.loads(policy["policy"])["Statement"]
    pull = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert [s["Resource"] for s in pull] == [[f"${{aws_ecr_repository.{repository_id}.arn}}"]]


def test_a_load_balanced_service_admits_its_load_balancer_and_starts_after_it_forwards(
    unit_stack: UnitStack,
) -> None:
    lb = unit_stack.load_balancer()
    service = unit_stack.service("api", load_balancer=lb)
    service.scale_on_requests(500)
    doc = unit_stack.synth()
    service_sg = (
        f"${{aws_security_group.{unit_stack.stack.get_logical_id(service.security_group)}.id}}"
    )
    lb_sg = f"${{aws_security_group.{unit_stack.stack.get_logical_id(lb.security_group)}.id}}"
    (ingress,) = [
        r
        for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == service_sg
    ]
    assert ingress["referenced_security_group_id"] == lb_sg
    assert (ingress["from_port"], ingress["to_port"]) == (8080, 8080)
    assert ingress["description"] == "ALB to the api API"
    ecs = one(doc, "aws_ecs_service")
    assert ecs["load_balancer"][0]["container_port"] == 8080
    forwarding = {f"{r.terraform_resource_type}.{r.friendly_unique_id}" for r in lb.forwarding}
    assert forwarding <= set(ecs["depends_on"])
    (policy,) = resources(doc, "aws_appautoscaling_policy").values()
    spec = policy["target_tracking_scaling_policy_configuration"]["predefined_metric_specification"]
    (alb_id,) = resources(doc, "aws_lb")
    (tg_id,) = resources(doc, "aws_lb_target_group")
    assert spec["resource_label"] == (
        f"${{aws_lb.{alb_id}.arn_suffix}}/${{aws_lb_target_group.{tg_id}.arn_suffix}}"
    )


def test_scaling_on_requests_needs_a_load_balancer(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError

    service = unit_stack.service("worker")
    with pytest.raises(ConfigError, match=r"^unit/worker\.load_balancer: got None, give the"):
        service.scale_on_requests(500)


def test_a_service_is_refused_a_size_fargate_does_not_offer(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.settings import ServiceSettings

    with pytest.raises(ConfigError, match=r"^unit/worker\.cpu/memory: got 256/4096, use one of"):
        unit_stack.service(
            "worker", settings=ServiceSettings(min_tasks=1, max_tasks=2, cpu=256, memory=4096)
        )


# --- third-party images: health check, writable paths, user, secrets -------------------------

DEFAULT_HEALTH_CHECK = {
    "command": ["CMD", "python", "-m", "apps.healthcheck", "http://127.0.0.1:8080/health"],
    "interval": 15,
    "timeout": 5,
    "retries": 3,
    "startPeriod": 30,
}


def test_a_service_by_default_runs_the_project_checker_and_writes_only_tmp(
    unit_stack: UnitStack,
) -> None:
    unit_stack.service("worker")
    doc = unit_stack.synth()
    container = containers(doc)["worker"]
    assert container["healthCheck"] == DEFAULT_HEALTH_CHECK
    assert container["readonlyRootFilesystem"] is True
    assert container["user"] == "10001"
    assert container["mountPoints"] == [
        {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
    ]
    assert one(doc, "aws_ecs_task_definition")["volume"] == [{"name": "tmp"}]


def test_a_third_party_image_gives_its_own_health_check_and_startup_grace(
    unit_stack: UnitStack,
) -> None:
    command = ("CMD-SHELL", "curl -fs http://127.0.0.1:3000/api/health || exit 1")
    unit_stack.service(
        "metabase",
        load_balancer=unit_stack.load_balancer(),
        health_check_command=command,
        startup_grace_seconds=240,
    )
    doc = unit_stack.synth()
    assert containers(doc)["metabase"]["healthCheck"] == {
        **DEFAULT_HEALTH_CHECK,
        "command": list(command),
        "startPeriod": 240,
    }
    assert one(doc, "aws_ecs_service")["health_check_grace_period_seconds"] == 240


def test_an_exec_form_health_check_is_passed_as_given(unit_stack: UnitStack) -> None:
    command = ("CMD", "/app/probe", "--port", "8080")
    unit_stack.service("worker", health_check_command=command)
    assert containers(unit_stack.synth())["worker"]["healthCheck"]["command"] == list(command)


def test_a_service_can_leave_health_to_its_load_balancer(unit_stack: UnitStack) -> None:
    unit_stack.service(
        "dekart", load_balancer=unit_stack.load_balancer(), container_health_check=False
    )
    doc = unit_stack.synth()
    assert "healthCheck" not in containers(doc)["dekart"]
    assert one(doc, "aws_ecs_service")["health_check_grace_period_seconds"] == 30


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"health_check_command": ("curl", "-f", "http://127.0.0.1/")},
            r"health_check_command: got \['curl', .*\], give \(\"CMD\"",
        ),
        ({"health_check_command": ("CMD",)}, r"health_check_command: got \['CMD'\], give"),
        ({"health_check_command": ()}, r"health_check_command: got \[\], give"),
        (
            {"health_check_command": ("CMD-SHELL", "curl -f x", "|| exit 1")},
            r"health_check_command: got \['CMD-SHELL', .*\], give",
        ),
        ({"health_check_command": ("CMD-SHELL", " ")}, r"health_check_command: got .*, give"),
        (
            {"health_check_command": ("CMD", "true"), "container_health_check": False},
            r"health_check_command: got \['CMD', 'true'\], leave it unset when",
        ),
        (
            {"health_check_command": ("CMD", "true"), "health_check_path": "/ping"},
            r"health_check_path: got /ping, only the default health check requests it",
        ),
        (
            {"container_health_check": False, "health_check_path": "/ping"},
            r"health_check_path: got /ping, only the default",
        ),
        ({"startup_grace_seconds": 301}, r"startup_grace_seconds: got 301, use 0 to 300"),
        ({"startup_grace_seconds": -1}, r"startup_grace_seconds: got -1, use 0 to 300"),
    ],
)
def test_a_wrong_health_check_is_refused(
    unit_stack: UnitStack, overrides: dict[str, Any], message: str
) -> None:
    from constructs_lib.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"^unit/worker\.{message}"):
        unit_stack.service("worker", **overrides)


def test_each_writable_path_is_a_read_write_task_volume(unit_stack: UnitStack) -> None:
    service = unit_stack.service(
        "metabase", writable_paths=("/tmp", "/plugins", "/var/lib/app.data")
    )
    assert service.writable_volumes == {
        "tmp": "/tmp",
        "plugins": "/plugins",
        "var-lib-app-data": "/var/lib/app.data",
    }
    doc = unit_stack.synth()
    container = containers(doc)["metabase"]
    assert container["readonlyRootFilesystem"] is True
    assert container["mountPoints"] == [
        {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False},
        {"sourceVolume": "plugins", "containerPath": "/plugins", "readOnly": False},
        {
            "sourceVolume": "var-lib-app-data",
            "containerPath": "/var/lib/app.data",
            "readOnly": False,
        },
    ]
    assert one(doc, "aws_ecs_task_definition")["volume"] == [
        {"name": "tmp"},
        {"name": "plugins"},
        {"name": "var-lib-app-data"},
    ]


def test_no_writable_path_leaves_the_task_without_volumes(unit_stack: UnitStack) -> None:
    unit_stack.service("worker", writable_paths=())
    doc = unit_stack.synth()
    assert containers(doc)["worker"]["mountPoints"] == []
    assert containers(doc)["worker"]["readonlyRootFilesystem"] is True
    assert "volume" not in one(doc, "aws_ecs_task_definition")


@pytest.mark.parametrize(
    ("paths", "got"),
    [
        (("tmp",), "tmp"),
        (("/",), "/"),
        (("",), '""'),
        (("/tmp/",), "/tmp/"),
        (("//tmp",), "//tmp"),
        (("/a/../b",), "/a/../b"),
        (("/a/./b",), "/a/./b"),
    ],
)
def test_a_writable_path_must_be_absolute_and_normalised(
    unit_stack: UnitStack, paths: tuple[str, ...], got: str
) -> None:
    from constructs_lib.errors import ConfigError

    with pytest.raises(
        ConfigError, match=rf"^unit/worker\.writable_paths: got {re.escape(got)}, give absolute"
    ):
        unit_stack.service("worker", writable_paths=paths)


@pytest.mark.parametrize(
    ("paths", "got"),
    [(("/tmp", "/plugins", "/tmp"), "/tmp, /tmp"), (("/a-b", "/a.b"), "/a-b, /a.b")],
)
def test_a_writable_path_is_given_once(
    unit_stack: UnitStack, paths: tuple[str, ...], got: str
) -> None:
    from constructs_lib.errors import ConfigError

    with pytest.raises(
        ConfigError, match=rf"^unit/worker\.writable_paths: got {re.escape(got)}, give each path"
    ):
        unit_stack.service("worker", writable_paths=paths)


def test_a_third_party_image_runs_as_its_own_non_root_user(unit_stack: UnitStack) -> None:
    unit_stack.service("metabase", user="2000:2000")
    assert containers(unit_stack.synth())["metabase"]["user"] == "2000:2000"


@pytest.mark.parametrize("user", ["0", "00", "root", "0:0", "root:1000", ""])
def test_a_service_never_runs_as_root(unit_stack: UnitStack, user: str) -> None:
    from constructs_lib.errors import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"^unit/worker\.user: got .*, run as a non-root UID, or None for the image's "
        r"own user$",
    ):
        unit_stack.service("worker", user=user)


def test_a_vendor_image_may_keep_its_own_user_and_a_writable_root_when_asked(
    unit_stack: UnitStack,
) -> None:
    from constructs_lib.options import RootFilesystem

    unit_stack.service("vendor", user=None, root_filesystem=RootFilesystem.WRITABLE)
    container = containers(unit_stack.synth())["vendor"]
    assert "user" not in container  # ECS runs the image's own USER
    assert container["readonlyRootFilesystem"] is False


def test_the_user_and_the_root_filesystem_are_separate_choices(unit_stack: UnitStack) -> None:
    from constructs_lib.options import RootFilesystem

    unit_stack.service("own-user", user=None)
    unit_stack.service("writable", root_filesystem=RootFilesystem.WRITABLE)
    found = containers(unit_stack.synth())
    assert "user" not in found["own-user"]
    assert found["own-user"]["readonlyRootFilesystem"] is True
    assert (found["writable"]["user"], found["writable"]["readonlyRootFilesystem"]) == (
        "10001",
        False,
    )


def test_credentials_reach_the_container_only_as_secrets_and_tokens_stay_values(
    unit_stack: UnitStack,
) -> None:
    from constructs_lib.secrets import SecretRef

    secret_arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:mb-db-AbCdEf"
    key = unit_stack.key()
    unit_stack.service(
        "metabase",
        environment={"MB_DB_USER": "metabase", "MB_KEY_ARN": key.arn, "PWD": "/app"},
        secrets={"MB_DB_PASS": SecretRef(arn=secret_arn, key="password")},
    )
    doc = unit_stack.synth()
    container = containers(doc)["metabase"]
    (key_id,) = resources(doc, "aws_kms_key")
    assert container["environment"] == [
        {"name": "MB_DB_USER", "value": "metabase"},
        {"name": "MB_KEY_ARN", "value": f"${{aws_kms_key.{key_id}.arn}}"},
        {"name": "PWD", "value": "/app"},
    ]
    assert container["secrets"] == [{"name": "MB_DB_PASS", "valueFrom": f"{secret_arn}:password::"}]


@pytest.mark.parametrize(
    "name",
    ["MB_DB_PASS", "DB_PWD", "SMTP_PASSWD", "MAPBOX_API_KEY", "S3_ACCESS_KEY", "DEKART_TOKEN"],
)
def test_a_credential_in_the_plain_environment_is_refused(unit_stack: UnitStack, name: str) -> None:
    from constructs_lib.errors import ConfigError

    with pytest.raises(
        ConfigError, match=rf"^unit/worker\.environment: got {name}, pass credentials through"
    ):
        unit_stack.service("worker", environment={name: "x"})


def test_a_variable_is_set_in_one_place_only(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.secrets import SecretRef

    ref = SecretRef(arn="arn:aws:secretsmanager:eu-central-1:123456789012:secret:x", key="k")
    with pytest.raises(
        ConfigError, match=r"^unit/worker\.secrets: got MB_DB_USER, set each variable in one"
    ):
        unit_stack.service(
            "worker", environment={"MB_DB_USER": "metabase"}, secrets={"MB_DB_USER": ref}
        )


# --- without Cloud Map, without scaling ------------------------------------------------------


def test_a_service_without_discovery_registers_nowhere(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError

    service = unit_stack.service(
        "metabase", load_balancer=unit_stack.load_balancer(), service_discovery=False
    )
    assert service.discovery is None
    doc = unit_stack.synth()
    assert resources(doc, "aws_service_discovery_service") == {}
    assert "service_registries" not in one(doc, "aws_ecs_service")
    with pytest.raises(
        ConfigError, match=r"^unit/metabase\.service_discovery: got False, register the"
    ):
        _ = service.url


def test_a_service_registers_in_cloud_map_by_default(unit_stack: UnitStack) -> None:
    service = unit_stack.service("worker")
    doc = unit_stack.synth()
    (discovery_id,) = resources(doc, "aws_service_discovery_service")
    assert service.discovery is not None
    assert one(doc, "aws_ecs_service")["service_registries"] == {
        "registry_arn": f"${{aws_service_discovery_service.{discovery_id}.arn}}"
    }


def test_a_service_with_a_fixed_task_count_synthesizes(unit_stack: UnitStack) -> None:
    from constructs_lib.settings import ServiceSettings

    unit_stack.service("metabase", settings=ServiceSettings(min_tasks=1, max_tasks=1))
    doc = unit_stack.synth()
    target = one(doc, "aws_appautoscaling_target")
    assert (target["min_capacity"], target["max_capacity"]) == (1, 1)
    assert one(doc, "aws_ecs_service")["desired_count"] == 1
    assert resources(doc, "aws_appautoscaling_policy") == {}


# --- EFS mounts -------------------------------------------------------------------------------


def _mounted(unit_stack: UnitStack, *, read_only: bool = False) -> tuple[Any, Any, Any]:
    """A service ``dashboard`` mounting access point ``themes`` of the ``files`` file
    system at /themes; returns (service, file system, access point)."""
    from constructs_lib.file_system import FileSystemMount

    fs = unit_stack.file_system()
    point = fs.access_point("themes", path="/dashboard/themes", uid=1000, gid=1000)
    service = unit_stack.service(
        "dashboard",
        user="1000:1000",
        file_system_mounts=(FileSystemMount(fs, point, "/themes", read_only=read_only),),
    )
    return service, fs, point


def test_a_mounted_access_point_is_an_efs_volume_over_tls_with_iam(unit_stack: UnitStack) -> None:
    service, fs, point = _mounted(unit_stack)
    assert set(service.file_system_volumes) == {"efs-themes"}
    doc = unit_stack.synth()
    lid = unit_stack.stack.get_logical_id
    assert one(doc, "aws_ecs_task_definition")["volume"] == [
        {"name": "tmp"},
        {
            "name": "efs-themes",
            "efs_volume_configuration": {
                "file_system_id": f"${{aws_efs_file_system.{lid(fs.file_system)}.id}}",
                "transit_encryption": "ENABLED",
                "authorization_config": {
                    "access_point_id": f"${{aws_efs_access_point.{lid(point)}.id}}",
                    "iam": "ENABLED",
                },
            },
        },
    ]
    container = containers(doc)["dashboard"]
    assert container["mountPoints"] == [
        {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False},
        {"sourceVolume": "efs-themes", "containerPath": "/themes", "readOnly": False},
    ]
    assert container["readonlyRootFilesystem"] is True
    assert one(doc, "aws_ecs_service")["platform_version"] == "LATEST"


def test_the_task_role_may_mount_and_write_only_through_the_access_point(
    unit_stack: UnitStack,
) -> None:
    service, fs, point = _mounted(unit_stack)
    doc = unit_stack.synth()
    lid = unit_stack.stack.get_logical_id
    fs_arn = f"${{aws_efs_file_system.{lid(fs.file_system)}.arn}}"
    point_arn = f"${{aws_efs_access_point.{lid(point)}.arn}}"
    (policy,) = [
        p for p in resources(doc, "aws_iam_role_policy").values() if p["name"] == "application"
    ]
    assert policy["role"] == f"${{aws_iam_role.{lid(service.task_role)}.id}}"
    assert json.loads(policy["policy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
            "Resource": [fs_arn],
            "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": point_arn}},
        }
    ]
    (fs_policy,) = resources(doc, "aws_efs_file_system_policy").values()
    deny, grant = json.loads(fs_policy["policy"])["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert grant["Principal"] == {"AWS": f"${{aws_iam_role.{lid(service.task_role)}.arn}}"}
    assert grant["Action"] == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    assert grant["Condition"]["StringEquals"] == {"elasticfilesystem:AccessPointArn": point_arn}


def test_a_read_only_mount_is_read_only_and_granted_no_write(unit_stack: UnitStack) -> None:
    _mounted(unit_stack, read_only=True)
    doc = unit_stack.synth()
    assert containers(doc)["dashboard"]["mountPoints"][-1] == {
        "sourceVolume": "efs-themes",
        "containerPath": "/themes",
        "readOnly": True,
    }
    (policy,) = [
        p for p in resources(doc, "aws_iam_role_policy").values() if p["name"] == "application"
    ]
    (fs_policy,) = resources(doc, "aws_efs_file_system_policy").values()
    for statement in (
        json.loads(policy["policy"])["Statement"][0],
        json.loads(fs_policy["policy"])["Statement"][1],
    ):
        assert statement["Action"] == ["elasticfilesystem:ClientMount"]


def test_the_file_system_admits_the_service_on_nfs_and_the_service_starts_after(
    unit_stack: UnitStack,
) -> None:
    service, fs, _ = _mounted(unit_stack)
    doc = unit_stack.synth()
    lid = unit_stack.stack.get_logical_id
    service_sg = f"${{aws_security_group.{lid(service.security_group)}.id}}"
    fs_sg = f"${{aws_security_group.{lid(fs.security_group)}.id}}"
    (ingress_id, ingress), *others = [
        (k, r)
        for k, r in resources(doc, "aws_vpc_security_group_ingress_rule").items()
        if r["security_group_id"] == fs_sg
    ]
    assert others == []
    assert ingress["referenced_security_group_id"] == service_sg
    (egress_id, egress), *others = [
        (k, r)
        for k, r in resources(doc, "aws_vpc_security_group_egress_rule").items()
        if r.get("referenced_security_group_id") == fs_sg
    ]
    assert others == []
    assert egress["security_group_id"] == service_sg
    for rule in (ingress, egress):
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 2049, 2049)
    waits_for = set(one(doc, "aws_ecs_service")["depends_on"])
    assert {
        f"aws_vpc_security_group_ingress_rule.{ingress_id}",
        f"aws_vpc_security_group_egress_rule.{egress_id}",
        f"aws_efs_file_system_policy.{lid(fs.policy)}",
        *(f"aws_efs_mount_target.{k}" for k in resources(doc, "aws_efs_mount_target")),
    } <= waits_for
    assert len(resources(doc, "aws_efs_mount_target")) == 2


def test_two_access_points_of_one_file_system_share_its_security_group_rule(
    unit_stack: UnitStack,
) -> None:
    from constructs_lib.file_system import FileSystemMount

    fs = unit_stack.file_system()
    themes = fs.access_point("themes", path="/themes", uid=1000, gid=1000)
    drivers = fs.access_point("drivers", path="/drivers", uid=1000, gid=1000)
    service = unit_stack.service(
        "dashboard",
        file_system_mounts=(
            FileSystemMount(fs, themes, "/themes"),
            FileSystemMount(fs, drivers, "/opt/drivers", read_only=True),
        ),
    )
    assert list(service.file_system_volumes) == ["efs-themes", "efs-opt-drivers"]
    doc = unit_stack.synth()
    fs_sg = f"${{aws_security_group.{unit_stack.stack.get_logical_id(fs.security_group)}.id}}"
    ingress = [
        r
        for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == fs_sg
    ]
    assert len(ingress) == 1
    (policy,) = [
        p for p in resources(doc, "aws_iam_role_policy").values() if p["name"] == "application"
    ]
    assert [len(s["Action"]) for s in json.loads(policy["policy"])["Statement"]] == [2, 1]
    depends_on = one(doc, "aws_ecs_service")["depends_on"]
    assert len(depends_on) == len(set(depends_on))


def test_a_service_without_mounts_touches_no_file_system(unit_stack: UnitStack) -> None:
    unit_stack.file_system()
    unit_stack.service("worker")
    doc = unit_stack.synth()
    assert one(doc, "aws_ecs_task_definition")["volume"] == [{"name": "tmp"}]
    assert not [
        p for p in resources(doc, "aws_iam_role_policy").values() if p["name"] == "application"
    ]
    (fs_policy,) = resources(doc, "aws_efs_file_system_policy").values()
    assert len(json.loads(fs_policy["policy"])["Statement"]) == 1
    assert not any("efs" in d for d in one(doc, "aws_ecs_service")["depends_on"])


@pytest.mark.parametrize(
    ("paths", "writable", "message"),
    [
        (("themes",), ("/tmp",), r"got themes, give absolute normalised container paths"),
        (("/",), ("/tmp",), r"got /, give absolute"),
        (("/themes/",), ("/tmp",), r"got /themes/, give absolute"),
        (("/a/../b",), ("/tmp",), r"got /a/\.\./b, give absolute"),
        (("/themes", "/themes"), ("/tmp",), r"got /themes, mount each container path once"),
        (("/tmp",), ("/tmp",), r"got /tmp, mount each container path once, and not also"),
        (("/themes",), ("/efs-themes",), r"got /efs-themes, /themes, give paths whose volume"),
        (("/a-b", "/a.b"), ("/tmp",), r"got /a-b, /a\.b, give paths whose volume names"),
    ],
)
def test_a_wrong_container_path_is_refused(
    unit_stack: UnitStack, paths: tuple[str, ...], writable: tuple[str, ...], message: str
) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.file_system import FileSystemMount

    fs = unit_stack.file_system()
    mounts = tuple(
        FileSystemMount(fs, fs.access_point(f"ap{i}", path=f"/ap{i}", uid=1000, gid=1000), p)
        for i, p in enumerate(paths)
    )
    with pytest.raises(ConfigError, match=rf"^unit/worker\.file_system_mounts: {message}"):
        unit_stack.service("worker", writable_paths=writable, file_system_mounts=mounts)


def test_a_file_system_of_another_network_is_refused(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.file_system import FileSystemMount

    elsewhere = unit_stack.file_system("elsewhere", network=unit_stack.network(ONE_AZ_NETWORK))
    point = elsewhere.access_point("ap", path="/ap", uid=1000, gid=1000)
    with pytest.raises(
        ConfigError,
        match=r"^unit/worker\.file_system_mounts: got /data: unit/efs-elsewhere, mount a file "
        r"system of the cluster's network",
    ):
        unit_stack.service(
            "worker", file_system_mounts=(FileSystemMount(elsewhere, point, "/data"),)
        )


def test_an_access_point_of_another_file_system_is_refused(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.file_system import FileSystemMount

    files, other = unit_stack.file_system(), unit_stack.file_system("other")
    foreign = other.access_point("ap", path="/ap", uid=1000, gid=1000)
    with pytest.raises(
        ConfigError,
        match=r"^unit/worker\.file_system_mounts: got /data: unit/efs-other/access-point-ap, "
        r"give an access point of the mounted file system",
    ):
        unit_stack.service("worker", file_system_mounts=(FileSystemMount(files, foreign, "/data"),))


def test_an_extra_port_registers_in_its_target_group_and_admits_the_load_balancer(
    unit_stack: UnitStack,
) -> None:
    from constructs_lib.network_load_balancer import (
        NetworkListener,
        NetworkLoadBalancer,
        NetworkLoadBalancerProps,
    )
    from constructs_lib.service import ExtraPort
    from tests.support import NAMING

    nlb = NetworkLoadBalancer(
        unit_stack.stack,
        "nlb",
        props=NetworkLoadBalancerProps(
            naming=NAMING,
            network=unit_stack.network(),
            target_port=8080,
            extra_listeners=(NetworkListener(port=8082, target_port=8082),),
        ),
    )
    service = unit_stack.service(
        "api", load_balancer=nlb, extra_ports=(ExtraPort(8082, nlb.target_groups[8082]),)
    )
    doc = unit_stack.synth()
    (container,) = containers(doc).values()
    assert [m["containerPort"] for m in container["portMappings"]] == [8080, 8082]
    ecs = one(doc, "aws_ecs_service")
    assert [(lb["container_port"]) for lb in ecs["load_balancer"]] == [8080, 8082]
    groups = {
        f"${{aws_lb_target_group.{unit_stack.stack.get_logical_id(g)}.arn}}": port
        for port, g in nlb.target_groups.items()
    }
    assert [groups[lb["target_group_arn"]] for lb in ecs["load_balancer"]] == [80, 8082]
    service_sg = (
        f"${{aws_security_group.{unit_stack.stack.get_logical_id(service.security_group)}.id}}"
    )
    ports = sorted(
        r["from_port"]
        for r in resources(doc, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == service_sg
    )
    assert ports == [8080, 8082]


@pytest.mark.parametrize(
    ("extra", "with_lb"),
    [((8080,), True), ((8082, 8082), True), ((70000,), True), ((8082,), False)],
)
def test_extra_ports_are_checked(
    unit_stack: UnitStack, extra: tuple[int, ...], with_lb: bool
) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.service import ExtraPort

    lb = unit_stack.load_balancer() if with_lb else None
    target_group = lb.target_group if lb else unit_stack.load_balancer().target_group
    with pytest.raises(ConfigError, match=r"\.extra_ports: got "):
        unit_stack.service(
            "api",
            load_balancer=lb,
            extra_ports=tuple(ExtraPort(p, target_group) for p in extra),
        )


def test_allow_from_names_one_of_the_service_ports(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError

    service = unit_stack.service("worker")
    with pytest.raises(ConfigError, match=r"\.allow_from\.port: got 9999, use one of \[8080\]"):
        service.allow_from(unit_stack.key(), description="x", port=9999)  # type: ignore[arg-type]


def test_a_replace_deployment_stops_old_tasks_first_without_az_rebalancing(
    unit_stack: UnitStack,
) -> None:
    from constructs_lib.options import Deployment

    unit_stack.service("worker", deployment=Deployment.REPLACE)
    ecs = one(unit_stack.synth(), "aws_ecs_service")
    assert ecs["deployment_minimum_healthy_percent"] == 0
    assert ecs["deployment_maximum_percent"] == 100
    # ECS refuses AZ rebalancing unless the maximum percent exceeds 100.
    assert ecs["availability_zone_rebalancing"] == "DISABLED"


def test_a_rolling_deployment_rebalances_across_azs(unit_stack: UnitStack) -> None:
    unit_stack.service("worker")
    ecs = one(unit_stack.synth(), "aws_ecs_service")
    assert (ecs["deployment_minimum_healthy_percent"], ecs["deployment_maximum_percent"]) == (
        100,
        200,
    )
    assert ecs["availability_zone_rebalancing"] == "ENABLED"


def test_allow_to_opens_one_egress_port_to_a_range_or_a_group(unit_stack: UnitStack) -> None:
    service = unit_stack.service("bi")
    service.allow_to("10.90.0.0/16", port=5439, id_="data-source-dw", description="data source dw")
    service.allow_to(
        "sg-0123456789abcdef0", port=5432, id_="data-source-lake", description="data source lake"
    )
    rules = {
        lid: r
        for lid, r in resources(unit_stack.synth(), "aws_vpc_security_group_egress_rule").items()
        if "data-source" in lid
    }
    found = {
        (r.get("cidr_ipv4"), r.get("referenced_security_group_id"), r["from_port"], r["to_port"])
        for r in rules.values()
    }
    assert found == {
        ("10.90.0.0/16", None, 5439, 5439),
        (None, "sg-0123456789abcdef0", 5432, 5432),
    }
    assert all(r["ip_protocol"] == "tcp" for r in rules.values())


@pytest.mark.parametrize("destination", ["0.0.0.0/0", "10.0.0.1/8", "warehouse", ""])
def test_allow_to_refuses_anything_but_a_narrow_range_or_a_group(
    unit_stack: UnitStack, destination: str
) -> None:
    from constructs_lib.errors import ConfigError

    service = unit_stack.service("bi")
    with pytest.raises(
        ConfigError,
        match=rf"^unit/bi\.allow_to\(data-source-x\)\.destination: got {re.escape(repr(destination))}, "
        r"give an IPv4 CIDR narrower than 0\.0\.0\.0/0, or a security group id \(sg-\.\.\.\)$",
    ):
        service.allow_to(destination, port=1, id_="data-source-x", description="x")
