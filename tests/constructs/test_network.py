"""Network construct: its subnet rule, on a unit stack."""

from __future__ import annotations

import pytest


def test_network_construct_rejects_mismatched_subnets() -> None:
    from cdktf import TerraformStack, Testing

    from constructs_lib.errors import ConfigError
    from constructs_lib.naming import Naming
    from constructs_lib.network import Network, NetworkProps

    stack = TerraformStack(Testing.app(), "unit")
    props = NetworkProps(
        naming=Naming("unit"),
        account_id="123456789012",
        region="eu-central-1",
        vpc_cidr="10.0.0.0/16",
        availability_zones=("eu-central-1a", "eu-central-1b"),
        public_subnet_cidrs=("10.0.0.0/24",),
        private_subnet_cidrs=("10.0.16.0/20", "10.0.32.0/20"),
    )
    with pytest.raises(
        ConfigError,
        match=r"^unit/network\.public_subnet_cidrs: got 1, give one subnet per AZ \(2\)$",
    ):
        Network(stack, "network", props=props)
