"""AssetLoader construct: the S3 -> EFS loader function, its access, its mount and its
invocation on apply, on unit stacks (one synthesis per variant, shared by the module)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import NAMING, ROOT, UnitStack, new_unit_stack, one, resources

if TYPE_CHECKING:
    from cdktf_cdktf_provider_aws.efs_access_point import EfsAccessPoint

    from constructs_lib.asset_loader import AssetLoader
    from constructs_lib.bucket import SecureBucket
    from constructs_lib.file_system import FileSystem

SG_INGRESS = "aws_vpc_security_group_ingress_rule"
SG_EGRESS = "aws_vpc_security_group_egress_rule"
EFS_ACTIONS = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]


@dataclass(frozen=True)
class Built:
    unit: UnitStack
    file_system: FileSystem
    access_point: EfsAccessPoint
    bucket: SecureBucket
    loader: AssetLoader
    doc: dict[str, Any]

    def lid(self, resource: Any) -> str:
        found: str = self.unit.stack.get_logical_id(resource)
        return found

    def ref(self, resource: Any, attr: str = "id") -> str:
        return f"${{{resource.terraform_resource_type}.{self.lid(resource)}.{attr}}}"

    def fqn(self, resource: Any) -> str:
        return f"{resource.terraform_resource_type}.{self.lid(resource)}"

    def https_egress(self) -> tuple[str, dict[str, Any]]:
        """The function group's egress rule to AWS APIs: its logical id and config."""
        (found,) = [
            (k, r)
            for k, r in resources(self.doc, SG_EGRESS).items()
            if r["security_group_id"] == self.ref(self.loader.security_group) and r.get("cidr_ipv4")
        ]
        return found

    def function(self) -> dict[str, Any]:
        return one(self.doc, "aws_lambda_function")

    def statements(self) -> list[dict[str, Any]]:
        (policy,) = [
            p
            for p in resources(self.doc, "aws_iam_role_policy").values()
            if p["role"] == self.ref(self.loader.role)
        ]
        found: list[dict[str, Any]] = json.loads(policy["policy"])["Statement"]
        return found


def build(*, key: bool = True, **overrides: Any) -> Built:
    """A file system with the dashboard's access point, an assets bucket (with the unit key
    or SSE-S3) and a loader with ``overrides`` as further props."""
    from constructs_lib.asset_loader import AssetLoader, AssetLoaderProps
    from constructs_lib.bucket import SecureBucket, SecureBucketProps

    unit = new_unit_stack()
    fs = unit.file_system("dashboard")
    point = fs.access_point("dashboard", path="/dashboard", uid=1000, gid=1000)
    bucket = SecureBucket(
        unit.stack,
        "assets",
        props=SecureBucketProps(bucket_name="pcp-unit-assets", key=unit.key() if key else None),
    )
    values: dict[str, Any] = {
        "naming": NAMING,
        "project_root": ROOT,
        "file_system": fs,
        "access_point": point,
        "bucket": bucket,
        **overrides,
    }
    loader = AssetLoader(unit.stack, "loader", props=AssetLoaderProps(**values))
    return Built(unit, fs, point, bucket, loader, unit.synth())


@pytest.fixture(scope="module")
def built() -> Built:
    return build(
        prefix="assets",
        force_token="2024-06-01",
        assets_version="sha256:0123abcd",
        log_retention_days=7,
        timeout_seconds=600,
    )


@pytest.fixture(scope="module")
def plain() -> Built:
    """Every optional prop unset, an SSE-S3 bucket."""
    return build(key=False)


# --- the function -----------------------------------------------------------------------------


def test_function_runs_the_loader_in_the_private_subnets_with_its_own_group(
    built: Built,
) -> None:
    function = built.function()
    assert function["function_name"] == "pcp-unit-asset-loader"
    assert function["handler"] == "apps.assetloader.handler.handler"
    assert function["timeout"] == 600
    private = sorted(k for k in resources(built.doc, "aws_subnet") if "private" in k)
    assert len(private) == 2
    assert sorted(function["vpc_config"]["subnet_ids"]) == [
        f"${{aws_subnet.{k}.id}}" for k in private
    ]
    assert function["vpc_config"]["security_group_ids"] == [built.ref(built.loader.security_group)]
    assert resources(built.doc, "aws_security_group")[built.lid(built.loader.security_group)][
        "name"
    ] == ("pcp-unit-asset-loader")
    assert function["kms_key_arn"] == built.ref(built.file_system.key.key, "arn")
    assert function["role"] == built.ref(built.loader.role, "arn")
    log_group = resources(built.doc, "aws_cloudwatch_log_group")[built.lid(built.loader.log_group)]
    assert log_group["retention_in_days"] == 7
    assert log_group["name"] == "/aws/lambda/pcp-unit-asset-loader"


def test_unset_timeout_is_lambdas_maximum(plain: Built) -> None:
    assert plain.function()["timeout"] == 900


def test_function_mounts_the_access_point_at_mnt_assets(built: Built) -> None:
    assert built.function()["file_system_config"] == {
        "arn": built.ref(built.access_point, "arn"),
        "local_mount_path": "/mnt/assets",
    }


def test_environment_names_the_bucket_the_folder_and_the_mount(built: Built) -> None:
    from apps.assetloader.loader import BUCKET_VAR, MOUNT_PATH_VAR, PREFIX_VAR

    assert (BUCKET_VAR, PREFIX_VAR, MOUNT_PATH_VAR) == (
        "ASSETS_BUCKET",
        "ASSETS_PREFIX",
        "ASSETS_MOUNT_PATH",
    )
    assert built.function()["environment"]["variables"] == {
        "ASSETS_BUCKET": built.ref(built.bucket.bucket, "bucket"),
        "ASSETS_PREFIX": "assets/",
        "ASSETS_MOUNT_PATH": "/mnt/assets",
    }
    assert built.loader.prefix == "assets/"


def test_without_a_prefix_the_whole_bucket_is_loaded(plain: Built) -> None:
    assert plain.function()["environment"]["variables"] == {
        "ASSETS_BUCKET": plain.ref(plain.bucket.bucket, "bucket"),
        "ASSETS_MOUNT_PATH": "/mnt/assets",
    }
    assert plain.loader.prefix == ""


def test_function_is_created_after_the_mount_targets_its_rules_and_the_grant(
    built: Built,
) -> None:
    needs = set(built.function()["depends_on"])
    fs = built.file_system
    assert len(fs.mount_targets) == 2
    for resource in (*fs.mount_targets, fs.policy, built.loader.log_group):
        assert built.fqn(resource) in needs
    rules = {
        f"{type_}.{k}"
        for type_ in (SG_INGRESS, SG_EGRESS)
        for k, r in resources(built.doc, type_).items()
        if r["from_port"] == 2049
    }
    assert len(rules) == 2
    assert rules <= needs


# --- access -------------------------------------------------------------------------------------


def test_policy_reads_only_the_prefix_and_decrypts_only_through_s3(built: Built) -> None:
    bucket = built.ref(built.bucket.bucket, "arn")
    statements = built.statements()
    s3 = [s for s in statements if any(a.startswith("s3:") for a in s["Action"])]
    assert s3 == [
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [bucket],
            "Condition": {"StringLike": {"s3:prefix": ["assets/*"]}},
        },
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"{bucket}/assets/*"]},
    ]
    kms = [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]
    assert kms == [
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [built.ref(built.unit.key().key, "arn")],
            "Condition": {
                "StringEquals": {"kms:ViaService": "s3.eu-central-1.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket, f"{bucket}/assets/*"]},
            },
        }
    ]


def test_an_sse_s3_bucket_without_prefix_gets_no_kms_and_the_whole_bucket(plain: Built) -> None:
    bucket = plain.ref(plain.bucket.bucket, "arn")
    statements = plain.statements()
    assert not [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]
    s3 = [s for s in statements if any(a.startswith("s3:") for a in s["Action"])]
    assert s3 == [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket]},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"{bucket}/*"]},
    ]


def test_bucket_key_arn_reads_the_buckets_encryption(built: Built, plain: Built) -> None:
    from cdktf import Token

    from constructs_lib.asset_loader import bucket_key_arn

    found = bucket_key_arn(built.bucket)
    assert found is not None
    assert Token.is_unresolved(found)
    assert bucket_key_arn(plain.bucket) is None


def test_policy_mounts_and_writes_only_through_the_access_point(built: Built) -> None:
    efs = [s for s in built.statements() if any(a.startswith("elastic") for a in s["Action"])]
    assert efs == [
        {
            "Effect": "Allow",
            "Action": EFS_ACTIONS,
            "Resource": [built.ref(built.file_system.file_system, "arn")],
            "Condition": {
                "StringEquals": {
                    "elasticfilesystem:AccessPointArn": built.ref(built.access_point, "arn")
                }
            },
        }
    ]


def test_no_statement_has_a_wildcard_action(built: Built, plain: Built) -> None:
    for variant in (built, plain):
        actions = [a for s in variant.statements() for a in s["Action"]]
        assert actions
        assert not [a for a in actions if "*" in a]
        assert {a.split(":")[0] for a in actions} == {
            "logs",
            "s3",
            "elasticfilesystem",
            "ec2",
            "xray",
        } | ({"kms"} if variant is built else set())


def test_file_system_policy_grants_the_role_through_the_access_point(built: Built) -> None:
    policy = json.loads(one(built.doc, "aws_efs_file_system_policy")["policy"])
    grants = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert grants == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": built.ref(built.loader.role, "arn")},
            "Action": EFS_ACTIONS,
            "Resource": [built.ref(built.file_system.file_system, "arn")],
            "Condition": {
                "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"},
                "StringEquals": {
                    "elasticfilesystem:AccessPointArn": built.ref(built.access_point, "arn")
                },
            },
        }
    ]


# --- network --------------------------------------------------------------------------------


def test_nfs_pair_to_the_file_system_and_https_egress_only(built: Built) -> None:
    function_sg = built.ref(built.loader.security_group)
    efs_sg = built.ref(built.file_system.security_group)
    (ingress,) = resources(built.doc, SG_INGRESS).values()
    assert ingress["security_group_id"] == efs_sg
    assert ingress["referenced_security_group_id"] == function_sg
    assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (2049, 2049, "tcp")
    egress = {
        (r["from_port"], r["to_port"], r.get("referenced_security_group_id"), r.get("cidr_ipv4"))
        for r in resources(built.doc, SG_EGRESS).values()
        if r["security_group_id"] == function_sg
    }
    assert egress == {(2049, 2049, efs_sg, None), (443, 443, None, "0.0.0.0/0")}
    assert built.https_egress()[1]["description"] == "S3 over HTTPS (gateway endpoint)"


# --- the invocation -----------------------------------------------------------------------------


def test_invocation_sends_the_token_and_the_version_and_reruns_when_they_change(
    built: Built,
) -> None:
    invocation = one(built.doc, "aws_lambda_invocation")
    assert built.loader.ready is built.loader.invocation
    assert invocation["function_name"] == built.ref(built.loader.function, "function_name")
    assert json.loads(invocation["input"]) == {
        "force_token": "2024-06-01",
        "assets_version": "sha256:0123abcd",
    }
    assert invocation["triggers"] == {
        "bundle": built.loader.bundle_sha256,
        "function": built.ref(built.loader.function, "version"),
        "force_token": "2024-06-01",
        "assets_version": "sha256:0123abcd",
    }
    assert "lifecycle_scope" not in invocation  # CREATE_ONLY: a destroy invokes nothing


def test_unset_token_and_version_send_empty_strings(plain: Built) -> None:
    from apps.assetloader.loader import LoadRequest, parse_event

    invocation = one(plain.doc, "aws_lambda_invocation")
    sent = json.loads(invocation["input"])
    assert sent == {"force_token": "", "assets_version": ""}
    assert parse_event(sent) == LoadRequest()  # the handler reads them as unset: no force
    assert invocation["triggers"]["force_token"] == ""
    assert invocation["triggers"]["assets_version"] == ""


def test_invocation_waits_for_the_mount_the_rules_and_the_route_to_s3(built: Built) -> None:
    needs = set(one(built.doc, "aws_lambda_invocation")["depends_on"])
    fs = built.file_system
    network = fs.network
    for resource in (*fs.mount_targets, fs.policy, network.s3_endpoint):
        assert built.fqn(resource) in needs
    assert f"{SG_EGRESS}.{built.https_egress()[0]}" in needs
    nfs = {
        f"{type_}.{k}"
        for type_ in (SG_INGRESS, SG_EGRESS)
        for k, r in resources(built.doc, type_).items()
        if r["from_port"] == 2049
    }
    assert len(nfs) == 2
    assert nfs <= needs


def test_run_after_orders_the_invocation_after_the_uploads() -> None:
    from cdktf_cdktf_provider_aws.s3_object import S3Object

    built = build(prefix="assets/")
    upload = S3Object(
        built.unit.stack,
        "theme",
        bucket=built.bucket.bucket.id,
        key="assets/themes/dark.css",
        content="body {}",
    )
    built.loader.run_after(upload)
    doc = built.unit.synth()
    needs = one(doc, "aws_lambda_invocation")["depends_on"]
    assert f"aws_s3_object.{built.lid(upload)}" in needs
    assert built.fqn(built.file_system.mount_targets[0]) in needs  # kept, not replaced


# --- the package ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle() -> Path:
    from constructs_lib.asset_loader import BUNDLE
    from constructs_lib.migration import build_bundle

    return build_bundle(ROOT, BUNDLE)


def test_bundle_holds_the_loader_and_apps_common_only(bundle: Path, built: Built) -> None:
    names = zipfile.ZipFile(bundle).namelist()
    assert names == sorted(names)
    for needed in (
        "apps/__init__.py",
        "apps/assetloader/handler.py",
        "apps/assetloader/loader.py",
        "apps/common/config.py",
        "apps/common/errors.py",
    ):
        assert needed in names
    assert not [
        n
        for n in names
        if not n.startswith(("apps/assetloader/", "apps/common/")) and n != "apps/__init__.py"
    ]
    assert not [n for n in names if not n.endswith(".py")]  # no CA bundle, no METADATA
    assert built.loader.bundle_sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert built.function()["source_code_hash"] == built.loader.bundle_sha256


def test_bundle_is_reproducible(bundle: Path) -> None:
    from constructs_lib.asset_loader import BUNDLE
    from constructs_lib.migration import build_bundle

    again = build_bundle.__wrapped__(ROOT, BUNDLE)
    assert again != bundle
    assert again.read_bytes() == bundle.read_bytes()


def test_bundle_imports_without_site_packages_or_settings(bundle: Path) -> None:
    """Catches: a bundle missing a module the handler imports, one importing packages the
    Lambda runtime lacks, or settings read at import time."""
    check = (
        "import sys; sys.path.insert(0, sys.argv[1]); import apps.assetloader.handler as h; "
        "assert callable(h.handler); assert h.__file__.startswith(sys.argv[1]); "
        "assert 'boto3' not in sys.modules and 'pymysql' not in sys.modules"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETS_")}
    subprocess.run([sys.executable, "-I", "-S", "-c", check, str(bundle)], check=True, env=env)


# --- refused props --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("assets", "assets/"), ("assets/", "assets/"), ("a/b.c/d-1", "a/b.c/d-1/"), ("", "")],
)
def test_prefix_is_normalised_to_a_folder(
    unit_stack: UnitStack, prefix: str, expected: str
) -> None:
    assert _loader(unit_stack, prefix=prefix).prefix == expected


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prefix", "/assets", "prefix: got '/assets'"),
        ("prefix", "a//b", "prefix: got 'a//b'"),
        ("prefix", "assets//", "prefix: got 'assets//'"),
        ("prefix", "assets/*", r"prefix: got 'assets/\*'"),
        ("prefix", "as?ets", r"prefix: got 'as\?ets'"),
        ("prefix", "${var.x}", r"prefix: got '\$\{var.x\}'"),
        ("prefix", "my assets", "prefix: got 'my assets'"),
        ("prefix", "a/../b", r"prefix: got 'a/\.\./b'.*no \. or \.\. segment"),
        ("prefix", "./assets", "prefix: got './assets'"),
        ("prefix", "a" * 513, "prefix: got 'aaa"),
        ("force_token", "two words", "force_token: got 'two words'"),
        ("force_token", '"quoted"', "force_token: got"),
        ("force_token", "${x}", "force_token: got"),
        ("force_token", "x" * 257, "force_token: got"),
        ("assets_version", "-leading", "assets_version: got '-leading'"),
        ("timeout_seconds", 59, "timeout_seconds: got 59"),
        ("timeout_seconds", 901, "timeout_seconds: got 901"),
        ("timeout_seconds", True, "timeout_seconds: got True"),
    ],
)
def test_wrong_props_are_refused_before_anything_is_built(
    unit_stack: UnitStack, field: str, value: Any, message: str
) -> None:
    from constructs_lib.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"^unit/loader\.{message}"):
        _loader(unit_stack, **{field: value})
    assert "aws_lambda_function" not in unit_stack.synth().get("resource", {})


def test_a_token_version_is_accepted_as_is(unit_stack: UnitStack) -> None:
    """A version Terraform computes (a hash of an uploaded file) goes into the input and the
    triggers as its expression."""
    from cdktf import Fn

    version = Fn.filesha256("assets/theme.css")
    _loader(unit_stack, assets_version=version, force_token="2024-06-01T12:00:00Z")
    invocation = one(unit_stack.synth(), "aws_lambda_invocation")
    expression = '${filesha256("assets/theme.css")}'
    assert invocation["input"] == (
        f'{{"force_token": "2024-06-01T12:00:00Z", "assets_version": "{expression}"}}'
    )
    assert invocation["triggers"]["assets_version"] == expression


def test_another_file_systems_access_point_is_refused(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError

    other = unit_stack.file_system("other")
    foreign = other.access_point("dashboard", path="/dashboard", uid=1000, gid=1000)
    with pytest.raises(
        ConfigError, match=r"^unit/loader\.access_point: got unit/efs-other/access-point-dash"
    ):
        _loader(unit_stack, access_point=foreign)
    assert "aws_lambda_function" not in unit_stack.synth().get("resource", {})


def _loader(unit: UnitStack, **overrides: Any) -> AssetLoader:
    from constructs_lib.asset_loader import AssetLoader, AssetLoaderProps
    from constructs_lib.bucket import SecureBucket, SecureBucketProps

    fs = unit.file_system()
    point = fs.access_points.get("app") or fs.access_point("app", path="/app", uid=1000, gid=1000)
    bucket = SecureBucket(
        unit.stack, "assets", props=SecureBucketProps(bucket_name="pcp-unit-assets")
    )
    values: dict[str, Any] = {
        "naming": NAMING,
        "project_root": ROOT,
        "file_system": fs,
        "access_point": point,
        "bucket": bucket,
        **overrides,
    }
    return AssetLoader(unit.stack, "loader", props=AssetLoaderProps(**values))
