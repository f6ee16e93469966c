"""Security posture of one stack: entry points, ingress, IAM, and the data stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tools.review.model import (
    Resource,
    Stack,
    cache_nodes,
    is_on,
    owner_label,
    readable,
    security_group_owners,
)

ANYWHERE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class EntryPoint:
    address: str
    construct: str
    kind: str
    """``CloudFront``, ``ALB``, ``open security group``, ``public bucket``."""
    detail: str


@dataclass(frozen=True)
class Ingress:
    target: str
    """What receives: the security group owner's construct path."""
    port: str
    source: str
    """A construct path, a CIDR or a prefix list."""
    description: str
    address: str

    @property
    def public(self) -> bool:
        return self.source in ANYWHERE


@dataclass(frozen=True)
class Grant:
    principal: str
    """The role's construct path."""
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    source: str
    """The policy's address (inline policy) or the managed policy ARN."""

    @property
    def wildcard(self) -> bool:
        """An action pattern (``s3:*``, ``*``) or any resource (``*``). A resource pattern
        under one named resource (a log group's ``<arn>:*`` streams) is not flagged."""
        return any("*" in a for a in self.actions) or "*" in self.resources


@dataclass(frozen=True)
class DataStore:
    address: str
    construct: str
    kind: str
    encryption: str
    multi_az: str
    backups: str
    deletion_protection: str
    tls: str


@dataclass(frozen=True)
class Posture:
    stack: str
    entry_points: tuple[EntryPoint, ...]
    ingress: tuple[Ingress, ...]
    grants: tuple[Grant, ...]
    data_stores: tuple[DataStore, ...]

    @property
    def wildcards(self) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if g.wildcard and g.effect == "Allow")


def posture(stack: Stack) -> Posture:
    owners = security_group_owners(stack)
    ingress = tuple(_ingress(stack, owners))
    return Posture(
        stack=stack.name,
        entry_points=tuple(_entry_points(stack, ingress)),
        ingress=ingress,
        grants=tuple(_grants(stack)),
        data_stores=tuple(_data_stores(stack)),
    )


# ------------------------------------------------------------------ entry points


def _entry_points(stack: Stack, ingress: tuple[Ingress, ...]) -> list[EntryPoint]:
    found: list[EntryPoint] = []
    for dist in stack.of_type("aws_cloudfront_distribution"):
        aliases = dist.attrs.get("aliases") or []
        waf = "with WAF" if dist.attrs.get("web_acl_id") else "no WAF"
        name = ", ".join(aliases) if aliases else "its cloudfront.net name"
        found.append(EntryPoint(dist.address, dist.construct, "CloudFront", f"{name}; {waf}"))
    for lb in stack.of_type("aws_lb"):
        if not is_on(lb.attrs.get("internal")):
            found.append(EntryPoint(lb.address, lb.construct, "ALB", "internet-facing"))
    for rule in ingress:
        if rule.public:
            found.append(
                EntryPoint(
                    rule.address,
                    rule.target,
                    "open security group",
                    f"{rule.port} from {rule.source}",
                )
            )
    for policy in stack.of_type("aws_s3_bucket_policy"):
        for statement in _statements(policy.attrs.get("policy")):
            public = statement.get("Effect") == "Allow" and _principal(statement) == "*"
            if public and not statement.get("Condition"):
                found.append(
                    EntryPoint(
                        policy.address,
                        policy.construct,
                        "public bucket",
                        "Allow to * without a condition",
                    )
                )
    return found


# ------------------------------------------------------------------ ingress


def _ingress(stack: Stack, owners: dict[str, Resource]) -> list[Ingress]:
    rules: list[Ingress] = []
    for rule in stack.of_type("aws_vpc_security_group_ingress_rule"):
        a = rule.attrs
        target = owner_label(stack, owners, a.get("security_group_id"))
        if a.get("referenced_security_group_id"):
            source = owner_label(stack, owners, a["referenced_security_group_id"])
        elif a.get("prefix_list_id"):
            found = stack.target(a["prefix_list_id"])
            source = f"prefix list {found.construct if found else a['prefix_list_id']}"
        else:
            source = str(a.get("cidr_ipv4") or a.get("cidr_ipv6") or "?")
        rules.append(Ingress(target, _port(a), source, str(a.get("description", "")), rule.address))
    for sg in stack.of_type("aws_security_group"):  # inline rules, if any
        for inline in sg.attrs.get("ingress") or []:
            for cidr in inline.get("cidr_blocks") or []:
                rules.append(
                    Ingress(
                        sg.construct,
                        _port(inline),
                        str(cidr),
                        str(inline.get("description", "")),
                        sg.address,
                    )
                )
    return sorted(rules, key=lambda r: (r.target, r.port, r.source))


def _port(a: dict[str, Any]) -> str:
    proto = str(a.get("ip_protocol") or a.get("protocol") or "tcp")
    if proto == "-1":
        return "all traffic"
    low, high = a.get("from_port"), a.get("to_port")
    ports = f"{low}" if low == high else f"{low}-{high}"
    return f"{proto}/{ports}"


# ------------------------------------------------------------------ IAM


def _grants(stack: Stack) -> list[Grant]:
    grants: list[Grant] = []
    for policy in stack.of_type("aws_iam_role_policy"):
        role = stack.target(policy.attrs.get("role"))
        principal = role.construct if role else str(policy.attrs.get("role"))
        for st in _statements(policy.attrs.get("policy")):
            grants.append(
                Grant(
                    principal,
                    str(st.get("Effect", "Allow")),
                    _list(st.get("Action")),
                    tuple(readable(stack, r) for r in _list(st.get("Resource"))),
                    policy.address,
                )
            )
    for attachment in stack.of_type("aws_iam_role_policy_attachment"):
        role = stack.target(attachment.attrs.get("role"))
        principal = role.construct if role else str(attachment.attrs.get("role"))
        arn = str(attachment.attrs.get("policy_arn"))
        grants.append(Grant(principal, "Allow", (f"(managed policy) {arn}",), (), arn))
    return sorted(grants, key=lambda g: (g.principal, g.source, g.actions))


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement", [])
    return [
        s
        for s in (statements if isinstance(statements, list) else [statements])
        if isinstance(s, dict)
    ]


def _principal(statement: dict[str, Any]) -> str:
    principal = statement.get("Principal")
    if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
        return "*"
    return json.dumps(principal, sort_keys=True)


def _list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


# ------------------------------------------------------------------ data stores


def _data_stores(stack: Stack) -> list[DataStore]:
    return [
        *_databases(stack),
        *_replication_groups(stack),
        *_serverless_caches(stack),
        *_buckets(stack),
    ]


def _databases(stack: Stack) -> Iterator[DataStore]:
    tls_params = {
        str(p.get("name")): str(p.get("value"))
        for group in stack.of_type("aws_db_parameter_group")
        for p in group.attrs.get("parameter") or []
    }
    secure = tls_params.get("require_secure_transport") in ("1", "ON")
    for db in stack.of_type("aws_db_instance"):
        a = db.attrs
        yield DataStore(
            db.address,
            db.construct,
            f"RDS {a.get('engine')} {a.get('engine_version')} {a.get('instance_class')}",
            encryption=_encryption(stack, a, "storage_encrypted"),
            multi_az=_yes_no(a.get("multi_az")),
            backups=f"{a.get('backup_retention_period', 0)} days",
            deletion_protection=_yes_no(a.get("deletion_protection")),
            tls="required" if secure else "optional",
        )


def _replication_groups(stack: Stack) -> Iterator[DataStore]:
    for rg in stack.of_type("aws_elasticache_replication_group"):
        a = rg.attrs
        yield DataStore(
            rg.address,
            rg.construct,
            f"ElastiCache {a.get('engine')} {a.get('engine_version')} "
            f"{cache_nodes(a)} x {a.get('node_type')}",
            encryption=_encryption(stack, a, "at_rest_encryption_enabled"),
            multi_az=_yes_no(a.get("multi_az_enabled")),
            backups=f"{a.get('snapshot_retention_limit', 0)} days",
            deletion_protection="n/a (final snapshot)"
            if a.get("final_snapshot_identifier")
            else "no",
            tls="required" if is_on(a.get("transit_encryption_enabled")) else "off",
        )


def _serverless_caches(stack: Stack) -> Iterator[DataStore]:
    for sc in stack.of_type("aws_elasticache_serverless_cache"):
        a = sc.attrs
        yield DataStore(
            sc.address,
            sc.construct,
            f"ElastiCache Serverless {a.get('engine')} {a.get('major_engine_version')}",
            encryption=_kms(stack, a),
            multi_az="yes (Serverless spans AZs)",
            backups=f"{a.get('snapshot_retention_limit', 0)} days",
            deletion_protection="no",
            tls="required (Serverless)",
        )


def _buckets(stack: Stack) -> Iterator[DataStore]:
    encrypted = {
        str(b): rule
        for sse in stack.of_type("aws_s3_bucket_server_side_encryption_configuration")
        for b in sse.refs("bucket")
        for rule in sse.attrs.get("rule") or [{}]
    }
    versioned = {
        b
        for v in stack.of_type("aws_s3_bucket_versioning")
        if (v.attrs.get("versioning_configuration") or {}).get("status") == "Enabled"
        for b in v.refs("bucket")
    }
    for bucket in stack.of_type("aws_s3_bucket"):
        sse = encrypted.get(bucket.address)
        default = (sse or {}).get("apply_server_side_encryption_by_default") or {}
        algorithm = str(default.get("sse_algorithm", "SSE-S3 (AWS default)"))
        key = stack.target(default.get("kms_master_key_id"))
        yield DataStore(
            bucket.address,
            bucket.construct,
            "S3 bucket",
            encryption=f"{algorithm} {key.construct}" if key else algorithm,
            multi_az="yes (S3)",
            backups="versioning" if bucket.address in versioned else "none",
            deletion_protection="no"
            if is_on(bucket.attrs.get("force_destroy"))
            else "not force_destroy",
            tls="see bucket policy",
        )


def _yes_no(value: Any) -> str:
    return "yes" if is_on(value) else "no"


def _encryption(stack: Stack, attrs: dict[str, Any], enabled: str) -> str:
    """The key that encrypts a store at rest, when ``attrs[enabled]`` turns encryption on."""
    return _kms(stack, attrs) if is_on(attrs.get(enabled)) else "OFF"


def _kms(stack: Stack, attrs: dict[str, Any]) -> str:
    key = stack.target(attrs.get("kms_key_id"))
    if key is not None:
        return f"KMS {key.construct}"
    return "AWS-owned key" if not attrs.get("kms_key_id") else f"KMS {attrs['kms_key_id']}"
