"""The stacks: where constructs meet.

``bootstrap`` creates the state bucket; :class:`PlatformStack` builds one environment from
its :class:`~environments.config.EnvironmentConfig` (pure data) in named steps. Importing
this package loads the AWS provider bindings (slow).
"""

from .bootstrap import BootstrapStack
from .platform import PlatformStack

__all__ = ["BootstrapStack", "PlatformStack"]
