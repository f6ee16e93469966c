"""One helper builds every physical resource name, so names stay consistent and short."""

from dataclasses import dataclass

PROJECT = "pcp"
"""Short project prefix (producer/consumer platform) that starts every resource name."""


@dataclass(frozen=True)
class Naming:
    """Builds names of the form ``<project>-<environment>-<part>-<part>``."""

    environment: str
    project: str = PROJECT

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.environment}"

    def name(self, *parts: str) -> str:
        """``Naming("dev").name("db", "params")`` gives ``pcp-dev-db-params``."""
        return "-".join((self.prefix, *parts))

    def path(self, *parts: str) -> str:
        """A slash-separated name for log groups and secrets: ``/pcp/dev/<parts>``."""
        return "/" + "/".join((self.project, self.environment, *parts))

    def default_tags(self) -> dict[str, str]:
        """The tags every resource carries through the provider's ``default_tags``."""
        return {
            "project": self.project,
            "environment": self.environment,
            "managed-by": "cdktf",
        }
