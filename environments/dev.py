"""The ``dev`` environment, where changes land first.

Development tier: two AZs, one NAT gateway, single-AZ database, serverless queue; see
:func:`environments._shared.development`."""

from ._shared import development

CONFIG = development("dev", second_octet=10)
