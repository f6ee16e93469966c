"""The VPC: public and private subnets per AZ, NAT gateways, VPC endpoints, flow logs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import (
    VpcSecurityGroupIngressRule,
)
from constructs import Construct

from .encryption import EncryptionKey
from .errors import ConfigError
from .logs import log_group
from .naming import Naming
from .options import NatGateways
from .policy import Statement, assume_role_policy, policy_document
from .security import ANYWHERE, HTTPS
from .settings import NetworkSettings

__all__ = ["Network", "NetworkProps", "NetworkSettings"]

ENDPOINT_SERVICE_NAME = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
"""The short name of an AWS service in ``com.amazonaws.<region>.<name>`` (``ecr.api``)."""


@dataclass(frozen=True)
class NetworkProps:
    naming: Naming
    account_id: str
    region: str
    settings: NetworkSettings
    flow_log_key: EncryptionKey | None = None
    """Encrypts the flow log group. Unset: the CloudWatch Logs service key."""


class Network(Construct):
    """VPC with DNS, a public and a private subnet per AZ, NAT for private egress, and
    VPC endpoints for AWS APIs.

    Each private subnet has its own route table whose default route goes to the NAT
    gateway in the same AZ (``PER_AZ``) or to the single one (``SINGLE``). With ``NONE``
    there is no NAT gateway, no Elastic IP and no default route in the private tables:
    private workloads reach only the S3 gateway endpoint and the interface endpoints of
    ``settings.interface_endpoints``, so with none of those they reach nothing but S3
    (enough for a workload that calls nothing; a Fargate service pulling from ECR,
    logging and reading secrets needs ``ecr.api``, ``ecr.dkr``, ``logs`` and
    ``secretsmanager``). The public subnets and the internet gateway stay in every mode,
    for internet-facing load balancers.

    Each interface endpoint (``com.amazonaws.<region>.<name>``) sits in the private
    subnets with private DNS, so the service's usual hostname resolves to it inside the
    VPC; all share :attr:`endpoint_security_group`, which admits HTTPS from the VPC's CIDR
    and sends nothing. All traffic is recorded by VPC flow logs; the default security
    group is stripped of every rule; an S3 gateway endpoint keeps image-layer and bucket
    traffic off the NAT gateways.
    """

    def __init__(self, scope: Construct, id_: str, *, props: NetworkProps) -> None:
        super().__init__(scope, id_)
        settings = props.settings
        self._validate(settings)
        self.props = props
        self.account_id = props.account_id
        self.region = props.region
        self.availability_zones: tuple[str, ...] = settings.availability_zones
        naming = props.naming
        azs = list(settings.availability_zones)

        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=settings.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": naming.name("vpc")},
        )
        self.default_security_group = DefaultSecurityGroup(
            self, "default-sg", vpc_id=self.vpc.id, ingress=[], egress=[]
        )
        self.internet_gateway = InternetGateway(
            self, "igw", vpc_id=self.vpc.id, tags={"Name": naming.name("igw")}
        )

        self.public_route_table = RouteTable(
            self, "public-rt", vpc_id=self.vpc.id, tags={"Name": naming.name("public")}
        )
        Route(
            self,
            "public-default-route",
            route_table_id=self.public_route_table.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=self.internet_gateway.id,
        )
        self.public_subnets: list[Subnet] = []
        for az, cidr in zip(azs, settings.public_subnet_cidrs, strict=True):
            subnet = self._subnet(
                naming, "public", az, cidr, self.public_route_table, map_public_ip_on_launch=False
            )
            self.public_subnets.append(subnet)

        nat_azs = {
            NatGateways.PER_AZ: azs,
            NatGateways.SINGLE: azs[:1],
            NatGateways.NONE: [],
        }[settings.nat_gateways]
        self.nat_gateways: dict[str, NatGateway] = {}
        for az, subnet in zip(nat_azs, self.public_subnets, strict=False):
            eip = Eip(self, f"nat-{az}-eip", domain="vpc", tags={"Name": naming.name("nat", az)})
            self.nat_gateways[az] = NatGateway(
                self,
                f"nat-{az}",
                allocation_id=eip.id,
                subnet_id=subnet.id,
                depends_on=[self.internet_gateway],
                tags={"Name": naming.name("nat", az)},
            )

        self.private_subnets: list[Subnet] = []
        self.private_route_tables: dict[str, RouteTable] = {}
        self.private_default_routes: list[Route] = []
        """The private subnets' routes to NAT: what must exist before a private workload
        can reach AWS APIs through NAT (none with ``NatGateways.NONE``)."""
        for az, cidr in zip(azs, settings.private_subnet_cidrs, strict=True):
            table = RouteTable(
                self,
                f"private-{az}-rt",
                vpc_id=self.vpc.id,
                tags={"Name": naming.name("private", az)},
            )
            if nat_azs:
                nat = self.nat_gateways.get(az) or self.nat_gateways[nat_azs[0]]
                route = Route(
                    self,
                    f"private-{az}-default-route",
                    route_table_id=table.id,
                    destination_cidr_block=ANYWHERE,
                    nat_gateway_id=nat.id,
                )
                self.private_default_routes.append(route)
            subnet = self._subnet(naming, "private", az, cidr, table)
            self.private_subnets.append(subnet)
            self.private_route_tables[az] = table

        self.s3_endpoint = VpcEndpoint(
            self,
            "s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{props.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[t.id for t in self.private_route_tables.values()],
            tags={"Name": naming.name("s3")},
        )
        self._interface_endpoints(props, naming)

        self._flow_logs(props, naming)

    def _interface_endpoints(self, props: NetworkProps, naming: Naming) -> None:
        """One interface endpoint per ``settings.interface_endpoints`` name, in the private
        subnets, behind one security group that admits HTTPS from the VPC only."""
        names = props.settings.interface_endpoints
        self.interface_endpoints: dict[str, VpcEndpoint] = {}
        """The interface endpoints by short service name (``ecr.api``)."""
        self.endpoint_security_group: SecurityGroup | None = None
        """The interface endpoints' group (HTTPS in from the VPC CIDR, no egress); None
        when there are no interface endpoints."""
        if not names:
            return
        group_name = naming.name("vpc-endpoints")
        group = SecurityGroup(
            self,
            "endpoint-security-group",
            name=group_name,
            description="Interface endpoints: HTTPS from the VPC",
            vpc_id=self.vpc.id,
            tags={"Name": group_name},
        )
        VpcSecurityGroupIngressRule(
            self,
            "endpoint-ingress-https",
            security_group_id=group.id,
            cidr_ipv4=props.settings.vpc_cidr,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description="HTTPS from the VPC to the AWS API endpoints",
        )
        self.endpoint_security_group = group
        for name in names:
            self.interface_endpoints[name] = VpcEndpoint(
                self,
                f"{name}-endpoint",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{props.region}.{name}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=self.private_subnet_ids,
                security_group_ids=[group.id],
                tags={"Name": naming.name(name)},
            )

    def _subnet(
        self,
        naming: Naming,
        tier: str,
        az: str,
        cidr: str,
        table: RouteTable,
        *,
        map_public_ip_on_launch: bool | None = None,
    ) -> Subnet:
        """The ``tier`` subnet of ``az``, routed by ``table``."""
        subnet = Subnet(
            self,
            f"{tier}-{az}",
            vpc_id=self.vpc.id,
            cidr_block=cidr,
            availability_zone=az,
            map_public_ip_on_launch=map_public_ip_on_launch,
            tags={"Name": naming.name(tier, az), "tier": tier},
        )
        RouteTableAssociation(
            self, f"{tier}-{az}-rta", subnet_id=subnet.id, route_table_id=table.id
        )
        return subnet

    def _flow_logs(self, props: NetworkProps, naming: Naming) -> None:
        """Every packet of the VPC recorded to an encrypted log group."""
        self.flow_log_group = log_group(
            self,
            "flow-log-group",
            name=naming.path("vpc-flow-logs"),
            retention_days=props.settings.flow_log_retention_days,
            kms_key_arn=props.flow_log_key.arn if props.flow_log_key else None,
        )
        flow_role = IamRole(
            self,
            "flow-log-role",
            name=naming.name("vpc-flow-logs"),
            assume_role_policy=assume_role_policy(
                "vpc-flow-logs.amazonaws.com", source_account=props.account_id
            ),
        )
        IamRolePolicy(
            self,
            "flow-log-policy",
            role=flow_role.id,
            name="write-flow-logs",
            policy=policy_document(
                Statement(
                    actions=[
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    resources=[self.flow_log_group.arn, f"{self.flow_log_group.arn}:*"],
                )
            ),
        )
        self.flow_log = FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=flow_role.arn,
            max_aggregation_interval=60,
        )

    @property
    def vpc_cidr(self) -> str:
        """The VPC's IPv4 range, as configured (a literal, not a token)."""
        return self.props.settings.vpc_cidr

    @property
    def public_subnet_cidrs(self) -> tuple[str, ...]:
        """The public subnets' ranges, in the order of :attr:`public_subnets` (literals)."""
        return self.props.settings.public_subnet_cidrs

    @property
    def private_subnet_cidrs(self) -> tuple[str, ...]:
        """The private subnets' ranges, in the order of :attr:`private_subnets` (literals)."""
        return self.props.settings.private_subnet_cidrs

    @property
    def aws_api_path(self) -> str:
        """How private workloads reach AWS APIs, for rule descriptions: ``via NAT``,
        ``through VPC endpoints`` without NAT gateways, or ``through VPC endpoints and
        NAT`` with both (the endpoints' services through them, the rest through NAT)."""
        settings = self.props.settings
        if settings.nat_gateways is NatGateways.NONE:
            return "through VPC endpoints"
        return "through VPC endpoints and NAT" if settings.interface_endpoints else "via NAT"

    @property
    def private_subnet_ids(self) -> list[str]:
        return [s.id for s in self.private_subnets]

    @property
    def public_subnet_ids(self) -> list[str]:
        return [s.id for s in self.public_subnets]

    def _validate(self, settings: NetworkSettings) -> None:
        where = self.node.path
        azs = list(settings.availability_zones)
        if not azs:
            raise ConfigError(where, "availability_zones", 0, "name at least one AZ")
        for field_ in ("public_subnet_cidrs", "private_subnet_cidrs"):
            got = len(getattr(settings, field_))
            if got != len(azs):
                raise ConfigError(where, field_, got, f"give one subnet per AZ ({len(azs)})")
        if len(set(azs)) != len(azs):
            raise ConfigError(where, "availability_zones", azs, "name each AZ once")
        names = list(settings.interface_endpoints)
        for name in names:
            if not ENDPOINT_SERVICE_NAME.fullmatch(name) or name.startswith("com."):
                raise ConfigError(
                    where,
                    "interface_endpoints",
                    repr(name),
                    "give the short service name of com.amazonaws.<region>.<name>, such as "
                    "ecr.api, ecr.dkr, logs or secretsmanager",
                )
            if name == "s3":
                raise ConfigError(
                    where,
                    "interface_endpoints",
                    repr(name),
                    "leave S3 out: the network's S3 gateway endpoint serves it",
                )
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ConfigError(
                where, "interface_endpoints", ", ".join(twice), "name each service once"
            )
