"""Cognito sign-in in front of an application: what a load balancer needs to authenticate
its users (:class:`CognitoAuthentication`, plain data, so a configuration can name an
existing pool), and a user pool for one application when there is none
(:class:`UserPool`).

The load balancer does the OAuth 2.0 code flow itself: an unauthenticated browser is sent
to the pool's sign-in pages, returns to ``https://<domain>/oauth2/idpresponse`` with a code,
and the load balancer exchanges it (with the app client's secret, which it reads from
Cognito) and forwards the request with the user's claims in ``x-amzn-oidc-*`` headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cdktf import Token
from cdktf_cdktf_provider_aws.cognito_user_pool import (
    CognitoUserPool,
    CognitoUserPoolAccountRecoverySetting,
    CognitoUserPoolAccountRecoverySettingRecoveryMechanism,
    CognitoUserPoolAdminCreateUserConfig,
    CognitoUserPoolPasswordPolicy,
    CognitoUserPoolSoftwareTokenMfaConfiguration,
    CognitoUserPoolUserAttributeUpdateSettings,
    CognitoUserPoolUsernameConfiguration,
)
from cdktf_cdktf_provider_aws.cognito_user_pool_client import (
    CognitoUserPoolClient,
    CognitoUserPoolClientTokenValidityUnits,
)
from cdktf_cdktf_provider_aws.cognito_user_pool_domain import CognitoUserPoolDomain
from constructs import Construct

from .certificate import HOST_NAME
from .errors import ConfigError
from .naming import Naming
from .options import CALLBACK_PATH, OAUTH_SCOPES

__all__ = ["CognitoAuthentication", "UserPool", "UserPoolProps"]

UNAUTHENTICATED_ACTIONS = ("authenticate", "deny", "allow")
MAX_SESSION_TIMEOUT_SECONDS = 604800
"""Seven days: the longest session an Application Load Balancer keeps."""
DOMAIN_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
RESERVED_IN_DOMAIN_PREFIX = ("aws", "amazon", "cognito")
TOKEN_VALIDITY_HOURS = 1
"""How long an ID or access token lasts; the load balancer refreshes it with the refresh
token (valid ``REFRESH_TOKEN_VALIDITY_HOURS``) while its own session lasts."""
REFRESH_TOKEN_VALIDITY_HOURS = 12


@dataclass(frozen=True)
class CognitoAuthentication:
    """How a load balancer signs users in with a Cognito user pool (the app client must
    have a secret, the code flow, the requested scopes and the load balancer's
    ``https://<domain>/oauth2/idpresponse`` callback: :class:`UserPool` builds one so)."""

    user_pool_arn: str
    """``arn:aws:cognito-idp:<region>:<account>:userpool/<pool id>``."""
    user_pool_client_id: str
    user_pool_domain: str
    """The pool's domain: the prefix of ``<prefix>.auth.<region>.amazoncognito.com``, or a
    custom domain's full name."""
    scope: str = " ".join(OAUTH_SCOPES)
    """Claims requested, space separated; must include ``openid``. Unset: ``openid email``."""
    session_timeout_seconds: int = 28800
    """How long the load balancer's session cookie keeps a user signed in (up to 7 days).
    Unset: 8 hours, one working day; then the user signs in again (with MFA)."""
    on_unauthenticated_request: str = "authenticate"
    """``authenticate`` (send the browser to sign in), ``deny`` (401, for APIs) or
    ``allow`` (forward without claims: the application decides). Unset: authenticate."""

    def problem(self) -> tuple[str, str, str] | None:
        """``(field, got, fix)`` for the first wrong value, or None."""
        arn = self.user_pool_arn
        if not Token.is_unresolved(arn) and not re.fullmatch(
            r"arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool/[\w-]+_[0-9A-Za-z]+", arn
        ):
            return (
                "user_pool_arn",
                repr(arn),
                "give the pool's ARN: arn:aws:cognito-idp:<region>:<account>:userpool/<id>",
            )
        for field_ in ("user_pool_client_id", "user_pool_domain"):
            if not getattr(self, field_):
                return field_, "''", "give the app client id and the pool's domain"
        if "openid" not in self.scope.split():
            return (
                "scope",
                repr(self.scope),
                "include openid: the load balancer reads the user's claims with it",
            )
        if not 1 <= self.session_timeout_seconds <= MAX_SESSION_TIMEOUT_SECONDS:
            return (
                "session_timeout_seconds",
                str(self.session_timeout_seconds),
                f"give 1-{MAX_SESSION_TIMEOUT_SECONDS} seconds (7 days at most)",
            )
        if self.on_unauthenticated_request not in UNAUTHENTICATED_ACTIONS:
            return (
                "on_unauthenticated_request",
                repr(self.on_unauthenticated_request),
                "use one of " + ", ".join(UNAUTHENTICATED_ACTIONS),
            )
        return None


@dataclass(frozen=True)
class UserPoolProps:
    naming: Naming
    domain_prefix: str
    """Cognito domain prefix: the sign-in pages are at
    ``https://<prefix>.auth.<region>.amazoncognito.com``. Lower-case letters, digits and
    hyphens, unique in the region, without ``aws``, ``amazon`` or ``cognito``."""
    callback_domain: str
    """The application's DNS name (the load balancer's ``domain_name``): the only address
    Cognito sends a signed-in user back to (``https://<callback_domain>/oauth2/idpresponse``)."""
    name: str = "users"
    """Pool and app client name part: ``<prefix>-<name>``. Unset: ``users``."""
    mfa_required: bool = True
    """Every user signs in with a TOTP authenticator app as second factor; the sign-in
    pages enrol it (QR code) at the first sign-in. False makes it optional: a user may
    enrol, nobody must. Unset: required."""
    deletion_protection: bool = True
    """Refuse to delete the pool (its users and their MFA enrolments cannot be restored).
    Unset: protected; a development environment may opt out."""
    password_minimum_length: int = 14
    """Passwords also need a lower-case and an upper-case letter, a digit and a symbol.
    Unset: 14 characters."""
    temporary_password_validity_days: int = 3
    """How long the invitation's temporary password works. Unset: 3 days."""


class UserPool(Construct):
    """A Cognito user pool for one application, behind a load balancer's authentication.

    - only administrators create users (no self sign-up); users sign in with their e-mail
      address (case-insensitive), get the invitation by e-mail and recover by e-mail;
      a changed e-mail address applies only once verified;
    - a strong password policy and TOTP MFA (required unless ``mfa_required`` is False);
      no SMS factor: it needs an SMS sending role, costs per message and SIM swaps
      defeat it;
    - one app client for the load balancer: with a secret, the authorization-code flow
      only, scopes ``openid email``, the callback on ``callback_domain`` only, the pool's
      own users only (``COGNITO``), tokens valid 1 hour (refresh tokens 12 hours),
      revocable, and no user-existence hints on failed sign-ins;
    - a Cognito domain (``domain_prefix``) serving the sign-in pages.
    """

    def __init__(self, scope: Construct, id_: str, *, props: UserPoolProps) -> None:
        super().__init__(scope, id_)
        self._validate(props)
        name = props.naming.name(props.name)
        self.pool = CognitoUserPool(
            self,
            "pool",
            name=name,
            deletion_protection="ACTIVE" if props.deletion_protection else "INACTIVE",
            admin_create_user_config=CognitoUserPoolAdminCreateUserConfig(
                allow_admin_create_user_only=True
            ),
            username_attributes=["email"],
            username_configuration=CognitoUserPoolUsernameConfiguration(case_sensitive=False),
            auto_verified_attributes=["email"],
            user_attribute_update_settings=CognitoUserPoolUserAttributeUpdateSettings(
                attributes_require_verification_before_update=["email"]
            ),
            account_recovery_setting=CognitoUserPoolAccountRecoverySetting(
                recovery_mechanism=[
                    CognitoUserPoolAccountRecoverySettingRecoveryMechanism(
                        name="verified_email", priority=1
                    )
                ]
            ),
            password_policy=CognitoUserPoolPasswordPolicy(
                minimum_length=props.password_minimum_length,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=True,
                temporary_password_validity_days=props.temporary_password_validity_days,
            ),
            mfa_configuration="ON" if props.mfa_required else "OPTIONAL",
            software_token_mfa_configuration=CognitoUserPoolSoftwareTokenMfaConfiguration(
                enabled=True
            ),
            tags={"Name": name},
        )
        self.domain = CognitoUserPoolDomain(
            self, "domain", domain=props.domain_prefix, user_pool_id=self.pool.id
        )
        self.callback_url = f"https://{props.callback_domain}{CALLBACK_PATH}"
        self.client = CognitoUserPoolClient(
            self,
            "client",
            name=name,
            user_pool_id=self.pool.id,
            generate_secret=True,
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=["code"],
            allowed_oauth_scopes=list(OAUTH_SCOPES),
            callback_urls=[self.callback_url],
            supported_identity_providers=["COGNITO"],
            # Sign-in happens on the Cognito pages; the API flows need the client secret,
            # which only the load balancer (and Terraform's state) holds.
            explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            access_token_validity=TOKEN_VALIDITY_HOURS,
            id_token_validity=TOKEN_VALIDITY_HOURS,
            refresh_token_validity=REFRESH_TOKEN_VALIDITY_HOURS,
            token_validity_units=[_HOURS],
        )
        self.arn: str = self.pool.arn
        self.client_id: str = self.client.id

    def authentication(self) -> CognitoAuthentication:
        """What ``WebLoadBalancerProps(authentication=...)`` takes to sign users in with
        this pool (default scope, session and unauthenticated action; change them with
        ``dataclasses.replace``). The domain is read from the domain resource, so the
        listener waits for it."""
        return CognitoAuthentication(
            user_pool_arn=self.pool.arn,
            user_pool_client_id=self.client.id,
            user_pool_domain=self.domain.domain,
        )

    def _validate(self, props: UserPoolProps) -> None:
        where = self.node.path
        # A prefix may carry tokens (the account id, for uniqueness): the literal parts are
        # checked, each token standing for 12 digits.
        prefix = re.sub(r"\$\{TfToken\[[^\]]*\]\}", "0" * 12, props.domain_prefix)
        if not DOMAIN_PREFIX.fullmatch(prefix):
            raise ConfigError(
                where,
                "domain_prefix",
                repr(props.domain_prefix),
                "give 1-63 lower-case letters, digits and hyphens (no hyphen first or last)",
            )
        reserved = [word for word in RESERVED_IN_DOMAIN_PREFIX if word in prefix]
        if reserved:
            raise ConfigError(
                where,
                "domain_prefix",
                repr(prefix),
                f"Cognito refuses prefixes containing {', '.join(reserved)}; choose another",
            )
        domain = props.callback_domain
        if not Token.is_unresolved(domain) and not HOST_NAME.fullmatch(domain):
            raise ConfigError(
                where,
                "callback_domain",
                repr(domain),
                "give the application's lower-case DNS name, e.g. app.example.com (no "
                "scheme, path or wildcard)",
            )
        if not 8 <= props.password_minimum_length <= 99:
            raise ConfigError(
                where,
                "password_minimum_length",
                props.password_minimum_length,
                "give 8-99 characters (Cognito's range; 14 or more recommended)",
            )
        if not 1 <= props.temporary_password_validity_days <= 365:
            raise ConfigError(
                where,
                "temporary_password_validity_days",
                props.temporary_password_validity_days,
                "give 1-365 days",
            )


_HOURS = CognitoUserPoolClientTokenValidityUnits(
    access_token="hours",  # noqa: S106 (the unit each validity is counted in, not a token)
    id_token="hours",  # noqa: S106
    refresh_token="hours",  # noqa: S106
)
"""The three token validities are counted in hours."""
