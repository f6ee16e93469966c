"""Network construct: its subnet rule, on a unit stack."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support import ACCOUNT_ID, NAMING, REGION, UNIT_NETWORK, UnitStack


def test_network_construct_rejects_mismatched_subnets(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.network import Network, NetworkProps

    props = NetworkProps(
        naming=NAMING,
        account_id=ACCOUNT_ID,
        region=REGION,
        settings=replace(UNIT_NETWORK, public_subnet_cidrs=("10.0.0.0/24",)),
    )
    with pytest.raises(
        ConfigError,
        match=r"^unit/network\.public_subnet_cidrs: got 1, give one subnet per AZ \(2\)$",
    ):
        Network(unit_stack.stack, "network", props=props)


def test_network_construct_needs_an_az(unit_stack: UnitStack) -> None:
    from constructs_lib.errors import ConfigError
    from constructs_lib.network import Network, NetworkProps

    no_az = replace(
        UNIT_NETWORK, availability_zones=(), public_subnet_cidrs=(), private_subnet_cidrs=()
    )
    props = NetworkProps(naming=NAMING, account_id=ACCOUNT_ID, region=REGION, settings=no_az)
    with pytest.raises(
        ConfigError, match=r"^unit/network\.availability_zones: got 0, name at least one AZ$"
    ):
        Network(unit_stack.stack, "network", props=props)
