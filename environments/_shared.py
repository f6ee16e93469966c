"""Builders for the values environments share, so each environment file states only its own."""

from constructs_lib.options import NatGateways

from .config import DEFAULT_REGION, NetworkConfig


def network(
    second_octet: int,
    az_count: int,
    nat_gateways: NatGateways,
    *,
    region: str = DEFAULT_REGION,
    flow_log_retention_days: int = 30,
) -> NetworkConfig:
    """A ``10.<second_octet>.0.0/16`` VPC with /24 public and /20 private subnets per AZ.

    Public subnets only hold the load balancer and NAT gateways; private subnets hold
    every task, database and cache node, hence the larger ranges.
    """
    base = f"10.{second_octet}"
    letters = "abcdef"[:az_count]
    return NetworkConfig(
        vpc_cidr=f"{base}.0.0/16",
        availability_zones=tuple(f"{region}{letter}" for letter in letters),
        public_subnet_cidrs=tuple(f"{base}.{i}.0/24" for i in range(az_count)),
        private_subnet_cidrs=tuple(f"{base}.{16 * (i + 1)}.0/20" for i in range(az_count)),
        nat_gateways=nat_gateways,
        flow_log_retention_days=flow_log_retention_days,
    )
