"""The architecture of a synthesized stack as an SVG diagram (Graphviz), from its JSON alone.

Not a resource graph: resources are grouped by tier and Availability Zone, and only the
ones a reader of the architecture needs are drawn.

* an **edge** cluster: viewers, CloudFront distributions, WAF web ACLs, S3 site buckets;
* one cluster per **VPC** holding one cluster per **AZ** (from ``aws_subnet``) with its
  public and private subnets (labelled with their CIDR) and NAT gateways, the internet
  gateway, VPC endpoints and CloudFront VPC origins;
* inside the VPC an **application tier** (ALB, ECS services with their Cloud Map names,
  Lambda functions attached to the VPC) and a **data tier** (RDS, ElastiCache).

Edges: a subnet's default route (``0.0.0.0/0``) to its NAT or internet gateway, how
CloudFront reaches its origins, and every security-group ingress rule, drawn from the
resource owning the source group to the resource owning the target group and labelled
``port/protocol``. IAM, log groups, alarms, secrets, KMS keys and the rules themselves
are not nodes.

A stack without a VPC (``bootstrap``) gets a small diagram of its state resources (S3
buckets, DynamoDB tables, KMS keys) and a note listing what else it holds.

Every node's SVG ``id`` is its resource address (``aws_lb.load-balancer_alb_15AADC07``; a
few stand-ins: ``internet:viewers``, ``source:cidr:<cidr>``, ``note:contents``), its
tooltip its construct path, its ``class`` its role (``app``, ``data``, ``subnet-private``
...). An edge's ``id`` is ``<tail id>-><head id>`` and its ``class`` names its kinds
(``sg``, ``route``, ``origin``, ``attach``). AZ clusters have the ``id`` ``az-<zone>``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import graphviz  # type: ignore[import-untyped]

from tools.review.model import (
    Resource,
    Stack,
    attached_security_groups,
    cache_nodes,
    references,
)

__all__ = ["diagram", "diagram_source"]

ANYWHERE = "0.0.0.0/0"
VIEWERS = "internet:viewers"
"""The id of the node standing for CloudFront's viewers."""

_FONT = "Helvetica"
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

_CLUSTER_STYLE: dict[str, dict[str, str]] = {
    "edge": {"pencolor": "#d68910", "fillcolor": "#fef5e7"},
    "vpc": {"pencolor": "#1e8449", "fillcolor": "#f4fbf6"},
    "az": {"pencolor": "#7f8c8d", "fillcolor": "#ffffff", "style": "rounded,dashed,filled"},
    "app": {"pencolor": "#2874a6", "fillcolor": "#eef6fc"},
    "data": {"pencolor": "#6c3483", "fillcolor": "#f6effa"},
    "state": {"pencolor": "#7f8c8d", "fillcolor": "#f8f9f9"},
}
_NODE_STYLE: dict[str, dict[str, str]] = {
    "edge-service": {"fillcolor": "#fdebd0"},
    "external": {"fillcolor": "#ffffff", "shape": "box", "style": "rounded,dashed"},
    "subnet-public": {"fillcolor": "#d5f5e3"},
    "subnet-private": {"fillcolor": "#d6eaf8"},
    "subnet-isolated": {"fillcolor": "#eaeded"},
    "gateway": {"fillcolor": "#fcf3cf", "shape": "hexagon", "style": "filled"},
    "app": {"fillcolor": "#d6eaf8"},
    "function": {"fillcolor": "#ebf5fb", "fontsize": "8", "height": "0.3"},
    "data": {"fillcolor": "#e8daef", "shape": "cylinder", "style": "filled"},
    "security-group": {"fillcolor": "#fadbd8", "style": "rounded,filled,dashed"},
    "state": {"fillcolor": "#f2f3f4"},
    "note": {"shape": "note", "style": "filled", "fillcolor": "#fffde7", "fontsize": "9"},
}
_EDGE_STYLE: dict[str, dict[str, str]] = {
    "sg": {"color": "#b03a2e", "fontcolor": "#b03a2e", "penwidth": "1.4"},
    "origin": {"color": "#1f618d", "fontcolor": "#1f618d"},
    "route": {"color": "#707b7c", "fontcolor": "#707b7c"},
    "attach": {"color": "#909497", "style": "dashed", "arrowhead": "none"},
}
_EDGE_PRIORITY = ("sg", "origin", "route", "attach")
_LEGEND = {
    "sg": "red: security-group ingress (port/protocol)",
    "route": "grey: default route 0.0.0.0/0",
    "origin": "blue: viewers and CloudFront origins",
    "attach": "dashed: placement, protection, encryption",
}


def diagram(stack: Stack) -> str:
    """The stack's architecture as an SVG document."""
    svg = _Builder(stack).graph().pipe(format="svg", encoding="utf-8")
    return str(svg)


def diagram_source(stack: Stack) -> str:
    """The DOT text :func:`diagram` renders."""
    return str(_Builder(stack).graph().source)


# -- the model of the drawing ----------------------------------------------------------


@dataclass
class _Cluster:
    key: str
    label: str
    style: str
    parent: str | None
    id: str


@dataclass
class _Node:
    id: str
    label: str
    style: str
    cluster: str | None
    tooltip: str


@dataclass
class _Edge:
    tail: str
    head: str
    kinds: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Rule:
    """One ingress permission: who may reach ``target`` (a security group address)."""

    target: str
    ports: str
    groups: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    """``(kind, value)`` of CIDR and prefix-list sources: ``("cidr", "10.0.0.0/8")``."""


class _Builder:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.clusters: dict[str, _Cluster] = {}
        self.nodes: dict[str, _Node] = {}
        self.edges: dict[tuple[str, str], _Edge] = {}
        self.vpcs = sorted(stack.of_type("aws_vpc"), key=lambda r: r.address)
        self._pending_attach: list[tuple[str, str]] = []
        """(web ACL, protected resource) pairs, drawn once the protected node exists."""

    # -- assembling ------------------------------------------------------------------

    def graph(self) -> Any:
        self._edge_tier()
        self._network()
        self._application_tier()
        self._data_tier()
        self._origins()
        self._security_group_edges()
        if not self.vpcs:
            self._state()
        if not self.nodes:
            self._note("no resources")
        return self._render()

    def _render(self) -> Any:
        stack = self.stack
        title = f"{stack.name}" + (f" ({stack.region})" if stack.region else "")
        drawn = sum(1 for n in self.nodes.values() if n.id in stack.resources)
        total = sum(1 for _ in stack.managed())
        drawn_kinds = {kind for edge in self.edges.values() for kind in edge.kinds}
        legend = "   ".join(text for kind, text in _LEGEND.items() if kind in drawn_kinds)
        graph = graphviz.Digraph(
            name=stack.name,
            graph_attr={
                "label": f"{title}: {drawn} of {total} resources drawn\\n{legend}",
                "labelloc": "t",
                "fontname": _FONT,
                "fontsize": "14",
                "rankdir": "TB",
                "newrank": "true",
                "compound": "true",
                "nodesep": "0.3",
                "ranksep": "0.45",
                "id": f"stack:{stack.name}",
            },
            node_attr={
                "shape": "box",
                "style": "rounded,filled",
                "fontname": _FONT,
                "fontsize": "10",
                "margin": "0.12,0.05",
            },
            edge_attr={"fontname": _FONT, "fontsize": "8", "arrowsize": "0.7"},
        )
        children: dict[str | None, list[_Cluster]] = {}
        for cluster in self.clusters.values():
            children.setdefault(cluster.parent, []).append(cluster)
        members: dict[str | None, list[_Node]] = {}
        for node in self.nodes.values():
            members.setdefault(node.cluster, []).append(node)
        self._emit(graph, None, children, members)
        for edge in self.edges.values():
            kinds = [k for k in _EDGE_PRIORITY if k in edge.kinds]
            attrs = dict(_EDGE_STYLE.get(kinds[0], {})) if kinds else {}
            label = "\\n".join(edge.labels)
            attrs.update(
                id=f"{edge.tail}->{edge.head}",
                **{"class": " ".join(kinds)},
                tooltip=" / ".join(edge.labels) or " ".join(kinds),
            )
            if label:
                attrs["label"] = label
            graph.edge(_name(edge.tail), _name(edge.head), **attrs)
        return graph

    def _emit(
        self,
        graph: Any,
        parent: str | None,
        children: dict[str | None, list[_Cluster]],
        members: dict[str | None, list[_Node]],
    ) -> None:
        # Cosmetic: AZ clusters are written after the tiers and last AZ first, the order in
        # which dot (newrank) places them a, b, c from the left.
        ordered = sorted(
            children.get(parent, []),
            key=lambda c: c.label if c.style == "az" else "",
            reverse=True,
        )
        for cluster in sorted(ordered, key=lambda c: c.style == "az"):
            with graph.subgraph(name=f"cluster_{_name(cluster.key)}") as sub:
                attrs = {"style": "rounded,filled", **_CLUSTER_STYLE.get(cluster.style, {})}
                sub.attr(
                    label=_escape(cluster.label),
                    id=cluster.id,
                    fontname=_FONT,
                    fontsize="11",
                    labeljust="l",
                    **{"class": f"cluster-{cluster.style}"},
                    **attrs,
                )
                self._emit(sub, cluster.key, children, members)
        for node in members.get(parent, []):
            attrs = dict(_NODE_STYLE.get(node.style, {}))
            graph.node(
                _name(node.id),
                label=node.label,
                id=node.id,
                tooltip=node.tooltip,
                **{"class": node.style},
                **attrs,
            )

    # -- clusters, nodes and edges -------------------------------------------------------

    def _cluster(self, key: str, label: str, style: str, parent: str | None, id_: str) -> str:
        if key not in self.clusters:
            self.clusters[key] = _Cluster(key, label, style, parent, id_)
        return key

    def _node(
        self,
        id_: str,
        lines: Iterable[str],
        style: str,
        cluster: str | None,
        tooltip: str | None = None,
    ) -> str:
        if id_ not in self.nodes:
            resource = self.stack.resources.get(id_)
            tip = tooltip or (resource.construct if resource else id_)
            label = "\\n".join(_escape(line) for line in lines if line)
            self.nodes[id_] = _Node(id_, label, style, cluster, tip)
        return id_

    def _edge(self, tail: str, head: str, kind: str, label: str = "") -> None:
        edge = self.edges.setdefault((tail, head), _Edge(tail, head))
        if kind not in edge.kinds:
            edge.kinds.append(kind)
        if label and _escape(label) not in edge.labels:
            edge.labels.append(_escape(label))

    def _note(self, text: str) -> None:
        """A note node listing ``text``'s lines, left-aligned."""
        node = self._node("note:contents", [], "note", None, tooltip=text)
        self.nodes[node].label = "".join(_escape(line) + "\\l" for line in text.split("\n"))

    def _edge_cluster(self) -> str:
        return self._cluster("edge", "Edge (global): CloudFront and WAF", "edge", None, "tier-edge")

    def _vpc_cluster(self, vpc: str) -> str:
        resource = self.stack.resources[vpc]
        label = f"VPC {_tag_name(resource)} {_text(resource.attrs.get('cidr_block'))}"
        return self._cluster(f"vpc:{vpc}", label.strip(), "vpc", None, f"vpc:{vpc}")

    def _az_cluster(self, vpc: str, az: str) -> str:
        parent = self._vpc_cluster(vpc)
        id_ = f"az-{az}" if len(self.vpcs) <= 1 else f"az-{az}-{vpc}"
        return self._cluster(f"az:{vpc}:{az}", f"AZ {az}", "az", parent, id_)

    def _tier_cluster(self, tier: str, vpc: str | None) -> str:
        parent = self._vpc_cluster(vpc) if vpc else None
        if tier == "app":
            label = "Application tier"
            clusters = [_text(c.attrs.get("name")) for c in self._of_type("aws_ecs_cluster")]
            namespaces = [
                _text(n.attrs.get("name"))
                for n in self._of_type("aws_service_discovery_private_dns_namespace")
            ]
            if clusters:
                label += f": ECS cluster {', '.join(clusters)}"
            if namespaces:
                label += f", Cloud Map {', '.join(namespaces)}"
        else:
            label = "Data tier"
        key = f"{tier}:{vpc or ''}"
        return self._cluster(key, label, tier, parent, f"tier-{tier}" + (f"-{vpc}" if vpc else ""))

    # -- the edge tier ---------------------------------------------------------------------

    def _edge_tier(self) -> None:
        for acl in self._of_type("aws_wafv2_web_acl"):
            rules = len(_blocks(acl.attrs.get("rule")))
            scope = _text(acl.attrs.get("scope")) or "REGIONAL"
            self._node(
                acl.address,
                [f"WAF web ACL {_text(acl.attrs.get('name'))}", f"{scope}, {rules} rules"],
                "edge-service",
                self._edge_cluster(),
            )
        for dist in self._of_type("aws_cloudfront_distribution"):
            attrs = dist.attrs
            aliases = ", ".join(_text(a) for a in attrs.get("aliases") or [])
            self._node(
                dist.address,
                [
                    "CloudFront distribution",
                    aliases or _text(attrs.get("comment")),
                    " ".join(_text(attrs.get(k)) for k in ("price_class", "http_version")),
                ],
                "edge-service",
                self._edge_cluster(),
            )
            self._node(VIEWERS, ["Viewers (Internet)"], "external", None, tooltip="viewers")
            protocol = _text(
                _first(attrs.get("default_cache_behavior")).get("viewer_protocol_policy")
            )
            self._edge(VIEWERS, dist.address, "origin", protocol or "HTTP(S)")
            web_acl = self.stack.target(attrs.get("web_acl_id"))
            if web_acl is not None and web_acl.address in self.nodes:
                self._edge(web_acl.address, dist.address, "attach", "protects")
            for origin in _blocks(attrs.get("origin")):
                bucket = self.stack.target(origin.get("domain_name"))
                if bucket is not None and bucket.type == "aws_s3_bucket":
                    self._node(
                        bucket.address,
                        ["S3 site bucket", _text(bucket.attrs.get("bucket"))],
                        "edge-service",
                        self._edge_cluster(),
                    )
        for association in self._of_type("aws_wafv2_web_acl_association"):
            web_acl = self.stack.target(association.attrs.get("web_acl_arn"))
            protected = self.stack.target(association.attrs.get("resource_arn"))
            if web_acl is not None and protected is not None and web_acl.address in self.nodes:
                self._pending_attach.append((web_acl.address, protected.address))

    def _origins(self) -> None:
        """CloudFront's origins: the site bucket, VPC origins, and other drawn resources."""
        for tail, head in self._pending_attach:
            if head in self.nodes:
                self._edge(tail, head, "attach", "protects")
        for vpc_origin in self._of_type("aws_cloudfront_vpc_origin"):
            config = _first(vpc_origin.attrs.get("vpc_origin_endpoint_config"))
            target = self.stack.target(config.get("arn"))
            vpc = self._vpc_of(target) if target is not None else None
            self._node(
                vpc_origin.address,
                [
                    "CloudFront VPC origin",
                    _text(config.get("name")),
                    _text(config.get("origin_protocol_policy")),
                ],
                "edge-service",
                self._vpc_cluster(vpc) if vpc else self._edge_cluster(),
            )
            if target is not None and target.address in self.nodes:
                self._edge(vpc_origin.address, target.address, "origin", "endpoint")
        for dist in self._of_type("aws_cloudfront_distribution"):
            patterns = _path_patterns(dist.attrs)
            for origin in _blocks(dist.attrs.get("origin")):
                origin_id = _text(origin.get("origin_id"))
                via = self.stack.target(
                    _first(origin.get("vpc_origin_config")).get("vpc_origin_id")
                )
                target = via or self.stack.target(origin.get("domain_name"))
                if target is None or target.address not in self.nodes:
                    continue
                label = f"{origin_id}: {', '.join(patterns.get(origin_id, ['(unused)']))}"
                if origin.get("origin_access_control_id"):
                    label += " (OAC)"
                self._edge(dist.address, target.address, "origin", label)

    # -- the network -----------------------------------------------------------------------

    def _network(self) -> None:
        stack = self.stack
        for each in self.vpcs:
            self._vpc_cluster(each.address)
        default_route = self._default_routes()
        nat_of_subnet: dict[str, list[Resource]] = {}
        for nat in self._of_type("aws_nat_gateway"):
            subnet = stack.target(nat.attrs.get("subnet_id"))
            nat_of_subnet.setdefault(subnet.address if subnet else "", []).append(nat)
        subnets = sorted(
            self._of_type("aws_subnet"),
            key=lambda s: (
                _text(s.attrs.get("availability_zone")),
                _tier(s, default_route) != "public",
                s.address,
            ),
        )
        for subnet in subnets:
            vpc = self._vpc_address(subnet.attrs.get("vpc_id"))
            if vpc is None:
                continue
            az = _text(subnet.attrs.get("availability_zone")) or "unknown AZ"
            cluster = self._az_cluster(vpc, az)
            tier = _tier(subnet, default_route)
            self._node(
                subnet.address,
                [f"{tier} subnet", _text(subnet.attrs.get("cidr_block")), _tag_name(subnet)],
                f"subnet-{tier}",
                cluster,
            )
            for nat in nat_of_subnet.get(subnet.address, []):
                public_ip = "Elastic IP" if nat.attrs.get("allocation_id") else ""
                kind = _text(nat.attrs.get("connectivity_type")) or "public"
                self._node(
                    nat.address,
                    ["NAT gateway", _tag_name(nat), f"{kind}, {public_ip}".strip(", ")],
                    "gateway",
                    cluster,
                )
                self._edge(nat.address, subnet.address, "attach", "in")
        for igw in self._of_type("aws_internet_gateway"):
            vpc = self._vpc_address(igw.attrs.get("vpc_id"))
            if vpc is not None:
                self._node(
                    igw.address,
                    ["Internet gateway", _tag_name(igw)],
                    "gateway",
                    self._vpc_cluster(vpc),
                )
        for subnet in subnets:
            route = default_route.get(subnet.address)
            if subnet.address in self.nodes and route is not None and route.address in self.nodes:
                self._edge(subnet.address, route.address, "route", ANYWHERE)
        for endpoint in self._of_type("aws_vpc_endpoint"):
            vpc = self._vpc_address(endpoint.attrs.get("vpc_id"))
            if vpc is None:
                continue
            service = _text(endpoint.attrs.get("service_name")).rsplit(".", 1)[-1]
            kind = _text(endpoint.attrs.get("vpc_endpoint_type")) or "Gateway"
            tables = len(endpoint.refs("route_table_ids"))
            where = f"{tables} route tables" if tables else _azs(self._subnets_of(endpoint))
            self._node(
                endpoint.address,
                [f"VPC endpoint {service}", f"{kind}, {where}".strip(", ")],
                "function",
                self._vpc_cluster(vpc),
            )

    def _default_routes(self) -> dict[str, Resource]:
        """Each subnet's ``0.0.0.0/0`` target (NAT or internet gateway), by subnet address."""
        stack = self.stack
        by_table: dict[str, Resource] = {}
        for route_table in self._of_type("aws_route_table"):
            for block in _blocks(route_table.attrs.get("route")):
                inline = _route_target(stack, block)
                if block.get("cidr_block") == ANYWHERE and inline is not None:
                    by_table[route_table.address] = inline
        for route in self._of_type("aws_route"):
            if route.attrs.get("destination_cidr_block") != ANYWHERE:
                continue
            table = stack.target(route.attrs.get("route_table_id"))
            target = _route_target(stack, route.attrs)
            if table is not None and target is not None:
                by_table[table.address] = target
        out: dict[str, Resource] = {}
        for association in self._of_type("aws_route_table_association"):
            subnet = stack.target(association.attrs.get("subnet_id"))
            table = stack.target(association.attrs.get("route_table_id"))
            if subnet is not None and table is not None and table.address in by_table:
                out[subnet.address] = by_table[table.address]
        return out

    # -- the application and data tiers --------------------------------------------------

    def _application_tier(self) -> None:
        for lb in self._of_type("aws_lb"):
            attrs = lb.attrs
            kind = {"network": "NLB", "gateway": "GWLB"}.get(
                _text(attrs.get("load_balancer_type")), "ALB"
            )
            scheme = "internal" if attrs.get("internal") in (True, "true") else "internet-facing"
            listeners = sorted(
                _text(listener.attrs.get("protocol") or "TCP")
                + f":{_text(listener.attrs.get('port'))}"
                for listener in self._of_type("aws_lb_listener")
                if lb.address in listener.refs("load_balancer_arn")
            )
            self._node(
                lb.address,
                [
                    f"{kind} {_text(attrs.get('name'))}",
                    f"{scheme}" + (f", listeners {' '.join(listeners)}" if listeners else ""),
                    _azs(self._subnets_of(lb)),
                ],
                "app",
                self._tier_cluster("app", self._vpc_of(lb)),
            )
        for service in self._of_type("aws_ecs_service"):
            attrs = service.attrs
            launch = _text(attrs.get("launch_type")) or ", ".join(
                _text(s.get("capacity_provider"))
                for s in _blocks(attrs.get("capacity_provider_strategy"))
            )
            desired = attrs.get("desired_count")
            self._node(
                service.address,
                [
                    f"ECS service {_text(attrs.get('name'))}",
                    self._cloud_map_name(service),
                    ", ".join(
                        p
                        for p in (launch, f"desired {desired}" if desired is not None else "")
                        if p
                    ),
                    _azs(self._subnets_of(service)),
                ],
                "app",
                self._tier_cluster("app", self._vpc_of(service)),
            )
        for function in self._of_type("aws_lambda_function"):
            config = _first(function.attrs.get("vpc_config"))
            if not list(references(config.get("subnet_ids"))):
                continue
            self._node(
                function.address,
                [f"λ {_text(function.attrs.get('function_name'))}"],
                "function",
                self._tier_cluster("app", self._vpc_of(function)),
            )

    def _cloud_map_name(self, service: Resource) -> str:
        names = []
        for registry in _blocks(service.attrs.get("service_registries")):
            discovery = self.stack.target(registry.get("registry_arn"))
            if discovery is None:
                continue
            namespace = self.stack.target(
                _first(discovery.attrs.get("dns_config")).get("namespace_id")
            )
            name = _text(discovery.attrs.get("name"))
            if namespace is not None:
                name += f".{_text(namespace.attrs.get('name'))}"
            names.append(name)
        return ", ".join(names)

    def _data_tier(self) -> None:
        for db in self._of_type("aws_db_instance", "aws_rds_cluster"):
            attrs = db.attrs
            engine = " ".join(_text(attrs.get(k)) for k in ("engine", "engine_version")).strip()
            multi_az = attrs.get("multi_az") in (True, "true")
            self._node(
                db.address,
                [
                    f"RDS {_text(attrs.get('identifier') or attrs.get('cluster_identifier'))}",
                    engine,
                    _text(attrs.get("instance_class") or attrs.get("db_cluster_instance_class")),
                    "Multi-AZ" if multi_az else "Single-AZ",
                ],
                "data",
                self._tier_cluster("data", self._vpc_of(db)),
            )
        for cache in self._of_type("aws_elasticache_replication_group", "aws_elasticache_cluster"):
            attrs = cache.attrs
            engine = " ".join(_text(attrs.get(k)) for k in ("engine", "engine_version")).strip()
            nodes = cache_nodes(attrs)
            multi_az = attrs.get("multi_az_enabled") in (True, "true")
            failover = attrs.get("automatic_failover_enabled") in (True, "true")
            self._node(
                cache.address,
                [
                    "ElastiCache "
                    + _text(attrs.get("replication_group_id") or attrs.get("cluster_id")),
                    engine,
                    f"{_text(attrs.get('node_type'))} x {nodes}",
                    ", ".join(
                        p
                        for p in (
                            "Multi-AZ" if multi_az else "",
                            "auto-failover" if failover else "",
                        )
                        if p
                    ),
                ],
                "data",
                self._tier_cluster("data", self._vpc_of(cache)),
            )
        for cache in self._of_type("aws_elasticache_serverless_cache"):
            attrs = cache.attrs
            engine = " ".join(
                _text(attrs.get(k)) for k in ("engine", "major_engine_version")
            ).strip()
            self._node(
                cache.address,
                [
                    f"ElastiCache Serverless {_text(attrs.get('name'))}",
                    engine,
                    _azs(self._subnets_of(cache)),
                ],
                "data",
                self._tier_cluster("data", self._vpc_of(cache)),
            )

    # -- security groups -----------------------------------------------------------------

    def _security_group_edges(self) -> None:
        owners = self._owners()
        for rule in self._ingress_rules():
            heads = owners.get(rule.target) or [self._group_node(rule.target)]
            tails: list[str] = []
            for group in rule.groups:
                tails += owners.get(group) or [self._group_node(group)]
            for kind, value in rule.sources:
                tails.append(self._source_node(kind, value))
            for tail in tails:
                for head in heads:
                    self._edge(tail, head, "sg", rule.ports)

    def _owners(self) -> dict[str, list[str]]:
        """Security group address -> the drawn resources it is attached to."""
        owners: dict[str, list[str]] = {}
        for address in self.nodes:
            resource = self.stack.resources.get(address)
            if resource is None:
                continue
            for attached in attached_security_groups(resource):
                owners.setdefault(attached, []).append(address)
        # A group the stack only reads (CloudFront's VPC-origin group) belongs to the drawn
        # resource whose creation it waits for.
        for group in self.stack.resources.values():
            if group.type == "aws_security_group" and group.address not in owners:
                found = [a for a in group.attrs.get("depends_on") or [] if a in self.nodes]
                if found:
                    owners[group.address] = found
        return owners

    def _ingress_rules(self) -> Iterator[_Rule]:
        stack = self.stack
        for rule in self._of_type("aws_vpc_security_group_ingress_rule"):
            attrs = rule.attrs
            target = stack.target(attrs.get("security_group_id"))
            if target is None:
                continue
            ports = _ports(attrs.get("ip_protocol"), attrs.get("from_port"), attrs.get("to_port"))
            groups = tuple(references(attrs.get("referenced_security_group_id")))
            sources = tuple(
                (kind, self._source_text(attrs[key]))
                for key, kind in (
                    ("cidr_ipv4", "cidr"),
                    ("cidr_ipv6", "cidr"),
                    ("prefix_list_id", "prefix list"),
                )
                if attrs.get(key)
            )
            yield _Rule(target.address, ports, groups, sources)
        for rule in self._of_type("aws_security_group_rule"):
            attrs = rule.attrs
            target = stack.target(attrs.get("security_group_id"))
            if attrs.get("type") != "ingress" or target is None:
                continue
            yield self._rule_block(target.address, attrs, "source_security_group_id")
        for group in self._of_type("aws_security_group"):
            for block in _blocks(group.attrs.get("ingress")):
                yield self._rule_block(group.address, block, "security_groups")

    def _rule_block(self, target: str, attrs: dict[str, Any], groups_key: str) -> _Rule:
        """A rule in the older shapes (``aws_security_group_rule``, inline ``ingress``)."""
        ports = _ports(attrs.get("protocol"), attrs.get("from_port"), attrs.get("to_port"))
        groups = list(references(attrs.get(groups_key)))
        if attrs.get("self") in (True, "true"):
            groups.append(target)
        sources = [
            ("cidr", _text(c))
            for key in ("cidr_blocks", "ipv6_cidr_blocks")
            for c in attrs.get(key) or []
        ]
        sources += [
            ("prefix list", self._source_text(p)) for p in attrs.get("prefix_list_ids") or []
        ]
        return _Rule(target, ports, tuple(groups), tuple(sources))

    def _source_text(self, value: Any) -> str:
        """A CIDR or prefix list as written, or the name of the data source it reads."""
        found = self.stack.target(value)
        if found is not None:
            return (
                _text(found.attrs.get("name") or found.attrs.get("prefix_list_id")) or found.address
            )
        return _text(value)

    def _group_node(self, address: str) -> str:
        """A node for a security group no drawn resource owns."""
        group = self.stack.resources.get(address)
        name = _text(group.attrs.get("name")) if group else ""
        vpc = self._vpc_address(group.attrs.get("vpc_id")) if group else None
        return self._node(
            address,
            ["security group", name or address, "(no drawn owner)"],
            "security-group",
            self._vpc_cluster(vpc) if vpc else None,
        )

    def _source_node(self, kind: str, value: str) -> str:
        label = (
            "Internet" if value in (ANYWHERE, "::/0") else kind.upper() if kind == "cidr" else kind
        )
        return self._node(
            f"source:{kind}:{value}",
            [label, value],
            "external",
            None,
            tooltip=f"{kind} {value}",
        )

    # -- stacks without a VPC -------------------------------------------------------------

    def _state(self) -> None:
        """What a stack without a VPC holds: its buckets, tables and keys, and a note."""
        stack = self.stack
        cluster = self._cluster("state", f"{stack.name}: no VPC", "state", None, "state")
        for key in self._of_type("aws_kms_key"):
            aliases = [
                _text(a.attrs.get("name"))
                for a in self._of_type("aws_kms_alias")
                if key.address in a.refs("target_key_id")
            ]
            rotation = (
                "rotation on" if key.attrs.get("enable_key_rotation") in (True, "true") else ""
            )
            self._node(
                key.address,
                ["KMS key", ", ".join(aliases) or _text(key.attrs.get("description")), rotation],
                "state",
                cluster,
            )
        for bucket in self._of_type("aws_s3_bucket"):
            if bucket.address in self.nodes:
                continue
            versioning = ""
            for config in self._of_type("aws_s3_bucket_versioning"):
                if bucket.address in config.refs("bucket"):
                    status = _first(config.attrs.get("versioning_configuration")).get("status")
                    versioning = f"versioning {_text(status)}"
            self._node(
                bucket.address,
                ["S3 bucket", _text(bucket.attrs.get("bucket")), versioning],
                "state",
                cluster,
            )
            for config in self._of_type("aws_s3_bucket_server_side_encryption_configuration"):
                if bucket.address not in config.refs("bucket"):
                    continue
                for key_address in config.refs("rule"):
                    if key_address in self.nodes:
                        self._edge(key_address, bucket.address, "attach", "encrypts")
        for table in self._of_type("aws_dynamodb_table"):
            self._node(
                table.address,
                [
                    "DynamoDB table",
                    _text(table.attrs.get("name")),
                    _text(table.attrs.get("billing_mode")),
                ],
                "state",
                cluster,
            )
        counts = Counter(r.type for r in stack.managed())
        if counts:
            lines = [f"{stack.name}: no VPC, {sum(counts.values())} resources"]
            lines += [f"{n} x {t}" for t, n in sorted(counts.items())]
            self._note("\n".join(lines))

    # -- lookups -----------------------------------------------------------------------------

    def _of_type(self, *types: str) -> list[Resource]:
        return sorted(self.stack.of_type(*types), key=lambda r: r.address)

    def _vpc_address(self, value: Any) -> str | None:
        found = self.stack.target(value)
        if found is not None and found.type == "aws_vpc":
            return found.address
        return None

    def _vpc_of(self, resource: Resource) -> str | None:
        """The VPC a resource lives in: its subnets', else its own ``vpc_id``, else the only one."""
        for subnet in self._subnets_of(resource):
            vpc = self._vpc_address(subnet.attrs.get("vpc_id"))
            if vpc is not None:
                return vpc
        for value in (
            resource.attrs.get("vpc_id"),
            _first(resource.attrs.get("vpc_config")).get("vpc_id"),
        ):
            vpc = self._vpc_address(value)
            if vpc is not None:
                return vpc
        return self.vpcs[0].address if self.vpcs else None

    def _subnets_of(self, resource: Resource) -> list[Resource]:
        attrs = resource.attrs
        values: list[Any] = [attrs.get("subnets"), attrs.get("subnet_ids"), attrs.get("subnet_id")]
        values += [b.get("subnets") for b in _blocks(attrs.get("network_configuration"))]
        values += [b.get("subnet_ids") for b in _blocks(attrs.get("vpc_config"))]
        values += [b.get("subnet_id") for b in _blocks(attrs.get("subnet_mapping"))]
        for key in ("db_subnet_group_name", "subnet_group_name"):
            group = self.stack.target(attrs.get(key))
            if group is not None:
                values.append(group.attrs.get("subnet_ids"))
        found: dict[str, Resource] = {}
        for address in references(values):
            subnet = self.stack.resources.get(address)
            if subnet is not None and subnet.type == "aws_subnet":
                found[address] = subnet
        return list(found.values())


# -- helpers -----------------------------------------------------------------------------


def _route_target(stack: Stack, route: dict[str, Any]) -> Resource | None:
    for key in ("nat_gateway_id", "gateway_id", "transit_gateway_id", "vpc_peering_connection_id"):
        found = stack.target(route.get(key))
        if found is not None:
            return found
    return None


def _tier(subnet: Resource, default_route: dict[str, Resource]) -> str:
    """``public`` (default route to an internet gateway), ``private`` (to anything else:
    NAT) or ``isolated``; a subnet with no route table association says so in its tags."""
    route = default_route.get(subnet.address)
    if route is not None:
        return "public" if route.type == "aws_internet_gateway" else "private"
    tagged = _text((subnet.attrs.get("tags") or {}).get("tier")).lower()
    if tagged in ("public", "private"):
        return tagged
    return "public" if subnet.attrs.get("map_public_ip_on_launch") in (True, "true") else "isolated"


def _path_patterns(attrs: dict[str, Any]) -> dict[str, list[str]]:
    """Origin id -> the path patterns CloudFront sends to it (``*`` for the default)."""
    out: dict[str, list[str]] = {}
    default = _first(attrs.get("default_cache_behavior")).get("target_origin_id")
    if default is not None:
        out.setdefault(_text(default), []).append("*")
    for behavior in _blocks(attrs.get("ordered_cache_behavior")):
        out.setdefault(_text(behavior.get("target_origin_id")), []).append(
            _text(behavior.get("path_pattern"))
        )
    return out


def _ports(protocol: Any, from_port: Any, to_port: Any) -> str:
    proto = _text(protocol).lower() or "tcp"
    if proto in ("-1", "all"):
        return "all traffic"
    if from_port is None or from_port == "":
        return proto
    if to_port is None or str(to_port) == str(from_port):
        return f"{from_port}/{proto}"
    return f"{from_port}-{to_port}/{proto}"


def _azs(subnets: list[Resource]) -> str:
    """``eu-central-1a/b/c`` for the AZs of some subnets."""
    zones = sorted({_text(s.attrs.get("availability_zone")) for s in subnets} - {""})
    if not zones:
        return ""
    prefix = zones[0][:-1]
    if len(zones) > 1 and all(z[:-1] == prefix for z in zones):
        return prefix + "/".join(z[-1] for z in zones)
    return ", ".join(zones)


def _tag_name(resource: Resource) -> str:
    tags = resource.attrs.get("tags")
    return _text(tags.get("Name")) if isinstance(tags, dict) else ""


def _blocks(value: Any) -> list[dict[str, Any]]:
    """A nested block as synthesized: one object, or a list of them."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _first(value: Any) -> dict[str, Any]:
    blocks = _blocks(value)
    return blocks[0] if blocks else {}


def _text(value: Any) -> str:
    """A value for a label: interpolations shown as ``{attribute}``."""
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return _INTERPOLATION.sub(lambda m: "{" + m.group(1).rsplit(".", 1)[-1] + "}", str(value))


def _escape(text: str) -> str:
    """Label text as DOT reads it: backslashes are escapes there."""
    return text.replace("\\", "\\\\")


def _name(node_id: str) -> str:
    """A DOT node name for an id (no ``:``, which DOT reads as a port)."""
    return _UNSAFE.sub("_", node_id)
