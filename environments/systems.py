"""Typed, validated configuration of the seed systems' environments (Metabase, Dekart).

Each seed system is one ECS Fargate application with its own PostgreSQL database, built
from the same construct library as the platform. Its environments live in
``environments/<system>.py`` as data; the types and rules are here. A config is checked as
it is built (the shared checks of :mod:`environments.config` plus the rules below) and every
error names the stack (``metabase-prod``), the field, the bad value and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from constructs_lib.options import FARGATE_SIZES, DatabaseEngine, Tier
from constructs_lib.settings import (
    DEFAULT_LOG_RETENTION_DAYS,
    DatabaseSettings,
    NetworkSettings,
    ServiceSettings,
    allowed_cidr_problem,
)

from .config import (
    DEFAULT_REGION,
    PRODUCTION_MIN_TASKS,
    check_common,
    check_production_data,
    check_retention,
    fail,
)

_DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$")
_ZONE_RE = re.compile(r"^Z[A-Z0-9]{1,31}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MUTABLE_TAGS = frozenset({"latest", "main", "master", "nightly", "edge"})
"""Tags that name whatever was pushed last: never deployed (repositories are immutable too)."""
_COGNITO_POOL_RE = re.compile(r"^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool/[\w-]+$")


def _certificate_arn_re(region: str) -> re.Pattern[str]:
    return re.compile(rf"^arn:aws[a-z-]*:acm:{re.escape(region)}:\d{{12}}:certificate/[\w-]+$")


@dataclass(frozen=True)
class WebSettings:
    """How users reach a system's load balancer."""

    domain_name: str | None = None
    """Serve the system at ``https://<domain_name>`` from an internet-facing load balancer
    (HTTP redirects to HTTPS). Unset: no public name; the load balancer is internal
    (private subnets, plain HTTP) and only ``ingress_cidrs`` (private ranges, such as a VPN)
    reach it. Plain HTTP never faces the internet."""
    hosted_zone_id: str | None = None
    """Route 53 hosted zone of ``domain_name``: the alias record goes there, and so do the
    certificate's DNS validation records when the stack requests the certificate. Unset:
    no record (you point the name yourself); ``certificate_arn`` is then required."""
    certificate_arn: str | None = None
    """An ACM certificate in the environment's region covering ``domain_name``. Unset with
    a domain: the stack requests one and validates it by DNS in ``hosted_zone_id``."""
    ingress_cidrs: tuple[str, ...] = ()
    """IPv4 ranges admitted on the listener ports. Unset: with a domain, the internet
    (0.0.0.0/0); without one, the VPC's own range (add your VPN's private range)."""
    deletion_protection: bool = False
    """Protect the load balancer from ``terraform destroy``. Unset: unprotected."""
    access_logs: bool = False
    """Keep access logs in an S3 bucket (90 days). Unset: off."""
    firewall: bool = True
    """Put a regional AWS WAF web ACL (AWS managed rule groups, a per-IP rate limit,
    encrypted logs) in front of an internet-facing load balancer. Unset: on (about $9 a
    month plus $0.60 per million requests); ignored without a domain (internal)."""

    @property
    def public(self) -> bool:
        """Internet-facing behind HTTPS (a domain is set)."""
        return self.domain_name is not None


@dataclass(frozen=True, kw_only=True)
class SystemConfig:
    """What every seed system's environment has. The stack is ``<system>-<name>``, its
    state key ``<system>-<name>/terraform.tfstate`` and every resource name starts with
    ``<system>-<name>-``."""

    system: ClassVar[str]
    """The system's name: stack and resource-name prefix (``metabase``)."""
    horizontal_scaling: ClassVar[bool]
    """Whether the application may run more than one task (its own documentation says)."""

    name: str
    """The environment: ``dev``, ``prod``; 2-12 lower-case letters, digits and hyphens."""
    tier: Tier
    network: NetworkSettings
    database: DatabaseSettings
    """A PostgreSQL instance for the application's own data."""
    service: ServiceSettings
    """The application's task size and count."""
    image_tag: str
    """The upstream release the image is built from and tagged with (``v0.56.9``): pinned
    in the file, so a deploy never picks up a release nobody reviewed. ``latest`` and other
    moving tags are refused."""
    web: WebSettings = field(default_factory=WebSettings)
    """Unset: internal load balancer, reachable from nobody (set ``ingress_cidrs``)."""
    region: str = DEFAULT_REGION
    """Unset: eu-central-1."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Days the containers', functions' and Container Insights' logs are kept. Unset: 30."""
    alarm_email: str | None = None
    """Subscribe this address to the alarm topic. Unset: none (production needs this or
    ``alarm_topic_arn``, or ``PCP_ALARM_EMAIL`` / ``PCP_ALARM_TOPIC_ARN`` at synth)."""
    alarm_topic_arn: str | None = None
    """An existing SNS topic every alarm also notifies. Unset: none."""
    extra_tags: dict[str, str] = field(default_factory=dict)
    """Tags added to the project's default tags on every resource. Unset: none."""

    def __post_init__(self) -> None:
        check_common(self)
        self._check_system()
        self.check()
        if self.is_production:
            check_production_data(self)
            self._check_production()

    @property
    def where(self) -> str:
        """The stack name, ``<system>-<name>``: errors start with it."""
        return f"{self.system}-{self.name}"

    @property
    def stack_name(self) -> str:
        return self.where

    @property
    def config_file(self) -> str:
        return f"environments/{self.system}.py"

    @property
    def is_production(self) -> bool:
        return self.tier is Tier.PRODUCTION

    def check(self) -> None:
        """The system's own rules (a subclass adds them). Unset: none."""

    def _check_system(self) -> None:
        if self.database.engine is not DatabaseEngine.POSTGRES:
            raise fail(
                self,
                "database.engine",
                self.database.engine.name,
                "use DatabaseEngine.POSTGRES (the application's database)",
            )
        self._check_service()
        if not _TAG_RE.match(self.image_tag) or self.image_tag in MUTABLE_TAGS:
            raise fail(
                self,
                "image_tag",
                repr(self.image_tag),
                "pin an upstream release tag (letters, digits, '_', '.', '-'), never a "
                f"moving one ({', '.join(sorted(MUTABLE_TAGS))})",
            )
        check_retention(self, "log_retention_days", self.log_retention_days)
        self._check_web()

    def _check_service(self) -> None:
        service = self.service
        if not 1 <= service.min_tasks <= service.max_tasks:
            raise fail(
                self,
                "service.min_tasks/max_tasks",
                f"{service.min_tasks}/{service.max_tasks}",
                "use 1 <= min_tasks <= max_tasks",
            )
        if not self.horizontal_scaling and service.max_tasks != 1:
            raise fail(
                self,
                "service.max_tasks",
                service.max_tasks,
                f"{self.system} does not support more than one instance: use 1",
            )
        allowed = FARGATE_SIZES.get(service.cpu)
        if allowed is None:
            raise fail(
                self, "service.cpu", service.cpu, f"use {', '.join(map(str, FARGATE_SIZES))}"
            )
        if service.memory not in allowed:
            raise fail(
                self,
                "service.memory",
                service.memory,
                f"use one of {', '.join(map(str, allowed))} MiB with {service.cpu} CPU units",
            )

    def _check_web(self) -> None:
        web = self.web
        if not web.public:
            for extra in ("hosted_zone_id", "certificate_arn"):
                if getattr(web, extra):
                    raise fail(self, f"web.{extra}", "set", "set web.domain_name too, or unset it")
            for cidr in web.ingress_cidrs:
                problem = allowed_cidr_problem(cidr)
                if problem:
                    raise fail(
                        self,
                        "web.ingress_cidrs",
                        repr(cidr),
                        "without web.domain_name the load balancer is internal and plain "
                        f"HTTP: {problem}",
                    )
            return
        domain = web.domain_name or ""
        if not _DOMAIN_RE.match(domain):
            raise fail(self, "web.domain_name", repr(domain), "use a lower-case DNS name")
        if web.hosted_zone_id is not None and not _ZONE_RE.match(web.hosted_zone_id):
            raise fail(
                self,
                "web.hosted_zone_id",
                repr(web.hosted_zone_id),
                "use a Route 53 hosted zone id (Z followed by letters and digits)",
            )
        if web.certificate_arn is None:
            if web.hosted_zone_id is None:
                raise fail(
                    self,
                    "web.hosted_zone_id",
                    None,
                    "name the Route 53 zone of web.domain_name (the stack validates its "
                    "certificate by DNS there), or give web.certificate_arn",
                )
        elif not _certificate_arn_re(self.region).match(web.certificate_arn):
            raise fail(
                self,
                "web.certificate_arn",
                repr(web.certificate_arn),
                f"use an ACM certificate ARN in {self.region} "
                f"(arn:aws:acm:{self.region}:<account>:certificate/<id>), the load "
                "balancer's region",
            )
        for cidr in web.ingress_cidrs:
            if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+/\d+", cidr):
                raise fail(self, "web.ingress_cidrs", repr(cidr), "use IPv4 CIDRs")

    def _check_production(self) -> None:
        if self.horizontal_scaling and self.service.min_tasks < PRODUCTION_MIN_TASKS:
            raise fail(
                self,
                "service.min_tasks",
                self.service.min_tasks,
                f"a production service runs at least {PRODUCTION_MIN_TASKS} tasks "
                "(one AZ can fail)",
            )
        if not self.web.public:
            raise fail(
                self,
                "web.domain_name",
                None,
                "a production system is served over HTTPS: give its domain name",
            )
        for field_ in ("deletion_protection", "access_logs"):
            if not getattr(self.web, field_):
                raise fail(
                    self, f"web.{field_}", False, "set it to True in a production environment"
                )


@dataclass(frozen=True, kw_only=True)
class MetabaseConfig(SystemConfig):
    """One Metabase environment (``metabase-<name>``)."""

    system: ClassVar[str] = "metabase"
    horizontal_scaling: ClassVar[bool] = True
    """Metabase runs several instances against one application database (its scheduler
    is clustered through the database); see the README's Metabase section."""

    java_max_ram_percent: int = 75
    """Share of the task's memory the JVM heap may use (``-XX:MaxRAMPercentage``). Unset:
    75 %, leaving room for metaspace and native memory."""

    def check(self) -> None:
        if not 25 <= self.java_max_ram_percent <= 90:
            raise fail(
                self,
                "java_max_ram_percent",
                self.java_max_ram_percent,
                "use 25-90 (the rest of the task's memory is the JVM's own)",
            )


@dataclass(frozen=True)
class AthenaSettings:
    """What Dekart may query through Athena."""

    databases: tuple[str, ...]
    """Glue databases (of the account's ``AwsDataCatalog``) whose tables Dekart may read."""
    data_buckets: tuple[str, ...] = ()
    """S3 buckets holding those tables' data (read only). Unset: none."""
    catalog: str = "AwsDataCatalog"
    """The Athena data catalog (``DEKART_ATHENA_CATALOG``). Unset: the account's Glue Data
    Catalog, the only kind this stack grants access to."""
    bytes_scanned_cutoff_gb: int = 100
    """The workgroup cancels a query that scans more. Unset: 100 GB (about $0.50)."""


@dataclass(frozen=True)
class CognitoSettings:
    """Who may sign in to Dekart: the load balancer authenticates every request with
    Cognito before it reaches the application."""

    user_pool_arn: str | None = None
    """An existing user pool. Unset (with the other two): the stack creates one
    (administrator-created users only, TOTP multi-factor)."""
    user_pool_client_id: str | None = None
    """An app client of that pool with a secret, the authorization-code flow, the scopes
    ``openid email`` and the callback ``https://<domain_name>/oauth2/idpresponse``."""
    user_pool_domain: str | None = None
    """The pool's domain prefix (``login`` for ``login.auth.<region>.amazoncognito.com``)."""

    @property
    def existing(self) -> bool:
        return self.user_pool_arn is not None


@dataclass(frozen=True, kw_only=True)
class DekartConfig(SystemConfig):
    """One Dekart environment (``dekart-<name>``)."""

    system: ClassVar[str] = "dekart"
    horizontal_scaling: ClassVar[bool] = False
    """Dekart's documentation: it does not scale horizontally (one task)."""

    athena: AthenaSettings
    cognito: CognitoSettings | None = None
    """Unset: no sign-in; allowed only for an internal load balancer (no domain)."""

    def check(self) -> None:
        athena = self.athena
        if athena.catalog != "AwsDataCatalog":
            raise fail(
                self,
                "athena.catalog",
                repr(athena.catalog),
                "use AwsDataCatalog (the Glue Data Catalog): the task role is scoped to its "
                "databases",
            )
        if not athena.databases:
            raise fail(self, "athena.databases", "none", "name the Glue databases to query")
        for db in athena.databases:
            if not re.fullmatch(r"[a-z0-9_]{1,255}", db):
                raise fail(
                    self,
                    "athena.databases",
                    repr(db),
                    "use Glue database names (lower-case letters, digits, underscores)",
                )
        for bucket in athena.data_buckets:
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
                raise fail(self, "athena.data_buckets", repr(bucket), "use S3 bucket names")
        if not 1 <= athena.bytes_scanned_cutoff_gb <= 100_000:
            raise fail(
                self,
                "athena.bytes_scanned_cutoff_gb",
                athena.bytes_scanned_cutoff_gb,
                "use 1-100000 GB",
            )
        self._check_cognito()

    def _check_cognito(self) -> None:
        cognito = self.cognito
        if cognito is None:
            if self.web.public:
                raise fail(
                    self,
                    "cognito",
                    None,
                    "a Dekart served on the internet needs sign-in: set "
                    "cognito=CognitoSettings() (the stack creates a pool) or name yours",
                )
            return
        if not self.web.public:
            raise fail(
                self,
                "cognito",
                "set",
                "Cognito sign-in needs HTTPS: set web.domain_name, or unset cognito",
            )
        given = [
            cognito.user_pool_arn,
            cognito.user_pool_client_id,
            cognito.user_pool_domain,
        ]
        if any(given) and not all(given):
            missing = [
                name
                for name, value in zip(
                    ("user_pool_arn", "user_pool_client_id", "user_pool_domain"),
                    given,
                    strict=True,
                )
                if not value
            ]
            raise fail(
                self,
                f"cognito.{missing[0]}",
                None,
                "give all three of user_pool_arn, user_pool_client_id and "
                "user_pool_domain, or none (the stack creates the pool)",
            )
        if cognito.user_pool_arn is not None and not _COGNITO_POOL_RE.match(cognito.user_pool_arn):
            raise fail(
                self,
                "cognito.user_pool_arn",
                repr(cognito.user_pool_arn),
                "use a Cognito user pool ARN (arn:aws:cognito-idp:<region>:<account>:"
                "userpool/<id>)",
            )
