"""Helpers and constants shared by the infrastructure tests; the fixtures live in conftest.py.

Nothing here imports cdktf at module level: the config-validation, review and app tests
import this module too, and the AWS provider bindings take 10-15 s to load.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from constructs_lib.naming import Naming
from constructs_lib.options import NatGateways
from constructs_lib.settings import NetworkSettings
from environments.config import EdgeConfig

if TYPE_CHECKING:
    from cdktf import App, TerraformStack

    from constructs_lib.cluster import Cluster
    from constructs_lib.database import Database
    from constructs_lib.encryption import EncryptionKey
    from constructs_lib.file_system import FileSystem
    from constructs_lib.load_balancer import LoadBalancer
    from constructs_lib.network import Network
    from constructs_lib.queue import Queue
    from constructs_lib.service import FargateService

ROOT = Path(__file__).resolve().parent.parent
"""The project root."""

ENVIRONMENT_STACKS = ("dev", "test", "stage", "prod")
IMAGE_TAG = "0123456789ab"
"""The image tag every test synthesis deploys (as CI would pass a commit SHA)."""
REVIEW_ALARM_EMAIL = "alarms@example.invalid"
"""What ``make synth`` gives production when the shell names no alarm target."""
SYNTH_ENVIRON = {"IMAGE_TAG": IMAGE_TAG, "PCP_ALARM_EMAIL": REVIEW_ALARM_EMAIL}

# A custom domain: no shipped environment names one, so the edge tests build a copy of
# ``stage`` with this ``EdgeConfig`` and the config tests break it one field at a time.
DOMAIN = "counts.example.com"
ZONE = "Z0123456789ABCDEFGHIJ"
VPN = "172.16.0.0/22"
"""A private range (a VPN or a peered network) that may call the internal ALB directly."""
EDGE = EdgeConfig(
    domain_name=DOMAIN,
    hosted_zone_id=ZONE,
    alb_certificate_arn="arn:aws:acm:eu-central-1:123456789012:certificate/alb",
    cloudfront_certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/cdn",
    allowed_cidrs=(VPN,),
)


# --- the session synthesis (the ``synth`` fixture) ------------------------------------------


EnvStack = tuple[str, dict[str, Any]]
"""What the ``env_stack`` fixture gives: an environment's name and its parsed stack."""


@dataclass(frozen=True)
class Synth:
    """Every synthesized stack of the app, parsed."""

    outdir: Path
    stacks: dict[str, dict[str, Any]]

    def stack(self, name: str) -> dict[str, Any]:
        return self.stacks[name]

    def text(self, name: str) -> str:
        return (self.outdir / "stacks" / name / "cdk.tf.json").read_text()


def synth_app(outdir: Path) -> Synth:
    """Synthesize the whole app (``main.build_app``) into ``outdir`` and parse every stack."""
    import main  # loads the provider bindings

    main.build_app(outdir=str(outdir), environ=SYNTH_ENVIRON).synth()
    stacks = {
        p.name: json.loads((p / "cdk.tf.json").read_text())
        for p in sorted((outdir / "stacks").iterdir())
    }
    return Synth(outdir=outdir, stacks=stacks)


# --- reading synthesized JSON ---------------------------------------------------------------


def resources(stack: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    """``{logical id: config}`` of every resource of ``type_`` in ``stack``."""
    found: dict[str, dict[str, Any]] = stack.get("resource", {}).get(type_, {})
    return found


def one(stack: dict[str, Any], type_: str) -> dict[str, Any]:
    """The single resource of ``type_``; fails when there are none or several."""
    found = resources(stack, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.values()))


def cache_node_ids(group: dict[str, Any]) -> set[str]:
    """The nodes of a synthesized replication group, as ElastiCache names them: ``<id>-001``
    ..., or in cluster mode ``<id>-0001-001`` ... (shard, node)."""
    name = group["replication_group_id"]
    if "num_node_groups" not in group:
        return {f"{name}-{n:03d}" for n in range(1, group["num_cache_clusters"] + 1)}
    per_shard = group["replicas_per_node_group"] + 1
    return {
        f"{name}-{shard:04d}-{n:03d}"
        for shard in range(1, group["num_node_groups"] + 1)
        for n in range(1, per_shard + 1)
    }


def named(stack: dict[str, Any], type_: str, key: str = "name") -> dict[str, dict[str, Any]]:
    """Resources of ``type_`` keyed by their ``key`` attribute (e.g. security groups by name)."""
    return {r[key]: r for r in resources(stack, type_).values()}


def logical_id(stack: dict[str, Any], type_: str, key: str, value: str) -> str:
    """The logical id of the resource of ``type_`` whose ``key`` is ``value``."""
    (found,) = [k for k, r in resources(stack, type_).items() if r.get(key) == value]
    return found


def ref(type_: str, logical_id: str, attr: str = "id") -> str:
    """The interpolation Terraform uses to refer to an attribute of a resource."""
    return f"${{{type_}.{logical_id}.{attr}}}"


def containers(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every container definition of the stack's task definitions, by container name."""
    out: dict[str, dict[str, Any]] = {}
    for task in resources(stack, "aws_ecs_task_definition").values():
        for container in json.loads(task["container_definitions"]):
            out[container["name"]] = container
    return out


# --- tools ------------------------------------------------------------------------------------


def load_tool(name: str) -> Any:
    """Import ``tools/<name>.py`` (the tools are scripts, not a package)."""
    path = ROOT / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- construct unit tests (the ``unit_stack`` fixture) -----------------------------------

UNIT = "unit"
"""The name of a unit stack, and the environment its names are built for."""
NAMING = Naming(UNIT)
"""The ``Naming`` construct props take in unit tests: names start ``pcp-unit-``."""
REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"
UNIT_NETWORK = NetworkSettings(
    vpc_cidr="10.0.0.0/16",
    availability_zones=(f"{REGION}a", f"{REGION}b"),
    public_subnet_cidrs=("10.0.0.0/24", "10.0.1.0/24"),
    private_subnet_cidrs=("10.0.16.0/20", "10.0.32.0/20"),
    nat_gateways=NatGateways.SINGLE,
)
ONE_AZ_NETWORK = replace(
    UNIT_NETWORK,
    availability_zones=(f"{REGION}a",),
    public_subnet_cidrs=("10.0.0.0/24",),
    private_subnet_cidrs=("10.0.16.0/20",),
)
"""A network too small for a database or a load balancer (their error paths)."""


@dataclass
class UnitStack:
    """One small stack, with the AWS provider, that a construct unit test builds into.

    The builders below give the constructs a construct under test takes (a key, a
    two-AZ network, a database, a cluster, a load balancer, a service), each built once
    per stack with its defaults, so a test states only what it is about."""

    stack: TerraformStack
    parts: dict[str, Any] = field(default_factory=dict)

    def synth(self) -> dict[str, Any]:
        """The stack synthesized in memory and parsed."""
        return synthesize(self.stack)

    def _once(self, name: str, build: Callable[[], Any]) -> Any:
        if name not in self.parts:
            self.parts[name] = build()
        return self.parts[name]

    def key(self) -> EncryptionKey:
        from constructs_lib.encryption import EncryptionKey, EncryptionKeyProps

        props = EncryptionKeyProps(
            naming=NAMING, account_id=ACCOUNT_ID, region=REGION, description="unit"
        )
        built: EncryptionKey = self._once(
            "key", lambda: EncryptionKey(self.stack, "key", props=props)
        )
        return built

    def network(self, settings: NetworkSettings = UNIT_NETWORK) -> Network:
        """The two-AZ unit network, or one with other ``settings`` (``ONE_AZ_NETWORK``)."""
        from constructs_lib.network import Network, NetworkProps

        azs = len(settings.availability_zones)
        id_ = "network" if settings == UNIT_NETWORK else f"network-{azs}-az"
        props = NetworkProps(naming=NAMING, account_id=ACCOUNT_ID, region=REGION, settings=settings)
        built: Network = self._once(id_, lambda: Network(self.stack, id_, props=props))
        return built

    def database(self) -> Database:
        from constructs_lib.database import Database, DatabaseProps

        props = DatabaseProps(naming=NAMING, network=self.network(), key=self.key())
        built: Database = self._once("database", lambda: Database(self.stack, "db", props=props))
        return built

    def queue(self) -> Queue:
        """A serverless queue on the unit network, with the app's access string."""
        from apps.common.contract import queue_access_string
        from constructs_lib.queue import Queue, QueueProps

        props = QueueProps(
            naming=NAMING,
            network=self.network(),
            key=self.key(),
            app_access_string=queue_access_string(),
        )
        built: Queue = self._once("queue", lambda: Queue(self.stack, "queue", props=props))
        return built

    def cluster(self) -> Cluster:
        from constructs_lib.cluster import Cluster, ClusterProps

        props = ClusterProps(
            naming=NAMING, network=self.network(), key=self.key(), namespace_name="unit.internal"
        )
        built: Cluster = self._once("cluster", lambda: Cluster(self.stack, "cluster", props=props))
        return built

    def load_balancer(self) -> LoadBalancer:
        from constructs_lib.load_balancer import LoadBalancer, LoadBalancerProps

        props = LoadBalancerProps(naming=NAMING, network=self.network(), target_port=5080)
        built: LoadBalancer = self._once(
            "load_balancer", lambda: LoadBalancer(self.stack, "lb", props=props)
        )
        return built

    def file_system(self, name: str = "files", **overrides: Any) -> FileSystem:
        """An EFS file system ``name`` (construct id ``efs-<name>``) on :meth:`network`
        with :meth:`key`; ``overrides`` are further :class:`FileSystemProps` fields
        (another ``network``, throughput mode, ...)."""
        from constructs_lib.file_system import FileSystem, FileSystemProps

        def build() -> FileSystem:
            values: dict[str, Any] = {
                "naming": NAMING,
                "network": self.network(),
                "key": self.key(),
                "name": name,
                **overrides,
            }
            return FileSystem(self.stack, f"efs-{name}", props=FileSystemProps(**values))

        built: FileSystem = self._once(f"file-system-{name}", build)
        return built

    def service(self, name: str, *, min_tasks: int = 1, **overrides: Any) -> FargateService:
        """A service ``name`` in :meth:`cluster` with its own repository; ``overrides`` are
        further :class:`FargateServiceProps` fields."""
        from constructs_lib.registry import ContainerRepository, ContainerRepositoryProps
        from constructs_lib.service import FargateService, FargateServiceProps
        from constructs_lib.settings import ServiceSettings

        def build() -> FargateService:
            repository = ContainerRepository(
                self.stack,
                f"{name}-repository",
                props=ContainerRepositoryProps(naming=NAMING, service=name, key=self.key()),
            )
            values: dict[str, Any] = {
                "name": name,
                "cluster": self.cluster(),
                "repository": repository,
                "image_tag": IMAGE_TAG,
                "port": 8080,
                "settings": ServiceSettings(min_tasks=min_tasks, max_tasks=max(min_tasks, 2)),
                **overrides,
            }
            return FargateService(self.stack, name, props=FargateServiceProps(**values))

        built: FargateService = self._once(f"service-{name}", build)
        return built


def new_unit_stack(app: App | None = None, name: str = UNIT) -> UnitStack:
    """A stack with the AWS provider in ``REGION``, in ``app`` (a fresh ``Testing.app()``
    unless given). The ``unit_stack`` fixture is one; module-scoped fixtures that share a
    synthesized stack call this."""
    from cdktf import TerraformStack, Testing
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    stack = TerraformStack(Testing.app() if app is None else app, name)
    AwsProvider(stack, "aws", region=REGION)
    return UnitStack(stack)


def variant_stage() -> dict[str, Any]:
    """``stage`` (its names unchanged) with a custom domain (:data:`EDGE`) and a sharded
    queue (``QueueMode.SHARDED``, 3 shards): one more stack for every setting no shipped
    environment uses. Neither changes what the other builds."""
    from dataclasses import replace

    from cdktf import Testing

    from constructs_lib.options import QueueMode
    from environments import STAGE
    from environments.release import Release
    from environments.state import StateConfig
    from stacks import PlatformStack

    queue = replace(STAGE.queue, mode=QueueMode.SHARDED, shards=3)
    config = replace(STAGE, edge=EDGE, queue=queue)
    built = PlatformStack(
        Testing.app(), "stage", config=config, state=StateConfig(), release=Release(IMAGE_TAG)
    )
    return synthesize(built)


VARIANT_METABASE_PORT = 3001
VARIANT_DATA_SOURCES = (
    ("warehouse", 5439, "10.90.0.0/16", None),
    ("lake", 5432, None, "sg-0123456789abcdef0"),
    ("cloud-warehouse", 1433, "198.51.100.0/24", None),
)
"""The data sources of the variant Metabase: (name, port, cidr, security group id): a
peered range, a security group, a public range reached through NAT."""


def variant_systems() -> dict[str, dict[str, Any]]:
    """Seed-system stacks (their names unchanged) with what no shipped environment turns on,
    by stack name:

    - ``metabase-dev`` with two data sources (a CIDR, a security group), its container on
      port :data:`VARIANT_METABASE_PORT` and its VPC on another range (a target group
      replacement of both kinds);
    - ``panintelligence-dev`` hardened: TLS required, uid 10001 on a read-only root, and a
      data source on a public range (through NAT: a private range needs a route to a peered
      network, which the stack does not make)."""
    from dataclasses import replace
    from typing import ClassVar

    from cdktf import Testing

    from constructs_lib.options import DatabaseTransport, RootFilesystem
    from environments import metabase, panintelligence
    from environments.state import StateConfig
    from environments.systems import DataSource, ImageRuntime
    from stacks.metabase import MetabaseStack
    from stacks.panintelligence import PanintelligenceStack

    class MovedMetabase(MetabaseStack):
        port: ClassVar[int] = VARIANT_METABASE_PORT

    sources = tuple(
        DataSource(n, p, cidr=c, security_group_id=g) for n, p, c, g in VARIANT_DATA_SOURCES
    )
    mb = replace(
        metabase.DEV,
        data_sources=sources,
        network=replace(metabase.DEV.network, vpc_cidr="10.52.0.0/16",
                        public_subnet_cidrs=("10.52.0.0/24", "10.52.1.0/24", "10.52.2.0/24"),
                        private_subnet_cidrs=("10.52.16.0/20", "10.52.32.0/20", "10.52.48.0/20")),
    )  # fmt: skip
    pi = replace(
        panintelligence.DEV,
        database=replace(panintelligence.DEV.database, transport=DatabaseTransport.TLS_REQUIRED),
        runtime=ImageRuntime(user="10001:10001", root_filesystem=RootFilesystem.READ_ONLY),
        data_sources=(DataSource("warehouse", 5439, cidr="198.51.100.0/24"),),
    )
    return {
        "metabase-dev": synthesize(MovedMetabase(Testing.app(), config=mb, state=StateConfig())),
        "panintelligence-dev": synthesize(
            PanintelligenceStack(Testing.app(), config=pi, state=StateConfig())
        ),
    }


def synthesize(stack: TerraformStack) -> dict[str, Any]:
    """``stack`` synthesized in memory (``Testing.synth``) and parsed."""
    from cdktf import Testing

    doc: dict[str, Any] = json.loads(Testing.synth(stack))
    return doc
