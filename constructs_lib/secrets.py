"""Service credentials generated at deploy time and kept only in Secrets Manager."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf import Fn
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_random_password import (
    DataAwsSecretsmanagerRandomPassword,
)
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from cdktf_cdktf_provider_aws.secretsmanager_secret_version import SecretsmanagerSecretVersion
from constructs import Construct

from .encryption import EncryptionKey
from .policy import Statement

PASSWORD_EXCLUDED = "\"'@/\\:;`{}%&$<>?#"  # noqa: S105 (characters, not a password)
"""Characters left out of generated passwords: they break URLs, shells or ElastiCache."""


@dataclass(frozen=True)
class SecretRef:
    """A Secrets Manager secret (or one JSON key of it), as ECS ``secrets`` inject it."""

    arn: str
    key: str | None = None
    """The JSON key whose value is injected. Unset: the whole secret string."""

    @property
    def value_from(self) -> str:
        """``<secret arn>:<json key>::`` (current version), or the ARN for the whole
        secret."""
        return self.arn if self.key is None else f"{self.arn}:{self.key}::"


@dataclass(frozen=True)
class RotationTarget:
    """What a credential rotation function needs from the system whose password it changes
    (``Database.rotation_target``, ``Queue.rotation_target``)."""

    kind: str
    """``mysql`` (alternating users) or ``elasticache`` (two passwords)."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Where the system is and how to administer it (endpoint, master secret, user id)."""
    statements: Sequence[Statement] = ()
    """What the function may call in AWS besides the secret itself."""


@dataclass(frozen=True)
class GeneratedCredentialsProps:
    name: str
    """Secret name, e.g. ``/pcp/dev/mysql/app``."""
    username: str
    key: EncryptionKey
    """Encrypts the secret; whoever reads it needs ``kms:Decrypt`` on it too
    (``policy.read_secrets``)."""
    description: str
    password_length: int = 40
    """Unset: 40 characters."""
    recovery_window_days: int = 7
    """Days a deleted secret can be restored; 0 deletes at once. Unset: 7."""
    letters_and_digits_only: bool = False
    """Generate from letters and digits only (for values compared as patterns, such as
    ALB header conditions, where ``*`` and ``?`` are wildcards). Unset: punctuation
    allowed except ``PASSWORD_EXCLUDED``."""


class GeneratedCredentials(Construct):
    """A JSON secret ``{"username": ..., "password": ...}`` with a generated password.

    Secrets Manager generates the password (``GetRandomPassword``) during the first apply;
    later plans keep the stored value (``ignore_changes``), so it never churns and never
    appears in the synthesized configuration. Rotate by writing a new version of the
    secret (see the README), then re-applying.
    """

    def __init__(self, scope: Construct, id_: str, *, props: GeneratedCredentialsProps) -> None:
        super().__init__(scope, id_)
        generated = DataAwsSecretsmanagerRandomPassword(
            self,
            "generated",
            password_length=props.password_length,
            exclude_characters=PASSWORD_EXCLUDED,
            exclude_punctuation=props.letters_and_digits_only or None,
        )
        self.secret = SecretsmanagerSecret(
            self,
            "secret",
            name=props.name,
            description=props.description,
            kms_key_id=props.key.arn,
            recovery_window_in_days=props.recovery_window_days,
        )
        self.version = SecretsmanagerSecretVersion(
            self,
            "version",
            secret_id=self.secret.id,
            secret_string=Fn.jsonencode(
                {"username": props.username, "password": generated.random_password}
            ),
            lifecycle={"ignore_changes": ["secret_string"]},
        )
        self.arn: str = self.secret.arn
        self.name = props.name
        self.key = props.key
        self.username = props.username
        self.password: str = Fn.lookup(Fn.jsondecode(self.version.secret_string), "password")
        """A reference to the stored password, for resources that must be given it."""

    def field(self, key: str) -> SecretRef:
        """One JSON key (``username`` or ``password``) for ECS ``secrets``."""
        return SecretRef(self.arn, key)
