"""UserPool construct and CognitoAuthentication: Cognito sign-in for one application.

One unit stack (defaults) is synthesized once for the module.
"""

from __future__ import annotations

from typing import Any

import pytest

from constructs_lib.errors import ConfigError
from tests.support import NAMING, UnitStack, new_unit_stack, one, resources

DOMAIN = "metabase.example.com"


def _build(unit: UnitStack | None = None, **overrides: Any) -> tuple[UnitStack, Any]:
    from constructs_lib.user_pool import UserPool, UserPoolProps

    unit = unit or new_unit_stack()
    values: dict[str, Any] = {
        "naming": NAMING,
        "domain_prefix": "pcp-unit-metabase",
        "callback_domain": DOMAIN,
        **overrides,
    }
    return unit, UserPool(unit.stack, "users", props=UserPoolProps(**values))


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    from cdktf import TerraformOutput

    unit, pool = _build()
    auth = pool.authentication()
    for name in ("user_pool_arn", "user_pool_client_id", "user_pool_domain"):
        TerraformOutput(unit.stack, name, value=getattr(auth, name))
    return unit.synth()


def _ref(doc: dict[str, Any], type_: str, attr: str = "id") -> str:
    (logical_id,) = resources(doc, type_)
    return f"${{{type_}.{logical_id}.{attr}}}"


def test_only_administrators_create_users_who_sign_in_with_their_email(
    doc: dict[str, Any],
) -> None:
    pool = one(doc, "aws_cognito_user_pool")
    assert pool["name"] == "pcp-unit-users"
    assert pool["admin_create_user_config"] == {"allow_admin_create_user_only": True}
    assert pool["username_attributes"] == ["email"]
    assert pool["username_configuration"] == {"case_sensitive": False}
    assert pool["auto_verified_attributes"] == ["email"]
    assert pool["user_attribute_update_settings"] == {
        "attributes_require_verification_before_update": ["email"]
    }
    assert pool["account_recovery_setting"] == {
        "recovery_mechanism": [{"name": "verified_email", "priority": 1}]
    }


def test_strong_passwords_totp_mfa_and_deletion_protection_by_default(
    doc: dict[str, Any],
) -> None:
    pool = one(doc, "aws_cognito_user_pool")
    assert pool["password_policy"] == {
        "minimum_length": 14,
        "require_lowercase": True,
        "require_uppercase": True,
        "require_numbers": True,
        "require_symbols": True,
        "temporary_password_validity_days": 3,
    }
    assert pool["mfa_configuration"] == "ON"
    assert pool["software_token_mfa_configuration"] == {"enabled": True}
    assert "sms_configuration" not in pool
    assert pool["deletion_protection"] == "ACTIVE"


def test_mfa_can_be_optional_and_protection_off() -> None:
    unit, _ = _build(mfa_required=False, deletion_protection=False, password_minimum_length=20)
    pool = one(unit.synth(), "aws_cognito_user_pool")
    assert pool["mfa_configuration"] == "OPTIONAL"
    assert pool["software_token_mfa_configuration"] == {"enabled": True}
    assert pool["deletion_protection"] == "INACTIVE"
    assert pool["password_policy"]["minimum_length"] == 20


def test_the_app_client_does_the_code_flow_for_the_load_balancer_only(
    doc: dict[str, Any],
) -> None:
    client = one(doc, "aws_cognito_user_pool_client")
    assert client["user_pool_id"] == _ref(doc, "aws_cognito_user_pool")
    assert client["generate_secret"] is True
    assert client["allowed_oauth_flows_user_pool_client"] is True
    assert client["allowed_oauth_flows"] == ["code"]
    assert client["allowed_oauth_scopes"] == ["openid", "email"]
    assert client["callback_urls"] == [f"https://{DOMAIN}/oauth2/idpresponse"]
    assert client["supported_identity_providers"] == ["COGNITO"]
    assert client["explicit_auth_flows"] == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]
    assert client["prevent_user_existence_errors"] == "ENABLED"
    assert client["enable_token_revocation"] is True
    assert (
        client["access_token_validity"],
        client["id_token_validity"],
        client["refresh_token_validity"],
    ) == (1, 1, 12)
    assert client["token_validity_units"] == [
        {"access_token": "hours", "id_token": "hours", "refresh_token": "hours"}
    ]


def test_the_sign_in_pages_have_a_cognito_domain(doc: dict[str, Any]) -> None:
    domain = one(doc, "aws_cognito_user_pool_domain")
    assert domain == {
        "domain": "pcp-unit-metabase",
        "user_pool_id": _ref(doc, "aws_cognito_user_pool"),
    }


def test_authentication_names_the_pool_client_and_domain(doc: dict[str, Any]) -> None:
    out = {k: v["value"] for k, v in doc["output"].items()}
    assert out == {
        "user_pool_arn": _ref(doc, "aws_cognito_user_pool", "arn"),
        "user_pool_client_id": _ref(doc, "aws_cognito_user_pool_client"),
        "user_pool_domain": _ref(doc, "aws_cognito_user_pool_domain", "domain"),
    }


def test_authentication_defaults() -> None:
    from constructs_lib.user_pool import CognitoAuthentication

    auth = CognitoAuthentication("arn", "client", "domain")
    assert (auth.scope, auth.session_timeout_seconds, auth.on_unauthenticated_request) == (
        "openid email",
        28800,
        "authenticate",
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"domain_prefix": "Pcp_Metabase"}, r"^unit/users\.domain_prefix: got 'Pcp_Metabase'"),
        ({"domain_prefix": "-metabase"}, r"domain_prefix: got '-metabase', give 1-63"),
        ({"domain_prefix": "metabase-cognito"}, r"domain_prefix: .*containing cognito"),
        ({"callback_domain": "https://a.example.com"}, r"callback_domain: got 'https://"),
        ({"callback_domain": "*.example.com"}, r"callback_domain: got '\*\.example\.com'"),
        ({"password_minimum_length": 6}, r"password_minimum_length: got 6, give 8-99"),
        ({"temporary_password_validity_days": 0}, r"temporary_password_validity_days: got 0"),
    ],
)
def test_invalid_configuration_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _build(**overrides)
