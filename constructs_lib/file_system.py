"""Shared file storage: an encrypted EFS file system in the private subnets, mounted over
TLS with IAM authorization through POSIX-user access points."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from enum import Enum

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.efs_access_point import (
    EfsAccessPoint,
    EfsAccessPointPosixUser,
    EfsAccessPointRootDirectory,
    EfsAccessPointRootDirectoryCreationInfo,
)
from cdktf_cdktf_provider_aws.efs_backup_policy import EfsBackupPolicy
from cdktf_cdktf_provider_aws.efs_file_system import EfsFileSystem, EfsFileSystemLifecyclePolicy
from cdktf_cdktf_provider_aws.efs_file_system_policy import EfsFileSystemPolicy
from cdktf_cdktf_provider_aws.efs_mount_target import EfsMountTarget
from cdktf_cdktf_provider_aws.iam_role import IamRole
from constructs import Construct

from .alarms import AlarmSpec, Watch
from .encryption import EncryptionKey
from .errors import ConfigError
from .naming import Naming
from .network import Network
from .policy import Statement, policy_document
from .security import Peer, RulePair, allow_tcp, security_group, security_group_of

__all__ = [
    "FileSystem",
    "FileSystemMount",
    "FileSystemProps",
    "PerformanceMode",
    "ThroughputMode",
]

NFS_PORT = 2049
EFS_NAMESPACE = "AWS/EFS"
CLIENT_MOUNT = "elasticfilesystem:ClientMount"
CLIENT_WRITE = "elasticfilesystem:ClientWrite"
CLIENT_ROOT_ACCESS = "elasticfilesystem:ClientRootAccess"
CLIENT_ACTIONS = (CLIENT_MOUNT, CLIENT_WRITE, CLIENT_ROOT_ACCESS)
"""Every action an NFS client is authorized for (what a file-system policy governs)."""

IA_DAYS = (1, 7, 14, 30, 60, 90, 180, 270, 365)
"""The ages EFS offers for moving a file to Infrequent Access (``AFTER_<n>_DAYS``)."""
NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
"""A file system's short name: part of its tag, security group and alarm keys."""
PATH_FORBIDDEN = re.compile(r"[$#<>;`|&?{}^*\n]")
"""Characters EFS refuses in an access point's root directory."""
MAX_UID = 2**32 - 1
BURST_CREDITS_ALARM_BYTES = 192 * 10**9
"""About an hour of bursting at 100 MiB/s: the warning comes before throughput falls to
the (size-proportional, for a small file system tiny) baseline."""


class PerformanceMode(Enum):
    """EFS performance mode (fixed at creation: changing it replaces the file system)."""

    GENERAL_PURPOSE = "generalPurpose"
    """Lowest latency; what AWS recommends for nearly every workload."""
    MAX_IO = "maxIO"
    """Higher aggregate IOPS at higher latency; not with ``ThroughputMode.ELASTIC``."""


class ThroughputMode(Enum):
    """How EFS throughput is provided and billed."""

    ELASTIC = "elastic"
    """Scales with the load, billed per GiB transferred: for spiky, mostly idle use."""
    BURSTING = "bursting"
    """Scales with the stored size, with burst credits (``BurstCreditBalance``)."""
    PROVISIONED = "provisioned"
    """A fixed ``provisioned_throughput_mibps``, billed whether used or not."""


def absolute_directory(path: str) -> bool:
    """Whether ``path`` is an absolute, normalised directory below ``/`` (``/data``,
    ``/var/lib/app``; not ``data``, ``/``, ``/data/``, ``//data``, ``/a/../b``)."""
    return (
        path.startswith("/")
        and not path.startswith("//")
        and path != "/"
        and posixpath.normpath(path) == path
    )


@dataclass(frozen=True)
class FileSystemProps:
    naming: Naming
    network: Network
    """A mount target in each of its private subnets (one per AZ); clients must run in
    this network."""
    key: EncryptionKey
    """Encrypts the data and metadata at rest."""
    name: str
    """Short name (``dashboard``): the file system's ``Name`` tag and security group are
    ``<prefix>-<name>-efs``, its alarm keys ``efs-<name>-*``. Lower-case letters, digits
    and hyphens, starting with a letter, at most 40."""
    performance_mode: PerformanceMode = PerformanceMode.GENERAL_PURPOSE
    """Unset: general purpose. Changing it replaces the file system (and loses its data)."""
    throughput_mode: ThroughputMode = ThroughputMode.ELASTIC
    """Unset: elastic."""
    provisioned_throughput_mibps: int | None = None
    """With ``ThroughputMode.PROVISIONED`` only, and then required (1 to 3414 MiB/s, the
    default quota). Unset: none."""
    transition_to_ia_days: int | None = 30
    """Move a file not accessed for this many days to Infrequent Access storage (cheaper
    to keep, billed per read); one of :data:`IA_DAYS`. None: files stay in Standard.
    Unset: 30 days."""
    transition_to_primary_on_access: bool = True
    """Move a file back to Standard on its first access from Infrequent Access (so a file
    read often, such as a theme or a JDBC driver, is billed once). Ignored when
    ``transition_to_ia_days`` is None. Unset: moved back."""
    backup: bool = True
    """Daily AWS Backup of the file system (the account's default backup plan and vault,
    35-day retention). Unset: on."""
    storage_alarm_gib: int | None = None
    """Warn (production tier) when the stored data exceeds this many GiB: EFS grows
    without limit, so this is the cost guard. Unset: no storage alarm."""


@dataclass(frozen=True)
class FileSystemMount:
    """One access point of a :class:`FileSystem` mounted into a container (over TLS,
    authorized with the task role through IAM)."""

    file_system: FileSystem
    """In the same network as the client."""
    access_point: EfsAccessPoint
    """One of ``file_system``'s (:meth:`FileSystem.access_point`): the client sees its
    root directory, and every file operation runs as its POSIX user."""
    container_path: str
    """Where the container sees it: an absolute, normalised directory, not ``/``."""
    read_only: bool = False
    """Mount read-only, and grant the client ``ClientMount`` without ``ClientWrite``.
    Unset: read-write."""


class FileSystem(Construct):
    """An encrypted, private EFS file system.

    - encrypted at rest with the given key; every mount must use TLS (the file-system
      policy denies any client request with ``aws:SecureTransport`` false) and be
      authorized by IAM: with a file-system policy in place, an anonymous (non-IAM) mount
      finds no grant and is refused;
    - a mount target in each private subnet, behind one security group that admits
      nothing until :meth:`allow_from` (NFS, 2049) and sends nothing;
    - clients mount through access points (:meth:`access_point`): a root directory
      created for, and every operation run as, one POSIX user (never root);
    - :meth:`grant` adds a principal's mount (and write) permission to the file-system
      policy; :meth:`client_statements` gives the same for the principal's own policy;
      :meth:`admit` does what a client (a service, a Lambda function) needs: the network
      path and the grant, and returns what it must start after;
    - backed up daily unless ``backup`` is off; files move to Infrequent Access after
      ``transition_to_ia_days``.
    """

    def __init__(self, scope: Construct, id_: str, *, props: FileSystemProps) -> None:
        super().__init__(scope, id_)
        self._validate(props)
        self.props = props
        self.network = props.network
        self.key = props.key
        self.name = props.naming.name(props.name, "efs")
        """``<prefix>-<name>-efs``: the ``Name`` tag and the security group's name."""

        lifecycle = []
        if props.transition_to_ia_days is not None:
            lifecycle.append(
                EfsFileSystemLifecyclePolicy(
                    transition_to_ia=_after_days(props.transition_to_ia_days)
                )
            )
            if props.transition_to_primary_on_access:
                lifecycle.append(
                    EfsFileSystemLifecyclePolicy(
                        transition_to_primary_storage_class="AFTER_1_ACCESS"
                    )
                )
        self.file_system = EfsFileSystem(
            self,
            "file-system",
            encrypted=True,
            kms_key_id=props.key.arn,
            performance_mode=props.performance_mode.value,
            throughput_mode=props.throughput_mode.value,
            provisioned_throughput_in_mibps=props.provisioned_throughput_mibps,
            lifecycle_policy=lifecycle or None,
            tags={"Name": self.name},
        )
        self.id: str = self.file_system.id
        self.arn: str = self.file_system.arn
        self.security_group = security_group(
            self,
            name=self.name,
            description=f"EFS {props.name}: NFS 2049 from granted security groups only",
            vpc_id=props.network.vpc.id,
        )
        self.mount_targets: list[EfsMountTarget] = [
            EfsMountTarget(
                self,
                f"mount-target-{az}",
                file_system_id=self.id,
                subnet_id=subnet.id,
                security_groups=[self.security_group.id],
            )
            for az, subnet in zip(
                props.network.availability_zones, props.network.private_subnets, strict=True
            )
        ]
        self.backup_policy = EfsBackupPolicy(
            self,
            "backup-policy",
            file_system_id=self.id,
            backup_policy={"status": "ENABLED" if props.backup else "DISABLED"},
        )
        self._statements: list[Statement] = [
            Statement(
                sid="DenyInsecureTransport",
                effect="Deny",
                principals={"AWS": "*"},
                actions=CLIENT_ACTIONS,
                resources=[self.arn],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        ]
        self.policy = EfsFileSystemPolicy(
            self, "policy", file_system_id=self.id, policy=policy_document(*self._statements)
        )
        self.access_points: dict[str, EfsAccessPoint] = {}
        """The access points by the ``id_`` given to :meth:`access_point`."""
        self._access_point_paths: dict[str, str] = {}
        self._admitted: dict[str, RulePair] = {}
        self._granted: dict[tuple[str, bool, str | None], Statement] = {}

    # --- intent helpers ---------------------------------------------------------------

    def access_point(
        self, id_: str, *, path: str, uid: int, gid: int, permissions: str = "750"
    ) -> EfsAccessPoint:
        """An access point whose root is ``path`` (created on first use, owned by
        ``uid``:``gid`` with mode ``permissions``) and whose every file operation runs as
        ``uid``:``gid``, whatever user the client is. ``path``: absolute, normalised, 1 to
        4 levels, at most 100 characters, no level starting with a dot; each path once.
        ``uid``, ``gid``: not 0 (root). ``permissions``: octal, 3 or 4 digits."""
        where = f"{self.node.path}.access_point({id_})"
        problem = _root_directory_problem(path)
        if problem:
            raise ConfigError(where, "path", path or '""', problem)
        if path in self._access_point_paths.values():
            raise ConfigError(where, "path", path, "give each access point its own directory")
        for field_, value in (("uid", uid), ("gid", gid)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_UID:
                raise ConfigError(where, field_, value, f"use a non-root id, 1 to {MAX_UID}")
        if not re.fullmatch(r"[0-7]{3,4}", permissions):
            raise ConfigError(
                where, "permissions", permissions or '""', 'give an octal mode such as "750"'
            )
        point = EfsAccessPoint(
            self,
            f"access-point-{id_}",
            file_system_id=self.id,
            posix_user=EfsAccessPointPosixUser(uid=uid, gid=gid),
            root_directory=EfsAccessPointRootDirectory(
                path=path,
                creation_info=EfsAccessPointRootDirectoryCreationInfo(
                    owner_uid=uid, owner_gid=gid, permissions=permissions
                ),
            ),
            tags={"Name": f"{self.name}-{id_}"},
        )
        self.access_points[id_] = point
        self._access_point_paths[id_] = path
        return point

    def allow_from(self, peer: Peer, *, description: str) -> RulePair:
        """Admit NFS connections (2049) from ``peer`` (and let ``peer`` send them)."""
        return allow_tcp(
            self, source=peer, target=self.security_group, port=NFS_PORT, description=description
        )

    def grant(
        self,
        principal: IamRole | str,
        *,
        write: bool,
        access_point: EfsAccessPoint | None = None,
    ) -> Statement:
        """Let ``principal`` (a role or its ARN) mount the file system through a mount
        target, and write to it when ``write``; only through ``access_point`` when given.
        Root access is never granted. Added to the file-system policy (after the TLS deny)
        and returned; granting the same twice adds nothing."""
        arn = principal.arn if isinstance(principal, IamRole) else principal
        conditions: dict[str, dict[str, str]] = {
            "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}
        }
        if access_point is not None:
            self._check_own(access_point, "grant")
            conditions["StringEquals"] = {"elasticfilesystem:AccessPointArn": access_point.arn}
        statement = Statement(
            principals={"AWS": arn},
            actions=_client_actions(write),
            resources=[self.arn],
            conditions=conditions,
        )
        # A resource's attribute is a new token at every read: compare what was granted.
        granted = (
            principal if isinstance(principal, str) else principal.node.path,
            write,
            None if access_point is None else access_point.node.path,
        )
        if granted in self._granted:
            return self._granted[granted]
        self._granted[granted] = statement
        self._statements.append(statement)
        self.policy.policy = policy_document(*self._statements)
        return statement

    def client_statements(self, access_point: EfsAccessPoint, *, write: bool) -> list[Statement]:
        """What a client's own role needs to mount ``access_point`` (and write when
        ``write``): ``ClientMount`` (``ClientWrite``) on this file system, only through
        that access point."""
        self._check_own(access_point, "client_statements")
        return [
            Statement(
                actions=_client_actions(write),
                resources=[self.arn],
                conditions={"StringEquals": {"elasticfilesystem:AccessPointArn": access_point.arn}},
            )
        ]

    def admit(
        self,
        client: Peer,
        *,
        role: IamRole | str,
        access_point: EfsAccessPoint,
        write: bool,
        description: str,
    ) -> list[ITerraformDependable]:
        """Everything the file system does for one client: admit its security group on
        2049 (once per group, whatever the number of access points it mounts) and
        :meth:`grant` its ``role``. Returns what the client must start after: the two
        rules, the mount targets and the file-system policy (ECS does not start a task
        whose EFS mount fails). The client's role needs :meth:`client_statements` too."""
        group = security_group_of(client)
        key = group.friendly_unique_id
        if key not in self._admitted:
            self._admitted[key] = self.allow_from(group, description=description)
        self.grant(role, write=write, access_point=access_point)
        return [*self._admitted[key], *self.mount_dependencies]

    def lambda_file_system_config(
        self, access_point: EfsAccessPoint, *, mount_path: str
    ) -> dict[str, str]:
        """A Lambda function's ``file_system_config`` mounting ``access_point`` at
        ``mount_path`` (``/mnt/<name>``, as Lambda requires). The function must also be
        :meth:`admit`-ted, have :meth:`client_statements` in its role, run in this
        network and be created after what :meth:`admit` returns."""
        self._check_own(access_point, "lambda_file_system_config")
        if not re.fullmatch(r"/mnt/[A-Za-z0-9_.-]+", mount_path) or mount_path in (
            "/mnt/.",
            "/mnt/..",
        ):
            raise ConfigError(
                self.node.path, "mount_path", mount_path or '""', "give /mnt/<name> (one level)"
            )
        return {"arn": access_point.arn, "local_mount_path": mount_path}

    @property
    def mount_dependencies(self) -> list[ITerraformDependable]:
        """What must exist before any client mounts: the mount targets and the policy."""
        return [*self.mount_targets, self.policy]

    def owns(self, access_point: EfsAccessPoint) -> bool:
        """Whether ``access_point`` is one of this file system's."""
        return any(point is access_point for point in self.access_points.values())

    def alarms(self) -> list[AlarmSpec]:
        """Capacity warnings (production tier), where the configuration makes them
        meaningful: I/O near the general-purpose limit (``PercentIOLimit``, general purpose
        only), burst credits running out (bursting only), stored data over
        ``storage_alarm_gib`` (when set)."""
        props = self.props
        dims = {"FileSystemId": self.id}
        specs = []
        if props.performance_mode is PerformanceMode.GENERAL_PURPOSE:
            specs.append(
                AlarmSpec(
                    f"efs-{props.name}-io-limit",
                    f"EFS {self.name} used over 95 % of the general-purpose I/O limit for 15 "
                    "minutes: its clients' file operations are being slowed. Look at which "
                    "client does the I/O (ClientConnections, the services' logs).",
                    (EFS_NAMESPACE, "PercentIOLimit", dims),
                    Watch("Maximum", 300, ">", 95, evaluations=3),
                    breakage=False,
                )
            )
        if props.throughput_mode is ThroughputMode.BURSTING:
            specs.append(
                AlarmSpec(
                    f"efs-{props.name}-burst-credits",
                    f"EFS {self.name} has under 192 GB of burst credits (about an hour of "
                    "bursting): then its throughput falls to the baseline its size allows, "
                    "which for a small file system is a crawl. Look at the throughput "
                    "graphs; consider the elastic throughput mode.",
                    (EFS_NAMESPACE, "BurstCreditBalance", dims),
                    Watch("Minimum", 300, "<", BURST_CREDITS_ALARM_BYTES),
                    breakage=False,
                )
            )
        if props.storage_alarm_gib is not None:
            specs.append(
                AlarmSpec(
                    f"efs-{props.name}-storage",
                    f"EFS {self.name} stores over {props.storage_alarm_gib} GiB: more than "
                    "planned (and billed). Look for what writes to it (uploads, caches, "
                    "logs written to the share).",
                    (EFS_NAMESPACE, "StorageBytes", {**dims, "StorageClass": "Total"}),
                    Watch("Maximum", 3600, ">", props.storage_alarm_gib * 2**30),
                    breakage=False,
                )
            )
        return specs

    # --- internals ----------------------------------------------------------------------

    def _check_own(self, access_point: EfsAccessPoint, what: str) -> None:
        if not self.owns(access_point):
            raise ConfigError(
                self.node.path,
                what,
                access_point.node.path,
                "give one of this file system's access points (FileSystem.access_point)",
            )

    def _validate(self, props: FileSystemProps) -> None:
        where = self.node.path
        if not NAME.fullmatch(props.name):
            raise ConfigError(
                where,
                "name",
                props.name or '""',
                "use lower-case letters, digits and hyphens, starting with a letter (40 at most)",
            )
        if not props.network.private_subnets:
            raise ConfigError(where, "network", 0, "give a network with private subnets")
        provisioned = props.throughput_mode is ThroughputMode.PROVISIONED
        mibps = props.provisioned_throughput_mibps
        if provisioned and (mibps is None or not 1 <= mibps <= 3414):
            raise ConfigError(where, "provisioned_throughput_mibps", mibps, "give 1 to 3414 MiB/s")
        if not provisioned and mibps is not None:
            raise ConfigError(
                where,
                "provisioned_throughput_mibps",
                mibps,
                "leave it unset unless throughput_mode is PROVISIONED",
            )
        if (
            props.performance_mode is PerformanceMode.MAX_IO
            and props.throughput_mode is ThroughputMode.ELASTIC
        ):
            raise ConfigError(
                where,
                "performance_mode",
                props.performance_mode.value,
                "use GENERAL_PURPOSE with elastic throughput (EFS offers no maxIO with it)",
            )
        days = props.transition_to_ia_days
        if days is not None and days not in IA_DAYS:
            raise ConfigError(
                where,
                "transition_to_ia_days",
                days,
                f"use one of {', '.join(map(str, IA_DAYS))}, or None",
            )
        if props.storage_alarm_gib is not None and props.storage_alarm_gib < 1:
            raise ConfigError(
                where, "storage_alarm_gib", props.storage_alarm_gib, "give 1 GiB or more"
            )


def _after_days(days: int) -> str:
    return "AFTER_1_DAY" if days == 1 else f"AFTER_{days}_DAYS"


def _client_actions(write: bool) -> list[str]:
    return [CLIENT_MOUNT, CLIENT_WRITE] if write else [CLIENT_MOUNT]


def _root_directory_problem(path: str) -> str | None:
    """Why EFS would refuse ``path`` as an access point's root directory (the fix), or None."""
    if not absolute_directory(path):
        return "give an absolute, normalised directory below / (e.g. /dashboard)"
    levels = path.strip("/").split("/")
    if len(path) > 100 or len(levels) > 4:
        return "use at most 4 levels and 100 characters"
    if any(level.startswith(".") for level in levels) or PATH_FORBIDDEN.search(path):
        return "use no level starting with a dot and none of $#<>;`|&?{}^*"
    return None
