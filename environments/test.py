"""The ``test`` environment, for automated end-to-end runs.

Development tier: two AZs, one NAT gateway, single-AZ database, serverless queue; see
:func:`environments._shared.development`."""

from ._shared import development

CONFIG = development("test", second_octet=20)
