"""Reusable CDKTF constructs for the producer/consumer platform.

Import the construct modules directly (``from constructs_lib.network import Network``):
this package's ``__init__`` stays empty on purpose so that the light modules
(``errors``, ``options``, ``naming``, ``settings``) load without the AWS provider
bindings; ``environments/`` uses only those.
"""
