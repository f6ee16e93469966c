"""The synthesized stacks as data: resources by address, with their construct paths.

Reads ``cdktf.out/stacks/<stack>/cdk.tf.json`` only: no credentials, no network, no state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_REF = re.compile(r"\$\{((?:data\.)?aws_[a-z0-9_]+\.[A-Za-z0-9_-]+)(?:\.[^}]*)?\}")


@dataclass(frozen=True)
class Resource:
    """One resource or data source of a stack."""

    type: str
    name: str
    """The Terraform name (CDKTF's logical id)."""
    attrs: dict[str, Any]
    """The resource's arguments as synthesized (``//`` metadata removed)."""
    path: str
    """The construct path, e.g. ``prod/database/instance``."""
    data: bool = False

    @property
    def address(self) -> str:
        prefix = "data." if self.data else ""
        return f"{prefix}{self.type}.{self.name}"

    @property
    def construct(self) -> str:
        """The construct path without the stack name: ``database/instance``."""
        return self.path.split("/", 1)[1] if "/" in self.path else self.path

    def refs(self, key: str | None = None) -> list[str]:
        """Addresses this resource refers to (in ``key`` only, when given)."""
        value = self.attrs if key is None else self.attrs.get(key)
        return list(dict.fromkeys(references(value)))


@dataclass
class Stack:
    name: str
    resources: dict[str, Resource] = field(default_factory=dict)
    """By address (``aws_vpc.network_vpc_ABC``, ``data.aws_caller_identity.x``)."""
    region: str | None = None

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types and not r.data]

    def managed(self) -> Iterator[Resource]:
        """Managed resources (not data sources)."""
        return (r for r in self.resources.values() if not r.data)

    def get(self, address: str) -> Resource | None:
        return self.resources.get(address)

    def target(self, value: Any) -> Resource | None:
        """The first resource that ``value`` (an attribute value) refers to."""
        for address in references(value):
            found = self.resources.get(address)
            if found is not None:
                return found
        return None


def is_on(value: Any) -> bool:
    """A synthesized boolean: CDKTF writes some as JSON booleans, some as "true"/"false"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def cache_nodes(attrs: dict[str, Any]) -> str:
    """How many nodes an ElastiCache replication group or cluster has: ``3``, or for a
    sharded (cluster-mode) group ``2 shards x 3`` (a primary and its replicas per shard)."""
    if "num_node_groups" in attrs:
        per_shard = attrs.get("replicas_per_node_group", 0)
        per_shard = per_shard + 1 if isinstance(per_shard, int) else f"{per_shard}+1"
        return f"{attrs['num_node_groups']} shards x {per_shard}"
    return str(attrs.get("num_cache_clusters") or attrs.get("num_cache_nodes") or 1)


def references(value: Any) -> Iterator[str]:
    """Every ``${type.name...}`` address inside a value (strings, lists, dicts)."""
    if isinstance(value, str):
        for match in _REF.finditer(value):
            yield match.group(1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def parse_stack(name: str, document: dict[str, Any]) -> Stack:
    stack = Stack(name=name)
    for kind, data in (("resource", False), ("data", True)):
        for type_, by_name in document.get(kind, {}).items():
            for logical, body in by_name.items():
                attrs = {k: v for k, v in body.items() if k != "//"}
                path = body.get("//", {}).get("metadata", {}).get("path", f"{name}/{logical}")
                res = Resource(type=type_, name=logical, attrs=attrs, path=path, data=data)
                stack.resources[res.address] = res
    providers = document.get("provider", {}).get("aws", [])
    for provider in providers if isinstance(providers, list) else [providers]:
        if "alias" not in provider and "region" in provider:
            stack.region = provider["region"]
    return stack


def load_stacks(outdir: Path) -> dict[str, Stack]:
    """Every stack under ``<outdir>/stacks`` (``outdir`` is CDKTF's ``cdktf.out``)."""
    stacks: dict[str, Stack] = {}
    for file in sorted((outdir / "stacks").glob("*/cdk.tf.json")):
        name = file.parent.name
        stacks[name] = parse_stack(name, json.loads(file.read_text(encoding="utf-8")))
    return stacks


_SG_KEYS = ("security_groups", "vpc_security_group_ids", "security_group_ids")
_SG_RULES = frozenset(
    {
        "aws_security_group",
        "aws_vpc_security_group_ingress_rule",
        "aws_vpc_security_group_egress_rule",
        "aws_default_security_group",
    }
)


def attached_security_groups(resource: Resource) -> list[str]:
    """The security groups a resource is attached to (addresses): a load balancer's, an
    ECS service's network configuration, a Lambda's VPC config, a database's, a cache's."""
    attrs = resource.attrs
    values: list[Any] = [attrs.get(key) for key in _SG_KEYS]
    for block in ("network_configuration", "vpc_config"):
        nested = attrs.get(block)
        for item in nested if isinstance(nested, list) else [nested]:
            if isinstance(item, dict):
                values += [item.get(key) for key in _SG_KEYS]
    return [a for a in dict.fromkeys(references(values)) if a.startswith("aws_security_group.")]


def security_group_owners(stack: Stack) -> dict[str, Resource]:
    """Security group address -> the resource that uses it (load balancer, ECS service,
    database, cache, Lambda function, VPC endpoint, CloudFront VPC origin)."""
    owners: dict[str, Resource] = {}
    for res in stack.managed():
        if res.type in _SG_RULES:
            continue
        for address in attached_security_groups(res):
            owners.setdefault(address, res)
    return owners


def owner_label(stack: Stack, owners: dict[str, Resource], value: Any) -> str:
    """A readable name for a security group reference: its owner's construct path, else
    the security group's own construct path; data sources keep their address."""
    for address in references(value):
        owner = owners.get(address)
        if owner is not None:
            return owner.construct
        found = stack.get(address)
        if found is not None:
            return found.construct
        return address
    return str(value)


def readable(stack: Stack, text: str) -> str:
    """``${aws_x.logical.arn}:*`` -> ``<construct path>.arn:*``: references by construct path."""

    def name(match: re.Match[str]) -> str:
        found = stack.get(match.group(1))
        rest = match.group(0)[len(match.group(1)) + 2 : -1]
        return (found.construct if found else match.group(1)) + rest

    return _REF.sub(name, text)
