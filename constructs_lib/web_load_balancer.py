"""An Application Load Balancer that users reach directly (no CloudFront in front): for
web applications such as Metabase or Dekart served by one Fargate service.

Secure by default, whatever the configuration:

- with a certificate it serves HTTPS only (TLS 1.3/1.2, HSTS) and answers plain HTTP with
  a permanent redirect; it is internet-facing, in the public subnets;
- without a certificate it is internal (private subnets) and admits only private ranges:
  plain HTTP never faces the internet, and asking for that is a configuration error;
- it can sign users in with Cognito before anything reaches the application
  (:class:`~constructs_lib.user_pool.CognitoAuthentication`, HTTPS only);
- its security group admits only ``ingress_cidrs`` on the listener ports and sends
  nothing until a service admits it (``FargateService(load_balancer=...)`` does), except
  HTTPS to Cognito when it authenticates; invalid header fields are dropped and request
  desync is mitigated.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformResource, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionAuthenticateCognito,
)
from cdktf_cdktf_provider_aws.lb_listener_rule import (
    LbListenerRule,
    LbListenerRuleAction,
    LbListenerRuleCondition,
    LbListenerRuleConditionPathPattern,
)
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup
from cdktf_cdktf_provider_aws.route53_record import Route53Record
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from constructs import Construct

from apps.common.contract import HEALTH_PATH

from .alarms import AlarmSpec, Watch
from .bucket import SecureBucket
from .certificate import HOST_NAME
from .errors import ConfigError
from .load_balancer import (
    HTTP_PORT,
    HTTPS_PORT,
    MAX_SOURCE_IPS_PER_RULE,
    access_logs_bucket,
    alias_record,
    application_load_balancer,
    check_availability_zones,
    check_names,
    check_target,
    check_timeouts,
    cidr_ingress_rules,
    http_listener,
    https_listener,
    ip_target_group,
    redirect_to_https,
)
from .naming import Naming
from .network import Network
from .options import NatGateways
from .security import ANYWHERE, HTTPS, security_group
from .settings import PRIVATE_RANGES, allowed_cidr_problem
from .user_pool import CognitoAuthentication

__all__ = ["CognitoAuthentication", "WebLoadBalancer", "WebLoadBalancerProps"]

ALB = "AWS/ApplicationELB"
NAME_PART = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_PATH_PATTERN_LENGTH = 128
MAX_VALUES_PER_RULE = MAX_SOURCE_IPS_PER_RULE
"""A listener rule holds at most five condition values (paths included)."""
UNAUTHENTICATED_RULE_PRIORITY = 10
"""The first rule forwarding ``unauthenticated_paths``; one more per five paths."""


@dataclass(frozen=True)
class WebLoadBalancerProps:
    naming: Naming
    network: Network
    """Internet-facing: in this network's public subnets; internal: in its private subnets
    (2 AZs or more either way)."""
    target_port: int
    """The application container's port; targets are registered by IP (Fargate awsvpc)."""
    health_check_path: str = HEALTH_PATH
    """Must answer 200 when the application can serve (Metabase: ``/api/health``).
    Unset: ``/health``."""
    certificate_arn: str | None = None
    """ACM certificate in the load balancer's region for ``domain_name`` (e.g.
    ``Certificate(...).arn``, which waits for validation). When set, an HTTPS listener
    (TLS 1.3/1.2 policy) serves and HTTP redirects to it with a 301. Unset: plain HTTP,
    so the load balancer must be internal."""
    domain_name: str | None = None
    """The application's DNS name; required with ``certificate_arn`` (the certificate's
    name, and the address users and Cognito's callback use). Unset: the load balancer's
    own ``*.elb.amazonaws.com`` name (HTTP only)."""
    hosted_zone_id: str | None = None
    """Route 53 hosted zone of ``domain_name``: an alias A record to the load balancer is
    created there. Unset: no DNS record (the name is managed elsewhere)."""
    internet_facing: bool | None = None
    """Unset: internet-facing exactly when ``certificate_arn`` is set. False keeps an HTTPS
    load balancer internal (VPN users only); True without a certificate is refused."""
    authentication: CognitoAuthentication | None = None
    """Sign users in with this Cognito user pool before forwarding (needs
    ``certificate_arn``); the security group then also lets the load balancer reach
    Cognito over HTTPS. Unset: every request is forwarded; the application authenticates."""
    unauthenticated_paths: Sequence[str] = ()
    """Path patterns (``*`` and ``?`` wildcards, e.g. ``/public/*``) forwarded without
    signing in, for links an application shares publicly; needs ``authentication``.
    Unset: none; every path needs a signed-in user."""
    ingress_cidrs: Sequence[str] | None = None
    """IPv4 ranges admitted on the listener ports (80 and 443, or 80 without a
    certificate). An internal load balancer admits only ranges inside ``PRIVATE_RANGES``.
    Unset: everyone (``0.0.0.0/0``) when internet-facing; the VPC's own range when
    internal (its tasks, peered callers that come through it, Client VPN)."""
    name: str = "web"
    """Name part: the load balancer and its security group are ``<prefix>-<name>``, the
    target group ``<prefix>-<name>-<target_port>``, the alarm keys ``<name>-...``.
    Unset: ``web``."""
    deletion_protection: bool = False
    """Unset: the load balancer can be deleted by ``terraform destroy``."""
    access_logs_bucket_name: str | None = None
    """When set, a bucket of this name (SSE-S3, the only encryption ALB log delivery
    supports; objects expire after 90 days; emptied on destroy unless
    ``deletion_protection``) receives the access logs under ``alb/``. Unset: no access
    logs."""
    web_acl_arn: str | None = None
    """A regional AWS WAF web ACL to associate. Unset: no WAF (the security group and, with
    ``authentication``, Cognito are the protection)."""
    idle_timeout_seconds: int = 60
    """Unset: 60 s."""
    deregistration_delay_seconds: int = 30
    """How long a draining task keeps its in-flight requests. Unset: 30 s."""
    sticky_sessions_seconds: int | None = None
    """Keep a browser on one task this long (the load balancer's cookie), for applications
    that hold sessions in the task's memory (Tomcat). Unset: no stickiness."""
    hsts_max_age_seconds: int | None = 31536000
    """With a certificate, every answer carries ``Strict-Transport-Security: max-age=<n>``
    (this name only, no subdomains), so browsers never try plain HTTP again. None: no
    header. Unset: one year."""
    alarm_5xx_threshold: int = 10
    """The 5xx alarms fire when the targets, or the load balancer itself, answer more 5xx
    than this in 5 minutes. Unset: 10."""
    p99_latency_threshold_seconds: float = 5.0
    """The latency alarm fires when the slowest 1 % of answers take longer than this.
    Unset: 5 s (interactive applications such as dashboards answer slower than an API)."""


def target_group_prefix(naming: Naming) -> str:
    """Project and environment, two letters each (``mepr-`` for metabase-prod)."""
    return f"{naming.project[:2]}{naming.environment[:2]}-"


class WebLoadBalancer(Construct):
    """An Application Load Balancer forwarding to one IP target group (the application's
    tasks), reached directly by users: see the module documentation for what it enforces.

    ``FargateService(load_balancer=...)`` takes it: the service registers in
    :attr:`target_group`, admits :attr:`security_group` on its port (which gives the load
    balancer its only egress to the tasks) and starts after :attr:`forwarding`.

    The target group's name carries the target port and the group is replaced
    create-before-destroy: a new port gets a new group, the listener moves to it, and the
    old one is deleted afterwards.
    """

    def __init__(self, scope: Construct, id_: str, *, props: WebLoadBalancerProps) -> None:
        super().__init__(scope, id_)
        https = props.certificate_arn is not None
        self.internet_facing: bool = (
            https if props.internet_facing is None else props.internet_facing
        )
        self.internal = not self.internet_facing
        self._validate(props)
        self.name = props.naming.name(props.name)
        self.ingress_cidrs: list[str] = list(
            props.ingress_cidrs if props.ingress_cidrs is not None else self._default_cidrs(props)
        )
        """Who may connect, on every listener port."""
        listener_ports = (HTTP_PORT, HTTPS_PORT) if https else (HTTP_PORT,)
        self.listener_ports: tuple[int, ...] = listener_ports
        """The ports clients connect to (80, and 443 with a certificate)."""

        self.security_group = security_group(
            self,
            name=self.name,
            description=f"{self.name} load balancer: listener ports from allowed CIDRs only",
            vpc_id=props.network.vpc.id,
        )
        self.ingress_rules = cidr_ingress_rules(
            self, self.security_group, self.ingress_cidrs, listener_ports, description="Clients"
        )
        self.cognito_egress: VpcSecurityGroupEgressRule | None = None
        """HTTPS to anywhere, with ``authentication`` only: the load balancer calls
        Cognito's token and user-info endpoints itself (public addresses, IPv4)."""
        if props.authentication is not None:
            self.cognito_egress = VpcSecurityGroupEgressRule(
                self,
                "egress-cognito",
                security_group_id=self.security_group.id,
                cidr_ipv4=ANYWHERE,
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                description="Cognito token and user-info endpoints (ALB authentication)",
            )

        self.access_logs: SecureBucket | None = (
            access_logs_bucket(
                self, bucket_name=props.access_logs_bucket_name, keep=props.deletion_protection
            )
            if props.access_logs_bucket_name
            else None
        )
        network = props.network
        self.alb = application_load_balancer(
            self,
            name=self.name,
            internal=self.internal,
            subnet_ids=network.public_subnet_ids
            if self.internet_facing
            else network.private_subnet_ids,
            security_group=self.security_group,
            deletion_protection=props.deletion_protection,
            idle_timeout_seconds=props.idle_timeout_seconds,
            access_logs=self.access_logs,
        )
        self.target_group = self._target_group(props)

        self.https_listener: LbListener | None = None
        if props.certificate_arn is not None:
            hsts = props.hsts_max_age_seconds
            self.https_listener = https_listener(
                self,
                self.alb,
                certificate_arn=props.certificate_arn,
                actions=self._serving_actions(props),
                strict_transport_security=f"max-age={hsts}" if hsts else None,
            )
        self.http_listener = http_listener(
            self,
            self.alb,
            redirect_to_https()
            if https
            else LbListenerDefaultAction(type="forward", target_group_arn=self.target_group.arn),
        )
        self.listener: LbListener = self.https_listener or self.http_listener
        """The listener that serves (HTTPS with a certificate)."""
        self.rules: list[LbListenerRule] = self._unauthenticated_rules(props)
        """Forward ``unauthenticated_paths`` without signing in."""
        self.forwarding: list[TerraformResource] = [self.listener, *self.rules]
        """The listener and rules that forward to the target group: a service registering
        in it starts after them."""

        self.web_acl_association: Wafv2WebAclAssociation | None = (
            Wafv2WebAclAssociation(
                self, "web-acl", resource_arn=self.alb.arn, web_acl_arn=props.web_acl_arn
            )
            if props.web_acl_arn
            else None
        )
        self.record: Route53Record | None = (
            alias_record(
                self, zone_id=props.hosted_zone_id, name=props.domain_name, load_balancer=self.alb
            )
            if props.hosted_zone_id and props.domain_name
            else None
        )

        self.dns_name: str = self.alb.dns_name
        self.zone_id: str = self.alb.zone_id
        """The load balancer's own hosted zone (for alias records elsewhere)."""
        self.arn_suffix: str = self.alb.arn_suffix
        self.target_group_arn_suffix: str = self.target_group.arn_suffix
        host = props.domain_name or self.alb.dns_name
        self.url: str = f"{'https' if https else 'http'}://{host}"
        """Where users go: ``https://<domain_name>``, or ``http://<domain_name or the load
        balancer's DNS name>`` without a certificate (internal)."""
        self._alarm_key = props.name
        self._alarm_5xx = props.alarm_5xx_threshold
        self._p99 = props.p99_latency_threshold_seconds

    @property
    def request_count_label(self) -> str:
        """``<alb arn suffix>/<target group arn suffix>``: the ``resource_label`` of the
        ``ALBRequestCountPerTarget`` scaling metric."""
        return f"{self.arn_suffix}/{self.target_group_arn_suffix}"

    def alarms(self) -> list[AlarmSpec]:
        """``<name>-target-5xx``, ``<name>-elb-5xx`` and ``<name>-unhealthy-targets``
        (breakage), ``<name>-p99-latency`` (capacity)."""
        lb = {"LoadBalancer": self.arn_suffix}
        target_group = {"TargetGroup": self.target_group_arn_suffix, **lb}
        key = self._alarm_key
        five_minutes = Watch("Sum", 300, ">", self._alarm_5xx)
        return [
            AlarmSpec(
                f"{key}-target-5xx",
                f"The application answered more than {self._alarm_5xx} HTTP 5xx in 5 "
                "minutes. Look at the service's logs (errors, stack traces) and at its "
                "database; a deployment in progress may be the cause (ECS service events).",
                (ALB, "HTTPCode_Target_5XX_Count", lb),
                five_minutes,
            ),
            AlarmSpec(
                f"{key}-elb-5xx",
                f"The load balancer itself answered more than {self._alarm_5xx} HTTP 5xx in "
                "5 minutes: 503 when no target is healthy (see unhealthy-targets and the ECS "
                "service events), 502/504 when tasks close connections or exceed the idle "
                "timeout, 500 when it cannot reach Cognito to sign users in (the security "
                "group's HTTPS egress, the app client). Access logs name the error reason.",
                (ALB, "HTTPCode_ELB_5XX_Count", lb),
                five_minutes,
            ),
            AlarmSpec(
                f"{key}-unhealthy-targets",
                "Application tasks failed the load balancer's health check in 3 of the last 5 "
                "minutes. Run aws elbv2 describe-target-health for the reason per target, "
                "then the ECS service events and the tasks' logs (a crash loop or a slow "
                "start outlasting the health check grace).",
                (ALB, "UnHealthyHostCount", target_group),
                Watch("Maximum", 60, ">", 0, evaluations=5, datapoints=3),
            ),
            AlarmSpec(
                f"{key}-p99-latency",
                f"The slowest 1 % of answers took over {self._p99:g} s in 3 of the last 5 "
                "minutes. Look at the service's CPU and memory, its database's load and "
                "which paths are slow (access logs); scale out or up.",
                (ALB, "TargetResponseTime", lb),
                Watch("p99", 60, ">", self._p99, evaluations=5, datapoints=3),
                breakage=False,
            ),
        ]

    def _default_cidrs(self, props: WebLoadBalancerProps) -> list[str]:
        """Everyone when internet-facing; the VPC's range when internal."""
        return [ANYWHERE] if self.internet_facing else [props.network.props.settings.vpc_cidr]

    def _target_group(self, props: WebLoadBalancerProps) -> LbTargetGroup:
        """The tasks' group, replaced before the old one goes (the listener always has
        one), under a generated name: any change that forces a replacement (port,
        protocol, VPC) would collide with a fixed name."""
        return ip_target_group(
            self,
            name=props.naming.name(props.name, str(props.target_port)),
            name_prefix=target_group_prefix(props.naming),
            vpc_id=props.network.vpc.id,
            port=props.target_port,
            health_check_path=props.health_check_path,
            deregistration_delay_seconds=props.deregistration_delay_seconds,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            sticky_seconds=props.sticky_sessions_seconds,
        )

    def _serving_actions(self, props: WebLoadBalancerProps) -> list[LbListenerDefaultAction]:
        """Forward to the target group; with ``authentication``, sign the user in first."""
        auth = props.authentication
        if auth is None:
            return [LbListenerDefaultAction(type="forward", target_group_arn=self.target_group.arn)]
        authenticate = LbListenerDefaultAction(
            type="authenticate-cognito",
            order=1,
            authenticate_cognito=LbListenerDefaultActionAuthenticateCognito(
                user_pool_arn=auth.user_pool_arn,
                user_pool_client_id=auth.user_pool_client_id,
                user_pool_domain=auth.user_pool_domain,
                scope=auth.scope,
                session_timeout=auth.session_timeout_seconds,
                on_unauthenticated_request=auth.on_unauthenticated_request,
            ),
        )
        forward = LbListenerDefaultAction(
            type="forward", target_group_arn=self.target_group.arn, order=2
        )
        return [authenticate, forward]

    def _unauthenticated_rules(self, props: WebLoadBalancerProps) -> list[LbListenerRule]:
        """One forwarding rule per five ``unauthenticated_paths``, on the HTTPS listener."""
        paths = list(props.unauthenticated_paths)
        rules = []
        for i in range(0, len(paths), MAX_VALUES_PER_RULE):
            n = i // MAX_VALUES_PER_RULE
            rules.append(
                LbListenerRule(
                    self,
                    f"forward-unauthenticated-{n}",
                    listener_arn=self.listener.arn,
                    priority=UNAUTHENTICATED_RULE_PRIORITY + n,
                    action=[
                        LbListenerRuleAction(type="forward", target_group_arn=self.target_group.arn)
                    ],
                    condition=[
                        LbListenerRuleCondition(
                            path_pattern=LbListenerRuleConditionPathPattern(
                                values=paths[i : i + MAX_VALUES_PER_RULE]
                            )
                        )
                    ],
                )
            )
        return rules

    def _validate(self, props: WebLoadBalancerProps) -> None:
        where = self.node.path
        https = props.certificate_arn is not None
        if self.internet_facing and not https:
            raise ConfigError(
                where,
                "internet_facing",
                True,
                "plain HTTP must never face the internet: give certificate_arn (an ACM "
                "certificate for domain_name, e.g. Certificate(...).arn) to serve HTTPS, or "
                "leave internet_facing unset for an internal load balancer",
            )
        check_availability_zones(
            where, props.network, "public" if self.internet_facing else "private"
        )
        if https and not props.domain_name:
            raise ConfigError(
                where,
                "domain_name",
                None,
                "certificate_arn needs the domain_name on the certificate: users (and "
                "Cognito's callback) use it, and the load balancer's own "
                "*.elb.amazonaws.com name is never on a certificate",
            )
        if props.hosted_zone_id and not props.domain_name:
            raise ConfigError(
                where,
                "domain_name",
                None,
                "hosted_zone_id is set: give the domain_name to create in that zone",
            )
        domain = props.domain_name
        if domain and not Token.is_unresolved(domain) and not HOST_NAME.fullmatch(domain):
            raise ConfigError(
                where,
                "domain_name",
                repr(domain),
                "give a lower-case DNS name such as app.example.com (no scheme or wildcard)",
            )
        self._validate_ingress(props)
        self._validate_authentication(props)
        check_target(where, props.target_port, props.health_check_path)
        check_timeouts(where, props.idle_timeout_seconds, props.deregistration_delay_seconds)
        if not NAME_PART.fullmatch(props.name):
            raise ConfigError(
                where, "name", repr(props.name), "use lower-case letters, digits and hyphens"
            )
        check_names(
            where,
            props.naming.name(props.name),
            props.naming.name(props.name, str(props.target_port)),
        )
        acl = props.web_acl_arn
        if acl and not Token.is_unresolved(acl) and ":regional/webacl/" not in acl:
            raise ConfigError(
                where,
                "web_acl_arn",
                repr(acl),
                "give a REGIONAL web ACL's ARN (arn:aws:wafv2:<region>:<account>:regional/"
                "webacl/...): a CLOUDFRONT-scoped one cannot protect a load balancer",
            )
        if props.hsts_max_age_seconds is not None and props.hsts_max_age_seconds <= 0:
            raise ConfigError(
                where,
                "hsts_max_age_seconds",
                props.hsts_max_age_seconds,
                "give a positive number of seconds, or None for no HSTS header",
            )
        if props.alarm_5xx_threshold < 1:
            raise ConfigError(
                where, "alarm_5xx_threshold", props.alarm_5xx_threshold, "give 1 or more"
            )
        if props.p99_latency_threshold_seconds <= 0:
            raise ConfigError(
                where,
                "p99_latency_threshold_seconds",
                props.p99_latency_threshold_seconds,
                "give a positive number of seconds",
            )

    def _validate_ingress(self, props: WebLoadBalancerProps) -> None:
        where = self.node.path
        if props.ingress_cidrs is None:
            return
        if not props.ingress_cidrs:
            raise ConfigError(
                where,
                "ingress_cidrs",
                "an empty list",
                "a load balancer nobody may reach serves nothing: name the ranges, or "
                "leave it unset for the default",
            )
        for cidr in props.ingress_cidrs:
            try:
                ipaddress.IPv4Network(cidr, strict=True)
            except ValueError:
                raise ConfigError(
                    where,
                    "ingress_cidrs",
                    repr(cidr),
                    "give IPv4 network CIDRs such as 203.0.113.0/24",
                ) from None
            if self.internal and allowed_cidr_problem(cidr):
                raise ConfigError(
                    where,
                    "ingress_cidrs",
                    repr(cidr),
                    "the load balancer is internal: only private ranges (a VPN or a peered "
                    "network within " + ", ".join(map(str, PRIVATE_RANGES)) + ") can reach "
                    "it; to serve the internet give a certificate_arn (HTTPS)",
                )

    def _validate_authentication(self, props: WebLoadBalancerProps) -> None:
        where = self.node.path
        auth = props.authentication
        if auth is None:
            if props.unauthenticated_paths:
                raise ConfigError(
                    where,
                    "unauthenticated_paths",
                    ", ".join(props.unauthenticated_paths),
                    "without authentication every path is forwarded already: give "
                    "authentication, or drop unauthenticated_paths",
                )
            return
        if props.certificate_arn is None:
            raise ConfigError(
                where,
                "authentication",
                "Cognito without certificate_arn",
                "the load balancer authenticates only on HTTPS listeners (the sign-in "
                "cookie and the code must not travel in clear): give certificate_arn and "
                "domain_name",
            )
        problem = auth.problem()
        if problem:
            field_, got, fix = problem
            raise ConfigError(where, f"authentication.{field_}", got, fix)
        if self.internal and props.network.props.settings.nat_gateways is NatGateways.NONE:
            raise ConfigError(
                where,
                "authentication",
                "an internal load balancer in a network without NAT",
                "the load balancer calls Cognito's public endpoints: an internal one needs "
                "NAT gateways in the network (or make it internet-facing)",
            )
        for path in props.unauthenticated_paths:
            if not path.startswith("/") or len(path) > MAX_PATH_PATTERN_LENGTH:
                raise ConfigError(
                    where,
                    "unauthenticated_paths",
                    repr(path),
                    f"give path patterns starting with / of at most {MAX_PATH_PATTERN_LENGTH} "
                    "characters (* and ? are wildcards)",
                )
