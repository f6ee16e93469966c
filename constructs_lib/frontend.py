"""The static frontend: a private bucket behind CloudFront, which also fronts the API.

CloudFront serves the site from S3 (through Origin Access Control) and forwards
``/api/*`` to the internal load balancer through a CloudFront VPC origin, so the page and
its API share one HTTPS origin: no mixed content, no CORS, and the load balancer has no
public address at all.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cdktf import AssetType, TerraformAsset, Token
from cdktf_cdktf_provider_aws.cloudfront_distribution import (
    CloudfrontDistribution,
    CloudfrontDistributionDefaultCacheBehavior,
    CloudfrontDistributionOrderedCacheBehavior,
    CloudfrontDistributionOrigin,
    CloudfrontDistributionOriginCustomHeader,
    CloudfrontDistributionOriginVpcOriginConfig,
    CloudfrontDistributionRestrictions,
    CloudfrontDistributionRestrictionsGeoRestriction,
    CloudfrontDistributionViewerCertificate,
)
from cdktf_cdktf_provider_aws.cloudfront_origin_access_control import (
    CloudfrontOriginAccessControl,
)
from cdktf_cdktf_provider_aws.data_aws_cloudfront_response_headers_policy import (
    DataAwsCloudfrontResponseHeadersPolicy,
)
from cdktf_cdktf_provider_aws.route53_record import Route53Record, Route53RecordAlias
from cdktf_cdktf_provider_aws.s3_object import S3Object
from constructs import Construct

from apps.common.contract import ORIGIN_VERIFY_HEADER

from .bucket import SecureBucket, SecureBucketProps
from .encryption import EncryptionKey, ServiceAccess
from .errors import ConfigError
from .firewall import EdgeFirewall
from .load_balancer import LoadBalancer
from .naming import Naming
from .policy import Statement

# AWS managed CloudFront policies (fixed ids, the same in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"

"""Custom header CloudFront adds to API requests; the load balancer checks it."""
SITE_ORIGIN = "site"
API_ORIGIN = "api"
ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
CACHED_METHODS = ["GET", "HEAD"]
PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
INDEX = "index.html"

CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
}
"""Content types of the files a static site holds; others fall back to Python's built-in
table (never the build machine's /etc/mime.types, so synthesis is reproducible)."""
TEXT_TYPES = {"application/json", "application/manifest+json", "image/svg+xml"}
"""Non-``text/*`` types that are text too and get ``; charset=utf-8``."""
INDEX_CACHE_CONTROL = "no-cache"
"""index.html is revalidated on every request, so a deploy shows at once."""
ASSET_CACHE_CONTROL = "public, max-age=300"
"""Other files are not fingerprinted, so they are cached briefly only."""

_BUILTIN_MIME_TYPES = mimetypes.MimeTypes()


@dataclass(frozen=True)
class FrontendProps:
    naming: Naming
    bucket_name: str
    site_dir: str
    """Absolute path of the folder whose files are uploaded (must hold index.html);
    dotfiles and dot-directories are left out."""
    api: LoadBalancer
    """The internal load balancer behind ``api_path_pattern``: CloudFront reaches it
    through its VPC origin (which holds the protocol: HTTP, or HTTPS when the load
    balancer has a certificate) by its ``origin_domain`` (with HTTPS, the name on the
    certificate, sent as SNI and checked)."""
    api_path_pattern: str = "/api/*"
    """Requests matching this pattern go to the API, uncached. Unset: ``/api/*``."""
    origin_secret_header_value: str | None = None
    """Sent to the API origin in the contract's ``ORIGIN_VERIFY_HEADER``. Unset: no header
    is added."""
    key: EncryptionKey | None = None
    """Encrypts the bucket and its objects; the construct lets ``cloudfront.amazonaws.com``
    decrypt with it on behalf of this distribution only. Unset: SSE-S3."""
    aliases: Sequence[str] = ()
    """Custom domain names of the site; need ``acm_certificate_arn``. Unset: the
    distribution's ``*.cloudfront.net`` name only."""
    acm_certificate_arn: str | None = None
    """ACM certificate in us-east-1 covering ``aliases``. Unset: CloudFront's default
    certificate."""
    price_class: str = "PriceClass_100"
    """Unset: North America and Europe edge locations only (cheapest)."""
    firewall: EdgeFirewall | None = None
    """The web ACL (scope CLOUDFRONT, in us-east-1) protecting the site and the API behind
    it. Unset: no WAF."""
    hosted_zone_id: str | None = None
    """Route 53 zone in which to create alias A and AAAA records for every entry of
    ``aliases``. Unset: no records (point the names at the distribution yourself)."""


class Frontend(Construct):
    """A private, encrypted bucket served only through one CloudFront distribution.

    The bucket policy lets ``cloudfront.amazonaws.com`` read objects only on behalf of
    this distribution (``AWS:SourceArn``). Every file of ``site_dir`` is uploaded as an
    ``S3Object`` whose ``source_hash`` is its MD5, so a changed file is re-uploaded on the
    next apply. There are no custom error responses: they would apply to ``/api/*`` too
    and turn API errors into HTML pages.
    """

    def __init__(self, scope: Construct, id_: str, *, props: FrontendProps) -> None:
        super().__init__(scope, id_)
        site_dir = self._validate(props)

        self.bucket = self._bucket(props)
        self.origin_access_control = self._origin_access_control(props)
        self.distribution = self._distribution(props)
        self.distribution_arn: str = self.distribution.arn
        self._allow_cloudfront_read()
        if props.key is not None:
            # CloudFront decrypts the objects it serves, for this distribution only.
            props.key.allow_service(
                ServiceAccess(
                    "cloudfront.amazonaws.com",
                    actions=("kms:Decrypt",),
                    source_arn=self.distribution_arn,
                )
            )
        self.objects: dict[str, S3Object] = self._objects(props, site_dir)

        domain = props.aliases[0] if props.aliases else self.distribution.domain_name
        self.url: str = f"https://{domain}"
        self.domain_name: str = self.distribution.domain_name
        self.hosted_zone_id: str = self.distribution.hosted_zone_id
        """For Route 53 alias records of ``aliases``."""
        self.records: list[Route53Record] = self._dns(props)

    def _bucket(self, props: FrontendProps) -> SecureBucket:
        """The private site bucket (emptied on destroy: it is rebuilt on apply)."""
        return SecureBucket(
            self,
            "bucket",
            props=SecureBucketProps(
                bucket_name=props.bucket_name,
                key=props.key,
                # Everything in it is rebuilt from the repository on apply.
                force_destroy=True,
            ),
        )

    def _origin_access_control(self, props: FrontendProps) -> CloudfrontOriginAccessControl:
        """How CloudFront signs its requests to the bucket (SigV4, always)."""
        return CloudfrontOriginAccessControl(
            self,
            "origin-access-control",
            name=props.naming.name("frontend"),
            description="CloudFront reads the frontend bucket (SigV4-signed requests)",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
        )

    def _origins(self, props: FrontendProps) -> list[CloudfrontDistributionOrigin]:
        """The bucket (through Origin Access Control) and the API (through the VPC origin,
        with the origin secret header when there is one)."""
        api_origin = CloudfrontDistributionOrigin(
            origin_id=API_ORIGIN,
            domain_name=props.api.origin_domain,
            vpc_origin_config=CloudfrontDistributionOriginVpcOriginConfig(
                vpc_origin_id=props.api.vpc_origin.id,
                origin_read_timeout=30,
                origin_keepalive_timeout=5,
            ),
            custom_header=(
                [
                    CloudfrontDistributionOriginCustomHeader(
                        name=ORIGIN_VERIFY_HEADER, value=props.origin_secret_header_value
                    )
                ]
                if props.origin_secret_header_value is not None
                else None
            ),
        )
        site_origin = CloudfrontDistributionOrigin(
            origin_id=SITE_ORIGIN,
            domain_name=self.bucket.bucket.bucket_regional_domain_name,
            origin_access_control_id=self.origin_access_control.id,
        )
        return [site_origin, api_origin]

    @staticmethod
    def _viewer_certificate(props: FrontendProps) -> CloudfrontDistributionViewerCertificate:
        """The ACM certificate (TLS 1.2+, SNI) with ``aliases``, else CloudFront's own."""
        if props.aliases:
            return CloudfrontDistributionViewerCertificate(
                acm_certificate_arn=props.acm_certificate_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version="TLSv1.2_2021",
            )
        return CloudfrontDistributionViewerCertificate(cloudfront_default_certificate=True)

    def _distribution(self, props: FrontendProps) -> CloudfrontDistribution:
        """The distribution: the site cached from the bucket, ``api_path_pattern`` uncached
        to the API, security headers on both."""
        origins = self._origins(props)
        # Looked up (by its fixed id) rather than written as a literal id, so the
        # distribution visibly references a response headers policy (checkov CKV2_AWS_32).
        security_headers = DataAwsCloudfrontResponseHeadersPolicy(
            self, "security-headers", id=SECURITY_HEADERS
        )
        return CloudfrontDistribution(
            self,
            "distribution",
            comment=props.naming.name("frontend"),
            enabled=True,
            is_ipv6_enabled=True,
            http_version="http2and3",
            default_root_object=INDEX,
            price_class=props.price_class,
            aliases=list(props.aliases) or None,
            origin=origins,
            default_cache_behavior=CloudfrontDistributionDefaultCacheBehavior(
                target_origin_id=SITE_ORIGIN,
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=list(CACHED_METHODS),
                cached_methods=list(CACHED_METHODS),
                compress=True,
                cache_policy_id=CACHING_OPTIMIZED,
                response_headers_policy_id=security_headers.id,
            ),
            ordered_cache_behavior=[
                CloudfrontDistributionOrderedCacheBehavior(
                    path_pattern=props.api_path_pattern,
                    target_origin_id=API_ORIGIN,
                    viewer_protocol_policy="redirect-to-https",
                    allowed_methods=list(ALL_METHODS),
                    cached_methods=list(CACHED_METHODS),
                    # CachingDisabled does not normalise Accept-Encoding, so CloudFront
                    # cannot compress here; the viewer's header reaches the API instead.
                    compress=False,
                    cache_policy_id=CACHING_DISABLED,
                    origin_request_policy_id=ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy_id=security_headers.id,
                )
            ],
            restrictions=CloudfrontDistributionRestrictions(
                geo_restriction=CloudfrontDistributionRestrictionsGeoRestriction(
                    restriction_type="none"
                )
            ),
            viewer_certificate=self._viewer_certificate(props),
            web_acl_id=props.firewall.arn if props.firewall else None,
            tags={"Name": props.naming.name("frontend")},
        )

    def _allow_cloudfront_read(self) -> None:
        """Lets CloudFront read the bucket's objects on behalf of this distribution only."""
        self.bucket.allow(
            Statement(
                sid="AllowCloudFrontRead",
                principals={"Service": "cloudfront.amazonaws.com"},
                actions=["s3:GetObject"],
                resources=[f"{self.bucket.arn}/*"],
                conditions={"StringEquals": {"AWS:SourceArn": self.distribution_arn}},
            )
        )

    def _objects(self, props: FrontendProps, site_dir: Path) -> dict[str, S3Object]:
        """One ``S3Object`` per file of ``site_dir`` (by key), re-uploaded when its MD5
        changes."""
        # Files are copied next to the synthesized stack, so `source` is relative to it.
        asset = TerraformAsset(self, "site", path=str(site_dir), type=AssetType.DIRECTORY)
        key_arn = props.key.arn if props.key else None
        return {
            key: S3Object(
                self,
                "object-" + key.replace("/", "--"),
                bucket=self.bucket.bucket.id,
                key=key,
                source=f"{asset.path}/{key}",
                source_hash=hashlib.md5(file.read_bytes(), usedforsecurity=False).hexdigest(),
                content_type=content_type(key),
                cache_control=INDEX_CACHE_CONTROL if key == INDEX else ASSET_CACHE_CONTROL,
                server_side_encryption="aws:kms" if key_arn else None,
                kms_key_id=key_arn,
                bucket_key_enabled=True if key_arn else None,
            )
            for key, file in site_files(site_dir)
        }

    def _dns(self, props: FrontendProps) -> list[Route53Record]:
        """Alias A and AAAA records for every entry of ``aliases`` in ``hosted_zone_id``;
        none without a zone."""
        if not props.hosted_zone_id:
            return []
        return [
            Route53Record(
                self,
                f"record-{alias}-{record_type.lower()}",
                zone_id=props.hosted_zone_id,
                name=alias,
                type=record_type,
                alias=Route53RecordAlias(
                    name=self.distribution.domain_name,
                    zone_id=self.distribution.hosted_zone_id,
                    evaluate_target_health=False,
                ),
            )
            for alias in props.aliases
            for record_type in ("A", "AAAA")
        ]

    def _validate(self, props: FrontendProps) -> Path:
        where = self.node.path
        site_dir = Path(props.site_dir)
        if not site_dir.is_absolute() or not site_dir.is_dir():
            raise ConfigError(
                where, "site_dir", repr(props.site_dir), "give the absolute path of a folder"
            )
        if not (site_dir / INDEX).is_file():
            raise ConfigError(
                where, "site_dir", repr(props.site_dir), f"the folder must hold {INDEX}"
            )
        if props.aliases and not props.acm_certificate_arn:
            raise ConfigError(
                where,
                "acm_certificate_arn",
                None,
                "aliases need a certificate (in us-east-1) that covers them",
            )
        cert = props.acm_certificate_arn
        if cert and not Token.is_unresolved(cert) and ":us-east-1:" not in cert:
            raise ConfigError(
                where,
                "acm_certificate_arn",
                repr(cert),
                "CloudFront only uses ACM certificates from us-east-1",
            )
        if props.price_class not in PRICE_CLASSES:
            raise ConfigError(
                where,
                "price_class",
                repr(props.price_class),
                f"give one of {', '.join(PRICE_CLASSES)}",
            )
        if not props.api_path_pattern.startswith("/") or props.api_path_pattern in ("/*", "/"):
            raise ConfigError(
                where,
                "api_path_pattern",
                repr(props.api_path_pattern),
                "give a path pattern below the site root, such as /api/*",
            )
        return site_dir


def site_files(site_dir: Path) -> list[tuple[str, Path]]:
    """``(key, path)`` of every file below ``site_dir``, sorted, dotfiles left out."""
    found = []
    for path in site_dir.rglob("*"):
        rel = path.relative_to(site_dir)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            found.append((rel.as_posix(), path))
    return sorted(found)


def content_type(key: str) -> str:
    """The ``Content-Type`` to serve ``key`` with (text types in UTF-8)."""
    suffix = Path(key).suffix.lower()
    type_ = CONTENT_TYPES.get(suffix) or _BUILTIN_MIME_TYPES.guess_type(key)[0]
    type_ = type_ or "application/octet-stream"
    if type_.startswith("text/") or type_ in TEXT_TYPES:
        return f"{type_}; charset=utf-8"
    return type_
