"""The internal Application Load Balancer in front of the producer API.

Browsers never call the load balancer directly: CloudFront forwards ``/api/*`` to it (see
:mod:`constructs_lib.frontend`), so the page and its API share one HTTPS origin and there
is no mixed content. The load balancer has no public address: it sits in private subnets
and CloudFront reaches it through a CloudFront VPC origin (network interfaces CloudFront
places in the VPC), over AWS's network rather than the internet. Its security group admits
only those interfaces (and an optional allow-list of private ranges, such as a VPN), and
it can further require the secret header CloudFront adds to every origin request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformResource, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.cloudfront_vpc_origin import (
    CloudfrontVpcOrigin,
    CloudfrontVpcOriginVpcOriginEndpointConfig,
    CloudfrontVpcOriginVpcOriginEndpointConfigOriginSslProtocols,
)
from cdktf_cdktf_provider_aws.data_aws_elb_service_account import DataAwsElbServiceAccount
from cdktf_cdktf_provider_aws.data_aws_security_group import DataAwsSecurityGroup
from cdktf_cdktf_provider_aws.lb import Lb, LbAccessLogs
from cdktf_cdktf_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionFixedResponse,
    LbListenerDefaultActionRedirect,
)
from cdktf_cdktf_provider_aws.lb_listener_rule import (
    LbListenerRule,
    LbListenerRuleAction,
    LbListenerRuleCondition,
    LbListenerRuleConditionHttpHeader,
    LbListenerRuleConditionSourceIp,
)
from cdktf_cdktf_provider_aws.lb_target_group import (
    LbTargetGroup,
    LbTargetGroupHealthCheck,
    LbTargetGroupStickiness,
)
from cdktf_cdktf_provider_aws.route53_record import Route53Record, Route53RecordAlias
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import (
    VpcSecurityGroupIngressRule,
)
from constructs import Construct

from apps.common.contract import HEALTH_PATH, ORIGIN_VERIFY_HEADER

from .alarms import AlarmSpec, Watch
from .bucket import SecureBucket, SecureBucketProps
from .errors import ConfigError
from .naming import Naming
from .network import Network
from .policy import Statement
from .security import security_group
from .settings import allowed_cidr_problem

HTTP_PORT = 80
HTTPS_PORT = 443
CLOUDFRONT_VPC_ORIGINS_GROUP = "CloudFront-VPCOrigins-Service-SG"
"""The security group CloudFront creates in a VPC together with the first VPC origin there,
and puts on every network interface it uses to reach VPC origins in that VPC. Admitting it
(one rule) is narrower than CloudFront's origin-facing prefix list (every distribution's
servers, about 55 rules' weight): only this account's VPC origins carry it."""
ORIGIN_TLS_PROTOCOLS = ["TLSv1.2"]
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
"""TLS 1.3 and 1.2 only, forward-secret ciphers."""
ALB_LOG_DELIVERY = "logdelivery.elasticloadbalancing.amazonaws.com"
ACCESS_LOG_PREFIX = "alb"
ACCESS_LOG_EXPIRATION_DAYS = 90
MAX_NAME_LENGTH = 32
"""Load balancer and target group names are limited to 32 characters."""
MAX_SOURCE_IPS_PER_RULE = 5
"""A listener rule holds at most five condition values."""
FORBIDDEN_BODY = json.dumps({"error": "forbidden", "status": 403})


@dataclass(frozen=True)
class LoadBalancerProps:
    naming: Naming
    network: Network
    """The load balancer is internal: in this network's private subnets (2 AZs or more)."""
    target_port: int
    """The producer container's port; targets are registered by IP (Fargate awsvpc)."""
    health_check_path: str = HEALTH_PATH
    """Unset: ``/health``, which must answer 200."""
    allowed_cidrs: Sequence[str] = ()
    """Private IPv4 ranges admitted directly on 80 (and 443 with a certificate): a VPN or a
    peered network, e.g. for smoke tests. The load balancer is internal, so addresses on
    the internet could never reach it; only ranges inside ``PRIVATE_RANGES`` are accepted.
    Unset: none; only CloudFront reaches the load balancer."""
    origin_secret_header_value: str | None = None
    """When set, requests are forwarded only when they carry the contract's
    ``ORIGIN_VERIFY_HEADER`` with this value (as CloudFront sends it) or come from
    ``allowed_cidrs``; anything else gets a fixed 403 JSON answer. ALB compares header
    values case-insensitively, so use a long random value (letters and digits; ``*`` and
    ``?`` are wildcards to ALB). Unset: no header check; the security group alone decides
    who gets in."""
    certificate_arn: str | None = None
    """ACM certificate (in the load balancer's region) for ``domain_name``. When set, an
    HTTPS listener (TLS 1.3/1.2 policy) serves and the HTTP listener redirects to it with
    a 301; the VPC origin then connects over HTTPS only (TLS 1.2+). Unset: HTTP between
    CloudFront and the load balancer, on AWS's network (no certificate can name the load
    balancer's own ``*.elb.amazonaws.com`` name)."""
    domain_name: str | None = None
    """The API's DNS name; required with ``certificate_arn`` (CloudFront checks the
    origin's certificate against it). With ``hosted_zone_id`` an alias A record to the
    load balancer is created (it resolves to private addresses: for VPN or peered
    callers). Unset: the load balancer's own DNS name is the origin."""
    hosted_zone_id: str | None = None
    """Route 53 public hosted zone of ``domain_name``. Unset: no DNS record is created."""
    deletion_protection: bool = False
    """Unset: the load balancer can be deleted by ``terraform destroy``."""
    access_logs_bucket_name: str | None = None
    """When set, a bucket of this name (SSE-S3, the only encryption ALB log delivery
    supports; objects expire after 90 days; emptied on destroy unless
    ``deletion_protection``) receives the access logs under ``alb/``. Unset: no access
    logs."""
    idle_timeout_seconds: int = 60
    """Unset: 60 s."""
    deregistration_delay_seconds: int = 30
    """How long a draining task keeps its in-flight requests. Unset: 30 s."""


class LoadBalancer(Construct):
    """An internal ALB forwarding to one IP target group (the producer tasks), and the
    CloudFront VPC origin through which CloudFront reaches it (``vpc_origin``).

    The security group admits only CloudFront's VPC-origin interfaces (the group CloudFront
    creates in the VPC, looked up once the VPC origin exists) on the port the VPC origin
    uses, and ``allowed_cidrs`` (private ranges, never ``0.0.0.0/0``); it has no egress
    until a service admits it with its ``allow_from``. Invalid HTTP header fields are
    dropped before they reach the application.

    A VPC origin cannot be changed while a distribution uses it, so its construct id names
    its protocol (``vpc-origin-http`` or ``vpc-origin-https``): adding a certificate
    creates a new VPC origin, the distribution moves to it, and Terraform deletes the old
    one afterwards.
    """

    def __init__(self, scope: Construct, id_: str, *, props: LoadBalancerProps) -> None:
        super().__init__(scope, id_)
        self._validate(props)
        https = props.certificate_arn is not None
        listener_ports = (HTTP_PORT, HTTPS_PORT) if https else (HTTP_PORT,)

        self.security_group = self._security_group(props)
        self.ingress_rules: list[VpcSecurityGroupIngressRule] = self._allowed_cidr_ingress(
            props, listener_ports
        )
        self.access_logs: SecureBucket | None = self._access_logs(props)
        self.alb = self._alb(props)

        # How CloudFront reaches the load balancer: HTTP, or HTTPS (TLS 1.2+) to the name on
        # the certificate when there is one.
        protocol = "https" if https else "http"
        self.origin_protocol_policy = f"{protocol}-only"
        """The VPC origin's protocol policy."""
        self.vpc_origin = self._vpc_origin(props, protocol)
        """The CloudFront VPC origin of this load balancer: ``Frontend(api=...)`` routes the
        API through it."""
        self.ingress_rules.insert(
            0, self._cloudfront_ingress(props, HTTPS_PORT if https else HTTP_PORT)
        )

        self.target_group = self._target_group(props)
        self.http_listener, self.https_listener = self._listeners(props)
        self.listener = self.http_listener if self.https_listener is None else self.https_listener
        """The listener that serves (HTTPS with a certificate)."""
        self.rules: list[LbListenerRule] = self._origin_rules(props)
        self.forwarding: list[TerraformResource] = [self.listener, *self.rules]
        """The listener and rules that attach the target group to the load balancer. An ECS
        service registering into the target group must depend on them (with an origin
        secret, only the rules forward: the listener's default answer is 403)."""

        self.record: Route53Record | None = self._dns(props)
        self.dns_name: str = self.alb.dns_name
        self.arn_suffix: str = self.alb.arn_suffix
        self.target_group_arn_suffix: str = self.target_group.arn_suffix
        self.origin_domain: str = props.domain_name or self.alb.dns_name
        """The name CloudFront must give the origin (``Frontend(api=...)`` uses it):
        ``domain_name`` when set (the name on the certificate: CloudFront sends it as SNI
        and checks the certificate against it), else the load balancer's DNS name. Requests
        are routed by the VPC origin, not by resolving this name."""

    def alarms(self) -> list[AlarmSpec]:
        """Slow answers (capacity): 5xx and unhealthy targets are Observability's own."""
        return [
            AlarmSpec(
                "alb-p99-latency",
                "The slowest 1 % of API answers took over 2 s in 3 of the last 5 minutes. "
                "Look at the producer's CPU, the queue's latency and the slowest-requests query.",
                ("AWS/ApplicationELB", "TargetResponseTime", {"LoadBalancer": self.arn_suffix}),
                Watch("p99", 60, ">", 2.0, evaluations=5, datapoints=3),
                breakage=False,
            )
        ]

    @property
    def request_count_label(self) -> str:
        """``<alb arn suffix>/<target group arn suffix>``: the ``resource_label`` of the
        ``ALBRequestCountPerTarget`` scaling metric, naming this load balancer and its
        target group (the ``LoadBalancer``/``TargetGroup`` dimension pair)."""
        return f"{self.arn_suffix}/{self.target_group_arn_suffix}"

    def _security_group(self, props: LoadBalancerProps) -> SecurityGroup:
        """The load balancer's security group, without rules."""
        return security_group(
            self,
            name=props.naming.name("alb"),
            description="ALB: HTTP(S) from CloudFront and allowed CIDRs only",
            vpc_id=props.network.vpc.id,
        )

    def _allowed_cidr_ingress(
        self, props: LoadBalancerProps, ports: Sequence[int]
    ) -> list[VpcSecurityGroupIngressRule]:
        """One ingress rule per ``allowed_cidrs`` entry and listener port."""
        return cidr_ingress_rules(
            self, self.security_group, props.allowed_cidrs, ports, description="Allowed CIDR"
        )

    def _access_logs(self, props: LoadBalancerProps) -> SecureBucket | None:
        """The access-log bucket; ``None`` without ``access_logs_bucket_name``."""
        if not props.access_logs_bucket_name:
            return None
        return access_logs_bucket(
            self, bucket_name=props.access_logs_bucket_name, keep=props.deletion_protection
        )

    def _alb(self, props: LoadBalancerProps) -> Lb:
        """The internal load balancer, logging to ``access_logs`` when there is one."""
        return application_load_balancer(
            self,
            name=props.naming.name("alb"),
            internal=True,
            subnet_ids=props.network.private_subnet_ids,
            security_group=self.security_group,
            deletion_protection=props.deletion_protection,
            idle_timeout_seconds=props.idle_timeout_seconds,
            access_logs=self.access_logs,
        )

    def _vpc_origin(self, props: LoadBalancerProps, protocol: str) -> CloudfrontVpcOrigin:
        """The CloudFront VPC origin for the load balancer; its id names ``protocol``."""
        return CloudfrontVpcOrigin(
            self,
            f"vpc-origin-{protocol}",
            vpc_origin_endpoint_config=[
                CloudfrontVpcOriginVpcOriginEndpointConfig(
                    arn=self.alb.arn,
                    name=props.naming.name("api", protocol),
                    http_port=HTTP_PORT,
                    https_port=HTTPS_PORT,
                    origin_protocol_policy=self.origin_protocol_policy,
                    origin_ssl_protocols=[
                        CloudfrontVpcOriginVpcOriginEndpointConfigOriginSslProtocols(
                            items=ORIGIN_TLS_PROTOCOLS, quantity=len(ORIGIN_TLS_PROTOCOLS)
                        )
                    ],
                )
            ],
            tags={"Name": props.naming.name("api", protocol)},
        )

    def _cloudfront_ingress(
        self, props: LoadBalancerProps, port: int
    ) -> VpcSecurityGroupIngressRule:
        """Admits CloudFront's VPC-origin interfaces on ``port`` (the one the VPC origin
        uses)."""
        # CloudFront creates this group with the VPC's first VPC origin: read it afterwards
        # (Terraform defers the read to the apply that creates the VPC origin).
        cloudfront = DataAwsSecurityGroup(
            self,
            "cloudfront-vpc-origins",
            name=CLOUDFRONT_VPC_ORIGINS_GROUP,
            vpc_id=props.network.vpc.id,
            depends_on=[self.vpc_origin],
        )
        return VpcSecurityGroupIngressRule(
            self,
            f"ingress-{port}-cloudfront",
            security_group_id=self.security_group.id,
            referenced_security_group_id=cloudfront.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description="CloudFront VPC origins in this VPC",
        )

    def _target_group(self, props: LoadBalancerProps) -> LbTargetGroup:
        """The producer tasks' IP target group and its health check."""
        return ip_target_group(
            self,
            name=props.naming.name("producer"),
            vpc_id=props.network.vpc.id,
            port=props.target_port,
            health_check_path=props.health_check_path,
            deregistration_delay_seconds=props.deregistration_delay_seconds,
        )

    def _listeners(self, props: LoadBalancerProps) -> tuple[LbListener, LbListener | None]:
        """``(http, https)``: with a certificate, HTTPS serves and HTTP redirects to it
        with a 301 (created in that order); without one, HTTP serves and ``https`` is
        ``None``."""
        serving_default = self._serving_default(props)
        if props.certificate_arn is None:
            return http_listener(self, self.alb, serving_default), None
        https = https_listener(
            self, self.alb, certificate_arn=props.certificate_arn, actions=[serving_default]
        )
        return http_listener(self, self.alb, redirect_to_https()), https

    def _serving_default(self, props: LoadBalancerProps) -> LbListenerDefaultAction:
        """What the serving listener does by default: forward, unless an origin secret is
        required, then 403 unless a rule matches."""
        if props.origin_secret_header_value is None:
            return LbListenerDefaultAction(type="forward", target_group_arn=self.target_group.arn)
        return LbListenerDefaultAction(
            type="fixed-response",
            fixed_response=LbListenerDefaultActionFixedResponse(
                content_type="application/json",
                message_body=FORBIDDEN_BODY,
                status_code="403",
            ),
        )

    def _origin_rules(self, props: LoadBalancerProps) -> list[LbListenerRule]:
        """With an origin secret: forward requests carrying it, and requests from
        ``allowed_cidrs`` (five per rule). Without one: no rules (the listener forwards)."""
        if props.origin_secret_header_value is None:
            return []
        rules = [
            self._forward_rule(
                "forward-origin-verified",
                priority=10,
                condition=LbListenerRuleCondition(
                    http_header=LbListenerRuleConditionHttpHeader(
                        http_header_name=ORIGIN_VERIFY_HEADER,
                        values=[props.origin_secret_header_value],
                    )
                ),
            )
        ]
        cidrs = list(props.allowed_cidrs)
        for i in range(0, len(cidrs), MAX_SOURCE_IPS_PER_RULE):
            chunk = cidrs[i : i + MAX_SOURCE_IPS_PER_RULE]
            n = i // MAX_SOURCE_IPS_PER_RULE
            rules.append(
                self._forward_rule(
                    f"forward-allowed-cidrs-{n}",
                    priority=20 + n,
                    condition=LbListenerRuleCondition(
                        source_ip=LbListenerRuleConditionSourceIp(values=chunk)
                    ),
                )
            )
        return rules

    def _dns(self, props: LoadBalancerProps) -> Route53Record | None:
        """An alias A record ``domain_name`` -> the load balancer, in ``hosted_zone_id``;
        ``None`` unless both are set."""
        if not (props.domain_name and props.hosted_zone_id):
            return None
        return alias_record(
            self, zone_id=props.hosted_zone_id, name=props.domain_name, load_balancer=self.alb
        )

    def _forward_rule(
        self, id_: str, *, priority: int, condition: LbListenerRuleCondition
    ) -> LbListenerRule:
        return LbListenerRule(
            self,
            id_,
            listener_arn=self.listener.arn,
            priority=priority,
            action=[LbListenerRuleAction(type="forward", target_group_arn=self.target_group.arn)],
            condition=[condition],
        )

    def _validate(self, props: LoadBalancerProps) -> None:
        where = self.node.path
        check_availability_zones(where, props.network, "private")
        for cidr in props.allowed_cidrs:
            problem = allowed_cidr_problem(cidr)
            if problem:
                raise ConfigError(where, "allowed_cidrs", repr(cidr), problem)
        check_target(where, props.target_port, props.health_check_path)
        secret = props.origin_secret_header_value
        if (
            secret is not None
            and not Token.is_unresolved(secret)
            and not re.fullmatch(r"[A-Za-z0-9_\-.~+=]{16,128}", secret)
        ):
            raise ConfigError(
                where,
                "origin_secret_header_value",
                f"a value of {len(secret)} characters",
                "give 16-128 characters of letters, digits and _-.~+= "
                "(ALB treats * and ? as wildcards)",
            )
        if props.certificate_arn is not None and not props.domain_name:
            raise ConfigError(
                where,
                "domain_name",
                None,
                "certificate_arn needs the domain_name on the certificate: CloudFront checks "
                "the origin's certificate against the origin name, and the load balancer's "
                "own *.elb.amazonaws.com name is never on it",
            )
        if props.hosted_zone_id and not props.domain_name:
            raise ConfigError(
                where,
                "domain_name",
                None,
                "hosted_zone_id is set: give the domain_name to create in that zone",
            )
        check_timeouts(where, props.idle_timeout_seconds, props.deregistration_delay_seconds)
        check_names(where, props.naming.name("alb"), props.naming.name("producer"))


# --- what the internal and the web load balancer share ---------------------------------


def check_availability_zones(where: str, network: Network, tier: str) -> None:
    """An Application Load Balancer needs subnets in two AZs or more."""
    azs = network.availability_zones
    if len(azs) < 2:
        raise ConfigError(
            where,
            "network",
            len(azs),
            f"an Application Load Balancer needs {tier} subnets in 2 or more AZs",
        )


def check_target(where: str, target_port: int, health_check_path: str) -> None:
    """The target port is a TCP port and the health check path starts with ``/``."""
    if not 1 <= target_port <= 65535:
        raise ConfigError(where, "target_port", target_port, "give a TCP port 1-65535")
    if not health_check_path.startswith("/"):
        raise ConfigError(where, "health_check_path", repr(health_check_path), "start it with /")


def check_timeouts(
    where: str, idle_timeout_seconds: int, deregistration_delay_seconds: int
) -> None:
    """The idle timeout (1-4000 s) and the deregistration delay (0-3600 s) ALB accepts."""
    if not 1 <= idle_timeout_seconds <= 4000:
        raise ConfigError(
            where, "idle_timeout_seconds", idle_timeout_seconds, "give 1-4000 seconds"
        )
    if not 0 <= deregistration_delay_seconds <= 3600:
        raise ConfigError(
            where,
            "deregistration_delay_seconds",
            deregistration_delay_seconds,
            "give 0-3600 seconds",
        )


def check_names(where: str, *names: str) -> None:
    """Load balancer and target group names fit ``MAX_NAME_LENGTH``."""
    for name in names:
        if len(name) > MAX_NAME_LENGTH:
            raise ConfigError(
                where,
                "naming",
                repr(name),
                f"load balancer names are limited to {MAX_NAME_LENGTH} characters; "
                "shorten the environment name",
            )


def cidr_ingress_rules(
    scope: Construct,
    group: SecurityGroup,
    cidrs: Sequence[str],
    ports: Sequence[int],
    *,
    description: str,
) -> list[VpcSecurityGroupIngressRule]:
    """One rule admitting each of ``cidrs`` on each of ``ports`` into ``group``, ids
    ``ingress-<port>-<cidr>`` in ``scope``, described ``<description> <cidr>``."""
    return [
        VpcSecurityGroupIngressRule(
            scope,
            f"ingress-{port}-{_cidr_id(cidr)}",
            security_group_id=group.id,
            cidr_ipv4=cidr,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=f"{description} {cidr}",
        )
        for cidr in cidrs
        for port in ports
    ]


def access_logs_bucket(scope: Construct, *, bucket_name: str, keep: bool) -> SecureBucket:
    """A bucket ALB log delivery may write under ``alb/`` (id ``access-logs`` in ``scope``):
    SSE-S3, the only encryption ALB log delivery supports; objects expire after 90 days;
    emptied by ``terraform destroy`` unless ``keep``."""
    bucket = SecureBucket(
        scope,
        "access-logs",
        props=SecureBucketProps(
            bucket_name=bucket_name,
            expiration_days=ACCESS_LOG_EXPIRATION_DAYS,
            noncurrent_version_expiration_days=1,
            # Logs go with a disposable load balancer, stay with a protected one.
            force_destroy=not keep,
        ),
    )
    # Regions opened before August 2022 (eu-central-1 among them) deliver logs as
    # the regional ELB account; newer ones as the log-delivery service principal.
    elb_account = DataAwsElbServiceAccount(scope, "elb-account")
    bucket.allow(
        Statement(
            sid="AllowAlbLogDelivery",
            principals={"Service": ALB_LOG_DELIVERY, "AWS": elb_account.arn},
            actions=["s3:PutObject"],
            resources=[f"{bucket.arn}/{ACCESS_LOG_PREFIX}/AWSLogs/*"],
        )
    )
    return bucket


def application_load_balancer(
    scope: Construct,
    *,
    name: str,
    internal: bool,
    subnet_ids: Sequence[str],
    security_group: SecurityGroup,
    deletion_protection: bool,
    idle_timeout_seconds: int,
    access_logs: SecureBucket | None,
) -> Lb:
    """An IPv4 Application Load Balancer ``name`` (id ``alb`` in ``scope``) that drops
    invalid header fields and mitigates request desync defensively, logging to
    ``access_logs`` when given (created after the bucket policy that lets ALB write)."""
    logs = None
    depends_on = None
    if access_logs is not None:
        logs = LbAccessLogs(bucket=access_logs.bucket.id, prefix=ACCESS_LOG_PREFIX, enabled=True)
        # ALB writes a test object when logging is switched on: the policy must exist.
        depends_on = [access_logs.policy]
    return Lb(
        scope,
        "alb",
        name=name,
        internal=internal,
        load_balancer_type="application",
        ip_address_type="ipv4",
        subnets=list(subnet_ids),
        security_groups=[security_group.id],
        drop_invalid_header_fields=True,
        desync_mitigation_mode="defensive",
        enable_deletion_protection=deletion_protection,
        idle_timeout=idle_timeout_seconds,
        access_logs=logs,
        tags={"Name": name},
        depends_on=depends_on,
    )


TARGET_GROUP_PREFIX_MAX = 6
"""The longest ``name_prefix`` the AWS provider accepts for a target group."""


def ip_target_group(
    scope: Construct,
    *,
    name: str,
    vpc_id: str,
    port: int,
    health_check_path: str,
    deregistration_delay_seconds: int,
    lifecycle: TerraformResourceLifecycle | None = None,
    sticky_seconds: int | None = None,
    name_prefix: str | None = None,
) -> LbTargetGroup:
    """An HTTP/1.1 target group ``name`` of task IPs on ``port`` (id ``target-group`` in
    ``scope``): healthy after 2 answers 200 on ``health_check_path``, unhealthy after 3
    failures, checked every 15 s; with ``sticky_seconds``, a browser stays on one task
    that long (the load balancer's cookie). With ``name_prefix`` (at most 6 characters)
    AWS's name is that prefix and a unique suffix, so a replacement created before the old
    group is destroyed never collides with it; ``name`` is then its ``Name`` tag only."""
    if name_prefix is not None and not 1 <= len(name_prefix) <= TARGET_GROUP_PREFIX_MAX:
        raise ConfigError(
            f"{scope.node.path}/target-group",
            "name_prefix",
            repr(name_prefix),
            f"use 1-{TARGET_GROUP_PREFIX_MAX} characters (the provider's limit)",
        )
    return LbTargetGroup(
        scope,
        "target-group",
        name=None if name_prefix else name,
        name_prefix=name_prefix,
        vpc_id=vpc_id,
        target_type="ip",
        protocol="HTTP",
        protocol_version="HTTP1",
        port=port,
        deregistration_delay=str(deregistration_delay_seconds),
        health_check=LbTargetGroupHealthCheck(
            enabled=True,
            protocol="HTTP",
            port="traffic-port",
            path=health_check_path,
            matcher="200",
            interval=15,
            timeout=5,
            healthy_threshold=2,
            unhealthy_threshold=3,
        ),
        tags={"Name": name},
        lifecycle=lifecycle,
        stickiness=(
            LbTargetGroupStickiness(type="lb_cookie", enabled=True, cookie_duration=sticky_seconds)
            if sticky_seconds
            else None
        ),
    )


def https_listener(
    scope: Construct,
    load_balancer: Lb,
    *,
    certificate_arn: str,
    actions: Sequence[LbListenerDefaultAction],
    strict_transport_security: str | None = None,
) -> LbListener:
    """The HTTPS listener (port 443, ``SSL_POLICY``; id ``https-listener`` in ``scope``)
    doing ``actions``; with ``strict_transport_security``, every answer carries that
    ``Strict-Transport-Security`` header value."""
    return LbListener(
        scope,
        "https-listener",
        load_balancer_arn=load_balancer.arn,
        port=HTTPS_PORT,
        protocol="HTTPS",
        ssl_policy=SSL_POLICY,
        certificate_arn=certificate_arn,
        default_action=list(actions),
        routing_http_response_strict_transport_security_header_value=strict_transport_security,
    )


def http_listener(
    scope: Construct, load_balancer: Lb, action: LbListenerDefaultAction
) -> LbListener:
    """The plain-HTTP listener (port 80; id ``http-listener`` in ``scope``), doing
    ``action``."""
    return LbListener(
        scope,
        "http-listener",
        load_balancer_arn=load_balancer.arn,
        port=HTTP_PORT,
        protocol="HTTP",
        default_action=[action],
    )


def redirect_to_https() -> LbListenerDefaultAction:
    """A permanent (301) redirect to the same host, path and query over HTTPS."""
    return LbListenerDefaultAction(
        type="redirect",
        redirect=LbListenerDefaultActionRedirect(
            protocol="HTTPS", port=str(HTTPS_PORT), status_code="HTTP_301"
        ),
    )


def alias_record(scope: Construct, *, zone_id: str, name: str, load_balancer: Lb) -> Route53Record:
    """An alias A record ``name`` -> ``load_balancer`` in ``zone_id`` (id ``record`` in
    ``scope``), answering only while the load balancer has healthy targets."""
    return Route53Record(
        scope,
        "record",
        zone_id=zone_id,
        name=name,
        type="A",
        alias=Route53RecordAlias(
            name=load_balancer.dns_name,
            zone_id=load_balancer.zone_id,
            evaluate_target_health=True,
        ),
    )


def _cidr_id(cidr: str) -> str:
    """``203.0.113.0/24`` -> ``203-0-113-0-24``: a stable construct id part."""
    return cidr.replace(".", "-").replace("/", "-")
