"""The preflight of a seed system's deploy: everything its stack needs that Terraform
cannot create, checked before anything changes and reported all at once.

Static checks read the typed environment (``environments/<system>.py``) and the
Dockerfile, so a dry run without credentials reports them too: placeholder domains,
zones and certificate ARNs, the production alarm target, the pinned release. With
credentials, AWS is asked: the Route 53 zone, the ACM certificate, an existing Cognito
pool's app client and domain (Dekart), the secrets the stack reads with a data source,
the account's API Gateway CloudWatch role (Metaflow's access logs), Panintelligence's
assets. Local checks: Docker with buildx, Terraform, the CDKTF CLI, and
(Panintelligence) the registry login to ghcr.io. Each finding names the file and field
to edit or the exact command to run.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from constructs_lib.options import CALLBACK_PATH

PLACEHOLDER_TLDS = frozenset({"example", "invalid", "test", "localhost"})
DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
"""RFC 5737: addresses for documentation, never anyone's real egress."""
REVIEW_ALARM_EMAIL = "alarms@example.invalid"
GHCR = "ghcr.io"
SECRET_VALUES = {
    "license-key": "<the Dekart licence key (free from dekart.xyz)>",
    "mapbox-token": "<a URL-restricted public pk. Mapbox token>",
    "licence": "<the Panintelligence customer key or offline licence>",
}
"""What each operator-provided secret holds (the last part of its name)."""
APIGW_ROLE = "apigateway-cloudwatch"
APIGW_TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
    '{"Service":"apigateway.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
)
APIGW_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


@dataclass(frozen=True)
class Finding:
    """One problem: what is wrong (naming the file and field, or the AWS resource) and the
    fix (what to edit, or the exact command)."""

    what: str
    fix: str

    def line(self) -> str:
        return f"{self.what}; fix: {self.fix}"


@dataclass(frozen=True)
class Report:
    """``blocking`` findings stop the deploy (exit 2); ``warnings`` are printed only."""

    blocking: tuple[Finding, ...]
    warnings: tuple[Finding, ...]


# ------------------------------------------------------------------ where a value is set


def variable_name(config: Any, module: ModuleType) -> str:
    """The module-level name the config is bound to (``PROD``), for messages."""
    for name, value in vars(module).items():
        if value is config and name.isupper():
            return name
    return str(config.name).upper()


def field_at(config: Any, module: ModuleType, field: str) -> str:
    return f"{config.config_file} ({variable_name(config, module)}.{field})"


# ------------------------------------------------------------------ static checks


def placeholder_domain(domain: str) -> bool:
    labels = domain.lower().rstrip(".").split(".")
    return "example" in labels or labels[-1] in PLACEHOLDER_TLDS


def placeholder_zone(zone_id: str) -> bool:
    return "EXAMPLE" in zone_id.upper()


def placeholder_certificate(arn: str) -> bool:
    return "example" in arn.lower()


def static_findings(config: Any, module: ModuleType, root: Path) -> list[Finding]:
    """What the environment file and the Dockerfile say, without AWS."""
    found: list[Finding] = []
    web = config.web
    if web.domain_name and placeholder_domain(web.domain_name):
        found.append(
            Finding(
                f"placeholder domain {web.domain_name!r} in "
                f"{field_at(config, module, 'web.domain_name')}",
                "set it to the name users will reach the system at (a domain you control)",
            )
        )
    if web.hosted_zone_id and placeholder_zone(web.hosted_zone_id):
        found.append(
            Finding(
                f"placeholder hosted zone {web.hosted_zone_id!r} in "
                f"{field_at(config, module, 'web.hosted_zone_id')}",
                "set it to the Route 53 zone that serves web.domain_name "
                "(aws route53 list-hosted-zones-by-name --dns-name <zone>)",
            )
        )
    if web.certificate_arn and placeholder_certificate(web.certificate_arn):
        found.append(
            Finding(
                f"placeholder certificate ARN {web.certificate_arn!r} in "
                f"{field_at(config, module, 'web.certificate_arn')}",
                f"set it to an issued ACM certificate in {config.region} covering "
                "web.domain_name (aws acm list-certificates --region "
                f"{config.region}), or unset it to let the stack request one",
            )
        )
    found += alarm_findings(config, module)
    found += pin_findings(config, root)
    return found


def alarm_findings(config: Any, module: ModuleType) -> list[Finding]:
    """Production alarms must reach someone (environments/alarms.py)."""
    if not config.is_production:
        return []
    email = config.alarm_email or os.environ.get("PCP_ALARM_EMAIL")
    topic = config.alarm_topic_arn or os.environ.get("PCP_ALARM_TOPIC_ARN")
    where = field_at(config, module, "alarm_email")
    if not email and not topic:
        return [
            Finding(
                f"{config.stack_name} is production and has no alarm target",
                "export PCP_ALARM_EMAIL=<address> (or PCP_ALARM_TOPIC_ARN=<topic arn>), or "
                f"set {where}",
            )
        ]
    if not topic and email == REVIEW_ALARM_EMAIL:
        return [
            Finding(
                f"the alarm target {email} can never receive mail",
                f"export PCP_ALARM_EMAIL=<a real address>, or set {where}",
            )
        ]
    return []


def pin_findings(config: Any, root: Path) -> list[Finding]:
    """The Dockerfile's pinned release must be the environment's image tag (the tag the
    stack runs): a fixed ``FROM image:tag``, or the default of ``ARG RELEASE``, which the
    build overrides anyway."""
    dockerfile = root / "images" / config.system / "Dockerfile"
    if not dockerfile.exists():
        return [
            Finding(
                f"images/{config.system}/Dockerfile does not exist",
                "restore it from git (git checkout -- images/)",
            )
        ]
    text = dockerfile.read_text()
    if re.search(r"^ARG RELEASE\b", text, re.MULTILINE):
        return []
    tags = re.findall(r"^FROM\s+\S+:(\S+)", text, re.MULTILINE)
    if config.image_tag in tags:
        return []
    return [
        Finding(
            f"images/{config.system}/Dockerfile builds {tags or 'no pinned tag'} but "
            f"{config.config_file} runs {config.image_tag}",
            f"make the Dockerfile's FROM tag and IMAGE_TAG in {config.config_file} the same",
        )
    ]


def placeholder_warnings(config: Any, module: ModuleType) -> list[Finding]:
    """Values that deploy but leave the system unusable: documentation address ranges,
    example bucket names."""
    warnings: list[Finding] = []
    for field_name, cidrs in (
        ("access_list_cidr_blocks", getattr(config, "access_list_cidr_blocks", ())),
        ("web.ingress_cidrs", config.web.ingress_cidrs),
    ):
        for cidr in cidrs:
            net = ipaddress.ip_network(cidr, strict=False)
            if isinstance(net, ipaddress.IPv4Network) and any(
                net.subnet_of(d) for d in DOCUMENTATION_RANGES
            ):
                warnings.append(
                    Finding(
                        f"{cidr} in {field_at(config, module, field_name)} is a documentation "
                        "range: nobody can call the system from there",
                        "replace it with your VPN's egress range",
                    )
                )
    athena = getattr(config, "athena", None)
    for bucket in getattr(athena, "data_buckets", ()):
        if bucket.startswith("example"):
            warnings.append(
                Finding(
                    f"data bucket {bucket!r} in "
                    f"{field_at(config, module, 'athena.data_buckets')} is a placeholder",
                    "name the buckets Dekart may read (and athena.databases)",
                )
            )
    return warnings


# ------------------------------------------------------------------ local tools


def missing_tools(cdktf: str) -> list[Finding]:
    """Docker with buildx, Terraform and the CDKTF CLI on this machine."""
    found = []
    if shutil.which("docker") is None:
        found.append(
            Finding("docker is not installed", "install Docker (with buildx) and start it")
        )
    elif subprocess.run(
        ["docker", "buildx", "version"],
        capture_output=True,
        check=False,
    ).returncode:
        found.append(
            Finding(
                "docker buildx is missing (--platform needs it)",
                "install the buildx plugin (apt-get install docker-buildx-plugin)",
            )
        )
    if shutil.which("terraform") is None:
        found.append(Finding("terraform is not installed", "install Terraform >= 1.10"))
    if not Path(cdktf).exists() and shutil.which(cdktf) is None:
        found.append(Finding("the CDKTF CLI is not installed", "run `make deps` (npm ci)"))
    return found


def registry_login(registry: str) -> Finding | None:
    """Docker's config must hold a login (or a credential helper) for ``registry``."""
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    try:
        document = json.loads(config.read_text())
    except (OSError, ValueError):
        document = {}
    known = {**document.get("auths", {}), **document.get("credHelpers", {})}
    if any(registry in str(name) for name in known):
        return None
    return Finding(
        f"no Docker login for {registry} (the images are private to Panintelligence's customers)",
        f"echo <token> | docker login {registry} --username <the account Panintelligence "
        "granted> --password-stdin",
    )


# ------------------------------------------------------------------ AWS checks


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def zone_findings(config: Any, module: ModuleType, route53: Any) -> list[Finding]:
    web = config.web
    if not web.hosted_zone_id or placeholder_zone(web.hosted_zone_id) or not web.domain_name:
        return []
    where = field_at(config, module, "web.hosted_zone_id")
    try:
        zone = route53.get_hosted_zone(Id=web.hosted_zone_id)["HostedZone"]
    except route53.exceptions.NoSuchHostedZone:
        return [
            Finding(
                f"the hosted zone {web.hosted_zone_id} ({where}) does not exist in this account",
                f"set it to the zone that serves {web.domain_name}, or create one (aws route53 "
                f"create-hosted-zone --name <zone> --caller-reference $(date +%s)) and "
                "delegate the domain to its name servers",
            )
        ]
    name = str(zone["Name"]).rstrip(".").lower()
    domain = web.domain_name.lower()
    problems = []
    if domain != name and not domain.endswith(f".{name}"):
        problems.append(
            Finding(
                f"the hosted zone {web.hosted_zone_id} ({where}) is {name}, which does not "
                f"serve {domain}",
                f"set it to the zone of {domain} (aws route53 list-hosted-zones-by-name "
                f"--dns-name {domain.split('.', 1)[-1]})",
            )
        )
    if zone.get("Config", {}).get("PrivateZone"):
        problems.append(
            Finding(
                f"the hosted zone {web.hosted_zone_id} ({where}) is private: the internet "
                f"cannot resolve {domain}",
                f"use the public zone of {domain}",
            )
        )
    return problems


def _covers(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower(), name.lower()
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def certificate_findings(config: Any, module: ModuleType, acm: Any) -> list[Finding]:
    web = config.web
    arn = web.certificate_arn
    if not arn or placeholder_certificate(arn) or not web.domain_name:
        return []
    where = field_at(config, module, "web.certificate_arn")
    try:
        cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    except acm.exceptions.ResourceNotFoundException:
        return [
            Finding(
                f"the certificate {arn} ({where}) does not exist in {config.region}",
                f"request one: aws acm request-certificate --region {config.region} "
                f"--domain-name {web.domain_name} --validation-method DNS (then validate it), "
                "or unset web.certificate_arn to let the stack request one",
            )
        ]
    problems = []
    status = str(cert.get("Status"))
    if status != "ISSUED":
        problems.append(
            Finding(
                f"the certificate {arn} ({where}) is {status}, not ISSUED",
                "complete its DNS validation (aws acm describe-certificate --certificate-arn "
                f"{arn} --region {config.region} shows the record to create)",
            )
        )
    names = [str(cert.get("DomainName", "")), *cert.get("SubjectAlternativeNames", [])]
    if not any(_covers(n, web.domain_name) for n in names):
        problems.append(
            Finding(
                f"the certificate {arn} ({where}) covers {', '.join(sorted(set(names)))}, "
                f"not {web.domain_name}",
                f"use a certificate for {web.domain_name}, or unset web.certificate_arn",
            )
        )
    return problems


def listener_scopes(stack: dict[str, Any]) -> tuple[str, ...]:
    """The scopes the stack's load balancer asks Cognito for (its ``authenticate-cognito``
    actions), as synthesized."""
    scopes: list[str] = []
    for listener in stack.get("resource", {}).get("aws_lb_listener", {}).values():
        for action in listener.get("default_action", []):
            for scope in str(action.get("authenticate_cognito", {}).get("scope", "")).split():
                scopes += [] if scope in scopes else [scope]
    return tuple(scopes)


OWN_POOL = "or unset cognito's three fields to let the stack create one"
"""The other fix of every finding about an existing user pool."""


@dataclass(frozen=True)
class SignIn:
    """What the load balancer's sign-in is, from the synthesized stack and the session:
    the ``scopes`` it asks for, and the ``account`` it runs in (None: unknown)."""

    scopes: tuple[str, ...]
    account: str | None


def cognito_findings(
    config: Any, module: ModuleType, sign_in: SignIn, cognito_idp: Callable[[str], Any]
) -> list[Finding]:
    """An existing user pool (``cognito`` naming all three) as the load balancer's sign-in
    needs it: in its region and account, with an app client that has a secret, the code
    flow, the scopes the listener asks for and the callback on the domain, and with the
    domain given. The stack's own pool is built so; a wrong one fails at the first
    sign-in, after the deploy. ``cognito_idp(region)``: a client of that region."""
    cognito = getattr(config, "cognito", None)
    domain = config.web.domain_name
    if cognito is None or not cognito.existing or not domain or placeholder_domain(domain):
        return []
    arn = str(cognito.user_pool_arn)
    _, _, _, region, account, resource = arn.split(":", 5)
    pool_id = resource.rsplit("/", 1)[-1]
    where_pool = field_at(config, module, "cognito.user_pool_arn")
    if region != config.region or (sign_in.account and account != sign_in.account):
        return [
            Finding(
                f"the user pool {arn} ({where_pool}) is in {region}, account {account}; the "
                f"load balancer in {config.region}, account {sign_in.account or '<unknown>'}",
                f"use a pool of the deploying account in {config.region}, {OWN_POOL}",
            )
        ]
    api = cognito_idp(region)
    try:
        api.describe_user_pool(UserPoolId=pool_id)
    except api.exceptions.ResourceNotFoundException:
        return [
            Finding(
                f"the user pool {arn} ({where_pool}) does not exist",
                "name an existing pool (aws cognito-idp list-user-pools --max-results 60 "
                f"--region {region}), {OWN_POOL}",
            )
        ]
    return _client_findings(config, module, sign_in, api, pool_id) + _domain_findings(
        config, module, api, pool_id
    )


def _client_findings(
    config: Any, module: ModuleType, sign_in: SignIn, api: Any, pool_id: str
) -> list[Finding]:
    client_id = str(config.cognito.user_pool_client_id)
    where = field_at(config, module, "cognito.user_pool_client_id")
    try:
        client = api.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
    except api.exceptions.ResourceNotFoundException:
        return [
            Finding(
                f"the app client {client_id} ({where}) is not in {pool_id}",
                f"aws cognito-idp list-user-pool-clients --user-pool-id {pool_id} --region "
                f"{config.region}",
            )
        ]
    callback = f"https://{config.web.domain_name}{CALLBACK_PATH}"
    gaps = _client_gaps(client["UserPoolClient"], sign_in.scopes, callback)
    if not gaps:
        return []
    fix = "allow them in the client's sign-in settings (Cognito console, App clients, Login pages)"
    if "no client secret" in gaps:
        fix += "; a client without a secret cannot get one: use a new client with a secret"
    return [
        Finding(
            f"the app client {client_id} ({where}) cannot sign users in for the load "
            f"balancer: {'; '.join(gaps)}",
            fix,
        )
    ]


def _client_gaps(client: dict[str, Any], scopes: tuple[str, ...], callback: str) -> list[str]:
    """What the load balancer's sign-in needs of an app client and ``client`` lacks."""
    gaps = []
    if not client.get("ClientSecret"):
        gaps.append("no client secret")
    if not client.get("AllowedOAuthFlowsUserPoolClient") or "code" not in client.get(
        "AllowedOAuthFlows", []
    ):
        gaps.append("the authorization code grant is not allowed")
    missing = [s for s in scopes if s not in client.get("AllowedOAuthScopes", [])]
    if missing:
        gaps.append(f"{'scope' if len(missing) == 1 else 'scopes'} {' '.join(missing)} not allowed")
    if callback not in client.get("CallbackURLs", []):
        gaps.append(f"callback {callback} not allowed")
    if not client.get("SupportedIdentityProviders"):
        gaps.append("no identity provider enabled")
    return gaps


def _domain_findings(config: Any, module: ModuleType, api: Any, pool_id: str) -> list[Finding]:
    domain = str(config.cognito.user_pool_domain)
    try:
        owner = api.describe_user_pool_domain(Domain=domain).get("DomainDescription", {})
    except (api.exceptions.ResourceNotFoundException, api.exceptions.InvalidParameterException):
        owner = {}
    if owner.get("UserPoolId") == pool_id:
        return []
    return [
        Finding(
            f"the domain {domain} ({field_at(config, module, 'cognito.user_pool_domain')}) "
            f"is not a domain of the user pool {pool_id}",
            f"give the pool's own domain (aws cognito-idp describe-user-pool --user-pool-id "
            f'{pool_id} --region {config.region} --query "[UserPool.Domain,'
            'UserPool.CustomDomain]")',
        )
    ]


def operator_secrets(stack: dict[str, Any]) -> list[str]:
    """The secrets the stack reads by name with a data source (created by the operator)."""
    data = stack.get("data", {}).get("aws_secretsmanager_secret", {})
    return sorted(str(body["name"]) for body in data.values() if "name" in body)


def secret_findings(names: list[str], region: str, secrets: Any) -> list[Finding]:
    found = []
    for name in names:
        value = SECRET_VALUES.get(name.rsplit("/", 1)[-1], "<value>")
        try:
            secret = secrets.describe_secret(SecretId=name)
        except secrets.exceptions.ResourceNotFoundException:
            found.append(
                Finding(
                    f"the secret {name} does not exist in {region}",
                    f"aws secretsmanager create-secret --region {region} --name {name} "
                    f"--secret-string '{value}'",
                )
            )
            continue
        if secret.get("DeletedDate"):
            found.append(
                Finding(
                    f"the secret {name} is scheduled for deletion",
                    f"aws secretsmanager restore-secret --region {region} --secret-id {name}",
                )
            )
        elif not any("AWSCURRENT" in s for s in secret.get("VersionIdsToStages", {}).values()):
            found.append(
                Finding(
                    f"the secret {name} has no value",
                    f"aws secretsmanager put-secret-value --region {region} --secret-id {name} "
                    f"--secret-string '{value}'",
                )
            )
    return found


def logs_api_access(config: Any, stack: dict[str, Any]) -> bool:
    """The stack writes API Gateway access logs and does not manage the account's role."""
    return (
        bool(getattr(config, "enable_api_gateway", False))
        and bool(getattr(config, "api_access_logs", False))
        and not stack.get("resource", {}).get("aws_api_gateway_account")
    )


def api_gateway_findings(
    config: Any, module: ModuleType, apigateway: Any, account: str
) -> list[Finding]:
    role = apigateway.get_account().get("cloudwatchRoleArn")
    if role:
        return []
    arn = f"arn:aws:iam::{account}:role/{APIGW_ROLE}"
    return [
        Finding(
            f"API Gateway in {config.region} has no CloudWatch role (account setting "
            "cloudwatchRoleArn), which the API's access logs need",
            f"aws iam create-role --role-name {APIGW_ROLE} --assume-role-policy-document "
            f"'{APIGW_TRUST}' && aws iam attach-role-policy --role-name {APIGW_ROLE} "
            f"--policy-arn {APIGW_POLICY} && aws apigateway update-account --region "
            f"{config.region} --patch-operations op=replace,path=/cloudwatchRoleArn,value={arn}"
            f"; or set {field_at(config, module, 'api_access_logs')} = False",
        )
    ]


ASSETS_VARIABLE = "PI_ASSETS_DIR"


def assets_dir() -> Path | None:
    """The local copy of Panintelligence's shipped assets to upload (``PI_ASSETS_DIR``)."""
    raw = os.environ.get(ASSETS_VARIABLE)
    return Path(raw) if raw else None


def assets_findings(bucket: str, prefix: str, s3: Any | None) -> list[Finding]:
    """The loader refuses an empty prefix: the assets are in the bucket, or there is a
    local directory to upload (the deploy's assets step uploads it)."""
    local = assets_dir()
    if local is not None:
        if local.is_dir() and any(p.is_file() for p in local.rglob("*")):
            return []
        return [
            Finding(
                f"{ASSETS_VARIABLE}={local} is not a directory with files",
                f"point {ASSETS_VARIABLE} at the unpacked assets (themes/, images/, svg/, "
                "locale/, custom_jdbc/)",
            )
        ]
    if s3 is not None:
        try:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except s3.exceptions.NoSuchBucket:
            listed = {}
        if listed.get("KeyCount", 0):
            return []
    return [
        Finding(
            f"no shipped assets: s3://{bucket}/{prefix} is empty or not created yet, and "
            f"{ASSETS_VARIABLE} is unset (the asset loader refuses an empty prefix)",
            f"export {ASSETS_VARIABLE}=<directory with themes/ images/ svg/ locale/ "
            "custom_jdbc/ from Panintelligence's release>; the deploy uploads it after "
            "creating the bucket",
        )
    ]
