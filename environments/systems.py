"""Typed, validated configuration of the seed systems' environments (Metabase, Dekart).

Each seed system is one ECS Fargate application with its own PostgreSQL database, built
from the same construct library as the platform. Its environments live in
``environments/<system>.py`` as data; the types and rules are here. A config is checked as
it is built (the shared checks of :mod:`environments.config` plus the rules below) and every
error names the stack (``metabase-prod``), the field, the bad value and the fix.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass, field
from typing import ClassVar

from constructs_lib.options import (
    FARGATE_SIZES,
    DatabaseEngine,
    NatGateways,
    RootFilesystem,
    Tier,
    WorkspaceRole,
)
from constructs_lib.settings import (
    DEFAULT_LOG_RETENTION_DAYS,
    DatabaseSettings,
    NetworkSettings,
    ServiceSettings,
    allowed_cidr_problem,
)

from .config import (
    DEFAULT_REGION,
    DOMAIN_NAME,
    PRODUCTION_MIN_TASKS,
    check_common,
    check_production_data,
    check_retention,
    fail,
)
from .release import IMAGE_TAG, MUTABLE_TAGS

_ZONE_RE = re.compile(r"^Z[A-Z0-9]{1,31}$")
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


@dataclass(frozen=True)
class DataSource:
    """A database or other TCP service the system's tasks may connect to (a warehouse a
    BI tool queries): one egress rule from the tasks' security group. Exactly one of
    ``cidr`` and ``security_group_id``."""

    name: str
    """What it is (``warehouse``): lower-case letters, digits and hyphens; in the rule's
    description and construct id."""
    port: int
    """The TCP port (Redshift 5439, PostgreSQL 5432, Snowflake over HTTPS needs none: 443
    is always open)."""
    cidr: str | None = None
    """An IPv4 range reached through the VPC's routes (a peered VPC, a VPN, or through NAT
    a public address)."""
    security_group_id: str | None = None
    """A security group in the same VPC or a peered one in the region (``sg-...``); admit
    the system there yourself (output ``service_security_group_id``)."""


def _narrow_network(cidr: str) -> bool:
    """An IPv4 network (no host bits) smaller than the whole internet."""
    try:
        return ipaddress.IPv4Network(cidr).prefixlen > 0
    except ValueError:
        return False


_DATA_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


@dataclass(frozen=True, kw_only=True)
class SystemConfig:
    """What every seed system's environment has. The stack is ``<system>-<name>``, its
    state key ``<system>-<name>/terraform.tfstate`` and every resource name starts with
    ``<system>-<name>-``."""

    system: ClassVar[str]
    """The system's name: stack and resource-name prefix (``metabase``)."""
    horizontal_scaling: ClassVar[bool]
    """Whether the application may run more than one task (its own documentation says)."""
    database_engine: ClassVar[DatabaseEngine] = DatabaseEngine.POSTGRES
    """The engine the application's database must use."""
    serves_web: ClassVar[bool] = True
    """Users reach it through ``web`` (a ``WebLoadBalancer``); False for a system with
    another front door (Metaflow's API Gateway), whose ``web`` stays unset."""

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
    data_sources: tuple[DataSource, ...] = ()
    """Databases and services beyond its own the application may connect to (a BI tool's
    warehouses): an egress rule each from its tasks. Unset: none (HTTPS to AWS and its own
    database only)."""
    database_tls_optional: ClassVar[bool] = False
    """Whether the environment's database may admit plaintext connections
    (``DatabaseTransport.TLS_OFFERED``): only for a vendor whose database client cannot be
    told to use TLS."""

    def __post_init__(self) -> None:
        check_common(self, database_tls_optional=self.database_tls_optional)
        self._check_system()
        self._check_data_sources()
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
        if self.database.engine is not self.database_engine:
            raise fail(
                self,
                "database.engine",
                self.database.engine.name,
                f"use DatabaseEngine.{self.database_engine.name} (the application's database)",
            )
        self._check_service()
        if not IMAGE_TAG.match(self.image_tag) or self.image_tag in MUTABLE_TAGS:
            raise fail(
                self,
                "image_tag",
                repr(self.image_tag),
                "pin an upstream release tag (letters, digits, '_', '.', '-'), never a "
                f"moving one ({', '.join(sorted(MUTABLE_TAGS))})",
            )
        check_retention(self, "log_retention_days", self.log_retention_days)
        self._check_web()

    def _check_data_sources(self) -> None:
        names = [d.name for d in self.data_sources]
        for source in self.data_sources:
            where = f"data_sources[{source.name!r}]"
            if not _DATA_SOURCE_NAME.match(source.name) or names.count(source.name) > 1:
                raise fail(
                    self,
                    "data_sources.name",
                    repr(source.name),
                    "use a unique name of lower-case letters, digits and hyphens (up to 31)",
                )
            if not 1 <= source.port <= 65535:
                raise fail(self, f"{where}.port", source.port, "use a TCP port, 1-65535")
            if (source.cidr is None) == (source.security_group_id is None):
                raise fail(
                    self,
                    where,
                    "cidr and security_group_id" if source.cidr else "neither",
                    "give exactly one of cidr and security_group_id",
                )
            if source.cidr is not None and not _narrow_network(source.cidr):
                raise fail(
                    self,
                    f"{where}.cidr",
                    repr(source.cidr),
                    "use an IPv4 CIDR narrower than the whole internet",
                )
            if source.security_group_id is not None and not _SECURITY_GROUP_ID.match(
                source.security_group_id
            ):
                raise fail(
                    self,
                    f"{where}.security_group_id",
                    repr(source.security_group_id),
                    "use a security group id (sg- followed by 8 to 17 hex digits)",
                )

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
        if not self.serves_web and web != WebSettings():
            raise fail(self, "web", "set", f"{self.system} is not served through web: unset it")
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
        if not DOMAIN_NAME.match(domain):
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
        if not self.serves_web:
            return
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
    data_kms_key_arns: tuple[str, ...] = ()
    """Keys that encrypt the data buckets' objects (SSE-KMS): decrypt through S3 only.
    Unset: none (SSE-S3 or the environment's key)."""
    lake_formation: bool = False
    """The databases are governed by Lake Formation: allow ``lakeformation:GetDataAccess``
    (an action without resource-level permissions; Lake Formation's grants decide).
    Unset: plain Glue permissions."""


@dataclass(frozen=True)
class WorkspaceSettings:
    """Dekart's roles: every user joins its one shared workspace at their first sign-in,
    with the role these settings give then. Dekart keeps that role: a change here applies
    to users who have not signed in yet (an administrator changes the others' in the app)."""

    admin_email: str | None = None
    """The workspace's administrator (``DEKART_DEFAULT_WORKSPACE_ADMIN``), exactly as the
    sign-in's ``email`` claim spells it (compared case-sensitively). Unset: nobody
    administers the workspace; members join on their own and the Athena connection comes
    from the environment, so nothing needs one."""
    default_role: WorkspaceRole = WorkspaceRole.EDITOR
    """Every other user's role. Unset: editor (Dekart's own default, when no administrator
    is named, makes every user an administrator)."""


_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


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
    """The pool's domain: its prefix (``login`` for ``login.auth.<region>.amazoncognito.com``)
    or a custom domain's full name (``auth.example.com``)."""

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
    workspace: WorkspaceSettings = field(default_factory=WorkspaceSettings)
    """Who administers the shared workspace and everyone else's role. Unset: no
    administrator, every user an editor."""

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
        key_arn = re.compile(rf"arn:aws[a-z-]*:kms:{re.escape(self.region)}:\d{{12}}:key/[\w-]+")
        for arn in athena.data_kms_key_arns:
            if not key_arn.fullmatch(arn):
                raise fail(
                    self,
                    "athena.data_kms_key_arns",
                    repr(arn),
                    f"use KMS key ARNs in {self.region} (arn:aws:kms:{self.region}:...:key/...)",
                )
        if not 1 <= athena.bytes_scanned_cutoff_gb <= 100_000:
            raise fail(
                self,
                "athena.bytes_scanned_cutoff_gb",
                athena.bytes_scanned_cutoff_gb,
                "use 1-100000 GB",
            )
        self._check_cognito()
        self._check_workspace()

    def _check_workspace(self) -> None:
        email = self.workspace.admin_email
        if email is not None and (len(email) > 254 or not _EMAIL_RE.fullmatch(email)):
            raise fail(
                self,
                "workspace.admin_email",
                repr(email),
                "use the administrator's email address as they sign in with it "
                "(name@example.com), or unset it",
            )

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
        if self.network.nat_gateways is NatGateways.NONE:
            raise fail(
                self,
                "network.nat_gateways",
                "NONE",
                "with Cognito sign-in Dekart verifies each user's identity with the load "
                f"balancer's public keys (public-keys.auth.elb.{self.region}.amazonaws.com, "
                "no VPC endpoint): use SINGLE or PER_AZ",
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


@dataclass(frozen=True)
class DatastoreSettings:
    """The Metaflow datastore the metadata service's tasks may read (module inputs
    ``s3_bucket_arn`` and ``datastore_s3_bucket_kms_key_arn``)."""

    bucket_arn: str | None = None
    """An existing datastore bucket. Unset: the stack creates one (versioned, TLS-only,
    encrypted with ``kms_key_arn`` or, unset too, the environment's key)."""
    kms_key_arn: str | None = None
    """The key that encrypts the datastore's objects. Unset: the environment's key."""


@dataclass(frozen=True)
class ExistingDatabase:
    """A PostgreSQL database the stack does not create (module input
    ``rds_master_instance_endpoint``)."""

    endpoint: str
    """``host:port``."""
    credentials_secret_arn: str
    """A Secrets Manager secret ``{"username", "password"}`` of a login that owns the
    database ``database.database_name`` there; injected as ``MF_METADATA_DB_USER`` /
    ``MF_METADATA_DB_PSWD``."""
    security_group_id: str | None = None
    """The database's security group: the stack admits the service there on the port.
    Unset: you admit it (output ``metadata_service_security_group_id``)."""


@dataclass(frozen=True, kw_only=True)
class MetaflowConfig(SystemConfig):
    """One Metaflow metadata service environment (``metaflow-<name>``): the inputs of the
    ``metadata-service`` Terraform module, typed (the README maps each one)."""

    system: ClassVar[str] = "metaflow"
    horizontal_scaling: ClassVar[bool] = True
    """The service keeps no state of its own (aiohttp over a PostgreSQL pool)."""
    serves_web: ClassVar[bool] = False

    access_list_cidr_blocks: tuple[str, ...]
    """Who may call the service. Its public ranges go to the API's resource policy (who
    may call the API Gateway endpoint); its private ranges to the internal load balancer's
    security group (who may call it directly, e.g. over the VPN). Required, as in the
    module."""
    enable_api_gateway: bool = True
    """Put the API Gateway REST API (through a VPC link) in front. Unset: on."""
    enable_api_basic_auth: bool = True
    """Require the API key (``METAFLOW_SERVICE_AUTH_KEY``) on every API call, with a usage
    plan. Unset: on."""
    api_access_logs: bool = True
    """Write the API's access log (needs the account's API Gateway CloudWatch role, set
    once per account and region: README). Unset: on."""
    datastore: DatastoreSettings = field(default_factory=DatastoreSettings)
    """Unset: the stack creates the bucket, encrypted with the environment's key."""
    existing_database: ExistingDatabase | None = None
    """Unset: the stack creates the PostgreSQL instance (``database``) and the service's
    own login, owner of ``database.database_name``."""

    @property
    def public_access_cidrs(self) -> tuple[str, ...]:
        """The public ranges of ``access_list_cidr_blocks``: the API's resource policy."""
        return tuple(c for c in self.access_list_cidr_blocks if allowed_cidr_problem(c))

    @property
    def private_access_cidrs(self) -> tuple[str, ...]:
        """The private ranges of ``access_list_cidr_blocks``: admitted by the internal load
        balancer's security group (a public range could never reach it)."""
        return tuple(c for c in self.access_list_cidr_blocks if not allowed_cidr_problem(c))

    def check(self) -> None:
        if not self.access_list_cidr_blocks:
            raise fail(
                self,
                "access_list_cidr_blocks",
                "none",
                "name who may call the service (your VPN's CIDRs), as the module requires",
            )
        for cidr in self.access_list_cidr_blocks:
            if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+/\d+", cidr) or cidr.endswith("/0"):
                raise fail(
                    self,
                    "access_list_cidr_blocks",
                    repr(cidr),
                    "use IPv4 CIDRs narrower than the whole internet",
                )
        if self.enable_api_gateway and not self.public_access_cidrs:
            raise fail(
                self,
                "access_list_cidr_blocks",
                ", ".join(self.access_list_cidr_blocks),
                "the API Gateway endpoint is public: name the public ranges (your VPN's "
                "egress addresses) that may call it, or set enable_api_gateway=False",
            )
        for field_, prefix, what in (
            ("bucket_arn", "arn:aws:s3:::", "an S3 bucket ARN (arn:aws:s3:::<name>)"),
            ("kms_key_arn", f"arn:aws:kms:{self.region}:", f"a KMS key ARN in {self.region}"),
        ):
            value = getattr(self.datastore, field_)
            if value is not None and not value.startswith(prefix):
                raise fail(self, f"datastore.{field_}", repr(value), f"use {what}")
        db = self.existing_database
        if db is not None:
            if not re.fullmatch(r"[a-z0-9.-]+:\d{2,5}", db.endpoint):
                raise fail(self, "existing_database.endpoint", repr(db.endpoint), "use host:port")
            if not db.credentials_secret_arn.startswith(f"arn:aws:secretsmanager:{self.region}:"):
                raise fail(
                    self,
                    "existing_database.credentials_secret_arn",
                    repr(db.credentials_secret_arn),
                    f"use a Secrets Manager secret ARN in {self.region}",
                )


TOMCAT = "/var/panintelligence/Dashboard/tomcat"
TOMCAT_WRITABLE = ("/tmp", f"{TOMCAT}/logs", f"{TOMCAT}/temp", f"{TOMCAT}/work")  # noqa: S108
"""What Tomcat writes besides the share (task volumes over a read-only root)."""
_USER = re.compile(r"^(\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class ImageRuntime:
    """How a vendor's images run. Unset: as the vendor's own deployments run them: the
    image's own user, a writable root filesystem. Each hardening is one setting away; turn
    it on in a development environment first and keep it once the images start and serve
    with it (README: Panintelligence, "Hardening")."""

    user: str | None = None
    """Run every container as this non-root ``<uid>:<gid>`` (``"10001:10001"``, the user
    ``images/panintelligence/Dockerfile`` adds and gives the application's directory).
    Unset: the image's own ``USER``."""
    root_filesystem: RootFilesystem = RootFilesystem.WRITABLE
    """``READ_ONLY``: nothing in the image can change; only ``writable_paths`` (task
    volumes) and the EFS folders are writable. Unset: writable, as Docker runs images."""
    writable_paths: tuple[str, ...] = TOMCAT_WRITABLE
    """With a read-only root: the dashboard's writable directories (the other services
    get ``/tmp``). Unset: ``/tmp`` and Tomcat's ``logs``, ``temp``, ``work``; a task that
    stops with a read-only-filesystem error names the directory to add. Ignored with a
    writable root."""

    @property
    def read_only(self) -> bool:
        return self.root_filesystem is RootFilesystem.READ_ONLY


@dataclass(frozen=True, kw_only=True)
class PanintelligenceConfig(SystemConfig):
    """One Panintelligence environment (``panintelligence-<name>``). ``service`` is the
    dashboard (the only public service); the other three are reached privately."""

    system: ClassVar[str] = "panintelligence"
    horizontal_scaling: ClassVar[bool] = True
    """The dashboard runs several tasks behind sticky sessions (Tomcat sessions)."""
    database_engine: ClassVar[DatabaseEngine] = DatabaseEngine.MARIADB
    database_tls_optional: ClassVar[bool] = True
    """Panintelligence's deployments (its ECS module, CloudFormation, compose files) give
    the dashboard only ``PI_DB_HOST/PORT/SCHEMA_NAME/USERNAME/PASSWORD``, no TLS option,
    and its Azure guide turns the server's TLS enforcement off: its repository may only
    offer TLS (``database.transport``)."""

    renderer: ServiceSettings = field(
        default_factory=lambda: ServiceSettings(min_tasks=1, max_tasks=1, cpu=2048, memory=4096)
    )
    """Unset: the datasheet's 2 vCPU / 4 GB, one task."""
    pirana: ServiceSettings = field(
        default_factory=lambda: ServiceSettings(min_tasks=1, max_tasks=1, cpu=512, memory=1024)
    )
    """Unset: the datasheet's 0.5 vCPU; 1 GB, Fargate's least memory for 0.5 vCPU (the
    datasheet's 512 MB is not a Fargate size)."""
    scheduler: ServiceSettings = field(
        default_factory=lambda: ServiceSettings(min_tasks=1, max_tasks=1, cpu=512, memory=1024)
    )
    """Unset: as ``pirana``. Always one task: two schedulers would send every report twice."""
    runtime: ImageRuntime = field(default_factory=ImageRuntime)
    """Unset: every service as Panintelligence runs its images (their own user, a writable
    root)."""
    assets_force_token: str = ""
    """Set a new value (a date) to reload the shipped assets onto EFS once, restoring the
    shipped files (changed ones are kept as ``.bak-<time>``, added ones are left alone).
    Unset: the assets are loaded once and never again."""

    def check(self) -> None:
        if self.scheduler.max_tasks != 1:
            raise fail(
                self,
                "scheduler.max_tasks",
                self.scheduler.max_tasks,
                "use 1: two schedulers would run every scheduled task twice",
            )
        for name in ("renderer", "pirana", "scheduler"):
            settings: ServiceSettings = getattr(self, name)
            allowed = FARGATE_SIZES.get(settings.cpu)
            if allowed is None or settings.memory not in allowed:
                raise fail(
                    self,
                    f"{name}.cpu/memory",
                    f"{settings.cpu}/{settings.memory}",
                    "use a Fargate size (0.5 vCPU needs at least 1024 MiB)",
                )
            if not 1 <= settings.min_tasks <= settings.max_tasks:
                raise fail(
                    self,
                    f"{name}.min_tasks/max_tasks",
                    f"{settings.min_tasks}/{settings.max_tasks}",
                    "use 1 <= min_tasks <= max_tasks",
                )
        if self.network.nat_gateways is NatGateways.NONE:
            raise fail(
                self,
                "network.nat_gateways",
                "NONE",
                "the dashboard reaches the licence server through NAT: use SINGLE or PER_AZ",
            )
        self._check_runtime()
        for source in self.data_sources:
            if source.cidr is None:
                raise fail(
                    self,
                    f"data_sources[{source.name!r}].security_group_id",
                    repr(source.security_group_id),
                    "Panintelligence's subnets have network ACLs, which admit address "
                    "ranges only: name the data source by cidr",
                )
        if not re.fullmatch(r"[A-Za-z0-9._-]{0,64}", self.assets_force_token):
            raise fail(
                self,
                "assets_force_token",
                repr(self.assets_force_token),
                "use up to 64 letters, digits, '.', '_' or '-'",
            )

    def _check_runtime(self) -> None:
        runtime = self.runtime
        if runtime.user is not None:
            match = _USER.match(runtime.user)
            if match is None or int(match.group(1)) == 0 or match.group(2) == "0":
                raise fail(
                    self,
                    "runtime.user",
                    repr(runtime.user),
                    'use a non-root "<uid>:<gid>" ("10001:10001", the user '
                    "images/panintelligence/Dockerfile adds), or None for the image's own",
                )
        if not runtime.read_only:
            return
        paths = runtime.writable_paths
        for path in paths:
            if not path.startswith("/") or path != posixpath.normpath(path) or path == "/":
                raise fail(
                    self,
                    "runtime.writable_paths",
                    repr(path),
                    "use absolute, normalised directory paths other than /",
                )
        if len(set(paths)) != len(paths) or "/tmp" not in paths:  # noqa: S108
            raise fail(
                self,
                "runtime.writable_paths",
                ", ".join(paths),
                "name each directory once, /tmp included (the derived image's HOME)",
            )
