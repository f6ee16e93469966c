"""The one error type raised for a wrong configuration value."""


class ConfigError(ValueError):
    """A configuration value is wrong.

    The message always names where (environment or construct path), the field, the bad
    value and the fix, e.g. ``prod.network.availability_zones: got 2 (...), a production
    environment needs 3 (one NAT gateway per AZ)``.
    """

    def __init__(self, where: str, field: str, got: object, fix: str) -> None:
        self.where = where
        self.field = field
        self.got = got
        self.fix = fix
        super().__init__(f"{where}.{field}: got {got}, {fix}")
