"""Panintelligence on the construct library (``panintelligence-dev``,
``panintelligence-prod``): the dashboard behind its public load balancer, the renderer,
pirana and the scheduler reached privately through Cloud Map, MariaDB as the repository,
EFS for the dashboard's themes, images, SVG files, custom JDBC drivers and locale files,
loaded once from S3 by a function that never overwrites what users changed.

What differs from the original and why is in the README's Panintelligence section.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from cdktf import ITerraformDependable, TerraformOutput
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret import (
    DataAwsSecretsmanagerSecret,
)

from constructs_lib.alarms import HasAlarms
from constructs_lib.asset_loader import AssetLoader, AssetLoaderProps
from constructs_lib.bucket import SecureBucket, SecureBucketProps
from constructs_lib.file_system import FileSystem, FileSystemMount, FileSystemProps
from constructs_lib.network_acl import (
    Flow,
    SubnetAcls,
    SubnetAclsProps,
    SubnetTier,
    web_system_flows,
)
from constructs_lib.options import CpuArchitecture, Deployment
from constructs_lib.registry import ContainerRepository
from constructs_lib.secrets import SecretRef
from constructs_lib.service import ExtraPort, FargateService
from constructs_lib.settings import ServiceSettings
from environments.systems import PanintelligenceConfig

from .base import PROJECT_ROOT
from .system import ContainerRuntime, SystemStack

DASHBOARD_PORT = 8224
DASHBOARD_INTERNAL_PORT = 28748
"""The dashboard's port for the renderer and the scheduler (Panintelligence's own
deployments use it so that they never meet the public HTTPS settings of 8224)."""
DASHBOARD_HEALTH_PATH = "/pi/version"
RESOURCES = "/var/panintelligence/Dashboard/tomcat/webapps/panMISDashboardResources"
ASSETS_ROOT = "/pi"
"""The share's directory the loader fills; each mounted folder is below it."""
ASSETS_PREFIX = "dashboard/"
"""Where the shipped assets live in the assets bucket (``dashboard/themes/...``)."""
SHARE_UID = 1000
"""Every file operation on the share runs as this user (the access points enforce it), so
the loader's files and the dashboard's edits always have one owner."""
SHARED_FOLDERS: dict[str, str] = {
    "themes": f"{RESOURCES}/themes",
    "images": f"{RESOURCES}/images",
    "svg": f"{RESOURCES}/svg",
    "locale": f"{RESOURCES}/locale",
    "custom_jdbc": "/var/panintelligence/Dashboard/custom_jdbc",
    "keys": "/var/panintelligence/Dashboard/keys",
    "files": f"{RESOURCES}/files",
}
"""The share's folders and where the dashboard mounts each (Panintelligence's layout, as
its own ECS module mounts them: ``files`` holds what users upload, so every dashboard task
must see the same one, and the read-only root has no other place for it)."""
SCHEDULER_FOLDERS = ("keys",)
"""What the scheduler mounts too (the dashboard's keys)."""
STICKY_SECONDS = 8 * 3600
"""Tomcat keeps sessions in the task's memory: a browser stays on its task a work day."""


NFS_PORT = 2049


def _inside(cidr: str, vpc_cidr: str) -> bool:
    return ipaddress.IPv4Network(cidr).subnet_of(ipaddress.IPv4Network(vpc_cidr))


@dataclass(frozen=True)
class Private:
    """One privately reached service: its port and who calls it."""

    port: int


PRIVATE = {"renderer": Private(9915), "scheduler": Private(9917), "pirana": Private(9918)}


class PanintelligenceStack(SystemStack):
    """The four Panintelligence services, MariaDB, EFS and its loader, the dashboard's
    load balancer."""

    config: PanintelligenceConfig
    port: ClassVar[int] = DASHBOARD_PORT
    health_check_path: ClassVar[str] = DASHBOARD_HEALTH_PATH
    container_user: ClassVar[str | None] = None
    """Unused: ``config.runtime`` says how the images run."""
    startup_grace_seconds: ClassVar[int] = 180
    """Tomcat and the dashboard's own schema checks take minutes on a first start."""
    cpu_architecture: ClassVar[CpuArchitecture] = CpuArchitecture.X86_64
    """Panintelligence publishes amd64 images only."""
    service_name: ClassVar[str | None] = "dashboard"
    service_discovery: ClassVar[bool] = True
    sticky_sessions_seconds: ClassVar[int | None] = STICKY_SECONDS

    # --- data: MariaDB (the shared step), the share and its assets ---------------------

    def data_step(self) -> None:
        super().data_step()
        config, naming = self.config, self.naming
        self.licence = DataAwsSecretsmanagerSecret(self, "licence", name=naming.path("licence"))
        self.assets = SecureBucket(
            self,
            "assets",
            props=SecureBucketProps(
                bucket_name=f"{naming.prefix}-assets-{self.account_id}",
                key=self.key,
                force_destroy=not config.is_production,
            ),
        )
        self.share = FileSystem(
            self,
            "share",
            props=FileSystemProps(naming=naming, network=self.network, key=self.key, name="share"),
        )
        self.loader_access = self.share.access_point(
            "loader-access", path=ASSETS_ROOT, uid=SHARE_UID, gid=SHARE_UID, permissions="755"
        )
        self.folders = {
            folder: self.share.access_point(
                f"{folder.replace('_', '-')}-access",
                path=f"{ASSETS_ROOT}/{folder}",
                uid=SHARE_UID,
                gid=SHARE_UID,
                permissions="755",
            )
            for folder in SHARED_FOLDERS
        }
        self.loader = AssetLoader(
            self,
            "asset-loader",
            props=AssetLoaderProps(
                naming=naming,
                project_root=PROJECT_ROOT,
                file_system=self.share,
                access_point=self.loader_access,
                bucket=self.assets,
                prefix=ASSETS_PREFIX,
                force_token=config.assets_force_token,
                log_retention_days=config.log_retention_days,
            ),
        )

    # --- the dashboard (the shared compute step) and the private services ---------------

    def start_after(self) -> list[ITerraformDependable]:
        return [*super().start_after(), self.loader.ready]

    def container_runtime(self) -> ContainerRuntime:
        """As ``config.runtime`` says: unset, the vendor's way (the images' own user, a
        writable root, no task volumes); hardened, a non-root user on a read-only root."""
        runtime = self.config.runtime
        return ContainerRuntime(
            runtime.user,
            runtime.root_filesystem,
            runtime.writable_paths if runtime.read_only else (),
        )

    def data_sources_reached_by(self) -> list[FargateService]:
        """The dashboard and the scheduler (which runs the scheduled reports)."""
        return [self.service, self.private["scheduler"]]

    def _mounts(self, folders: tuple[str, ...] | list[str]) -> tuple[FileSystemMount, ...]:
        return tuple(
            FileSystemMount(self.share, self.folders[folder], SHARED_FOLDERS[folder])
            for folder in folders
        )

    def file_system_mounts(self) -> Sequence[FileSystemMount]:
        return self._mounts(list(SHARED_FOLDERS))

    def environment(self) -> Mapping[str, str]:
        return {
            **self._database_environment(),
            **self._peer_urls(),
            **self._proxy(),
            **self._home(),
            # Tomcat's heap: half the task's memory, as Panintelligence's own ECS deployments
            # size it (1024 of 2048 MiB); the rest is the JVM's own and the OS's. Unset, the
            # image picks its default whatever the task size.
            "PI_TOMCAT_MAX_MEMORY": str(self.config.service.memory // 2),
        }

    def _database_environment(self) -> dict[str, str]:
        db = self.database
        return {
            "PI_EXTERNAL_DB": "true",
            "PI_DB_HOST": db.endpoint_address,
            "PI_DB_PORT": str(db.port),
            "PI_DB_SCHEMA_NAME": db.database_name,
            "PI_DB_USERNAME": self.db_credentials.username,
        }

    def _peer_urls(self) -> dict[str, str]:
        """Where the services find each other (Cloud Map names). Both spellings
        Panintelligence's own deployments use are set."""
        ns = self.cluster.namespace_name
        renderer = f"http://renderer.{ns}:{PRIVATE['renderer'].port}"
        scheduler = f"http://scheduler.{ns}:{PRIVATE['scheduler'].port}"
        pirana = f"http://pirana.{ns}:{PRIVATE['pirana'].port}"
        return {
            "PAN_RENDERER_URL": renderer,
            "PAN_SCHEDULER_URL": scheduler,
            "PI_VARIABLE_PAN_RENDERER_URL": renderer,
            "PI_VARIABLE_PAN_SCHEDULER_URL": scheduler,
            "PI_VARIABLE_ANALYTICS_SERVER_URL": pirana,
            "RENDERER_DASHBOARD_URL": self._dashboard_url(),
        }

    def _home(self) -> dict[str, str]:
        """The hardened user's home, ``/tmp`` (writable on a read-only root), whatever HOME
        the vendor's image sets. Unset user: the image's own."""
        return {"HOME": "/tmp"} if self.config.runtime.user is not None else {}  # noqa: S108

    def _dashboard_url(self) -> str:
        return f"http://dashboard.{self.cluster.namespace_name}:{DASHBOARD_INTERNAL_PORT}/pi"

    def extra_ports(self) -> Sequence[ExtraPort]:
        return (ExtraPort(DASHBOARD_INTERNAL_PORT),)

    def _proxy(self) -> dict[str, str]:
        """The public name the dashboard builds its links with (behind HTTPS)."""
        domain = self.config.web.domain_name
        if not domain:
            return {}
        return {
            "PI_PROXY_ENABLED": "true",
            "PI_PROXY_HOST": domain,
            "PI_PROXY_PORT": "443",
            "PI_PROXY_SCHEME": "https",
            "PI_PROXY_IS_SECURE": "true",
            "PI_TOMCAT_COOKIE_SECURE": "true",
        }

    def secrets(self) -> Mapping[str, SecretRef]:
        return {
            "PI_DB_PASSWORD": self.db_credentials.field("password"),
            "PI_LICENCE": SecretRef(self.licence.arn),
        }

    def compute_step(self) -> None:
        super().compute_step()
        self.repositories: dict[str, ContainerRepository] = {"dashboard": self.repository}
        self.private: dict[str, FargateService] = {
            name: self._private_service(name, spec.port) for name, spec in PRIVATE.items()
        }
        dashboard = self.service
        for name, service in self.private.items():
            service.allow_from(dashboard, description=f"dashboard to the {name}")
        for name in ("renderer", "scheduler"):
            dashboard.allow_from(
                self.private[name],
                description=f"{name} to the dashboard",
                port=DASHBOARD_INTERNAL_PORT,
            )
        scheduler = self.private["scheduler"]
        scheduler.requires(
            *self.database.allow_from(scheduler, description="scheduler to its repository")
        )
        self._subnet_acls()

    def _subnet_acls(self) -> None:
        """Network ACLs on both tiers, from one flow list (tests/stacks check that every
        connection the security groups allow passes them too)."""
        lb = self.web_load_balancer
        flows = list(
            web_system_flows(
                self.network,
                service_ports=(DASHBOARD_PORT,),
                private_ports=(
                    self.database.port,
                    NFS_PORT,
                    DASHBOARD_INTERNAL_PORT,
                    *(spec.port for spec in PRIVATE.values()),
                ),
                internet_facing=lb.internet_facing,
                load_balancer_calls_out=lb.cognito_egress is not None,
            )
        )
        flows += [
            Flow(f"data-source-{source.name}", SubnetTier.PRIVATE, source.cidr, source.port)
            for source in self.config.data_sources
            if source.cidr is not None  # config validation refuses the others here
        ]
        if not lb.internet_facing:  # the internal load balancer's callers (a VPN)
            flows += [
                Flow(f"callers-{i}", cidr, SubnetTier.PRIVATE, port)
                for i, cidr in enumerate(lb.ingress_cidrs)
                if not _inside(cidr, self.config.network.vpc_cidr)
                for port in lb.listener_ports
            ]
        self.acls = SubnetAcls(
            self,
            "subnet-acls",
            props=SubnetAclsProps(naming=self.naming, network=self.network, flows=tuple(flows)),
        )

    def _private_service(self, name: str, port: int) -> FargateService:
        settings: ServiceSettings = getattr(self.config, name)
        scheduler = name == "scheduler"
        self.repositories[name], service = self.image_service(
            name,
            repository_id=f"{name}-repository",
            port=port,
            settings=settings,
            environment={
                **(self._database_environment() if scheduler else {}),
                **self._home(),
                "SCHEDULER_DASHBOARD_URL": self._dashboard_url(),
                "RENDERER_DASHBOARD_URL": self._dashboard_url(),
            },
            secrets=(
                {"PI_DB_PASSWORD": self.db_credentials.field("password")} if scheduler else {}
            ),
            writable_paths=self.container_runtime().private_writable_paths,
            file_system_mounts=self._mounts(SCHEDULER_FOLDERS) if scheduler else (),
            # Two schedulers, even for a deploy's minutes, would run every job twice.
            deployment=Deployment.REPLACE if scheduler else Deployment.ROLLING,
            depends_on=[self.db_owner.ready] if scheduler else (),
        )
        return service

    def services(self) -> list[FargateService]:
        return [self.service, *self.private.values()]

    def alarmed(self) -> list[HasAlarms]:
        return [*super().alarmed(), self.share]

    def outputs(self) -> None:
        super().outputs()
        TerraformOutput(self, "assets_bucket", value=self.assets.bucket.bucket)
        for name, repository in self.repositories.items():
            if name != "dashboard":  # repository_url (the shared outputs) is the dashboard's
                TerraformOutput(self, f"{name}_repository_url", value=repository.url)
        TerraformOutput(self, "file_system_id", value=self.share.id)
        TerraformOutput(self, "asset_loader_function", value=self.loader.function.function_name)
