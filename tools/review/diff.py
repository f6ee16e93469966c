"""What a change does to each stack: resources added, removed, changed (attribute by
attribute), and the flags a reviewer must not miss (risky, security widening)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tools.review.model import Resource, Stack, is_on
from tools.review.posture import posture

STATEFUL = frozenset(
    {
        "aws_db_instance",
        "aws_rds_cluster",
        "aws_elasticache_replication_group",
        "aws_elasticache_serverless_cache",
        "aws_elasticache_cluster",
        "aws_efs_file_system",
        "aws_s3_bucket",
        "aws_kms_key",
        "aws_vpc",
        "aws_subnet",
        "aws_dynamodb_table",
    }
)
"""Stateful or foundational: replacing or deleting one loses data or everything in it."""

FORCE_NEW: dict[str, tuple[str, ...]] = {
    # A curated subset of terraform-provider-aws's ForceNew arguments (hashicorp/aws 6.x),
    # checked against the provider's schemas, for the types the stacks use. An argument not
    # listed is taken as updated in place. Some replace only under a condition (VPC tenancy
    # other than dedicated -> default, a Serverless engine other than redis -> valkey, a
    # security-group rule switching its kind of source); those are listed and read as "may
    # force replacement".
    "aws_db_instance": (
        "identifier", "identifier_prefix", "engine", "availability_zone", "db_name",
        "kms_key_id", "storage_encrypted", "username", "character_set_name",
        "nchar_character_set_name", "timezone", "custom_iam_instance_profile",
        "snapshot_identifier", "restore_to_point_in_time",
    ),
    "aws_db_parameter_group": ("name", "name_prefix", "family", "description"),
    "aws_db_subnet_group": ("name", "name_prefix"),
    "aws_elasticache_replication_group": (
        "replication_group_id", "at_rest_encryption_enabled", "kms_key_id", "subnet_group_name",
        "port", "data_tiering_enabled", "network_type", "global_replication_group_id",
        "snapshot_arns", "snapshot_name", "security_group_names",
    ),
    "aws_elasticache_serverless_cache": (
        "name", "engine", "kms_key_id", "subnet_ids", "major_engine_version",
        "snapshot_arns_to_restore",
    ),
    "aws_elasticache_subnet_group": ("name",),
    "aws_elasticache_user": ("user_id", "user_name"),
    "aws_s3_bucket": ("bucket", "bucket_prefix", "object_lock_enabled"),
    "aws_kms_key": (
        "customer_master_key_spec", "key_usage", "multi_region", "custom_key_store_id",
        "xks_key_id",
    ),
    "aws_vpc": ("cidr_block", "instance_tenancy", "ipv4_ipam_pool_id", "ipv4_netmask_length"),
    "aws_subnet": (
        "cidr_block", "availability_zone", "availability_zone_id", "vpc_id", "ipv6_native",
        "ipv4_ipam_pool_id", "ipv4_netmask_length", "ipv6_ipam_pool_id", "ipv6_netmask_length",
        "outpost_arn",
    ),
    "aws_security_group": ("name", "name_prefix", "description", "vpc_id"),
    "aws_lb": ("name", "name_prefix", "internal", "load_balancer_type", "customer_owned_ipv4_pool"),
    "aws_lb_target_group": (
        "name", "name_prefix", "port", "protocol", "protocol_version", "ip_address_type",
        "vpc_id", "target_type",
    ),
    "aws_nat_gateway": (
        "subnet_id", "allocation_id", "connectivity_type", "private_ip",
        "secondary_private_ip_address_count",
    ),
    "aws_ecs_task_definition": ("*",),  # revisions are immutable: any change is a new one
    "aws_cloudwatch_log_group": ("name", "name_prefix", "log_group_class"),
    "aws_secretsmanager_secret": ("name", "name_prefix"),
    "aws_iam_role": ("name", "name_prefix", "path"),
    "aws_ecr_repository": ("name", "encryption_configuration"),
    "aws_lambda_function": ("function_name", "package_type", "tenancy_config"),
    "aws_ecs_service": (
        "name", "cluster", "launch_type", "iam_role", "scheduling_strategy",
        "deployment_controller",
    ),
    "aws_service_discovery_private_dns_namespace": ("name", "vpc"),
    "aws_vpc_security_group_ingress_rule": ("security_group_id",),
    "aws_vpc_security_group_egress_rule": ("security_group_id",),
}  # fmt: skip

# Boolean settings whose true -> false (or removal) weakens the stack.
PROTECTIONS = frozenset(
    {
        "storage_encrypted",
        "deletion_protection",
        "at_rest_encryption_enabled",
        "transit_encryption_enabled",
        "enable_deletion_protection",
        "multi_az",
        "multi_az_enabled",
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
        "enable_key_rotation",
        "drop_invalid_header_fields",
        "encrypted",
        "iam_database_authentication_enabled",
    }
)
OPENINGS = frozenset({"publicly_accessible", "map_public_ip_on_launch", "assign_public_ip"})
"""Boolean settings whose false -> true exposes something."""

_REF = re.compile(r"\$\{((?:data\.)?aws_[a-z0-9_]+)\.[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class AttrChange:
    path: str
    before: Any
    after: Any
    forces_new: bool = False


@dataclass(frozen=True)
class Change:
    kind: str
    """``added``, ``removed``, ``changed``, ``replaced`` or ``renamed``."""
    address: str
    construct: str
    type: str
    attrs: tuple[AttrChange, ...] = ()
    old_address: str | None = None
    note: str = ""

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL

    @property
    def risky(self) -> bool:
        destroys = self.kind in ("removed", "replaced", "renamed")
        return destroys and self.stateful


@dataclass
class StackDiff:
    stack: str
    changes: list[Change] = field(default_factory=list)
    widening: list[str] = field(default_factory=list)
    cost_before: float | None = None
    cost_after: float | None = None

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def risky(self) -> list[Change]:
        return [c for c in self.changes if c.risky]

    @property
    def cost_delta(self) -> float | None:
        if self.cost_before is None or self.cost_after is None:
            return None
        return self.cost_after - self.cost_before


def diff_stacks(base: dict[str, Stack], head: dict[str, Stack]) -> list[StackDiff]:
    return [
        diff_stack(base.get(name) or Stack(name=name), head.get(name) or Stack(name=name))
        for name in sorted(set(base) | set(head))
    ]


def diff_stack(base: Stack, head: Stack) -> StackDiff:
    result = StackDiff(stack=head.name or base.name)
    before = {a: r for a, r in base.resources.items() if not r.data}
    after = {a: r for a, r in head.resources.items() if not r.data}
    added = [after[a] for a in sorted(set(after) - set(before))]
    removed = [before[a] for a in sorted(set(before) - set(after))]
    for old, new in _renames(removed, added):
        removed.remove(old)
        added.remove(new)
        result.changes.append(
            Change(
                "renamed",
                new.address,
                new.construct,
                new.type,
                _attr_changes(old, new),
                old_address=old.address,
                note=(
                    f"construct id changed ({old.construct} -> {new.construct}): a new Terraform "
                    "address, so Terraform destroys the old resource and creates a new one; "
                    "keep it with a `moved` block or `terraform state mv`"
                ),
            )
        )
    for res in added:
        result.changes.append(Change("added", res.address, res.construct, res.type))
    for res in removed:
        result.changes.append(Change("removed", res.address, res.construct, res.type))
    for address in sorted(set(before) & set(after)):
        attrs = _attr_changes(before[address], after[address])
        if not attrs:
            continue
        replaced = any(a.forces_new for a in attrs)
        res = after[address]
        note = (
            "an argument that cannot change in place changed: Terraform replaces it"
            if replaced
            else ""
        )
        result.changes.append(
            Change(
                "replaced" if replaced else "changed",
                address,
                res.construct,
                res.type,
                attrs,
                note=note,
            )
        )
    result.widening = _widening(base, head, result.changes)
    return result


# ------------------------------------------------------------------ attributes


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key in sorted(value):
            yield from flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _attr_changes(old: Resource, new: Resource) -> tuple[AttrChange, ...]:
    a = dict(flatten(old.attrs))
    b = dict(flatten(new.attrs))
    force = FORCE_NEW.get(new.type, ())
    changes = []
    for path in sorted(set(a) | set(b)):
        if a.get(path) != b.get(path):
            top = re.split(r"[.\[]", path, maxsplit=1)[0]
            forces = (force == ("*",) and top != "depends_on") or top in force
            changes.append(AttrChange(path, a.get(path), b.get(path), forces))
    return tuple(changes)


def _normalized(res: Resource) -> str:
    """The resource's arguments with every reference's logical id blanked, so a renamed
    construct (whose references to other renamed constructs change too) still matches."""
    return _REF.sub(r"${\1.*", json.dumps(res.attrs, sort_keys=True))


def _renames(removed: list[Resource], added: list[Resource]) -> list[tuple[Resource, Resource]]:
    pairs = []
    by_shape: dict[tuple[str, str], list[Resource]] = {}
    for res in added:
        by_shape.setdefault((res.type, _normalized(res)), []).append(res)
    for old in removed:
        candidates = by_shape.get((old.type, _normalized(old)))
        if candidates:
            pairs.append((old, candidates.pop(0)))
    return pairs


# ------------------------------------------------------------------ security widening


def _widening(base: Stack, head: Stack, changes: list[Change]) -> list[str]:
    found: list[str] = []
    was, now = posture(base), posture(head)
    old_ingress = {(i.target, i.port, i.source) for i in was.ingress}
    for rule in now.ingress:
        if (rule.target, rule.port, rule.source) not in old_ingress:
            found.append(f"new ingress: {rule.source} -> {rule.target} on {rule.port}")
    old_grants = {
        (g.principal, a, r)
        for g in was.grants
        if g.effect == "Allow"
        for a in g.actions
        for r in (g.resources or ("",))
    }
    for g in now.grants:
        if g.effect != "Allow":
            continue
        for action in g.actions:
            for resource in g.resources or ("",):
                if (g.principal, action, resource) not in old_grants:
                    target = resource or "(managed policy)"
                    found.append(f"new IAM grant: {g.principal} may {action} on {target}")
    old_entries = {(e.kind, e.construct, e.detail) for e in was.entry_points}
    for entry in now.entry_points:
        if (entry.kind, entry.construct, entry.detail) not in old_entries:
            found.append(f"new public entry point: {entry.kind} {entry.construct} ({entry.detail})")
    for change in changes:
        for attr in change.attrs:
            key = attr.path.rsplit(".", 1)[-1]
            if key in PROTECTIONS and is_on(attr.before) and not is_on(attr.after):
                found.append(
                    f"turned off: {change.construct} {attr.path} ({attr.before} -> {attr.after})"
                )
            if key in OPENINGS and not is_on(attr.before) and is_on(attr.after):
                found.append(f"made public: {change.construct} {attr.path}")
            if (
                key == "internal"
                and change.type == "aws_lb"
                and is_on(attr.before)
                and not is_on(attr.after)
            ):
                found.append(f"made public: {change.construct} is now internet-facing")
            if key in ("kms_key_id", "kms_master_key_id") and attr.before and not attr.after:
                found.append(f"encryption key removed: {change.construct} {attr.path}")
    return found
