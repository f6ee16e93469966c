"""The ``stage`` environment, the production rehearsal.

Development tier: two AZs, one NAT gateway, single-AZ database, serverless queue; see
:func:`environments._shared.development`."""

from ._shared import development

CONFIG = development("stage", second_octet=30, max_tasks=4)
