"""An internal Network Load Balancer: what an API Gateway REST API's VPC link reaches.

A REST API reaches a service in private subnets only through a VPC link, and a REST
API's VPC link targets only a Network Load Balancer (see :mod:`constructs_lib.api_gateway`).
This one is internal (private subnets, private addresses), spreads connections across
zones, forwards TCP to the tasks' IPs and judges them with an HTTP health check.

Who gets in, and where it is checked:

- API Gateway's VPC link is an AWS PrivateLink endpoint service on this load balancer.
  Its connections come from API Gateway's own network, from addresses AWS neither
  publishes nor keeps stable (AWS's advice is to take no dependency on API Gateway's
  CIDRs), and the load balancer translates them to its own private addresses before the
  targets see them. So the security group's inbound rules are *not* evaluated for
  PrivateLink traffic (``enforce_security_group_inbound_rules_on_private_link_traffic =
  "off"``, as AWS's API Gateway guide for VPC links prescribes): with them evaluated, the
  group would have to admit every address (``0.0.0.0/0``) for the VPC link to work.
  Callers on that path are checked by the REST API instead (IP allow-list in its resource
  policy, API key).
- Everything else arrives from inside the VPC or a connected private network, and the
  security group decides: the VPC's own CIDR (in-VPC clients such as batch jobs or a
  migration function; ``vpc_clients``), ``ingress_cidrs`` (a VPN, a peered network:
  private ranges only, the load balancer has no public address) and security groups
  admitted with :meth:`NetworkLoadBalancer.allow_from`, on the listener ports only.
- The group sends nothing until a service admits it (``FargateService`` does so for
  its load balancer): health checks obey its outbound rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformResource
from cdktf_cdktf_provider_aws.lb import Lb
from cdktf_cdktf_provider_aws.lb_listener import LbListener, LbListenerDefaultAction
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import (
    VpcSecurityGroupIngressRule,
)
from constructs import Construct

from apps.common.contract import HEALTH_PATH

from .alarms import AlarmSpec, Watch
from .errors import ConfigError
from .load_balancer import check_names, check_target, cidr_ingress_rules
from .naming import Naming
from .network import Network
from .security import Peer, RulePair, allow_tcp, security_group
from .settings import allowed_cidr_problem

__all__ = ["NetworkListener", "NetworkLoadBalancer", "NetworkLoadBalancerProps"]

NLB_METRICS = "AWS/NetworkELB"
PRIVATE_LINK_INBOUND_RULES = "off"
"""``enforce_security_group_inbound_rules_on_private_link_traffic``: see the module doc."""
TARGET_RESET_THRESHOLD = 100
"""TCP resets sent by the targets in 5 minutes above which the pressure alarm fires."""


@dataclass(frozen=True)
class NetworkListener:
    """A further TCP listener with a target group of its own (the metadata service's
    migration port, say: listener 8082 to container port 8082)."""

    port: int
    """The listener's port: what callers and API Gateway integrations connect to."""
    target_port: int
    """The container port its target group forwards to (targets registered by IP)."""
    health_check_path: str = HEALTH_PATH
    """HTTP path checked on ``target_port``, which must answer 200. Unset: ``/health``."""
    open_to_clients: bool = True
    """Admit the load balancer's clients (``vpc_clients``, ``ingress_cidrs``) on this port.
    False: only groups admitted with ``allow_from(..., port=)`` (an unauthenticated admin
    or migration port). Unset: admitted."""


@dataclass(frozen=True)
class NetworkLoadBalancerProps:
    naming: Naming
    network: Network
    """Internal: in this network's private subnets, one per AZ, cross-zone balanced."""
    target_port: int
    """The service's container port; targets are registered by IP (Fargate awsvpc)."""
    listener_port: int = 80
    """The main TCP listener's port. Unset: 80."""
    health_check_path: str = HEALTH_PATH
    """HTTP path checked on ``target_port``, which must answer 200. Unset: ``/health``."""
    ingress_cidrs: Sequence[str] = ()
    """Private IPv4 ranges (a VPN, a peered network) admitted on every listener port; only
    ranges inside ``PRIVATE_RANGES`` are accepted (the load balancer has no public
    address). Unset: none beyond the VPC (``vpc_clients``)."""
    vpc_clients: bool = True
    """Admit the VPC's own CIDR on every listener port (in-VPC clients: batch jobs, a
    migration function). False: only ``ingress_cidrs`` and groups admitted with
    ``allow_from``. API Gateway's VPC link is admitted either way (it is not filtered by
    the security group). Unset: admitted."""
    extra_listeners: Sequence[NetworkListener] = ()
    """Further listener/target-group pairs on other ports. Unset: none."""
    deletion_protection: bool = False
    """Unset: the load balancer can be deleted by ``terraform destroy``."""
    access_logs_bucket_name: str | None = None
    """Refused when set: a Network Load Balancer writes access logs only for TLS
    listeners, and these listeners are TCP, so the bucket would stay empty. The REST
    API's stage access log records each request that comes through API Gateway.
    Unset: no access logs."""
    deregistration_delay_seconds: int = 30
    """How long a draining task keeps its open connections; when it ends, the load
    balancer closes them. Unset: 30 s."""


class NetworkLoadBalancer(Construct):
    """An internal NLB with one TCP listener and IP target group per port.

    Each target group forwards TCP to the tasks' IPs (client IP preservation off, so the
    tasks see the load balancer's address on every path and admitting its security group
    is enough), checks ``health_check_path`` over HTTP on the traffic port every 15 s
    (healthy after 2 answers 200, unhealthy after 3 failures), and closes a deregistered
    task's connections when the deregistration delay ends.

    It satisfies ``ServiceLoadBalancer``: ``FargateService(load_balancer=...)`` registers
    in :attr:`target_group` (the main listener's), admits :attr:`security_group` on its
    port and starts after :attr:`forwarding`. It cannot drive request-count scaling
    (:attr:`request_count_label` raises: ``ALBRequestCountPerTarget`` is an Application
    Load Balancer metric).
    """

    def __init__(self, scope: Construct, id_: str, *, props: NetworkLoadBalancerProps) -> None:
        super().__init__(scope, id_)
        self._validate(props)
        self.props = props
        self.network = props.network
        self.listener_port = props.listener_port
        naming = props.naming
        name = naming.name("nlb")
        ports = [
            NetworkListener(props.listener_port, props.target_port, props.health_check_path),
            *props.extra_listeners,
        ]

        self.security_group: SecurityGroup = security_group(
            self,
            name=name,
            description="NLB: TCP from the VPC and allowed private CIDRs (VPC link unfiltered)",
            vpc_id=props.network.vpc.id,
        )
        self.ingress_rules: list[VpcSecurityGroupIngressRule] = self._ingress(props, ports)
        self.nlb = Lb(
            self,
            "nlb",
            name=name,
            internal=True,
            load_balancer_type="network",
            ip_address_type="ipv4",
            subnets=list(props.network.private_subnet_ids),
            security_groups=[self.security_group.id],
            enforce_security_group_inbound_rules_on_private_link_traffic=(
                PRIVATE_LINK_INBOUND_RULES
            ),
            enable_cross_zone_load_balancing=True,
            enable_deletion_protection=props.deletion_protection,
            tags={"Name": name},
        )
        self.target_groups: dict[int, LbTargetGroup] = {}
        """Each listener's target group, by listener port."""
        self.listeners: dict[int, LbListener] = {}
        """The TCP listeners, by port."""
        for spec in ports:
            group = self._target_group(props, spec)
            self.target_groups[spec.port] = group
            self.listeners[spec.port] = LbListener(
                self,
                f"listener-{spec.port}",
                load_balancer_arn=self.nlb.arn,
                port=spec.port,
                protocol="TCP",
                default_action=[
                    LbListenerDefaultAction(type="forward", target_group_arn=group.arn)
                ],
            )
        self.target_group: LbTargetGroup = self.target_groups[props.listener_port]
        """The main listener's target group: where ``FargateService`` registers."""
        self.listener: LbListener = self.listeners[props.listener_port]
        self.forwarding: list[TerraformResource] = list(self.listeners.values())
        """Every listener: a service registering in any of the target groups starts after
        them (ECS refuses a target group no load balancer uses)."""
        self.arn: str = self.nlb.arn
        self.arn_suffix: str = self.nlb.arn_suffix
        self.dns_name: str = self.nlb.dns_name
        self.internal_url: str = f"http://{self.nlb.dns_name}:{props.listener_port}"
        """The main listener's address for callers inside the VPC (or an admitted
        private range): resolves to the load balancer's private IPs."""

    @property
    def request_count_label(self) -> str:
        """Always raises :class:`ConfigError`: ``ALBRequestCountPerTarget`` (what
        ``FargateService.scale_on_requests`` tracks, its only reader) exists for
        Application Load Balancers only."""
        raise ConfigError(
            self.node.path,
            "request_count_label",
            "a Network Load Balancer",
            "scale the service with scale_on_cpu or scale_on_backlog_per_task: "
            "ALBRequestCountPerTarget exists only for Application Load Balancers",
        )

    def allow_from(self, peer: Peer, *, description: str, port: int | None = None) -> RulePair:
        """Admit connections from ``peer`` (a construct with a security group, e.g. a
        function in the VPC) to the listener on ``port``. Unset ``port``: the main
        listener's."""
        port = self.listener_port if port is None else port
        if port not in self.listeners:
            raise ConfigError(
                self.node.path,
                "allow_from.port",
                port,
                f"give a listener port ({', '.join(map(str, self.listeners))})",
            )
        return allow_tcp(
            self, source=peer, target=self.security_group, port=port, description=description
        )

    def alarms(self) -> list[AlarmSpec]:
        """Per listener: targets failing their health check, and no healthy target at all
        (breakage); for the load balancer: many TCP resets sent by targets (pressure)."""
        lb = {"LoadBalancer": self.arn_suffix}
        specs: list[AlarmSpec] = []
        for port, group in self.target_groups.items():
            dimensions = {"LoadBalancer": self.arn_suffix, "TargetGroup": group.arn_suffix}
            specs += [
                AlarmSpec(
                    f"nlb-{port}-unhealthy-targets",
                    f"Targets behind NLB port {port} failed health checks in 3 of the last "
                    "5 minutes. Look at the ECS service events and the tasks' health-check "
                    "logs.",
                    (NLB_METRICS, "UnHealthyHostCount", dimensions),
                    Watch("Maximum", 60, ">", 0, evaluations=5, datapoints=3),
                ),
                AlarmSpec(
                    f"nlb-{port}-no-healthy-targets",
                    f"No healthy target behind NLB port {port} for 3 minutes: every "
                    "connection fails. Look at the service's running tasks and their logs.",
                    (NLB_METRICS, "HealthyHostCount", dimensions),
                    Watch("Minimum", 60, "<", 1, evaluations=3),
                ),
            ]
        specs.append(
            AlarmSpec(
                "nlb-target-resets",
                f"Targets reset more than {TARGET_RESET_THRESHOLD} TCP connections in 5 "
                "minutes, twice in 15 minutes. Look for crashing or restarting tasks and "
                "for idle connections the application closes.",
                (NLB_METRICS, "TCP_Target_Reset_Count", lb),
                Watch("Sum", 300, ">", TARGET_RESET_THRESHOLD, evaluations=3, datapoints=2),
                breakage=False,
            )
        )
        return specs

    def _ingress(
        self, props: NetworkLoadBalancerProps, ports: Sequence[NetworkListener]
    ) -> list[VpcSecurityGroupIngressRule]:
        """One rule per admitted CIDR and listener port open to clients (ids
        ``ingress-<port>-<cidr>``)."""
        listener_ports = [spec.port for spec in ports if spec.open_to_clients]
        rules = []
        if props.vpc_clients:
            vpc_cidr = props.network.props.settings.vpc_cidr
            rules += cidr_ingress_rules(
                self,
                self.security_group,
                [vpc_cidr],
                listener_ports,
                description="Clients in the VPC",
            )
        return rules + cidr_ingress_rules(
            self,
            self.security_group,
            props.ingress_cidrs,
            listener_ports,
            description="Allowed CIDR",
        )

    def _target_group(
        self, props: NetworkLoadBalancerProps, spec: NetworkListener
    ) -> LbTargetGroup:
        name = props.naming.name("nlb", str(spec.port))
        return LbTargetGroup(
            self,
            f"target-group-{spec.port}",
            name=name,
            vpc_id=props.network.vpc.id,
            target_type="ip",
            protocol="TCP",
            port=spec.target_port,
            preserve_client_ip="false",
            deregistration_delay=str(props.deregistration_delay_seconds),
            connection_termination=True,
            health_check=LbTargetGroupHealthCheck(
                enabled=True,
                protocol="HTTP",
                port="traffic-port",
                path=spec.health_check_path,
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags={"Name": name},
        )

    def _validate(self, props: NetworkLoadBalancerProps) -> None:
        where = self.node.path
        if props.access_logs_bucket_name is not None:
            raise ConfigError(
                where,
                "access_logs_bucket_name",
                repr(props.access_logs_bucket_name),
                "leave it unset: a Network Load Balancer logs TLS listeners only and these "
                "listeners are TCP; the REST API's stage access log records each request",
            )
        if not 1 <= props.listener_port <= 65535:
            raise ConfigError(
                where, "listener_port", props.listener_port, "give a TCP port 1-65535"
            )
        check_target(where, props.target_port, props.health_check_path)
        for spec in props.extra_listeners:
            for field, port in (("port", spec.port), ("target_port", spec.target_port)):
                if not 1 <= port <= 65535:
                    raise ConfigError(
                        where, f"extra_listeners.{field}", port, "give a TCP port 1-65535"
                    )
            if not spec.health_check_path.startswith("/"):
                raise ConfigError(
                    where,
                    "extra_listeners.health_check_path",
                    repr(spec.health_check_path),
                    "start it with /",
                )
        specs = [NetworkListener(props.listener_port, props.target_port), *props.extra_listeners]
        listener_ports = [s.port for s in specs]
        twice = sorted({p for p in listener_ports if listener_ports.count(p) > 1})
        if twice:
            raise ConfigError(where, "extra_listeners", twice, "give each listener its own port")
        self._validate_cidrs(props)
        if not 0 <= props.deregistration_delay_seconds <= 3600:
            raise ConfigError(
                where,
                "deregistration_delay_seconds",
                props.deregistration_delay_seconds,
                "give 0-3600 seconds",
            )
        check_names(where, *(props.naming.name("nlb", str(p)) for p in listener_ports))

    def _validate_cidrs(self, props: NetworkLoadBalancerProps) -> None:
        where = self.node.path
        for cidr in props.ingress_cidrs:
            problem = allowed_cidr_problem(cidr)
            if problem:
                raise ConfigError(where, "ingress_cidrs", repr(cidr), problem)
        cidrs = list(props.ingress_cidrs)
        twice = sorted({c for c in cidrs if cidrs.count(c) > 1})
        if twice:
            raise ConfigError(where, "ingress_cidrs", twice, "give each range once")
        vpc_cidr = props.network.props.settings.vpc_cidr
        if props.vpc_clients and vpc_cidr in cidrs:
            raise ConfigError(
                where,
                "ingress_cidrs",
                repr(vpc_cidr),
                "the VPC's CIDR is admitted already (vpc_clients): leave it out",
            )
