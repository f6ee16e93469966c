"""What a deploy-time database owner function reads (``apps.pgowner``,
``apps.mariadbowner``): the master and the application's secrets, the server, the
database, the CA bundle that verifies the server. Read per invocation, never at import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from apps.common.config import Env
from apps.common.contract import EnvVar
from apps.common.credentials import Credentials, SecretCredentials
from apps.common.errors import ConfigError, env_error

LOGIN_TLS_REQUIRED = "required"
LOGIN_TLS_OPTIONAL = "optional"
"""The values of ``DB_LOGIN_TLS``."""


@dataclass(frozen=True)
class OwnerInputs:
    master: Credentials
    """The RDS-managed master secret: who creates the application's login."""
    app: Credentials
    """The application's login (``username``) and the password it must have."""
    host: str
    port: int
    database: str
    """The application's database (``DB_NAME``)."""
    ca_file: str
    """The CA bundle (``DB_TLS_CA``) the server's certificate is verified against."""
    login_tls_required: bool = True
    """``DB_LOGIN_TLS``: whether the application's login must use TLS (the function's
    own connection always does, verified)."""


def _secret(arn: str, name: str) -> Credentials:
    try:
        return SecretCredentials(arn).get()
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            "secret", name, "a value", 'store JSON {"username": ..., "password": ...}'
        ) from None


def owner_inputs(default_port: int, environ: Mapping[str, str] | None = None) -> OwnerInputs:
    """Read ``MASTER_SECRET_ARN``, ``APP_SECRET_ARN``, ``DB_HOST``, ``DB_PORT`` (unset:
    ``default_port``), ``DB_NAME``, ``DB_TLS_CA`` (a file), ``DB_LOGIN_TLS`` (unset:
    required) and both secrets."""
    env = Env(os.environ if environ is None else environ)
    master_arn = env.required(EnvVar.MASTER_SECRET_ARN)
    app_arn = env.required(EnvVar.APP_SECRET_ARN)
    host = env.required(EnvVar.DB_HOST)
    port = env.integer(EnvVar.DB_PORT, default_port, minimum=1, maximum=65535)
    database = env.required(EnvVar.DB_NAME)
    ca_file = env.required(EnvVar.DB_TLS_CA)
    if not os.path.isfile(ca_file):
        raise env_error(EnvVar.DB_TLS_CA, repr(ca_file), "give the path of a CA bundle file")
    login_tls = env.choice(
        EnvVar.DB_LOGIN_TLS, LOGIN_TLS_REQUIRED, (LOGIN_TLS_REQUIRED, LOGIN_TLS_OPTIONAL)
    )
    return OwnerInputs(
        master=_secret(master_arn, EnvVar.MASTER_SECRET_ARN),
        app=_secret(app_arn, EnvVar.APP_SECRET_ARN),
        host=host,
        port=port,
        database=database,
        ca_file=ca_file,
        login_tls_required=login_tls == LOGIN_TLS_REQUIRED,
    )
