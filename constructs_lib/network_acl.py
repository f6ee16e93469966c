"""Network ACLs on the network's two subnet tiers, derived from one declared list of flows.

Security groups decide which workload may talk to which; the network ACLs add a second,
coarser layer at the subnet boundary: which *tier* may talk to which, on which ports. The
two layers must agree, or a connection the groups allow is silently dropped. So an ACL is
never written rule by rule: a stack declares :class:`Flow` s (``internet -> public 443``,
``public -> private 3000``, ``private -> private 5432``, ``private -> internet 443``) and
:class:`SubnetAcls` derives every rule from them, replies included. ``tools/flows.py``
then checks, on the synthesized stack, that every connection the security groups allow
also passes the ACLs both ways (``StackNetwork.blocked_by_acls``).

What a flow becomes (ACLs are stateless, so every request needs its reply rule):

- on the source tier: outbound to each destination range on the flow's ports, inbound
  from each destination range on the ephemeral ports :data:`EPHEMERAL_PORTS` (the reply);
- on the destination tier: inbound from each source range on the flow's ports, outbound
  to each source range on the ephemeral ports;
- from the private tier to an internet range (not in ``PRIVATE_RANGES``) in a network
  with NAT gateways, also the NAT gateway's hop through the public tier: inbound from the
  private ranges and outbound to the destination on the flow's ports, inbound from the
  destination and outbound to the private ranges on the ephemeral ports. Without NAT the
  private rules alone serve the S3 gateway endpoint (S3's addresses are public).

A tier stands for the ranges of its subnets, one rule per subnet range (not the VPC's
range: a rule for the VPC would let the public tier reach the private tier's database
port, which is what the layer is there to stop).

Inside the VPC first, then the rest: replies from the internet must be admitted on every
ephemeral port from ``0.0.0.0/0``, and such a rule alone would also admit every port
above 1023 from the other tier. So each ACL and direction holds the rules for ranges
inside the VPC first, then a *guard* that denies the VPC's whole range (every protocol,
rule :data:`VPC_GUARD_RULE`), then the rules for ranges outside it. The guard exists
only where rules for outside ranges follow it.

Rule numbers: the flow at position ``k`` (from 0) owns the block ``100 * (k + 1)`` to
``100 * (k + 1) + 99`` for ranges inside the VPC and the same block plus
:data:`VPC_GUARD_RULE` for ranges outside it, in each ACL and direction, numbered in the
order above. Every rule but the guard allows, so the order within a part does not change
what passes; it only makes the numbers stable: appending a flow never renumbers (never
replaces) existing rules, while inserting one renumbers the flows after it. Anything no
flow allows meets the guard or the ACL's final implicit deny. The VPC's default ACL is
left as AWS made it; it no longer applies to the network's subnets.

What stateless rules cannot refuse: a reply rule admits every ephemeral port from its
peer's ranges, new connections included. So where one tier (or one tier's subnets among
themselves) has any flow to another, every port above 1023 is open in the direction its
replies take, and from outside the VPC every port above 1023 reaches a tier that calls
out (only the routes and the security groups stop that). Within each part (inside or
outside the VPC), a rule another rule already covers is left out, since it would admit
nothing more: ``private-5432``'s own request rule when replies from the private ranges
are admitted anyway, ``clients-http``'s replies (those of ``clients-https``). This keeps
a typical system of three AZs within the AWS quota of 20 rules per ACL and direction.
What the ACLs do hold, whatever the security groups say: the tiers reach each other only
on declared ports (service ports, ports below 1024) or as replies, and the public tier
never reaches the private tier's data ports when no private flow goes to the public tier.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from cdktf_cdktf_provider_aws.network_acl import NetworkAcl
from cdktf_cdktf_provider_aws.network_acl_rule import NetworkAclRule
from constructs import Construct

from .errors import ConfigError
from .naming import Naming
from .network import Network
from .security import ANYWHERE, HTTPS
from .settings import PRIVATE_RANGES

__all__ = [
    "EPHEMERAL_PORTS",
    "INTERNET",
    "RULE_BLOCK",
    "VPC_GUARD_RULE",
    "AclEntry",
    "Flow",
    "FlowEnd",
    "SubnetAcls",
    "SubnetAclsProps",
    "SubnetTier",
    "acl_entries",
    "web_system_flows",
]

EPHEMERAL_PORTS = (1024, 65535)
"""The ports replies go to: the source ports NAT gateways and load balancers choose from
(Linux clients use 32768-60999, inside this range)."""
INTERNET = ANYWHERE
"""Every IPv4 address: the source of internet clients, the destination of calls out."""
RULE_BLOCK = 100
"""Rule numbers per flow, per ACL and direction (see the module documentation)."""
VPC_GUARD_RULE = 15000
"""The rule denying the VPC's range between the rules for ranges inside and outside it."""
MAX_FLOWS = VPC_GUARD_RULE // RULE_BLOCK - 2
"""So that the last flow's block stays below the guard (and, shifted, below 32766)."""
ALL_PROTOCOLS = "-1"
PROTOCOLS = ("tcp", "udp")
FLOW_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
HTTP = 80


class SubnetTier(Enum):
    """The network's two kinds of subnet (one of each per AZ)."""

    PUBLIC = "public"
    """Routed to the internet gateway: internet-facing load balancers, NAT gateways."""
    PRIVATE = "private"
    """Routed through NAT (or nowhere): tasks, databases, file systems, endpoints."""


FlowEnd = SubnetTier | str
"""One end of a flow: a tier of the network, or an IPv4 CIDR outside the VPC
(:data:`INTERNET`, a VPN's range)."""


@dataclass(frozen=True)
class Flow:
    """Connections ``source`` opens to ``destination`` on ``port`` (to ``to_port``).

    At least one end is a tier; a CIDR end lies outside the VPC (a range inside it is a
    tier's business: name the tier). The internet (a range outside ``PRIVATE_RANGES``) may
    open connections only to the public tier; a private range (a VPN, a peered network)
    may reach either tier.
    """

    name: str
    """Short, unique among the flows (``load-balancer-to-service``): lower-case words
    joined by hyphens."""
    source: FlowEnd
    destination: FlowEnd
    port: int
    to_port: int | None = None
    """The last port of a range. Unset: ``port`` alone."""
    protocol: str = "tcp"
    """``tcp`` or ``udp``. Unset: tcp."""

    @property
    def ports(self) -> tuple[int, int]:
        return (self.port, self.port if self.to_port is None else self.to_port)


@dataclass(frozen=True)
class AclEntry:
    """One derived rule: it allows (or, the guard, denies) ``protocol`` on
    ``from_port``-``to_port`` from (inbound) or to (``egress``) ``cidr_block``, on the ACL
    of ``tier``."""

    tier: SubnetTier
    egress: bool
    rule_number: int
    protocol: str
    """``tcp``, ``udp``, or ``-1`` (every protocol and port: the guard)."""
    cidr_block: str
    from_port: int
    to_port: int
    flow: str | None
    """The flow it serves; None for the guard."""
    reply: bool
    """It carries a flow's replies (ephemeral ports), not its requests."""
    allow: bool = True
    """False for the guard only."""

    def covers(self, other: AclEntry) -> bool:
        """Whether this allow rule allows everything ``other`` allows, in the same ACL,
        direction and part (inside or outside the VPC)."""
        return (
            self.allow
            and other.allow
            and (self.tier, self.egress, self.protocol)
            == (other.tier, other.egress, other.protocol)
            and (self.rule_number > VPC_GUARD_RULE) == (other.rule_number > VPC_GUARD_RULE)
            and _net(other.cidr_block).subnet_of(_net(self.cidr_block))
            and self.from_port <= other.from_port
            and other.to_port <= self.to_port
        )


@dataclass(frozen=True)
class SubnetAclsProps:
    naming: Naming
    network: Network
    """Each of its subnets gets its tier's ACL."""
    flows: Sequence[Flow]
    """Everything that may cross a subnet boundary (see :func:`web_system_flows` for a
    typical system). Order matters for rule numbers only: append new flows at the end."""
    max_rules_per_direction: int = 20
    """Refuse to build an ACL with more rules than this in one direction. Unset: 20, the
    AWS default quota (which can be raised to 40)."""


class SubnetAcls(Construct):
    """One network ACL per tier of ``network``, associated with that tier's subnets (its
    ``subnet_ids``), holding exactly the rules :attr:`entries` derives from the flows (see
    the module documentation): what no flow allows meets the VPC guard or the final
    implicit deny."""

    def __init__(self, scope: Construct, id_: str, *, props: SubnetAclsProps) -> None:
        super().__init__(scope, id_)
        network = props.network
        self.flows: tuple[Flow, ...] = tuple(props.flows)
        self.entries: tuple[AclEntry, ...] = acl_entries(
            self.flows,
            network=network,
            where=self.node.path,
            max_rules_per_direction=props.max_rules_per_direction,
        )
        """Every rule, by tier, direction and rule number."""
        subnets = {
            SubnetTier.PUBLIC: network.public_subnet_ids,
            SubnetTier.PRIVATE: network.private_subnet_ids,
        }
        self.acls: dict[SubnetTier, NetworkAcl] = {}
        self.rules: dict[tuple[SubnetTier, bool, int], NetworkAclRule] = {}
        """The rule resources by ``(tier, egress, rule_number)``."""
        for tier in SubnetTier:
            name = props.naming.name(tier.value, "acl")
            self.acls[tier] = NetworkAcl(
                self,
                f"{tier.value}-acl",
                vpc_id=network.vpc.id,
                subnet_ids=subnets[tier],
                tags={"Name": name, "tier": tier.value},
            )
        for entry in self.entries:
            direction = "egress" if entry.egress else "ingress"
            every = entry.protocol == ALL_PROTOCOLS  # AWS ignores the ports then
            self.rules[(entry.tier, entry.egress, entry.rule_number)] = NetworkAclRule(
                self,
                f"{entry.tier.value}-{direction}-{entry.rule_number}",
                network_acl_id=self.acls[entry.tier].id,
                rule_number=entry.rule_number,
                egress=entry.egress,
                protocol=entry.protocol,
                rule_action="allow" if entry.allow else "deny",
                cidr_block=entry.cidr_block,
                from_port=None if every else entry.from_port,
                to_port=None if every else entry.to_port,
            )


def acl_entries(
    flows: Sequence[Flow],
    *,
    network: Network,
    where: str,
    max_rules_per_direction: int = 20,
) -> tuple[AclEntry, ...]:
    """The rules :class:`SubnetAcls` builds for ``flows`` on ``network``, sorted by tier,
    direction and rule number; raises :class:`ConfigError` (naming ``where``) for a flow
    it cannot build."""
    _validate(flows, network, where)
    ranges = {
        SubnetTier.PUBLIC: network.public_subnet_cidrs,
        SubnetTier.PRIVATE: network.private_subnet_cidrs,
    }
    nat = bool(network.nat_gateways)
    vpc = _net(network.vpc_cidr)
    derived: list[AclEntry] = []
    for index, flow in enumerate(flows):
        derived.extend(_flow_entries(flow, RULE_BLOCK * (index + 1), ranges, vpc=vpc, nat=nat))
    guarded = {(e.tier, e.egress) for e in derived if e.rule_number > VPC_GUARD_RULE}
    derived += [
        AclEntry(
            tier=tier,
            egress=egress,
            rule_number=VPC_GUARD_RULE,
            protocol=ALL_PROTOCOLS,
            cidr_block=str(vpc),
            from_port=0,
            to_port=65535,
            flow=None,
            reply=False,
            allow=False,
        )
        for tier, egress in sorted(guarded, key=lambda k: (k[0].value, k[1]))
    ]
    kept = [
        entry
        for position, entry in enumerate(derived)
        if not any(
            other.covers(entry) and (not entry.covers(other) or earlier < position)
            for earlier, other in enumerate(derived)
            if earlier != position
        )
    ]
    kept.sort(key=lambda e: (e.tier.value, e.egress, e.rule_number))
    for tier in SubnetTier:
        for egress in (False, True):
            count = sum(1 for e in kept if (e.tier, e.egress) == (tier, egress))
            if count > max_rules_per_direction:
                direction = "outbound" if egress else "inbound"
                raise ConfigError(
                    where,
                    "flows",
                    f"{count} {direction} rules on the {tier.value} ACL",
                    f"stay within max_rules_per_direction ({max_rules_per_direction}): join "
                    "flows into port ranges, or raise the AWS quota (at most 40) and "
                    "max_rules_per_direction with it",
                )
    return tuple(kept)


def web_system_flows(
    network: Network,
    *,
    service_ports: Sequence[int],
    private_ports: Sequence[int] = (),
    internet_facing: bool = True,
    load_balancer_calls_out: bool = False,
) -> tuple[Flow, ...]:
    """The flows of a typical web system on ``network``, in this order:

    - internet-facing (a load balancer in the public subnets): ``clients-https`` and
      ``clients-http`` (internet to public, 443 and 80; 80 only redirects), then
      ``load-balancer-<port>`` (public to private) per ``service_ports``; internal (the load
      balancer in the private subnets): ``load-balancer-<port>`` private to private;
    - ``private-<port>`` (private to private) per ``private_ports``: the database (3306,
      5432), EFS (2049), one service calling another;
    - ``aws-endpoints`` (private to private, 443) when the network has interface endpoints;
    - ``internet-https`` (private to the internet, 443): AWS APIs and the internet through
      NAT, or the S3 gateway endpoint without NAT;
    - ``load-balancer-out`` (public to the internet, 443) when ``load_balancer_calls_out``
      and internet-facing: a load balancer that signs users in calls Cognito itself (an
      internal one is served by ``internet-https``).

    A flow the system needs besides these goes after them (to keep rule numbers stable).
    """
    flows: list[Flow] = []
    if internet_facing:
        flows += [
            Flow("clients-https", INTERNET, SubnetTier.PUBLIC, HTTPS),
            Flow("clients-http", INTERNET, SubnetTier.PUBLIC, HTTP),
        ]
    balancer = SubnetTier.PUBLIC if internet_facing else SubnetTier.PRIVATE
    flows += [
        Flow(f"load-balancer-{port}", balancer, SubnetTier.PRIVATE, port) for port in service_ports
    ]
    flows += [
        Flow(f"private-{port}", SubnetTier.PRIVATE, SubnetTier.PRIVATE, port)
        for port in private_ports
    ]
    if network.interface_endpoints:
        flows.append(Flow("aws-endpoints", SubnetTier.PRIVATE, SubnetTier.PRIVATE, HTTPS))
    flows.append(Flow("internet-https", SubnetTier.PRIVATE, INTERNET, HTTPS))
    if load_balancer_calls_out and internet_facing:
        flows.append(Flow("load-balancer-out", SubnetTier.PUBLIC, INTERNET, HTTPS))
    return tuple(flows)


def _flow_entries(
    flow: Flow,
    first: int,
    ranges: dict[SubnetTier, tuple[str, ...]],
    *,
    vpc: ipaddress.IPv4Network,
    nat: bool,
) -> list[AclEntry]:
    """Every rule ``flow`` needs, numbered from ``first`` per ACL, direction and part
    (ranges outside ``vpc`` after :data:`VPC_GUARD_RULE`)."""

    def cidrs(end: FlowEnd) -> tuple[str, ...]:
        return ranges[end] if isinstance(end, SubnetTier) else (end,)

    out: list[AclEntry] = []
    counters: dict[tuple[SubnetTier, bool, bool], int] = {}

    def add(tier: SubnetTier, egress: bool, peers: tuple[str, ...], reply: bool) -> None:
        ports = EPHEMERAL_PORTS if reply else flow.ports
        for cidr in peers:
            outside = not _net(cidr).subnet_of(vpc)
            n = counters.get((tier, egress, outside), 0)
            counters[(tier, egress, outside)] = n + 1
            out.append(
                AclEntry(
                    tier=tier,
                    egress=egress,
                    rule_number=first + n + (VPC_GUARD_RULE if outside else 0),
                    protocol=flow.protocol,
                    cidr_block=cidr,
                    from_port=ports[0],
                    to_port=ports[1],
                    flow=flow.name,
                    reply=reply,
                )
            )

    source, destination = flow.source, flow.destination
    if isinstance(source, SubnetTier):
        add(source, True, cidrs(destination), reply=False)
        add(source, False, cidrs(destination), reply=True)
    if isinstance(destination, SubnetTier):
        add(destination, False, cidrs(source), reply=False)
        add(destination, True, cidrs(source), reply=True)
    if source is SubnetTier.PRIVATE and _is_internet(destination) and nat:
        # The NAT gateway sits in a public subnet: the request enters and leaves the public
        # tier, and so does the reply.
        add(SubnetTier.PUBLIC, False, cidrs(source), reply=False)
        add(SubnetTier.PUBLIC, True, cidrs(destination), reply=False)
        add(SubnetTier.PUBLIC, False, cidrs(destination), reply=True)
        add(SubnetTier.PUBLIC, True, cidrs(source), reply=True)
    return out


def _is_internet(end: FlowEnd) -> bool:
    """Whether ``end`` is a range outside every private range (reached through NAT)."""
    if isinstance(end, SubnetTier):
        return False
    network = _net(end)
    return not any(network.subnet_of(private) for private in PRIVATE_RANGES)


def _net(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def _validate(flows: Sequence[Flow], network: Network, where: str) -> None:
    if not flows:
        raise ConfigError(
            where, "flows", 0, "declare the flows the system needs (web_system_flows(...))"
        )
    if len(flows) > MAX_FLOWS:
        raise ConfigError(where, "flows", len(flows), f"declare at most {MAX_FLOWS}")
    vpc = _net(network.vpc_cidr)
    seen: set[str] = set()
    for flow in flows:
        field_ = f"flows[{flow.name}]"
        if not FLOW_NAME.match(flow.name):
            raise ConfigError(
                where,
                "flows",
                repr(flow.name),
                "name each flow with lower-case words joined by hyphens",
            )
        if flow.name in seen:
            raise ConfigError(where, "flows", repr(flow.name), "name each flow once")
        seen.add(flow.name)
        low, high = flow.ports
        if not 1 <= low <= high <= 65535:
            raise ConfigError(
                where, f"{field_}.port", f"{low}-{high}", "give ports from 1 to 65535, low first"
            )
        if flow.protocol not in PROTOCOLS:
            raise ConfigError(where, f"{field_}.protocol", repr(flow.protocol), "use tcp or udp")
        ends = (("source", flow.source), ("destination", flow.destination))
        for label, end in ends:
            if isinstance(end, SubnetTier):
                continue
            try:
                cidr = ipaddress.IPv4Network(end, strict=True)
            except ValueError:
                cidr = None
            if cidr is None or "/" not in end:
                raise ConfigError(
                    where,
                    f"{field_}.{label}",
                    repr(end),
                    "give a SubnetTier or an IPv4 network CIDR such as 0.0.0.0/0",
                )
            if cidr.subnet_of(vpc):
                raise ConfigError(
                    where,
                    f"{field_}.{label}",
                    end,
                    f"it lies inside the VPC ({vpc}): name its tier (SubnetTier) instead",
                )
        if not any(isinstance(end, SubnetTier) for _, end in ends):
            raise ConfigError(
                where,
                f"{field_}",
                f"{flow.source} -> {flow.destination}",
                "make one end a tier of the network: a flow between two outside ranges "
                "never crosses its subnets",
            )
        if flow.destination is SubnetTier.PRIVATE and _is_internet(flow.source):
            raise ConfigError(
                where,
                f"{field_}.source",
                flow.source,
                "the internet reaches only the public tier (no route leads from it to a "
                "private subnet): put the entry point there (an internet-facing load "
                "balancer) and add a flow from the public tier to the private one",
            )
