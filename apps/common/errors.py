"""The one error type raised for a wrong configuration value, by the stacks and the apps."""


class ConfigError(ValueError):
    """A configuration value is wrong.

    The message always names where (an environment, a construct path, or the process
    ``environment`` of an app), the field (a config field or an environment variable), the
    bad value and the fix, e.g. ``prod.network.availability_zones: got 2 (...), a
    production environment needs 3 (one NAT gateway per AZ)`` or ``environment.DB_PORT: got
    70000, use 1 to 65535``.
    """

    def __init__(self, where: str, field: str, got: object, fix: str) -> None:
        self.where = where
        self.field = field
        self.got = got
        self.fix = fix
        super().__init__(f"{where}.{field}: got {got}, {fix}")


def env_error(name: str, got: object, fix: str) -> ConfigError:
    """A wrong environment variable ``name`` of an app's process."""
    return ConfigError("environment", name, got, fix)
