"""FileSystem construct (EFS): encryption, mount targets, policy, access points, alarms."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support import NAMING, ONE_AZ_NETWORK, UnitStack, one, ref, resources

FS = "aws_efs_file_system"
CLIENT_ACTIONS = [
    "elasticfilesystem:ClientMount",
    "elasticfilesystem:ClientWrite",
    "elasticfilesystem:ClientRootAccess",
]


def lid(unit_stack: UnitStack, construct: Any) -> str:
    """The logical id of ``construct`` in the unit stack."""
    found: str = unit_stack.stack.get_logical_id(construct)
    return found


def resolve(unit_stack: UnitStack, value: Any) -> Any:
    """``value`` with its tokens as the Terraform expressions they synthesize to."""
    from cdktf import DefaultTokenResolver, StringConcat, Tokenization

    resolver = DefaultTokenResolver(StringConcat())
    return Tokenization.resolve(value, scope=unit_stack.stack, resolver=resolver, preparing=False)


def policy_statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(one(doc, "aws_efs_file_system_policy")["policy"])[
        "Statement"
    ]
    return statements


def test_the_file_system_is_encrypted_with_the_key_and_tiers_to_ia(
    unit_stack: UnitStack,
) -> None:
    fs = unit_stack.file_system()
    doc = unit_stack.synth()
    (key_id,) = resources(doc, "aws_kms_key")
    config = one(doc, FS)
    assert config["encrypted"] is True
    assert config["kms_key_id"] == ref("aws_kms_key", key_id, "arn")
    assert config["performance_mode"] == "generalPurpose"
    assert config["throughput_mode"] == "elastic"
    assert "provisioned_throughput_in_mibps" not in config
    assert config["lifecycle_policy"] == [
        {"transition_to_ia": "AFTER_30_DAYS"},
        {"transition_to_primary_storage_class": "AFTER_1_ACCESS"},
    ]
    assert config["tags"] == {"Name": "pcp-unit-files-efs"}
    fs_id = lid(unit_stack, fs.file_system)
    assert resolve(unit_stack, [fs.id, fs.arn]) == [ref(FS, fs_id), ref(FS, fs_id, "arn")]


def test_lifecycle_and_throughput_follow_the_props(unit_stack: UnitStack) -> None:
    from constructs_lib.file_system import PerformanceMode, ThroughputMode

    unit_stack.file_system(
        performance_mode=PerformanceMode.MAX_IO,
        throughput_mode=ThroughputMode.PROVISIONED,
        provisioned_throughput_mibps=64,
        transition_to_ia_days=1,
        transition_to_primary_on_access=False,
    )
    config = one(unit_stack.synth(), FS)
    assert (config["performance_mode"], config["throughput_mode"]) == ("maxIO", "provisioned")
    assert config["provisioned_throughput_in_mibps"] == 64
    assert config["lifecycle_policy"] == [{"transition_to_ia": "AFTER_1_DAY"}]


def test_without_ia_files_stay_in_standard(unit_stack: UnitStack) -> None:
    unit_stack.file_system(transition_to_ia_days=None)
    assert "lifecycle_policy" not in one(unit_stack.synth(), FS)


def test_one_mount_target_per_private_subnet_behind_a_closed_security_group(
    unit_stack: UnitStack,
) -> None:
    fs = unit_stack.file_system()
    doc = unit_stack.synth()
    fs_id = ref(FS, lid(unit_stack, fs.file_system))
    group = ref("aws_security_group", lid(unit_stack, fs.security_group))
    private = sorted(k for k in resources(doc, "aws_subnet") if "private" in k)
    targets = resources(doc, "aws_efs_mount_target").values()
    assert sorted(t["subnet_id"] for t in targets) == sorted(ref("aws_subnet", k) for k in private)
    assert len(private) == 2
    assert all(t["file_system_id"] == fs_id for t in targets)
    assert all(t["security_groups"] == [group] for t in targets)
    assert len(fs.mount_targets) == 2
    assert resources(doc, "aws_security_group")[lid(unit_stack, fs.security_group)]["name"] == (
        "pcp-unit-files-efs"
    )
    rules = [
        r
        for type_ in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")
        for r in resources(doc, type_).values()
        if group in (r["security_group_id"], r.get("referenced_security_group_id"))
    ]
    assert rules == []


def test_allow_from_opens_nfs_between_the_two_groups(unit_stack: UnitStack) -> None:
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    fs = unit_stack.file_system()
    peer = SecurityGroup(unit_stack.stack, "peer", vpc_id="vpc-1", description="peer")
    fs.allow_from(peer, description="peer to EFS")
    doc = unit_stack.synth()
    group = ref("aws_security_group", lid(unit_stack, fs.security_group))
    (ingress,) = resources(doc, "aws_vpc_security_group_ingress_rule").values()
    (egress,) = [
        r
        for r in resources(doc, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == "${aws_security_group.peer.id}"
    ]
    assert ingress["security_group_id"] == group
    assert ingress["referenced_security_group_id"] == "${aws_security_group.peer.id}"
    assert egress["referenced_security_group_id"] == group
    for rule in (ingress, egress):
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 2049, 2049)


def test_the_policy_denies_every_client_action_without_tls_and_grants_nothing(
    unit_stack: UnitStack,
) -> None:
    fs = unit_stack.file_system()
    doc = unit_stack.synth()
    policy = one(doc, "aws_efs_file_system_policy")
    assert policy["file_system_id"] == ref(FS, lid(unit_stack, fs.file_system))
    assert policy_statements(doc) == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": CLIENT_ACTIONS,
            "Resource": [ref(FS, lid(unit_stack, fs.file_system), "arn")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]


def test_grant_adds_mount_and_write_for_the_principal_once(unit_stack: UnitStack) -> None:
    fs = unit_stack.file_system()
    point = fs.access_point("dashboard", path="/dashboard", uid=1000, gid=1000)
    role_arn = "arn:aws:iam::123456789012:role/loader"
    fs.grant(role_arn, write=True, access_point=point)
    fs.grant(role_arn, write=True, access_point=point)
    fs.grant("arn:aws:iam::123456789012:role/reader", write=False)
    doc = unit_stack.synth()
    deny, writer, reader = policy_statements(doc)
    assert deny["Sid"] == "DenyInsecureTransport"
    fs_arn = ref(FS, lid(unit_stack, fs.file_system), "arn")
    assert writer == {
        "Effect": "Allow",
        "Principal": {"AWS": role_arn},
        "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
        "Resource": [fs_arn],
        "Condition": {
            "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"},
            "StringEquals": {
                "elasticfilesystem:AccessPointArn": ref(
                    "aws_efs_access_point", lid(unit_stack, point), "arn"
                )
            },
        },
    }
    assert reader["Action"] == ["elasticfilesystem:ClientMount"]
    assert reader["Condition"] == {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}


def test_grant_takes_a_role(unit_stack: UnitStack) -> None:
    from cdktf_cdktf_provider_aws.iam_role import IamRole

    fs = unit_stack.file_system()
    role = IamRole(unit_stack.stack, "loader", assume_role_policy="{}")
    fs.grant(role, write=False)
    (_, grant) = policy_statements(unit_stack.synth())
    assert grant["Principal"] == {"AWS": "${aws_iam_role.loader.arn}"}


def test_client_statements_scope_the_role_to_the_access_point(unit_stack: UnitStack) -> None:
    fs = unit_stack.file_system()
    point = fs.access_point("dashboard", path="/dashboard", uid=1000, gid=1000)
    (read,) = fs.client_statements(point, write=False)
    (write,) = fs.client_statements(point, write=True)
    assert read.actions == ["elasticfilesystem:ClientMount"]
    assert write.actions == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    assert resolve(unit_stack, write.render()) == {
        "Effect": "Allow",
        "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
        "Resource": [ref(FS, lid(unit_stack, fs.file_system), "arn")],
        "Condition": {
            "StringEquals": {
                "elasticfilesystem:AccessPointArn": ref(
                    "aws_efs_access_point", lid(unit_stack, point), "arn"
                )
            }
        },
    }


def test_an_access_point_runs_as_its_posix_user_in_a_root_it_creates(
    unit_stack: UnitStack,
) -> None:
    fs = unit_stack.file_system()
    point = fs.access_point("dashboard", path="/pi/dashboard", uid=1000, gid=2000)
    fs.access_point("drivers", path="/pi/drivers", uid=1000, gid=2000, permissions="0755")
    assert fs.access_points == {"dashboard": point, "drivers": fs.access_points["drivers"]}
    doc = unit_stack.synth()
    points = resources(doc, "aws_efs_access_point")
    config = points[lid(unit_stack, point)]
    assert config["file_system_id"] == ref(FS, lid(unit_stack, fs.file_system))
    assert config["posix_user"] == {"uid": 1000, "gid": 2000}
    assert config["root_directory"] == {
        "path": "/pi/dashboard",
        "creation_info": {"owner_uid": 1000, "owner_gid": 2000, "permissions": "750"},
    }
    assert config["tags"] == {"Name": "pcp-unit-files-efs-dashboard"}
    drivers = points[lid(unit_stack, fs.access_points["drivers"])]
    assert drivers["root_directory"]["creation_info"]["permissions"] == "0755"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "dashboard"}, r"path: got dashboard, give an absolute"),
        ({"path": "/"}, r"path: got /, give an absolute"),
        ({"path": ""}, r'path: got "", give an absolute'),
        ({"path": "/a/../b"}, r"path: got /a/\.\./b, give an absolute"),
        ({"path": "/a/"}, r"path: got /a/, give an absolute"),
        ({"path": "/a/b/c/d/e"}, r"path: got /a/b/c/d/e, use at most 4 levels"),
        ({"path": "/" + "a" * 100}, r"path: got /a+, use at most 4 levels and 100"),
        ({"path": "/.hidden"}, r"path: got /\.hidden, use no level starting with a dot"),
        ({"path": "/a;b"}, r"path: got /a;b, use no level starting"),
        ({"uid": 0}, r"uid: got 0, use a non-root id"),
        ({"gid": 0}, r"gid: got 0, use a non-root id"),
        ({"uid": -1}, r"uid: got -1, use a non-root id"),
        ({"uid": 2**32}, r"uid: got 4294967296, use a non-root id"),
        ({"permissions": "777x"}, r"permissions: got 777x, give an octal mode"),
        ({"permissions": "75"}, r"permissions: got 75, give an octal mode"),
        ({"permissions": "0758"}, r"permissions: got 0758, give an octal mode"),
    ],
)
def test_a_wrong_access_point_is_refused(
    unit_stack: UnitStack, kwargs: dict[str, Any], message: str
) -> None:
    from constructs_lib.errors import ConfigError

    fs = unit_stack.file_system()
    values: dict[str, Any] = {"path": "/dashboard", "uid": 1000, "gid": 1000, **kwargs}
    with pytest.raises(ConfigError, match=rf"^unit/efs-files\.access_point\(ap\)\.{message}"):
        fs.access_point("ap", **values)


def test_two_access_points_never_share_a_root(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError

    fs = unit_stack.file_system()
    fs.access_point("one", path="/shared", uid=1000, gid=1000)
    with pytest.raises(
        ConfigError, match=r"^unit/efs-files\.access_point\(two\)\.path: got /shared, give each"
    ):
        fs.access_point("two", path="/shared", uid=2000, gid=2000)


def test_another_file_systems_access_point_is_refused(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError

    files, other = unit_stack.file_system(), unit_stack.file_system("other")
    foreign = other.access_point("ap", path="/ap", uid=1000, gid=1000)
    assert not files.owns(foreign)
    with pytest.raises(ConfigError, match=r"^unit/efs-files\.grant: got unit/efs-other/"):
        files.grant("arn:aws:iam::123456789012:role/x", write=False, access_point=foreign)
    with pytest.raises(ConfigError, match=r"^unit/efs-files\.client_statements: got"):
        files.client_statements(foreign, write=False)


def test_backups_are_on_unless_turned_off(unit_stack: UnitStack) -> None:
    on = unit_stack.file_system()
    off = unit_stack.file_system("scratch", backup=False)
    policies = resources(unit_stack.synth(), "aws_efs_backup_policy")
    assert policies[lid(unit_stack, on.backup_policy)] == {
        "file_system_id": ref(FS, lid(unit_stack, on.file_system)),
        "backup_policy": {"status": "ENABLED"},
    }
    assert policies[lid(unit_stack, off.backup_policy)]["backup_policy"] == {"status": "DISABLED"}


def test_admit_opens_the_path_once_per_group_and_grants_each_access_point(
    unit_stack: UnitStack,
) -> None:
    from cdktf_cdktf_provider_aws.security_group import SecurityGroup

    fs = unit_stack.file_system()
    one_, two = (fs.access_point(n, path=f"/{n}", uid=1000, gid=1000) for n in ("one", "two"))
    peer = SecurityGroup(unit_stack.stack, "peer", vpc_id="vpc-1", description="peer")
    role = "arn:aws:iam::123456789012:role/loader"
    first = fs.admit(peer, role=role, access_point=one_, write=True, description="loader")
    second = fs.admit(peer, role=role, access_point=two, write=False, description="loader")
    ingress, egress = first[:2]
    assert first == second
    assert first[2:] == [*fs.mount_targets, fs.policy]
    doc = unit_stack.synth()
    fs_group = ref("aws_security_group", lid(unit_stack, fs.security_group))
    (ingress_id,) = resources(doc, "aws_vpc_security_group_ingress_rule")
    assert ingress_id == lid(unit_stack, ingress)
    egress_config = resources(doc, "aws_vpc_security_group_egress_rule")[lid(unit_stack, egress)]
    assert egress_config["referenced_security_group_id"] == fs_group
    grants = policy_statements(doc)[1:]
    assert [g["Condition"]["StringEquals"] for g in grants] == [
        {"elasticfilesystem:AccessPointArn": ref("aws_efs_access_point", lid(unit_stack, p), "arn")}
        for p in (one_, two)
    ]
    assert [len(g["Action"]) for g in grants] == [2, 1]


def test_a_lambda_mounts_an_access_point_under_mnt(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError

    fs = unit_stack.file_system()
    point = fs.access_point("loader", path="/dashboard", uid=1000, gid=1000)
    config = fs.lambda_file_system_config(point, mount_path="/mnt/dashboard")
    assert resolve(unit_stack, config) == {
        "arn": ref("aws_efs_access_point", lid(unit_stack, point), "arn"),
        "local_mount_path": "/mnt/dashboard",
    }
    for bad in ("/data", "/mnt/", "/mnt/a/b", "/mnt/..", "mnt/a"):
        with pytest.raises(
            ConfigError, match=rf"^unit/efs-files\.mount_path: got {re.escape(bad)}, give /mnt"
        ):
            fs.lambda_file_system_config(point, mount_path=bad)


# --- alarms ------------------------------------------------------------------------------


def test_a_general_purpose_elastic_file_system_warns_of_its_io_limit_only(
    unit_stack: UnitStack,
) -> None:
    fs = unit_stack.file_system()
    (spec,) = fs.alarms()
    assert spec.key == "efs-files-io-limit"
    assert spec.metric == ("AWS/EFS", "PercentIOLimit", {"FileSystemId": fs.id})
    assert (spec.watch.compare, spec.watch.threshold, spec.breakage) == (">", 95, False)


def test_bursting_and_storage_alarms_follow_the_props(unit_stack: UnitStack) -> None:
    from constructs_lib.file_system import PerformanceMode, ThroughputMode

    fs = unit_stack.file_system(
        performance_mode=PerformanceMode.MAX_IO,
        throughput_mode=ThroughputMode.BURSTING,
        storage_alarm_gib=50,
    )
    specs = {spec.key: spec for spec in fs.alarms()}
    assert sorted(specs) == ["efs-files-burst-credits", "efs-files-storage"]
    credits, storage = specs["efs-files-burst-credits"], specs["efs-files-storage"]
    assert credits.metric == ("AWS/EFS", "BurstCreditBalance", {"FileSystemId": fs.id})
    assert (credits.watch.statistic, credits.watch.compare) == ("Minimum", "<")
    assert storage.metric == (
        "AWS/EFS",
        "StorageBytes",
        {"FileSystemId": fs.id, "StorageClass": "Total"},
    )
    assert storage.watch.threshold == 50 * 2**30


# --- wrong props ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Files"}, r"name: got Files, use lower-case letters"),
        ({"name": "1files"}, r"name: got 1files, use lower-case"),
        ({"name": ""}, r'name: got "", use lower-case'),
        (
            {"throughput_mode": "PROVISIONED"},
            r"provisioned_throughput_mibps: got None, give 1 to 3414",
        ),
        (
            {"throughput_mode": "PROVISIONED", "provisioned_throughput_mibps": 0},
            r"provisioned_throughput_mibps: got 0, give 1 to 3414",
        ),
        (
            {"provisioned_throughput_mibps": 64},
            r"provisioned_throughput_mibps: got 64, leave it unset unless",
        ),
        ({"performance_mode": "MAX_IO"}, r"performance_mode: got maxIO, use GENERAL_PURPOSE"),
        ({"transition_to_ia_days": 45}, r"transition_to_ia_days: got 45, use one of 1, 7"),
        ({"storage_alarm_gib": 0}, r"storage_alarm_gib: got 0, give 1 GiB or more"),
    ],
)
def test_wrong_props_are_refused(
    unit_stack: UnitStack, overrides: dict[str, Any], message: str
) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.file_system import (
        FileSystem,
        FileSystemProps,
        PerformanceMode,
        ThroughputMode,
    )

    values = {"name": "x", **overrides}
    if "throughput_mode" in values:
        values["throughput_mode"] = ThroughputMode[values["throughput_mode"]]
    if "performance_mode" in values:
        values["performance_mode"] = PerformanceMode[values["performance_mode"]]
    props = FileSystemProps(
        naming=NAMING, network=unit_stack.network(), key=unit_stack.key(), **values
    )
    with pytest.raises(ConfigError, match=rf"^unit/efs-x\.{message}"):
        FileSystem(unit_stack.stack, "efs-x", props=props)


def test_a_file_system_in_a_one_az_network_has_one_mount_target(unit_stack: UnitStack) -> None:
    fs = unit_stack.file_system(network=unit_stack.network(ONE_AZ_NETWORK))
    assert len(fs.mount_targets) == 1
