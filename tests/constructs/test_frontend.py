"""Frontend construct: private bucket + CloudFront (OAC) that also routes /api/* to the ALB
through a VPC origin.

One app with two unit stacks is synthesized to disk once for the module: ``default``
(CloudFront certificate, the ALB's own name, no origin secret, SSE-S3) and ``custom``
(aliases with an ACM certificate, the ALB's certificate name, origin secret, KMS, WAF).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from constructs_lib.errors import ConfigError
from tests.support import ACCOUNT_ID, NAMING, UnitStack, new_unit_stack, one, resources

SITE = {
    "index.html": b"<!doctype html><title>pcp</title>\n",
    "app.js": b"console.log('pcp');\n",
    "style.css": b"body { margin: 0; }\n",
    "img/logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
    "site.webmanifest": b"{}\n",
    "robots.txt": b"User-agent: *\n",
    "favicon.ico": b"\x00\x00\x01\x00",
    ".hidden": b"secret\n",
    ".git/config": b"[core]\n",
}
UPLOADED = sorted(k for k in SITE if not k.startswith("."))
SECRET = "Zq8vN3kLm2Pw9Xr4Ty7Ua1Sd"
ACM = "arn:aws:acm:us-east-1:123456789012:certificate/c"
ALB_CERT = "arn:aws:acm:eu-central-1:123456789012:certificate/alb"


@dataclass(frozen=True)
class Synthesized:
    site_dir: Path
    outdir: Path
    docs: dict[str, dict[str, Any]]

    def text(self, stack: str) -> str:
        return (self.outdir / "stacks" / stack / "cdk.tf.json").read_text()


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    for key, body in SITE.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(body)
    return root


def _props(site: Path, unit: UnitStack, **overrides: Any) -> Any:
    from constructs_lib.frontend import FrontendProps

    props: dict[str, Any] = {
        "naming": NAMING,
        "bucket_name": "pcp-unit-frontend",
        "site_dir": str(site),
    }
    if "api" not in overrides:
        props["api"] = unit.load_balancer()
    return FrontendProps(**{**props, **overrides})


def _custom(unit: UnitStack) -> dict[str, Any]:
    """Every optional prop set: an HTTPS load balancer named ``api.example.com``, a key, a
    firewall (with its us-east-1 provider and log key), aliases, a price class."""
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    from constructs_lib.encryption import EncryptionKey, EncryptionKeyProps
    from constructs_lib.firewall import EdgeFirewall, EdgeFirewallProps
    from constructs_lib.load_balancer import LoadBalancer, LoadBalancerProps

    stack = unit.stack
    api = LoadBalancer(
        stack,
        "api",
        props=LoadBalancerProps(
            naming=NAMING,
            network=unit.network(),
            target_port=5080,
            certificate_arn=ALB_CERT,
            domain_name="api.example.com",
            hosted_zone_id="Z0123456789ABCDEFGHIJ",
        ),
    )
    us_east_1 = AwsProvider(stack, "us-east-1", alias="us_east_1", region="us-east-1")
    log_key = EncryptionKey(
        stack,
        "edge-key",
        props=EncryptionKeyProps(
            naming=NAMING,
            account_id=ACCOUNT_ID,
            region="us-east-1",
            description="edge",
            provider=us_east_1,
            alias_suffix="edge",
        ),
    )
    firewall = EdgeFirewall(
        stack,
        "firewall",
        props=EdgeFirewallProps(naming=NAMING, provider=us_east_1, log_key=log_key),
    )
    return {
        "api": api,
        "origin_secret_header_value": SECRET,
        "key": unit.key(),
        "aliases": ["www.example.com"],
        "acm_certificate_arn": ACM,
        "firewall": firewall,
        "price_class": "PriceClass_All",
    }


@pytest.fixture(scope="module")
def synthesized(site_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from cdktf import App, TerraformOutput

    from constructs_lib.frontend import Frontend

    outdir = tmp_path_factory.mktemp("cdktf.out")
    app = App(outdir=str(outdir))
    variants = ("default", "custom")
    for name in variants:
        unit = new_unit_stack(app, name)
        stack = unit.stack
        overrides = _custom(unit) if name == "custom" else {}
        frontend = Frontend(stack, "frontend", props=_props(site_dir, unit, **overrides))
        TerraformOutput(stack, "url", value=frontend.url)
        TerraformOutput(stack, "distribution_arn", value=frontend.distribution_arn)
        assert sorted(frontend.objects) == UPLOADED
    app.synth()
    docs = {
        name: json.loads((outdir / "stacks" / name / "cdk.tf.json").read_text())
        for name in variants
    }
    return Synthesized(site_dir=site_dir, outdir=outdir, docs=docs)


@pytest.fixture(scope="module")
def default(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.docs["default"]


@pytest.fixture(scope="module")
def custom(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.docs["custom"]


def _ref(doc: dict[str, Any], type_: str, attr: str) -> str:
    (logical_id,) = resources(doc, type_)
    return f"${{{type_}.{logical_id}.{attr}}}"


def _origins(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["origin_id"]: o for o in one(doc, "aws_cloudfront_distribution")["origin"]}


def _headers_policy_ref(doc: dict[str, Any]) -> str:
    (logical_id,) = doc["data"]["aws_cloudfront_response_headers_policy"]
    return f"${{data.aws_cloudfront_response_headers_policy.{logical_id}.id}}"


def test_bucket_is_private_and_read_only_by_this_distribution_through_oac(
    default: dict[str, Any],
) -> None:
    assert one(default, "aws_s3_bucket")["bucket"] == "pcp-unit-frontend"
    block = one(default, "aws_s3_bucket_public_access_block")
    assert all(
        block[k]
        for k in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    )
    assert "aws_s3_bucket_website_configuration" not in default["resource"]

    oac = one(default, "aws_cloudfront_origin_access_control")
    assert oac["origin_access_control_origin_type"] == "s3"
    assert (oac["signing_behavior"], oac["signing_protocol"]) == ("always", "sigv4")
    site = _origins(default)["site"]
    assert site["domain_name"] == _ref(default, "aws_s3_bucket", "bucket_regional_domain_name")
    assert site["origin_access_control_id"] == _ref(
        default, "aws_cloudfront_origin_access_control", "id"
    )
    assert "s3_origin_config" not in site  # no legacy origin access identity

    policy = json.loads(one(default, "aws_s3_bucket_policy")["policy"])
    (allow,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == ["s3:GetObject"]
    assert allow["Resource"] == [f"{_ref(default, 'aws_s3_bucket', 'arn')}/*"]
    assert allow["Condition"] == {
        "StringEquals": {"AWS:SourceArn": _ref(default, "aws_cloudfront_distribution", "arn")}
    }


def test_api_path_goes_uncached_to_the_alb_origin_with_all_methods(
    default: dict[str, Any],
) -> None:
    distribution = one(default, "aws_cloudfront_distribution")
    (api,) = distribution["ordered_cache_behavior"]
    assert api["path_pattern"] == "/api/*"
    assert api["target_origin_id"] == "api"
    assert sorted(api["allowed_methods"]) == [
        "DELETE",
        "GET",
        "HEAD",
        "OPTIONS",
        "PATCH",
        "POST",
        "PUT",
    ]
    assert sorted(api["cached_methods"]) == ["GET", "HEAD"]
    assert api["cache_policy_id"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert api["origin_request_policy_id"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert api["viewer_protocol_policy"] == "redirect-to-https"
    assert api["response_headers_policy_id"] == _headers_policy_ref(default)

    origin = _origins(default)["api"]
    assert origin["domain_name"] == _ref(default, "aws_lb", "dns_name")
    assert origin["vpc_origin_config"] == {
        "vpc_origin_id": _ref(default, "aws_cloudfront_vpc_origin", "id"),
        "origin_read_timeout": 30,
        "origin_keepalive_timeout": 5,
    }
    assert "custom_origin_config" not in origin  # the API is never a public origin
    assert "custom_header" not in origin


def test_default_behavior_serves_the_site_over_https_with_security_headers(
    default: dict[str, Any],
) -> None:
    behavior = one(default, "aws_cloudfront_distribution")["default_cache_behavior"]
    assert behavior["target_origin_id"] == "site"
    assert behavior["viewer_protocol_policy"] == "redirect-to-https"
    assert sorted(behavior["allowed_methods"]) == ["GET", "HEAD"]
    assert behavior["compress"] is True
    assert behavior["cache_policy_id"] == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    assert behavior["response_headers_policy_id"] == _headers_policy_ref(default)
    (policy,) = default["data"]["aws_cloudfront_response_headers_policy"].values()
    assert policy["id"] == "67f7725c-6f97-4210-82d7-5512b31e9d03"  # SecurityHeadersPolicy


def test_distribution_settings_with_the_default_certificate(default: dict[str, Any]) -> None:
    distribution = one(default, "aws_cloudfront_distribution")
    assert distribution["enabled"] is True
    assert distribution["is_ipv6_enabled"] is True
    assert distribution["http_version"] == "http2and3"
    assert distribution["default_root_object"] == "index.html"
    assert distribution["price_class"] == "PriceClass_100"
    assert distribution["restrictions"] == {"geo_restriction": {"restriction_type": "none"}}
    assert distribution["viewer_certificate"] == {"cloudfront_default_certificate": True}
    assert "aliases" not in distribution
    assert "web_acl_id" not in distribution
    # Error pages would also replace the API's JSON errors under /api/*.
    assert "custom_error_response" not in distribution
    outputs = default["output"]
    assert outputs["url"]["value"] == (
        f"https://{_ref(default, 'aws_cloudfront_distribution', 'domain_name')}"
    )
    assert outputs["distribution_arn"]["value"] == _ref(
        default, "aws_cloudfront_distribution", "arn"
    )


def test_custom_domain_uses_the_acm_certificate_with_sni_and_tls12(
    custom: dict[str, Any],
) -> None:
    distribution = one(custom, "aws_cloudfront_distribution")
    assert distribution["aliases"] == ["www.example.com"]
    assert distribution["viewer_certificate"] == {
        "acm_certificate_arn": ACM,
        "ssl_support_method": "sni-only",
        "minimum_protocol_version": "TLSv1.2_2021",
    }
    assert distribution["web_acl_id"] == _ref(custom, "aws_wafv2_web_acl", "arn")
    assert distribution["price_class"] == "PriceClass_All"
    assert custom["output"]["url"]["value"] == "https://www.example.com"


def test_api_origin_gets_the_secret_header_and_the_certificate_name(
    custom: dict[str, Any],
) -> None:
    origin = _origins(custom)["api"]
    assert origin["domain_name"] == "api.example.com"  # SNI and the name checked on TLS
    assert origin["vpc_origin_config"]["vpc_origin_id"] == (
        _ref(custom, "aws_cloudfront_vpc_origin", "id")
    )
    assert origin["custom_header"] == [{"name": "X-Origin-Verify", "value": SECRET}]


def test_kms_key_encrypts_the_bucket_and_every_object(
    custom: dict[str, Any], default: dict[str, Any]
) -> None:
    (rule,) = one(custom, "aws_s3_bucket_server_side_encryption_configuration")["rule"]
    assert rule["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": _key_arn(custom),
    }
    for obj in resources(custom, "aws_s3_object").values():
        assert (obj["server_side_encryption"], obj["kms_key_id"]) == ("aws:kms", _key_arn(custom))
    for obj in resources(default, "aws_s3_object").values():
        assert "kms_key_id" not in obj


def _key_arn(doc: dict[str, Any]) -> str:
    """The unit key's ARN (the stack's other key is the firewall's log key)."""
    (key_id,) = [k for k in resources(doc, "aws_kms_key") if not k.startswith("edge-key")]
    return f"${{aws_kms_key.{key_id}.arn}}"


def test_cloudfront_may_decrypt_with_the_key_for_this_distribution_only(
    custom: dict[str, Any],
) -> None:
    """The construct meets the bucket's requirement of its key: the unit key is made with
    no service access, and CloudFront must still decrypt the objects it serves."""
    (key_id,) = [k for k in resources(custom, "aws_kms_key") if not k.startswith("edge-key")]
    policy = json.loads(resources(custom, "aws_kms_key")[key_id]["policy"])
    (statement,) = [
        s
        for s in policy["Statement"]
        if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert statement["Action"] == ["kms:Decrypt"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceArn": _ref(custom, "aws_cloudfront_distribution", "arn")}
    }


EXPECTED_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "img/logo.svg": "image/svg+xml; charset=utf-8",
    "site.webmanifest": "application/manifest+json; charset=utf-8",
    "robots.txt": "text/plain; charset=utf-8",
    "favicon.ico": "image/x-icon",
}


def test_every_file_is_uploaded_from_the_stack_relative_asset(
    synthesized: Synthesized, default: dict[str, Any]
) -> None:
    objects = {o["key"]: o for o in resources(default, "aws_s3_object").values()}
    assert sorted(objects) == UPLOADED  # dotfiles and dot-directories left out
    bucket = _ref(default, "aws_s3_bucket", "id")
    stack_dir = synthesized.outdir / "stacks" / "default"
    for key, obj in objects.items():
        assert obj["bucket"] == bucket
        assert obj["content_type"] == EXPECTED_TYPES[key]
        assert obj["cache_control"] == (
            "no-cache" if key == "index.html" else "public, max-age=300"
        )
        assert obj["source_hash"] == hashlib.md5(SITE[key], usedforsecurity=False).hexdigest()
        source = Path(obj["source"])
        assert not source.is_absolute()
        assert source.as_posix().startswith("assets/")
        assert source.as_posix().endswith("/" + key)
        assert (stack_dir / source).read_bytes() == SITE[key]
    assert str(synthesized.site_dir) not in synthesized.text("default")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("data.json", "application/json; charset=utf-8"),
        ("app.js.map", "application/json; charset=utf-8"),
        ("logo.png", "image/png"),
        ("INDEX.HTML", "text/html; charset=utf-8"),
        ("doc.pdf", "application/pdf"),  # Python's built-in table
        ("blob.unknownext", "application/octet-stream"),
    ],
)
def test_content_type_of_other_files(key: str, expected: str) -> None:
    from constructs_lib.frontend import content_type

    assert content_type(key) == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"site_dir": "/nonexistent/site"},
            r"^unit/frontend\.site_dir: got '/nonexistent/site', give the absolute path",
        ),
        ({"site_dir": "relative/site"}, r"site_dir: got 'relative/site', give the absolute path"),
        (
            {"aliases": ["www.example.com"]},
            r"^unit/frontend\.acm_certificate_arn: got None, aliases need",
        ),
        (
            {
                "aliases": ["www.example.com"],
                "acm_certificate_arn": "arn:aws:acm:eu-central-1:123456789012:certificate/c",
            },
            r"acm_certificate_arn: got .*, CloudFront only uses ACM certificates from us-east-1",
        ),
        ({"price_class": "PriceClass_50"}, r"price_class: got 'PriceClass_50'"),
        ({"api_path_pattern": "/*"}, r"api_path_pattern: got '/\*'"),
    ],
)
def test_invalid_configuration_is_refused(
    unit_stack: UnitStack, site_dir: Path, overrides: dict[str, Any], message: str
) -> None:
    from constructs_lib.frontend import Frontend

    with pytest.raises(ConfigError, match=message):
        Frontend(unit_stack.stack, "frontend", props=_props(site_dir, unit_stack, **overrides))


def test_site_dir_must_hold_index_html(unit_stack: UnitStack, tmp_path: Path) -> None:
    from constructs_lib.frontend import Frontend

    (tmp_path / "app.js").write_text("")
    with pytest.raises(ConfigError, match=r"site_dir: got .*, the folder must hold index\.html$"):
        Frontend(unit_stack.stack, "frontend", props=_props(tmp_path, unit_stack))
