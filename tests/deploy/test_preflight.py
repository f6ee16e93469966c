"""The seed systems' preflight (tools/deploy/preflight.py): each missing prerequisite is
reported by name and fix, several at once, with nothing changed (exit 2). AWS is moto in
server mode; the CLIs are recorded (tests/deploy/deploysupport.py)."""

from __future__ import annotations

import datetime
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

import environments
from tests.deploy.conftest import REGION
from tests.deploy.deploysupport import ACCOUNT, ROOT, SystemRecorder, run_system
from tests.support import Synth
from tools.deploy.preflight import (
    listener_scopes,
    missing_tools,
    pin_findings,
    placeholder_domain,
    placeholder_warnings,
)

METABASE_REGION = "eu-west-1"
DOMAIN = "metabase.acme-analytics.io"


@pytest.fixture(autouse=True)
def zone_ids_as_aws_makes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route 53 zone ids start with Z (which environments/systems.py checks); moto's are
    any 22 letters and digits: made like AWS's here (moto runs in this process)."""
    import secrets
    import string

    import moto.route53.models as route53_models

    def aws_like(**_: Any) -> str:
        alphabet = string.ascii_uppercase + string.digits
        return "Z" + "".join(secrets.choice(alphabet) for _ in range(13))

    monkeypatch.setattr(route53_models, "create_route53_zone_id", aws_like)


def errors(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("error: preflight: ")]


def assert_nothing_changed(recorder: SystemRecorder, aws: dict[str, Any], code: int) -> None:
    assert code == 2
    assert recorder.calls == ["cdktf synth"]  # synth writes cdktf.out only
    assert aws["s3"].list_buckets().get("Buckets", []) == []
    for region in (REGION, METABASE_REGION):
        assert boto3.client("ecr", region_name=region).describe_repositories()["repositories"] == []


def metabase_prod(monkeypatch: pytest.MonkeyPatch, **web: Any) -> None:
    """metabase-prod with its placeholders replaced (as a user edits the file) and an
    alarm target."""
    config = environments.SYSTEM_ENVIRONMENTS["metabase-prod"]
    edited = replace(config, web=replace(config.web, **web))
    monkeypatch.setitem(environments.SYSTEM_ENVIRONMENTS, "metabase-prod", edited)
    monkeypatch.setenv("PCP_ALARM_EMAIL", "oncall@acme-analytics.io")


def zone(name: str, *, private: bool = False) -> str:
    route53 = boto3.client("route53", region_name="us-east-1")
    extra: dict[str, Any] = {}
    if private:
        ec2 = boto3.client("ec2", region_name=METABASE_REGION)
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        extra = {"VPC": {"VPCRegion": METABASE_REGION, "VPCId": vpc}}
    created = route53.create_hosted_zone(
        Name=name, CallerReference=name, HostedZoneConfig={"PrivateZone": private}, **extra
    )
    return str(created["HostedZone"]["Id"]).rsplit("/", 1)[-1]


def deploy(stack: str, outdir: Path) -> tuple[int, str, SystemRecorder]:
    recorder = SystemRecorder(outdir)
    code, out = run_system(["deploy", stack, "--auto-approve"], recorder, outdir)
    assert "Traceback" not in out
    return code, out, recorder


def test_placeholders_are_reported_by_file_and_field(aws: dict[str, Any], outdir: Path) -> None:
    code, out, recorder = deploy("metabase-prod", outdir)
    assert errors(out) == [
        "error: preflight: placeholder domain 'metabase.example.com' in environments/metabase.py "
        "(PROD.web.domain_name); fix: set it to the name users will reach the system at (a "
        "domain you control)",
        "error: preflight: placeholder hosted zone 'Z0EXAMPLE0METABASE' in "
        "environments/metabase.py (PROD.web.hosted_zone_id); fix: set it to the Route 53 zone "
        "that serves web.domain_name (aws route53 list-hosted-zones-by-name --dns-name <zone>)",
        "error: preflight: placeholder certificate ARN "
        "'arn:aws:acm:eu-west-1:123456789012:certificate/metabase-example' in "
        "environments/metabase.py (PROD.web.certificate_arn); fix: set it to an issued ACM "
        "certificate in eu-west-1 covering web.domain_name (aws acm list-certificates --region "
        "eu-west-1), or unset it to let the stack request one",
        "error: preflight: metabase-prod is production and has no alarm target; fix: export "
        "PCP_ALARM_EMAIL=<address> (or PCP_ALARM_TOPIC_ARN=<topic arn>), or set "
        "environments/metabase.py (PROD.alarm_email)",
    ]
    assert out.splitlines()[-1] == (
        "error: deploy metabase-prod: step 'preflight' failed: 4 problem(s) listed above; "
        "nothing was changed; fix: fix each one, then run `make deploy` again"
    )
    assert_nothing_changed(recorder, aws, code)


def test_missing_secrets_name_the_create_secret_command(aws: dict[str, Any], outdir: Path) -> None:
    code, out, recorder = deploy("dekart-dev", outdir)
    assert errors(out) == [
        f"error: preflight: the secret /dekart/dev/{name} does not exist in {REGION}; fix: aws "
        f"secretsmanager create-secret --region {REGION} --name /dekart/dev/{name} "
        f"--secret-string '{value}'"
        for name, value in (
            ("license-key", "<the Dekart licence key (free from dekart.xyz)>"),
            ("mapbox-token", "<a URL-restricted public pk. Mapbox token>"),
        )
    ]
    assert_nothing_changed(recorder, aws, code)


def test_a_secret_scheduled_for_deletion_names_the_restore_command(
    aws: dict[str, Any], outdir: Path
) -> None:
    secrets = aws["secretsmanager"]
    secrets.create_secret(Name="/dekart/dev/license-key", SecretString="key")
    secrets.create_secret(Name="/dekart/dev/mapbox-token", SecretString="pk.x")
    secrets.delete_secret(SecretId="/dekart/dev/mapbox-token", RecoveryWindowInDays=7)
    code, out, recorder = deploy("dekart-dev", outdir)
    assert errors(out) == [
        "error: preflight: the secret /dekart/dev/mapbox-token is scheduled for deletion; fix: "
        f"aws secretsmanager restore-secret --region {REGION} --secret-id /dekart/dev/mapbox-token"
    ]
    assert_nothing_changed(recorder, aws, code)


def test_a_missing_zone_is_reported(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metabase_prod(
        monkeypatch, domain_name=DOMAIN, hosted_zone_id="Z0NOSUCHZONE", certificate_arn=None
    )
    code, out, recorder = deploy("metabase-prod", outdir)
    assert errors(out) == [
        "error: preflight: the hosted zone Z0NOSUCHZONE (environments/metabase.py "
        "(PROD.web.hosted_zone_id)) does not exist in this account; fix: set it to the zone "
        f"that serves {DOMAIN}, or create one (aws route53 create-hosted-zone --name <zone> "
        "--caller-reference $(date +%s)) and delegate the domain to its name servers"
    ]
    assert_nothing_changed(recorder, aws, code)


def test_a_zone_of_another_domain_is_reported(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = zone("other-company.io")
    metabase_prod(monkeypatch, domain_name=DOMAIN, hosted_zone_id=other, certificate_arn=None)
    code, out, recorder = deploy("metabase-prod", outdir)
    assert errors(out) == [
        f"error: preflight: the hosted zone {other} (environments/metabase.py "
        f"(PROD.web.hosted_zone_id)) is other-company.io, which does not serve {DOMAIN}; fix: "
        f"set it to the zone of {DOMAIN} (aws route53 list-hosted-zones-by-name --dns-name "
        "acme-analytics.io)"
    ]
    assert_nothing_changed(recorder, aws, code)


def test_an_unissued_certificate_is_reported(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acm = boto3.client("acm", region_name=METABASE_REGION)
    arn = acm.request_certificate(DomainName=DOMAIN, ValidationMethod="DNS")["CertificateArn"]
    metabase_prod(
        monkeypatch,
        domain_name=DOMAIN,
        hosted_zone_id=zone("acme-analytics.io"),
        certificate_arn=arn,
    )
    code, out, recorder = deploy("metabase-prod", outdir)
    assert errors(out) == [
        f"error: preflight: the certificate {arn} (environments/metabase.py "
        "(PROD.web.certificate_arn)) is PENDING_VALIDATION, not ISSUED; fix: complete its DNS "
        f"validation (aws acm describe-certificate --certificate-arn {arn} --region "
        f"{METABASE_REGION} shows the record to create)"
    ]
    assert_nothing_changed(recorder, aws, code)


def self_signed(name: str) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def test_an_issued_certificate_must_cover_the_name(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acm = boto3.client("acm", region_name=METABASE_REGION)
    cert, key = self_signed("*.acme-analytics.io")
    wildcard = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    cert, key = self_signed("www.acme-analytics.io")
    other = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    hosted = zone("acme-analytics.io")
    metabase_prod(monkeypatch, domain_name=DOMAIN, hosted_zone_id=hosted, certificate_arn=other)
    code, out, recorder = deploy("metabase-prod", outdir)
    assert errors(out) == [
        f"error: preflight: the certificate {other} (environments/metabase.py "
        f"(PROD.web.certificate_arn)) covers www.acme-analytics.io, not {DOMAIN}; fix: use a "
        f"certificate for {DOMAIN}, or unset web.certificate_arn"
    ]
    assert_nothing_changed(recorder, aws, code)
    # The wildcard covers it: nothing is missing, and the deploy goes on.
    metabase_prod(monkeypatch, domain_name=DOMAIN, hosted_zone_id=hosted, certificate_arn=wildcard)
    code, out, recorder = deploy("metabase-prod", outdir)
    assert errors(out) == []
    assert code == 0, out


def test_a_missing_api_gateway_cloudwatch_role_names_both_fixes(
    aws: dict[str, Any], outdir: Path
) -> None:
    code, out, recorder = deploy("metaflow-dev", outdir)
    role = f"arn:aws:iam::{ACCOUNT}:role/apigateway-cloudwatch"
    assert errors(out) == [
        f"error: preflight: API Gateway in {REGION} has no CloudWatch role (account setting "
        "cloudwatchRoleArn), which the API's access logs need; fix: aws iam create-role "
        "--role-name apigateway-cloudwatch --assume-role-policy-document "
        '\'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
        '{"Service":"apigateway.amazonaws.com"},"Action":"sts:AssumeRole"}]}\' && aws iam '
        "attach-role-policy --role-name apigateway-cloudwatch --policy-arn "
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs && aws "
        f"apigateway update-account --region {REGION} --patch-operations "
        f"op=replace,path=/cloudwatchRoleArn,value={role}; or set environments/metaflow.py "
        "(DEV.api_access_logs) = False"
    ]
    assert_nothing_changed(recorder, aws, code)


def test_panintelligence_needs_its_licence_registry_login_and_assets(
    aws: dict[str, Any], outdir: Path
) -> None:
    code, out, recorder = deploy("panintelligence-dev", outdir)
    bucket = f"panintelligence-dev-assets-{ACCOUNT}"
    assert errors(out) == [
        f"error: preflight: the secret /panintelligence/dev/licence does not exist in {REGION}; "
        f"fix: aws secretsmanager create-secret --region {REGION} --name "
        "/panintelligence/dev/licence --secret-string '<the Panintelligence customer key or "
        "offline licence>'",
        f"error: preflight: no shipped assets: s3://{bucket}/dashboard/ is empty or not "
        "created yet, and PI_ASSETS_DIR is unset (the asset loader refuses an empty prefix); "
        "fix: export PI_ASSETS_DIR=<directory with themes/ images/ svg/ locale/ custom_jdbc/ "
        "from Panintelligence's release>; the deploy uploads it after creating the bucket",
        "error: preflight: no Docker login for ghcr.io (the images are private to "
        "Panintelligence's customers); fix: echo <token> | docker login ghcr.io --username "
        "<the account Panintelligence granted> --password-stdin",
    ]
    assert_nothing_changed(recorder, aws, code)


def test_several_problems_are_reported_at_once(aws: dict[str, Any], outdir: Path) -> None:
    code, out, recorder = deploy("dekart-prod", outdir)
    found = errors(out)
    assert [line.split(";", 1)[0] for line in found] == [
        "error: preflight: placeholder domain 'dekart.example.com' in environments/dekart.py "
        "(PROD.web.domain_name)",
        "error: preflight: placeholder hosted zone 'Z0EXAMPLE0DEKART' in environments/dekart.py "
        "(PROD.web.hosted_zone_id)",
        "error: preflight: dekart-prod is production and has no alarm target",
        f"error: preflight: the secret /dekart/prod/license-key does not exist in {REGION}",
        f"error: preflight: the secret /dekart/prod/mapbox-token does not exist in {REGION}",
    ]
    assert "5 problem(s) listed above" in out.splitlines()[-1]
    assert_nothing_changed(recorder, aws, code)


def test_missing_local_tools_are_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docker whose buildx plugin is missing, no terraform, no CDKTF CLI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\necho \"docker: 'buildx' is not a docker command.\" >&2\nexit 1\n")
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    found = [f.line() for f in missing_tools(str(tmp_path / "node_modules/.bin/cdktf"))]
    assert found == [
        "docker buildx is missing (--platform needs it); fix: install the buildx plugin "
        "(apt-get install docker-buildx-plugin)",
        "terraform is not installed; fix: install Terraform >= 1.10",
        "the CDKTF CLI is not installed; fix: run `make deps` (npm ci)",
    ]
    docker.unlink()
    assert missing_tools(str(tmp_path / "cdktf"))[0].what == "docker is not installed"


def test_missing_tools_stop_a_real_deploy_but_only_warn_in_a_dry_run(
    aws: dict[str, Any], outdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    recorder = SystemRecorder(outdir)
    code, out = run_system(
        ["deploy", "metabase-dev", "--auto-approve"], recorder, outdir, tools=missing_tools
    )
    assert "error: preflight: docker is not installed; fix: install Docker (with buildx) and " \
        "start it" in out.splitlines()  # fmt: skip
    assert "error: preflight: terraform is not installed; fix: install Terraform >= 1.10" in (
        out.splitlines()
    )
    assert_nothing_changed(recorder, aws, code)
    code, out = run_system(
        ["deploy", "metabase-dev", "--dry-run"], SystemRecorder(outdir), outdir, tools=missing_tools
    )
    assert code == 0, out
    assert "warning: docker is not installed; fix: install Docker (with buildx) and start it" in (
        out.splitlines()
    )


def test_a_dry_run_with_credentials_checks_aws_too(aws: dict[str, Any], outdir: Path) -> None:
    code, out = run_system(["deploy", "dekart-dev", "--dry-run"], None, outdir)
    assert code == 2
    assert len(errors(out)) == 2  # both secrets
    assert out.splitlines()[-1] == (
        "error: deploy dekart-dev: preflight found 2 problem(s) (listed above); a real run "
        "stops there and changes nothing"
    )
    assert json.dumps(aws["s3"].list_buckets().get("Buckets", [])) == "[]"


def test_a_private_zone_cannot_serve_the_public_name(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = zone("acme-analytics.io", private=True)
    metabase_prod(monkeypatch, domain_name=DOMAIN, hosted_zone_id=private, certificate_arn=None)
    code, out, recorder = deploy("metabase-prod", outdir)
    assert errors(out) == [
        f"error: preflight: the hosted zone {private} (environments/metabase.py "
        f"(PROD.web.hosted_zone_id)) is private: the internet cannot resolve {DOMAIN}; fix: "
        f"use the public zone of {DOMAIN}"
    ]
    assert_nothing_changed(recorder, aws, code)


def test_a_secret_without_a_value_names_the_put_command(aws: dict[str, Any], outdir: Path) -> None:
    aws["secretsmanager"].create_secret(Name="/dekart/dev/license-key", SecretString="key")
    aws["secretsmanager"].create_secret(Name="/dekart/dev/mapbox-token")  # no value yet
    code, out, recorder = deploy("dekart-dev", outdir)
    assert errors(out) == [
        "error: preflight: the secret /dekart/dev/mapbox-token has no value; fix: aws "
        f"secretsmanager put-secret-value --region {REGION} --secret-id /dekart/dev/mapbox-token "
        "--secret-string '<a URL-restricted public pk. Mapbox token>'"
    ]
    assert_nothing_changed(recorder, aws, code)


def test_the_review_alarm_address_is_not_a_production_target(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCP_ALARM_EMAIL", "alarms@example.invalid")
    code, out, recorder = deploy("metaflow-prod", outdir)
    assert "error: preflight: the alarm target alarms@example.invalid can never receive mail; " \
        "fix: export PCP_ALARM_EMAIL=<a real address>, or set environments/metaflow.py " \
        "(PROD.alarm_email)" in errors(out)  # fmt: skip
    assert_nothing_changed(recorder, aws, code)


def test_the_dockerfile_must_build_the_release_the_environment_runs(tmp_path: Path) -> None:
    config = environments.SYSTEM_ENVIRONMENTS["metabase-dev"]
    (tmp_path / "images" / "metabase").mkdir(parents=True)
    dockerfile = tmp_path / "images" / "metabase" / "Dockerfile"
    dockerfile.write_text("FROM metabase/metabase:v0.50.1\n")
    assert [f.line() for f in pin_findings(config, tmp_path)] == [
        "images/metabase/Dockerfile builds ['v0.50.1'] but environments/metabase.py runs "
        "v0.63.13; fix: make the Dockerfile's FROM tag and IMAGE_TAG in "
        "environments/metabase.py the same"
    ]
    dockerfile.write_text(f"FROM metabase/metabase:{config.image_tag}\n")
    assert pin_findings(config, tmp_path) == []
    assert pin_findings(config, ROOT) == []  # the shipped Dockerfiles match


@pytest.mark.parametrize(
    ("domain", "placeholder"),
    [
        ("metabase.example.com", True),
        ("dash.example.org", True),
        ("example.net", True),
        ("maps.acme.example", True),
        ("maps.acme.test", True),
        ("examples.acme.io", False),
        ("metabase.acme-analytics.io", False),
    ],
)
def test_placeholder_domains(domain: str, placeholder: bool) -> None:
    assert placeholder_domain(domain) is placeholder


def test_documentation_ranges_and_example_buckets_are_warnings() -> None:
    module = environments.metaflow
    found = [f.line() for f in placeholder_warnings(module.DEV, module)]
    assert found == [
        "203.0.113.0/24 in environments/metaflow.py (DEV.access_list_cidr_blocks) is a "
        "documentation range: nobody can call the system from there; fix: replace it with "
        "your VPN's egress range"
    ]
    dekart = environments.dekart
    assert [f.what for f in placeholder_warnings(dekart.PROD, dekart)] == [
        "data bucket 'example-geodata-lake' in environments/dekart.py "
        "(PROD.athena.data_buckets) is a placeholder"
    ]
    metabase = environments.metabase
    assert placeholder_warnings(metabase.DEV, metabase) == []


def test_declining_the_confirmation_after_the_preflight_changes_nothing(
    aws: dict[str, Any], outdir: Path
) -> None:
    import io

    from tools.deploy import __main__ as main_module

    recorder, out = SystemRecorder(outdir), io.StringIO()
    prompts: list[str] = []

    def decline(prompt: str) -> bool:
        prompts.append(prompt)
        return False

    code = main_module.main(
        ["deploy", "metabase-dev"],
        runner=recorder,
        out=out,
        outdir=outdir,
        tools=lambda cdktf: [],
        confirm=decline,
    )
    assert prompts == [f"    change account {ACCOUNT} in eu-west-1? [y/N] "]
    assert out.getvalue().splitlines()[-1] == (
        "error: deploy metabase-dev: step 'preflight' failed: not confirmed; fix: answer y, or "
        "set AUTO_APPROVE=1"
    )
    assert_nothing_changed(recorder, aws, code)


# --- an existing Cognito user pool (Dekart) -----------------------------------------------

MAPS_DOMAIN = "maps.acme-analytics.io"
DEKART_REGION = "eu-central-1"


def sign_in_client(cognito: Any, pool_id: str, **overrides: Any) -> str:
    """An app client of ``pool_id`` as the load balancer's sign-in needs it, but for
    ``overrides``."""
    settings: dict[str, Any] = {
        "GenerateSecret": True,
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid", "email"],
        "CallbackURLs": [f"https://{MAPS_DOMAIN}/oauth2/idpresponse"],
        "SupportedIdentityProviders": ["COGNITO"],
        **overrides,
    }
    created = cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="alb", **settings)
    return str(created["UserPoolClient"]["ClientId"])


def existing_pool(domain: str = "acme-maps") -> tuple[Any, str, str]:
    """``(client, pool id, pool arn)`` of a new pool with the domain ``domain`` (a prefix,
    or a custom domain's full name)."""
    cognito = boto3.client("cognito-idp", region_name=DEKART_REGION)
    pool = cognito.create_user_pool(PoolName="maps")["UserPool"]
    custom: dict[str, Any] = {}
    if "." in domain:  # a custom domain's certificate is in us-east-1 (CloudFront's)
        cert = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/11111111-2222-3333-4444-555555555555"
        custom = {"CustomDomainConfig": {"CertificateArn": cert}}
    cognito.create_user_pool_domain(Domain=domain, UserPoolId=pool["Id"], **custom)
    return cognito, str(pool["Id"]), str(pool["Arn"])


def dekart_with_pool(
    monkeypatch: pytest.MonkeyPatch, arn: str, client_id: str, domain: str = "acme-maps"
) -> None:
    """dekart-prod with its placeholders replaced and the given existing pool."""
    from environments.systems import CognitoSettings

    config = environments.SYSTEM_ENVIRONMENTS["dekart-prod"]
    web = replace(config.web, domain_name=MAPS_DOMAIN, hosted_zone_id=zone("acme-analytics.io"))
    cognito = CognitoSettings(user_pool_arn=arn, user_pool_client_id=client_id,
                              user_pool_domain=domain)  # fmt: skip
    edited = replace(config, web=web, cognito=cognito)
    monkeypatch.setitem(environments.SYSTEM_ENVIRONMENTS, "dekart-prod", edited)
    monkeypatch.setenv("PCP_ALARM_EMAIL", "oncall@acme-analytics.io")


def cognito_errors(out: str) -> list[str]:
    return [line for line in errors(out) if "(PROD.cognito." in line]


def test_an_existing_app_client_must_allow_the_load_balancers_sign_in(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cognito, pool_id, arn = existing_pool()
    client_id = sign_in_client(
        cognito,
        pool_id,
        GenerateSecret=False,
        AllowedOAuthFlows=["implicit"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=["https://old.acme-analytics.io/oauth2/idpresponse"],
        SupportedIdentityProviders=[],
    )
    dekart_with_pool(monkeypatch, arn, client_id)
    code, out, recorder = deploy("dekart-prod", outdir)
    assert cognito_errors(out) == [
        f"error: preflight: the app client {client_id} (environments/dekart.py "
        "(PROD.cognito.user_pool_client_id)) cannot sign users in for the load balancer: no "
        "client secret; the authorization code grant is not allowed; scope email not allowed; "
        f"callback https://{MAPS_DOMAIN}/oauth2/idpresponse not allowed; no identity provider "
        "enabled; fix: allow them in the client's sign-in settings (Cognito console, App "
        "clients, Login pages); a client without a secret cannot get one: use a new client "
        "with a secret"
    ]
    assert_nothing_changed(recorder, aws, code)


def test_an_existing_pool_needs_its_own_domain_and_client(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cognito, pool_id, arn = existing_pool()
    existing_pool(domain="someone-else")  # another pool's domain
    for domain in ("someone-else", "no-such-domain"):
        dekart_with_pool(monkeypatch, arn, sign_in_client(cognito, pool_id), domain=domain)
        code, out, _ = deploy("dekart-prod", outdir)
        assert cognito_errors(out) == [
            f"error: preflight: the domain {domain} (environments/dekart.py "
            f"(PROD.cognito.user_pool_domain)) is not a domain of the user pool {pool_id}; "
            "fix: give the pool's own domain (aws cognito-idp describe-user-pool "
            f'--user-pool-id {pool_id} --region {DEKART_REGION} --query "[UserPool.Domain,'
            'UserPool.CustomDomain]")'
        ]
    dekart_with_pool(monkeypatch, arn, "1example23456789")
    code, out, _ = deploy("dekart-prod", outdir)
    assert code == 2
    assert cognito_errors(out) == [
        "error: preflight: the app client 1example23456789 (environments/dekart.py "
        f"(PROD.cognito.user_pool_client_id)) is not in {pool_id}; fix: aws cognito-idp "
        f"list-user-pool-clients --user-pool-id {pool_id} --region {DEKART_REGION}"
    ]


def test_a_missing_pool_is_reported(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = f"arn:aws:cognito-idp:{DEKART_REGION}:{ACCOUNT}:userpool/{DEKART_REGION}_NoSuchPool"
    dekart_with_pool(monkeypatch, arn, "1example23456789")
    code, out, recorder = deploy("dekart-prod", outdir)
    assert [line for line in errors(out) if "user pool" in line] == [
        f"error: preflight: the user pool {arn} (environments/dekart.py "
        "(PROD.cognito.user_pool_arn)) does not exist; fix: name an existing pool (aws "
        f"cognito-idp list-user-pools --max-results 60 --region {DEKART_REGION}), or unset "
        "cognito's three fields to let the stack create one"
    ]
    assert_nothing_changed(recorder, aws, code)


def test_a_pool_of_another_region_is_reported(
    aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load balancer refuses a user pool of another region (its ARN is "not valid")."""
    elsewhere = boto3.client("cognito-idp", region_name="us-east-1")
    pool = elsewhere.create_user_pool(PoolName="maps")["UserPool"]
    dekart_with_pool(monkeypatch, pool["Arn"], sign_in_client(elsewhere, pool["Id"]))
    code, out, recorder = deploy("dekart-prod", outdir)
    assert cognito_errors(out) == [
        f"error: preflight: the user pool {pool['Arn']} (environments/dekart.py "
        f"(PROD.cognito.user_pool_arn)) is in us-east-1, account {ACCOUNT}; the load balancer "
        f"in {DEKART_REGION}, account {ACCOUNT}; fix: use a pool of the deploying account in "
        f"{DEKART_REGION}, or unset cognito's three fields to let the stack create one"
    ]
    assert_nothing_changed(recorder, aws, code)


@pytest.mark.parametrize("domain", ["acme-maps", "auth.acme-analytics.io"])
def test_an_existing_pool_set_up_for_the_load_balancer_passes(
    domain: str, aws: dict[str, Any], outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a prefix domain or a custom domain (its full name)."""
    cognito, pool_id, arn = existing_pool(domain)
    dekart_with_pool(monkeypatch, arn, sign_in_client(cognito, pool_id), domain=domain)
    _, out, _ = deploy("dekart-prod", outdir)
    assert "user pool" not in out
    assert "app client" not in out
    # What stops it is only dekart-prod's own secrets, which no test here creates.
    assert [line.split(" does not exist", 1)[0] for line in errors(out)] == [
        f"error: preflight: the secret /dekart/prod/{name}"
        for name in ("license-key", "mapbox-token")
    ]


def test_the_scopes_checked_are_the_ones_the_listener_asks_for(synth: Synth) -> None:
    assert listener_scopes(synth.stack("dekart-prod")) == ("openid", "email")
    listener = {"default_action": [{"authenticate_cognito": {"scope": "openid profile"}}]}
    assert listener_scopes({"resource": {"aws_lb_listener": {"https": listener}}}) == (
        "openid",
        "profile",
    )
    assert listener_scopes(synth.stack("metabase-prod")) == ()
