"""Does a connection pass? The security groups, network ACLs and routes of one stack.

Reads one synthesized stack (``cdk.tf.json``, references unresolved) and answers whether a
TCP (or UDP) connection from A to B on a port passes every layer, both ways:

- the security groups: A's egress admits B and B's ingress admits A on the port (the
  groups are stateful, so the reply needs nothing more);
- the network ACLs, for each subnet boundary a packet crosses: the request leaving A's
  subnet (its ACL's outbound rules, in rule-number order, first match decides) and
  entering B's (inbound), and the reply on the ephemeral ports back (B's outbound, A's
  inbound). Two addresses in one subnet cross no boundary. A subnet no ACL of the stack
  names uses the VPC's default ACL, which allows everything unless the stack manages it;
- the routes: a destination outside the VPC is reached through the source subnet's route
  table; through a NAT gateway the packets also cross the NAT gateway's subnet both ways
  (in and out again, on the request's port and on the ephemeral ports); a source outside
  the VPC needs the destination subnet's replies routed back through a gateway (not NAT).

A and B are each a security group (its ``name`` or logical id), a subnet (its ``Name``
tag or logical id) or an IPv4 CIDR. A group stands for every subnet a resource of the
stack places it in (ECS service ``network_configuration``, load balancer ``subnets``, DB or
cache subnet group, EFS mount target, Lambda ``vpc_config``, interface endpoint, ...), and
the answer holds only if it holds for every pair of those subnets; a subnet or CIDR end has
no group of its own (only the other end's group is checked). A CIDR inside the VPC stands
for the subnets it overlaps, one outside it (or containing it, such as ``0.0.0.0/0``) for
the addresses outside the VPC. Every rule must admit every address of an end and every
port asked (and every ephemeral port, 1024-65535 unless told otherwise), which is what a
client whose address and source port it does not choose needs.

Not modelled: IPv6, prefix lists (an S3 gateway endpoint's route, a rule naming a prefix
list never matches), ICMP, traffic AWS does not filter (the VPC resolver, link-local).

    python tools/flows.py cdk.tf.json SOURCE DESTINATION PORT[-PORT] [--udp]
    python tools/flows.py cdk.tf.json --blocked

``--blocked`` lists every connection the security groups allow that an ACL (not a route)
drops: the check that the two layers have not drifted apart. Exit status 1 when the
connection is refused or something is blocked, 2 when the stack or a name cannot be read.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Net = ipaddress.IPv4Network
Ports = tuple[int, int]
Box = tuple[Net, int, int]
"""Addresses and a port range."""

EPHEMERAL: Ports = (1024, 65535)
"""The ports replies must reach: what NAT gateways and load balancers choose from."""
ALL_PORTS: Ports = (0, 65535)
ANYWHERE = ipaddress.IPv4Network("0.0.0.0/0")
TCP, UDP, ALL = 6, 17, -1
PROTOCOLS = {"tcp": TCP, "udp": UDP, "icmp": 1, "all": ALL, "-1": ALL}

SECURITY_GROUP = "security group"
NETWORK_ACL = "network ACL"
ROUTE = "route"
PLACEMENT = "placement"

REFERENCE = re.compile(
    r"^\$\{(?P<data>data\.)?(?P<type>[A-Za-z0-9_]+)\.(?P<name>[^.}]+)\.(?P<attr>[A-Za-z0-9_]+)\}$"
)
RULE_TYPES = ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")
NOT_PLACING = {
    "aws_security_group",
    *RULE_TYPES,
    "aws_network_acl",
    "aws_network_acl_rule",
    "aws_network_acl_association",
    "aws_default_network_acl",
}
"""Resources that name groups or subnets without putting a network interface there."""
SUBNET_GROUPS = (
    "aws_db_subnet_group",
    "aws_elasticache_subnet_group",
    "aws_redshift_subnet_group",
    "aws_neptune_subnet_group",
    "aws_docdb_subnet_group",
    "aws_dax_subnet_group",
    "aws_memorydb_subnet_group",
)


class FlowsError(ValueError):
    """The stack cannot be evaluated (an unknown end, an unsupported construct)."""


@dataclass(frozen=True)
class Subnet:
    key: str
    label: str
    cidr: Net


OUTSIDE = "outside the VPC"


@dataclass(frozen=True)
class AclRule:
    number: int
    egress: bool
    allow: bool
    protocol: int
    cidr: Net | None
    """None for an IPv6 rule (never matches)."""
    ports: Ports


@dataclass(frozen=True)
class Acl:
    key: str
    label: str
    rules: tuple[AclRule, ...]


ALLOW_ALL = Acl(
    key="default",
    label="the VPC's default ACL",
    rules=(
        AclRule(100, False, True, ALL, ANYWHERE, ALL_PORTS),
        AclRule(100, True, True, ALL, ANYWHERE, ALL_PORTS),
    ),
)


@dataclass(frozen=True)
class GroupRule:
    group: str
    egress: bool
    protocol: int
    ports: Ports
    peer_group: str | None
    cidr: Net | None
    """None for a prefix-list or IPv6 rule (never matches an IPv4 end)."""


@dataclass(frozen=True)
class Route:
    cidr: Net
    kind: str
    """``local``, ``nat``, ``internet gateway`` or the gateway's attribute name."""
    nat_subnet: str | None = None


@dataclass(frozen=True)
class End:
    """One place an end of a connection can be: a subnet (or outside) and its addresses."""

    location: str
    """A subnet key, or :data:`OUTSIDE`."""
    addresses: tuple[Net, ...]
    group: str | None
    label: str


@dataclass(frozen=True)
class Denial:
    layer: str
    """:data:`SECURITY_GROUP`, :data:`NETWORK_ACL`, :data:`ROUTE` or :data:`PLACEMENT`."""
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.layer}: {self.where}: {self.detail}"


@dataclass(frozen=True)
class PathResult:
    """One pair of places the two ends can be, and what stops the connection there."""

    source: str
    destination: str
    denials: tuple[Denial, ...]

    @property
    def passes(self) -> bool:
        return not self.denials

    def layers(self) -> set[str]:
        return {d.layer for d in self.denials}


@dataclass(frozen=True)
class Verdict:
    source: str
    destination: str
    protocol: int
    ports: Ports
    paths: tuple[PathResult, ...]
    denials: tuple[Denial, ...] = ()
    """Denials before any path (an end nothing places)."""

    @property
    def passes(self) -> bool:
        """Every pair of places passes every layer, and there is at least one."""
        return bool(self.paths) and not self.denials and all(p.passes for p in self.paths)

    def all_denials(self) -> list[Denial]:
        return [*self.denials, *(d for p in self.paths for d in p.denials)]

    def layers(self) -> set[str]:
        return {d.layer for d in self.all_denials()}

    def explain(self) -> str:
        low, high = self.ports
        ports = str(low) if low == high else f"{low}-{high}"
        name = {TCP: "tcp", UDP: "udp"}.get(self.protocol, str(self.protocol))
        head = f"{self.source} -> {self.destination} {name} {ports}: "
        if self.passes:
            return head + f"passes ({len(self.paths)} subnet pairs)"
        lines = [head + "refused"]
        lines += [f"  {d}" for d in self.denials]
        for path in self.paths:
            for denial in path.denials:
                lines.append(f"  [{path.source} -> {path.destination}] {denial}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Segment:
    """A packet crossing from one place to another (``OUTSIDE`` or a subnet key)."""

    origin: str
    target: str
    sources: tuple[Net, ...]
    destinations: tuple[Net, ...]
    what: str


@dataclass
class StackNetwork:
    """The network of one synthesized stack, ready to answer :meth:`check`."""

    doc: dict[str, Any]
    subnets: dict[str, Subnet] = field(init=False)
    vpc_cidrs: tuple[Net, ...] = field(init=False)
    groups: dict[str, str] = field(init=False)
    """Group key (``aws_security_group.x`` names ``x``; data sources ``data.x``) to label."""
    group_rules: list[GroupRule] = field(init=False)
    acls: dict[str, Acl] = field(init=False)
    subnet_acl: dict[str, str] = field(init=False)
    routes: dict[str, tuple[Route, ...]] = field(init=False)
    """Subnet key to its route table's routes (the local route first)."""
    placements: dict[str, set[str]] = field(init=False)
    """Group key to the subnets its network interfaces sit in."""

    @classmethod
    def from_file(cls, path: str | Path) -> StackNetwork:
        return cls(json.loads(Path(path).read_text()))

    def __post_init__(self) -> None:
        self.subnets = {
            key: Subnet(
                key, (r.get("tags") or {}).get("Name", key), Net(self.literal(r["cidr_block"]))
            )
            for key, r in self._of("aws_subnet").items()
        }
        self.vpc_cidrs = tuple(
            Net(self.literal(r["cidr_block"])) for r in self._of("aws_vpc").values()
        )
        self.groups = {key: r.get("name", key) for key, r in self._of("aws_security_group").items()}
        for key, r in self.doc.get("data", {}).get("aws_security_group", {}).items():
            self.groups[f"data.{key}"] = r.get("name", f"data.aws_security_group.{key}")
        self._read_group_rules()
        self._read_acls()
        self._read_routes()
        self._read_placements()

    # --- reading the stack ---------------------------------------------------------------

    def _of(self, type_: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.doc.get("resource", {}).get(type_, {})
        return found

    def reference(self, value: Any, *types: str) -> tuple[str, str]:
        """``(type, key)`` of the resource ``value`` refers to (``${type.key.attr}``), which
        must be one of ``types``; a data source's key starts ``data.``."""
        match = REFERENCE.match(value) if isinstance(value, str) else None
        if not match:
            raise FlowsError(f"expected a reference to {' or '.join(types)}, got {value!r}")
        type_, key = match["type"], match["name"]
        if match["data"]:
            key = f"data.{key}"
        if type_ not in types:
            raise FlowsError(f"expected a reference to {' or '.join(types)}, got {value!r}")
        return type_, key

    def literal(self, value: Any) -> Any:
        """``value``, or the value of the attribute it refers to when that is in the stack."""
        match = REFERENCE.match(value) if isinstance(value, str) else None
        if not match:
            return value
        section = self.doc.get("data" if match["data"] else "resource", {})
        config = section.get(match["type"], {}).get(match["name"])
        if config is None or match["attr"] not in config:
            raise FlowsError(f"cannot resolve {value}: not a literal in the stack")
        return self.literal(config[match["attr"]])

    def _group_key(self, value: Any) -> str:
        _, key = self.reference(value, "aws_security_group")
        return key

    def _read_group_rules(self) -> None:
        if self._of("aws_security_group_rule"):
            raise FlowsError("aws_security_group_rule is not supported: use the vpc rule resources")
        for key, group in self._of("aws_security_group").items():
            if group.get("ingress") or group.get("egress"):
                raise FlowsError(f"inline rules of aws_security_group.{key} are not supported")
        self.group_rules = []
        for type_ in RULE_TYPES:
            for rule in self._of(type_).values():
                protocol = _protocol(rule["ip_protocol"])
                peer = rule.get("referenced_security_group_id")
                cidr = rule.get("cidr_ipv4")
                self.group_rules.append(
                    GroupRule(
                        group=self._group_key(rule["security_group_id"]),
                        egress=type_.endswith("egress_rule"),
                        protocol=protocol,
                        ports=_ports(protocol, rule.get("from_port"), rule.get("to_port")),
                        peer_group=self._group_key(peer) if peer else None,
                        cidr=Net(self.literal(cidr)) if cidr else None,
                    )
                )

    def _acl_rules(self, config: dict[str, Any]) -> list[AclRule]:
        """The inline ``ingress``/``egress`` blocks of an ACL resource."""
        out = []
        for egress in (False, True):
            for block in config.get("egress" if egress else "ingress") or []:
                protocol = _protocol(block["protocol"])
                cidr = block.get("cidr_block")
                out.append(
                    AclRule(
                        number=int(block["rule_no"]),
                        egress=egress,
                        allow=block["action"] == "allow",
                        protocol=protocol,
                        cidr=Net(self.literal(cidr)) if cidr else None,
                        ports=_ports(protocol, block.get("from_port"), block.get("to_port")),
                    )
                )
        return out

    def _read_acls(self) -> None:
        rules: dict[str, list[AclRule]] = {}
        members: dict[str, list[str]] = {}
        self.acls = {}
        for type_ in ("aws_network_acl", "aws_default_network_acl"):
            for key, config in self._of(type_).items():
                acl_key = f"{type_}.{key}"
                label = (config.get("tags") or {}).get("Name", acl_key)
                self.acls[acl_key] = Acl(acl_key, label, ())
                rules[acl_key] = self._acl_rules(config)
                members[acl_key] = [
                    self.reference(s, "aws_subnet")[1] for s in config.get("subnet_ids") or []
                ]
        for rule in self._of("aws_network_acl_rule").values():
            _, key = self.reference(rule["network_acl_id"], "aws_network_acl")
            if f"aws_network_acl.{key}" not in rules:
                raise FlowsError(f"a rule names aws_network_acl.{key}, which is not in the stack")
            protocol = _protocol(rule["protocol"])
            cidr = rule.get("cidr_block")
            rules[f"aws_network_acl.{key}"].append(
                AclRule(
                    number=int(rule["rule_number"]),
                    egress=bool(rule.get("egress", False)),
                    allow=rule["rule_action"] == "allow",
                    protocol=protocol,
                    cidr=Net(self.literal(cidr)) if cidr else None,
                    ports=_ports(protocol, rule.get("from_port"), rule.get("to_port")),
                )
            )
        for association in self._of("aws_network_acl_association").values():
            _, key = self.reference(association["network_acl_id"], "aws_network_acl")
            members[f"aws_network_acl.{key}"].append(
                self.reference(association["subnet_id"], "aws_subnet")[1]
            )
        self.subnet_acl = {}
        for acl_key, subnets in members.items():
            for subnet in subnets:
                if subnet in self.subnet_acl:
                    raise FlowsError(f"subnet {subnet} is in two network ACLs")
                self.subnet_acl[subnet] = acl_key
        defaults = [k for k in self.acls if k.startswith("aws_default_network_acl.")]
        for acl_key in self.acls:
            ordered = sorted(rules[acl_key], key=lambda r: (r.egress, r.number))
            self.acls[acl_key] = Acl(acl_key, self.acls[acl_key].label, tuple(ordered))
        for subnet in self.subnets:
            if subnet not in self.subnet_acl and defaults:
                self.subnet_acl[subnet] = defaults[0]

    def _route(self, cidr: Any, config: dict[str, Any]) -> Route:
        destination = Net(self.literal(cidr))
        if config.get("nat_gateway_id"):
            _, nat = self.reference(config["nat_gateway_id"], "aws_nat_gateway")
            subnet = self._of("aws_nat_gateway")[nat]["subnet_id"]
            return Route(destination, "nat", self.reference(subnet, "aws_subnet")[1])
        gateway = config.get("gateway_id")
        if isinstance(gateway, str) and gateway.startswith("${aws_internet_gateway."):
            return Route(destination, "internet gateway")
        targets = [
            k for k, v in config.items() if k.endswith("_id") and v and k != "route_table_id"
        ]
        return Route(destination, targets[0] if targets else "unknown target")

    def _read_routes(self) -> None:
        tables: dict[str, list[Route]] = {}
        for key, config in self._of("aws_route_table").items():
            tables[key] = [
                self._route(block["cidr_block"], block)
                for block in config.get("route") or []
                if block.get("cidr_block")
            ]
        for route in self._of("aws_route").values():
            if route.get("destination_cidr_block"):
                _, key = self.reference(route["route_table_id"], "aws_route_table")
                tables[key].append(self._route(route["destination_cidr_block"], route))
        local = [Route(cidr, "local") for cidr in self.vpc_cidrs]
        main = [
            self.reference(a["route_table_id"], "aws_route_table")[1]
            for a in self._of("aws_main_route_table_association").values()
        ]
        chosen = {
            self.reference(a["subnet_id"], "aws_subnet")[1]: self.reference(
                a["route_table_id"], "aws_route_table"
            )[1]
            for a in self._of("aws_route_table_association").values()
            if a.get("subnet_id")
        }
        self.routes = {}
        for subnet in self.subnets:
            chosen_table = chosen.get(subnet) or (main[0] if main else None)
            own = tables[chosen_table] if chosen_table else []
            self.routes[subnet] = tuple(local + own)

    def _subnets_of(self, value: Any) -> Iterator[str]:
        """The subnets a ``*subnet*`` attribute names: subnets, or a subnet group's."""
        if isinstance(value, list):
            for item in value:
                yield from self._subnets_of(item)
            return
        if isinstance(value, dict):
            for key, item in value.items():
                if "subnet" in key:
                    yield from self._subnets_of(item)
            return
        match = REFERENCE.match(value) if isinstance(value, str) else None
        if not match or match["data"]:
            return
        if match["type"] == "aws_subnet":
            yield match["name"]
        elif match["type"] in SUBNET_GROUPS:
            group = self._of(match["type"]).get(match["name"], {})
            yield from self._subnets_of(group.get("subnet_ids") or [])

    def _groups_of(self, value: Any) -> Iterator[str]:
        if isinstance(value, list):
            for item in value:
                yield from self._groups_of(item)
        elif isinstance(value, str) and value.startswith(
            ("${aws_security_group.", "${data.aws_security_group.")
        ):
            yield self._group_key(value)

    def _walk(self, config: Any, groups: set[str], subnets: set[str]) -> None:
        if isinstance(config, list):
            for item in config:
                self._walk(item, groups, subnets)
        elif isinstance(config, dict):
            for key, value in config.items():
                if "security_group" in key:
                    groups.update(self._groups_of(value))
                elif "subnet" in key:
                    subnets.update(self._subnets_of(value))
                else:
                    self._walk(value, groups, subnets)

    def _read_placements(self) -> None:
        self.placements = {key: set() for key in self.groups}
        for type_, found in self.doc.get("resource", {}).items():
            if type_ in NOT_PLACING:
                continue
            for config in found.values():
                groups: set[str] = set()
                subnets: set[str] = set()
                self._walk(config, groups, subnets)
                for group in groups:
                    self.placements.setdefault(group, set()).update(subnets)

    # --- the ends of a connection -------------------------------------------------------

    def _find(self, spec: str) -> tuple[str, str]:
        """``("group" | "subnet" | "cidr", key)`` for ``spec``."""
        if "/" in spec:
            try:
                Net(spec, strict=False)
            except ValueError:
                pass
            else:
                return "cidr", spec
        groups = [k for k, label in self.groups.items() if spec in (k, label)]
        subnets = [k for k, s in self.subnets.items() if spec in (k, s.label)]
        if len(groups) + len(subnets) != 1:
            what = "several" if groups or subnets else "no"
            raise FlowsError(f"{what} security group or subnet named {spec!r}")
        return ("group", groups[0]) if groups else ("subnet", subnets[0])

    def ends(self, spec: str) -> list[End]:
        """Every place ``spec`` can be (empty for a group nothing places)."""
        kind, key = self._find(spec)
        if kind == "group":
            return [
                End(s, (self.subnets[s].cidr,), key, self.subnets[s].label)
                for s in sorted(self.placements.get(key, ()))
            ]
        if kind == "subnet":
            subnet = self.subnets[key]
            return [End(key, (subnet.cidr,), None, subnet.label)]
        cidr = Net(key, strict=False)
        if any(vpc.subnet_of(cidr) for vpc in self.vpc_cidrs) or not any(
            cidr.overlaps(vpc) for vpc in self.vpc_cidrs
        ):
            outside = _subtract_all([cidr], list(self.vpc_cidrs))
            return [End(OUTSIDE, tuple(outside), None, str(cidr))]
        return [
            End(s.key, (_intersection(s.cidr, cidr),), None, s.label)
            for s in self.subnets.values()
            if s.cidr.overlaps(cidr)
        ]

    # --- the check ----------------------------------------------------------------------

    def check(
        self,
        source: str,
        destination: str,
        port: int | Ports,
        *,
        protocol: str = "tcp",
        ephemeral: Ports = EPHEMERAL,
    ) -> Verdict:
        """Whether ``source`` can open ``protocol`` connections to ``destination`` on
        ``port`` (every port of a range), from and to every place they can be."""
        ports = (port, port) if isinstance(port, int) else port
        number = _protocol(protocol)
        sources, destinations = self.ends(source), self.ends(destination)
        early = [
            Denial(PLACEMENT, spec, "no resource of the stack places it in a subnet")
            for spec, found in ((source, sources), (destination, destinations))
            if not found
        ]
        paths = tuple(
            PathResult(a.label, b.label, tuple(self._path(a, b, number, ports, ephemeral)))
            for a in sources
            for b in destinations
            if a.location != OUTSIDE or b.location != OUTSIDE
        )
        if sources and destinations and not paths:
            raise FlowsError(f"neither {source} nor {destination} is inside the VPC")
        return Verdict(source, destination, number, ports, paths, tuple(early))

    def _path(
        self, a: End, b: End, protocol: int, ports: Ports, ephemeral: Ports
    ) -> Iterator[Denial]:
        yield from self._security_groups(a, b, protocol, ports)
        segments, route_denials = self._segments(a, b)
        yield from route_denials
        for segment in segments:
            yield from self._crossing(segment, protocol, ports)
            back = Segment(
                segment.target,
                segment.origin,
                segment.destinations,
                segment.sources,
                f"reply to {segment.what}",
            )
            yield from self._crossing(back, protocol, ephemeral)

    def _security_groups(self, a: End, b: End, protocol: int, ports: Ports) -> Iterator[Denial]:
        for group, egress, peer, peer_addresses in (
            (a.group, True, b.group, b.addresses),
            (b.group, False, a.group, a.addresses),
        ):
            if group is None:
                continue
            covering: list[Box] = []
            for rule in self.group_rules:
                if (rule.group, rule.egress) != (group, egress) or rule.protocol not in (
                    ALL,
                    protocol,
                ):
                    continue
                if rule.peer_group is not None and rule.peer_group == peer:
                    # A rule naming the peer's group admits every address of it.
                    covering.append((ANYWHERE, *rule.ports))
                elif rule.cidr is not None:
                    covering.append((rule.cidr, *rule.ports))
            left = _uncovered([(n, *ports) for n in peer_addresses], covering)
            if left:
                direction = "egress" if egress else "ingress"
                other = "to" if egress else "from"
                yield Denial(
                    SECURITY_GROUP,
                    f"{direction} of {self.groups[group]}",
                    f"nothing admits {other} {_label(peer, self.groups, peer_addresses)} "
                    f"on {_ports_text(protocol, ports)}",
                )

    def _segments(self, a: End, b: End) -> tuple[list[Segment], list[Denial]]:
        if a.location == b.location:
            return [], []
        if a.location != OUTSIDE and b.location != OUTSIDE:
            return [Segment(a.location, b.location, a.addresses, b.addresses, "request")], []
        if b.location == OUTSIDE:
            route = self._lookup(a.location, b.addresses)
            first = Segment(a.location, OUTSIDE, a.addresses, b.addresses, "request")
            if route is None:
                return [first], [
                    Denial(ROUTE, a.label, f"no route to {_nets(b.addresses)} in its route table")
                ]
            if route.kind == "nat" and route.nat_subnet:
                # The request enters the NAT gateway's subnet and leaves it translated; the
                # reply enters it from the destination and leaves it for the source.
                nat = route.nat_subnet
                segments = [
                    Segment(
                        nat,
                        OUTSIDE,
                        (self.subnets[nat].cidr,),
                        b.addresses,
                        "request from the NAT gateway",
                    )
                ]
                if nat != a.location:
                    to_nat = Segment(
                        a.location, nat, a.addresses, b.addresses, "request to the NAT gateway"
                    )
                    segments.insert(0, to_nat)
                return segments, []
            return [first], []
        route = self._lookup(b.location, a.addresses)
        segment = Segment(OUTSIDE, b.location, a.addresses, b.addresses, "request")
        if route is None or route.kind in ("local", "nat"):
            how = "no route" if route is None else f"the route ({route.kind})"
            return [segment], [
                Denial(
                    ROUTE,
                    b.label,
                    f"{how} carries replies to {_nets(a.addresses)}: "
                    "it cannot be reached from there",
                )
            ]
        return [segment], []

    def _lookup(self, subnet: str, destinations: Sequence[Net]) -> Route | None:
        """The most specific route of ``subnet`` covering all of ``destinations``."""
        fitting = [r for r in self.routes[subnet] if all(d.subnet_of(r.cidr) for d in destinations)]
        return max(fitting, key=lambda r: r.cidr.prefixlen, default=None)

    def _crossing(self, segment: Segment, protocol: int, ports: Ports) -> Iterator[Denial]:
        for location, egress in ((segment.origin, True), (segment.target, False)):
            if location == OUTSIDE:
                continue
            acl = self.acls.get(self.subnet_acl.get(location, ""), ALLOW_ALL)
            peers = segment.destinations if egress else segment.sources
            refusal = _first_match(acl, egress, protocol, [(n, *ports) for n in peers])
            if refusal:
                direction = "outbound" if egress else "inbound"
                other = "to" if egress else "from"
                yield Denial(
                    NETWORK_ACL,
                    f"{acl.label} {direction} on {self.subnets[location].label}",
                    f"{segment.what} {other} {_nets(peers)} on {_ports_text(protocol, ports)}: "
                    f"{refusal}",
                )

    # --- drift ---------------------------------------------------------------------------

    def security_group_flows(self) -> list[tuple[str, str, int, Ports]]:
        """Every connection the security groups allow, as ``(source, destination,
        protocol, ports)``: between two placed groups (an egress rule of one meeting an
        ingress rule of the other, ports intersected, at least one of the two naming the
        other group or a range inside the VPC: "HTTPS to anywhere" meeting "HTTPS from
        anywhere" is two internet flows, not one between the groups), from a group to a
        CIDR outside the VPC (its egress rules) and from such a CIDR to a group (ingress
        rules)."""
        vpc = list(self.vpc_cidrs)
        placed = [g for g in self.groups if self.placements.get(g)]
        out: set[tuple[str, str, int, Ports]] = set()
        for rule in self.group_rules:
            if rule.cidr is None or not self.placements.get(rule.group):
                continue
            if not any(rule.cidr.subnet_of(v) for v in vpc):
                protocol = TCP if rule.protocol == ALL else rule.protocol
                group = self.groups[rule.group]
                cidr = str(rule.cidr)
                out.add(
                    (group, cidr, protocol, rule.ports)
                    if rule.egress
                    else (cidr, group, protocol, rule.ports)
                )
        for a in placed:
            for b in placed:
                for egress in self._rules(a, True, b):
                    for ingress in self._rules(b, False, a):
                        if not (self._names(egress, b) or self._names(ingress, a)):
                            continue  # "to anywhere" meets "from anywhere": internet flows
                        low = max(egress.ports[0], ingress.ports[0])
                        high = min(egress.ports[1], ingress.ports[1])
                        protocols = {egress.protocol, ingress.protocol} - {ALL} or {TCP}
                        if low <= high and len(protocols) == 1:
                            out.add((self.groups[a], self.groups[b], protocols.pop(), (low, high)))
        return sorted(out)

    def _rules(self, group: str, egress: bool, peer: str) -> list[GroupRule]:
        """``group``'s rules in one direction that name ``peer`` or a range overlapping
        one of its subnets."""
        where = [self.subnets[s].cidr for s in self.placements.get(peer, ())]
        return [
            r
            for r in self.group_rules
            if r.group == group
            and r.egress == egress
            and (
                r.peer_group == peer
                or (r.cidr is not None and any(r.cidr.overlaps(w) for w in where))
            )
        ]

    def _names(self, rule: GroupRule, peer: str) -> bool:
        """Whether ``rule`` admits ``peer`` specifically: by its group, or by a range inside
        the VPC (not one such as ``0.0.0.0/0`` that admits the internet)."""
        return rule.peer_group == peer or (
            rule.cidr is not None and any(rule.cidr.subnet_of(v) for v in self.vpc_cidrs)
        )

    def blocked_by_acls(
        self, *, ignore: Collection[tuple[str, str]] = (), ephemeral: Ports = EPHEMERAL
    ) -> list[Verdict]:
        """Every connection the security groups allow (:meth:`security_group_flows`) that a
        network ACL drops between two places where the groups (and routes) let it through,
        each with only those places; but those between a ``(source, destination)`` of
        ``ignore``: pairs the groups allow by accident, which no flow is meant to use
        (a load balancer's HTTPS to anywhere meeting the interface endpoints' HTTPS from
        the VPC), each a reviewed exception."""
        blocked = []
        for source, destination, protocol, ports in self.security_group_flows():
            if (source, destination) in ignore:
                continue
            name = {TCP: "tcp", UDP: "udp"}.get(protocol, str(protocol))
            verdict = self.check(source, destination, ports, protocol=name, ephemeral=ephemeral)
            drifted = tuple(p for p in verdict.paths if p.layers() == {NETWORK_ACL})
            if drifted:
                blocked.append(
                    Verdict(verdict.source, verdict.destination, protocol, ports, drifted)
                )
        return blocked


# --- helpers -------------------------------------------------------------------------------


def _protocol(value: Any) -> int:
    text = str(value).lower()
    if text in PROTOCOLS:
        return PROTOCOLS[text]
    try:
        return int(text)
    except ValueError:
        raise FlowsError(f"unknown protocol {value!r}") from None


def _ports(protocol: int, low: Any, high: Any) -> Ports:
    if protocol not in (TCP, UDP) or low is None:
        return ALL_PORTS
    return int(low), int(high)


def _intersection(a: Net, b: Net) -> Net:
    return a if a.subnet_of(b) else b


def _subtract(a: Net, b: Net) -> list[Net]:
    if not a.overlaps(b):
        return [a]
    if a.subnet_of(b):
        return []
    return list(a.address_exclude(b))


def _subtract_all(nets: list[Net], holes: list[Net]) -> list[Net]:
    for hole in holes:
        nets = [piece for n in nets for piece in _subtract(n, hole)]
    return sorted(nets)


def _box_minus(box: Box, rule: Box) -> list[Box]:
    net, low, high = box
    rule_net, rule_low, rule_high = rule
    if not net.overlaps(rule_net) or high < rule_low or rule_high < low:
        return [box]
    inside = _intersection(net, rule_net)
    out: list[Box] = [(n, low, high) for n in _subtract(net, rule_net)]
    if low < rule_low:
        out.append((inside, low, rule_low - 1))
    if rule_high < high:
        out.append((inside, rule_high + 1, high))
    return out


def _uncovered(boxes: list[Box], rules: list[Box]) -> list[Box]:
    for rule in rules:
        boxes = [piece for box in boxes for piece in _box_minus(box, rule)]
    return boxes


def _overlaps(box: Box, rule: Box) -> bool:
    return box[0].overlaps(rule[0]) and box[1] <= rule[2] and rule[1] <= box[2]


def _first_match(acl: Acl, egress: bool, protocol: int, boxes: list[Box]) -> str | None:
    """Why ``acl`` drops part of ``boxes`` in one direction (rules in number order, the
    first matching decides, the implicit last rule denies), or None when it allows all."""
    for rule in acl.rules:
        if rule.egress != egress or rule.protocol not in (ALL, protocol) or rule.cidr is None:
            continue
        box = (rule.cidr, *rule.ports)
        if not rule.allow and any(_overlaps(b, box) for b in boxes):
            return f"rule {rule.number} denies it"
        boxes = _uncovered(boxes, [box])
        if not boxes:
            return None
    return "no rule allows it (the final * rule denies)" if boxes else None


def _nets(nets: Sequence[Net]) -> str:
    if len(nets) > 3:
        return f"{len(nets)} ranges outside the VPC"
    return ", ".join(map(str, nets))


def _label(group: str | None, groups: dict[str, str], addresses: Sequence[Net]) -> str:
    return groups[group] if group else _nets(addresses)


def _ports_text(protocol: int, ports: Ports) -> str:
    name = {TCP: "tcp", UDP: "udp"}.get(protocol, f"protocol {protocol}")
    low, high = ports
    return f"{name} {low}" if low == high else f"{name} {low}-{high}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("stack", help="a synthesized cdk.tf.json")
    parser.add_argument("source", nargs="?")
    parser.add_argument("destination", nargs="?")
    parser.add_argument("port", nargs="?", help="a port or a range low-high")
    parser.add_argument("--udp", action="store_true")
    parser.add_argument("--blocked", action="store_true", help="list ACL drift and exit")
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except FlowsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    network = StackNetwork.from_file(args.stack)
    if args.blocked:
        blocked = network.blocked_by_acls()
        for verdict in blocked:
            print(verdict.explain())
        print(f"{len(blocked)} security-group flows blocked by network ACLs")
        return 1 if blocked else 0
    if not (args.source and args.destination and args.port):
        parser.error("give SOURCE DESTINATION PORT, or --blocked")
    low, _, high = args.port.partition("-")
    ports = (int(low), int(high or low))
    verdict = network.check(
        args.source, args.destination, ports, protocol="udp" if args.udp else "tcp"
    )
    print(verdict.explain())
    return 0 if verdict.passes else 1


if __name__ == "__main__":
    sys.exit(main())
