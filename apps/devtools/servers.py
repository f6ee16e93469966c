"""Local, user-space redis-server and MariaDB shaped like what the stacks deploy.

Tests, the benchmark and ``make run`` use these. No Docker: each server runs from a temp
directory on a loopback port and can be stopped, killed and restarted on the same port and
data directory. Works as root (``--user=root``) and as an ordinary user.

Like AWS (see :func:`start_world`):

- **Redis** speaks only TLS (a CA generated here, like ElastiCache's in-transit
  encryption), the ``default`` user is off, and the application user has exactly the ACL
  the ``Queue`` construct gives the ElastiCache user (:func:`queue_access_string`). It runs
  in one of the two shapes the stacks deploy: ``CLUSTER`` (cluster mode, every slot on one
  node, as ElastiCache Serverless: multi-key commands across slots fail with CROSSSLOT) or
  ``PRIMARY`` (a plain primary, as the replication group).
- **MariaDB** requires TLS on every TCP connection (``require_secure_transport``, as the
  RDS parameter group), ends quiet sessions and bounds lock waits as the parameter group
  does (``contract.DB_SERVER_PARAMETERS``), and the application connects as the
  least-privilege user that the deploy-time migration provisions, verifying the server
  certificate.

``python -m apps.devtools.servers DIR`` starts both, prints shell ``export`` lines for the
services, and stops them on SIGTERM/SIGINT (used by scripts/run-local.sh).
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import pymysql
import redis

from apps.common.contract import (
    DB_SERVER_PARAMETERS,
    QUEUE_STREAM,
    EnvVar,
    queue_access_string,
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(
    port: int, timeout_s: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


def _find(name: str, *extra: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in extra:
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(
        f"{name} not found (install the Debian packages in scripts/apt-packages.txt)"
    )


def _password() -> str:
    return secrets.token_urlsafe(24)


# --------------------------------------------------------------------------- TLS

_CA_KEY_USAGE_FLAGS = dict.fromkeys(
    (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "encipher_only", "decipher_only",
    ),
    False,
)  # fmt: skip


@dataclass(frozen=True)
class TlsFiles:
    """A private CA and a server certificate for 127.0.0.1 / localhost signed by it."""

    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server against the CA, hostname included (as the apps do)."""
        return ssl.create_default_context(cafile=str(self.ca))


def make_tls(directory: Path) -> TlsFiles:
    """Generate (once per directory) a CA and a server certificate signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key_usage = x509.KeyUsage(**_CA_KEY_USAGE_FLAGS, key_cert_sign=True, crl_sign=True)
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if all(p.exists() for p in (files.ca, files.cert, files.key)):
        return files
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=30))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_key_usage, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


# --------------------------------------------------------------------------- processes


class _Server:
    proc: subprocess.Popen[bytes] | None = None
    port: int
    log_file: Path

    def _spawn(self, argv: list[str]) -> None:
        log: IO[bytes] = self.log_file.open("ab")
        try:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        try:
            wait_port(self.port, proc=self.proc)
        except Exception:
            self.kill()
            tail = self.log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{argv[0]} failed to start:\n{tail}") from None

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _command(client: redis.Redis, *args: str) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


class RedisShape(enum.Enum):
    """The two shapes the Queue construct deploys."""

    CLUSTER = "cluster"
    """Cluster mode, all 16384 slots on one node: ElastiCache Serverless."""
    PRIMARY = "primary"
    """A plain primary (cluster mode disabled): the replication group."""


@dataclass(frozen=True)
class AclUser:
    name: str
    password: str
    access: str
    """ACL rules without the password, in ElastiCache access-string syntax."""


class RedisServer(_Server):
    """redis-server with AOF ``appendfsync always`` so a restart loses nothing acknowledged.

    With ``tls`` it listens only on a TLS port; with ``users`` the ``default`` user is off
    and only those users (plus an ``admin`` user for the test harness) exist. Users and
    slots survive restarts (they live in the config file and ``nodes.conf``).
    """

    def __init__(
        self,
        base: Path,
        port: int | None = None,
        *,
        shape: RedisShape = RedisShape.PRIMARY,
        tls: TlsFiles | None = None,
        users: Sequence[AclUser] = (),
    ) -> None:
        self.dir = base / f"redis-{shape.value}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.cluster_port = free_port()
        self.shape = shape
        self.tls = tls
        self.users = tuple(users)
        self.admin = AclUser("admin", _password(), "on ~* &* +@all") if users else None
        self.log_file = self.dir / "redis.log"
        self.config_file = self.dir / "redis.conf"
        self.binary = _find("redis-server", "/usr/bin/redis-server")

    @property
    def url(self) -> str:
        """The URL the apps are given (no credentials: those come separately)."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}"

    def client(self, user: AclUser | None = None, **options: Any) -> redis.Redis:
        """A client as ``user`` (default: the admin user, or ``default`` without ACLs)."""
        user = user or self.admin
        kwargs: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, **options}
        if user is not None:
            kwargs.update(username=user.name, password=user.password)
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca))
        return redis.Redis(**kwargs)

    def _config(self) -> str:
        lines = [
            f"dir {self.dir}",
            "bind 127.0.0.1",
            "protected-mode yes",
            "daemonize no",
            "appendonly yes",
            "appendfsync always",
            'save ""',
        ]
        if self.tls is not None:
            lines += [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {self.tls.cert}",
                f"tls-key-file {self.tls.key}",
                f"tls-ca-cert-file {self.tls.ca}",
                "tls-auth-clients no",  # like ElastiCache: server authentication only
            ]
        else:
            lines.append(f"port {self.port}")
        if self.shape is RedisShape.CLUSTER:
            lines += [
                "cluster-enabled yes",
                f"cluster-config-file {self.dir / 'nodes.conf'}",
                f"cluster-port {self.cluster_port}",
                "cluster-node-timeout 5000",
                "cluster-require-full-coverage yes",
            ]
        if self.admin is not None:
            # The default user is off: nobody can log in as it, as on ElastiCache. Its rules
            # still allow everything because Redis 7.0 replays an append-only file as the
            # default user and re-checks ACLs at each EXEC: with "-@all" every MULTI/EXEC in
            # the file (a script's effects, the consumer's dead-letter + XACK + XDEL) was
            # refused on restart and acknowledged writes were lost (redis/redis#14541, fixed
            # upstream in #14545; valkey-io/valkey#3983). ElastiCache keeps no AOF.
            lines.append("user default off resetkeys ~* &* +@all")
            for user in (self.admin, *self.users):
                lines.append(f"user {user.name} reset {user.access} >{user.password}")
        return "\n".join(lines) + "\n"

    def start(self) -> RedisServer:
        self.config_file.write_text(self._config())
        self.config_file.chmod(0o600)
        self._spawn([self.binary, str(self.config_file)])
        deadline = time.monotonic() + 30
        last: Exception | None = None
        while time.monotonic() < deadline:
            client = self.client(socket_timeout=2, decode_responses=True)
            try:
                client.ping()  # LOADING while the AOF is replayed
                if self.shape is RedisShape.CLUSTER:
                    self._assign_slots(client)
                return self
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                last = exc
            except redis.ResponseError as exc:  # CLUSTERDOWN until the slots are assigned
                last = exc
            finally:
                client.close()
            time.sleep(0.05)
        raise TimeoutError(f"redis-server did not become ready: {last}")

    def _assign_slots(self, client: redis.Redis) -> None:
        info = str(_command(client, "CLUSTER", "INFO"))
        if "cluster_slots_assigned:16384" not in info:
            _command(client, "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        deadline = time.monotonic() + 20
        while "cluster_state:ok" not in str(_command(client, "CLUSTER", "INFO")):
            if time.monotonic() > deadline:
                raise TimeoutError("cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def set_passwords(self, user: AclUser, passwords: Sequence[str]) -> None:
        """Replace ``user``'s passwords (at most two, like ElastiCache) on the running
        server and in its config file, so a restart keeps them."""
        admin = self.client()
        try:
            _command(admin, "ACL", "SETUSER", user.name, "resetpass", *(f">{p}" for p in passwords))
        finally:
            admin.close()
        self.users = tuple(
            AclUser(u.name, passwords[-1], u.access) if u.name == user.name else u
            for u in self.users
        )
        text = [
            line
            for line in self._config().splitlines()
            if not line.startswith(f"user {user.name} ")
        ]
        extra = " ".join(f">{p}" for p in passwords)
        text.append(f"user {user.name} reset {user.access} {extra}")
        self.config_file.write_text("\n".join(text) + "\n")


def _cluster_bus_tls(directory: Path, tls: TlsFiles) -> TlsFiles:
    """A client certificate for the cluster bus of :class:`ClusterNode` (``cert``/``key``)
    signed by its own CA, and ``ca``: the server CA plus that one (created once)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    files = TlsFiles(directory / "bundle.pem", directory / "bus.pem", directory / "bus.key")
    if all(p.exists() for p in (files.ca, files.cert, files.key)):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local cluster bus CA")])

    def build(subject: x509.Name, public: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True)
        )
        if ca:
            usage = x509.KeyUsage(**_CA_KEY_USAGE_FLAGS, key_cert_sign=True, crl_sign=True)
            builder = builder.add_extension(usage, critical=True)
        else:
            eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
            builder = builder.add_extension(eku, critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    ca_cert = build(ca_name, ca_key.public_key(), ca=True)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster node")])
    cert = build(name, key.public_key(), ca=False)
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(tls.ca.read_bytes() + ca_cert.public_bytes(pem))
    files.cert.write_bytes(cert.public_bytes(pem))
    files.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.key.chmod(0o600)
    return files


class ClusterNode(RedisServer):
    """One primary of a multi-node cluster (see :class:`RedisClusterServers`): no slots of
    its own at start, and TLS on the cluster bus too (``tls-cluster``), so that CLUSTER
    SLOTS names its TLS port and MIGRATE reaches a TLS-only peer."""

    def __init__(self, base: Path, index: int, *, tls: TlsFiles, users: Sequence[AclUser]) -> None:
        super().__init__(base / f"node{index}", shape=RedisShape.CLUSTER, tls=tls, users=users)

    def _config(self) -> str:
        assert self.tls is not None
        bus = _cluster_bus_tls(self.dir.parent.parent / "bus-tls", self.tls)
        return super()._config() + "\n".join(
            [
                "tls-cluster yes",
                # The bus always asks for a client certificate (whatever tls-auth-clients
                # says): one with clientAuth, from a CA that the bundle adds.
                f"tls-ca-cert-file {bus.ca}",
                f"tls-client-cert-file {bus.cert}",
                f"tls-client-key-file {bus.key}",
                "",
            ]
        )

    def _assign_slots(self, client: redis.Redis) -> None:
        pass  # RedisClusterServers spreads the slots over the nodes

    def node_id(self) -> str:
        admin = self.client(decode_responses=True)
        try:
            return str(_command(admin, "CLUSTER", "MYID"))
        finally:
            admin.close()


class RedisClusterServers:
    """A cluster of ``count`` primaries (no replicas) on loopback, the slots split evenly,
    shaped like a multi-shard ElastiCache cluster: TLS only, the ``default`` user off, the
    same application user on every node. The apps are given the first node's URL (any
    node can tell a cluster client the whole topology). :meth:`migrate_slot` moves one
    slot, keys included, as online resharding does."""

    def __init__(
        self, base: Path, *, tls: TlsFiles, users: Sequence[AclUser], count: int = 3
    ) -> None:
        self.nodes = [ClusterNode(base, i, tls=tls, users=users) for i in range(count)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def running(self) -> bool:
        return all(n.running for n in self.nodes)

    def start(self) -> RedisClusterServers:
        for node in self.nodes:
            node.start()
        first = self.nodes[0].client(decode_responses=True)
        try:
            for node in self.nodes[1:]:
                _command(
                    first, "CLUSTER", "MEET", "127.0.0.1", str(node.port), str(node.cluster_port)
                )
        finally:
            first.close()
        step = 16384 // len(self.nodes)
        for i, node in enumerate(self.nodes):
            low, high = i * step, (16383 if i == len(self.nodes) - 1 else (i + 1) * step - 1)
            admin = node.client(decode_responses=True)
            try:
                info = str(_command(admin, "CLUSTER", "INFO"))
                if "cluster_slots_assigned:16384" not in info:
                    _command(admin, "CLUSTER", "ADDSLOTSRANGE", str(low), str(high))
            finally:
                admin.close()
        self.wait_ok()
        return self

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every node knows every other and reports ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            admin = node.client(decode_responses=True)
            try:
                while True:
                    info = str(_command(admin, "CLUSTER", "INFO"))
                    if (
                        "cluster_state:ok" in info
                        and f"cluster_known_nodes:{len(self.nodes)}" in info
                    ):
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"cluster not ok on {node.port}: {info}")
                    time.sleep(0.05)
            finally:
                admin.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def flushall(self) -> None:
        for node in self.nodes:
            admin = node.client()
            try:
                admin.flushall()
            finally:
                admin.close()

    def owner(self, slot: int) -> int:
        """The index of the node that serves ``slot``."""
        admin = self.nodes[0].client(decode_responses=True)
        try:
            ranges: Any = _command(admin, "CLUSTER", "SLOTS")
        finally:
            admin.close()
        for low, high, primary, *_ in ranges:
            if int(low) <= slot <= int(high):
                port = int(primary[1])
                return next(i for i, n in enumerate(self.nodes) if n.port == port)
        raise LookupError(f"slot {slot} is not served")

    def migrate_slot(self, slot: int, target: int, *, batch: int = 10, pause_s: float = 0.0) -> int:
        """Move ``slot`` and its keys to node ``target`` the way redis-cli's resharding
        does: IMPORTING on the target, MIGRATING on the source, MIGRATE the keys in
        batches (as the target's admin user; ``pause_s`` between batches leaves clients
        time to meet ASK and TRYAGAIN), then SETSLOT NODE on every node. Returns the number
        of keys moved."""
        source = self.owner(slot)
        if source == target:
            return 0
        dst = self.nodes[target]
        assert dst.admin is not None
        clients = [n.client(decode_responses=True, socket_timeout=30) for n in self.nodes]
        try:
            src_id = str(_command(clients[source], "CLUSTER", "MYID"))
            dst_id = str(_command(clients[target], "CLUSTER", "MYID"))
            _command(clients[target], "CLUSTER", "SETSLOT", str(slot), "IMPORTING", src_id)
            _command(clients[source], "CLUSTER", "SETSLOT", str(slot), "MIGRATING", dst_id)
            moved = 0
            while True:
                keys = _command(clients[source], "CLUSTER", "GETKEYSINSLOT", str(slot), str(batch))
                if not keys:
                    break
                _command(
                    clients[source], "MIGRATE", "127.0.0.1", str(dst.port), "", "0", "10000",
                    "AUTH2", dst.admin.name, dst.admin.password, "KEYS", *keys,
                )  # fmt: skip
                moved += len(keys)
                if pause_s:
                    time.sleep(pause_s)
            # The target first, then the source (as redis-cli): the slot is never unowned.
            others = [i for i in range(len(self.nodes)) if i not in {source, target}]
            for i in (target, source, *others):
                _command(clients[i], "CLUSTER", "SETSLOT", str(slot), "NODE", dst_id)
            return moved
        finally:
            for c in clients:
                c.close()


class MariaDBServer(_Server):
    """mariadbd from a fresh datadir; ``root`` has no password and may log in only from
    127.0.0.1 (the harness's master user). With ``tls``, every TCP connection must use TLS
    (``require_secure_transport``), as on RDS with this project's parameter group."""

    def __init__(self, base: Path, port: int | None = None, *, tls: TlsFiles | None = None) -> None:
        self.dir = base / "mariadb"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.datadir = self.dir / "data"
        self.port = port or free_port()
        self.tls = tls
        self.log_file = self.dir / "mariadb.log"
        self.socket = self.dir / "mysqld.sock"
        self.mariadbd = _find("mariadbd", "/usr/sbin/mariadbd")
        self.install_db = _find("mariadb-install-db", "/usr/bin/mariadb-install-db")

    def _user_args(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def start(self) -> MariaDBServer:
        fresh = not (self.datadir / "mysql").exists()
        if fresh:
            subprocess.run(
                [
                    self.install_db,
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    *self._user_args(),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=120,
            )
        tls_args: list[str] = []
        if self.tls is not None:
            tls_args = [
                f"--ssl-ca={self.tls.ca}",
                f"--ssl-cert={self.tls.cert}",
                f"--ssl-key={self.tls.key}",
                "--require-secure-transport=ON",
            ]
        self._spawn(
            [
                self.mariadbd,
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--pid-file={self.dir / 'mariadb.pid'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=48M",
                "--innodb-flush-log-at-trx-commit=1",
                "--max-connections=200",
                # the parameter group's session limits (contract.DB_SERVER_PARAMETERS)
                *(
                    f"--{name.replace('_', '-')}={value}"
                    for name, value in DB_SERVER_PARAMETERS.items()
                ),
                *tls_args,
                *self._user_args(),
            ]
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = self.root_connect()
                break
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            if fresh:
                # mariadb-install-db may create anonymous users; ''@'localhost' would shadow
                # 'app'@'%' for connections from 127.0.0.1. RDS has none: drop them.
                with conn.cursor() as cur:
                    cur.execute("SELECT user, host FROM mysql.user WHERE user = ''")
                    for _user, host in cur.fetchall():
                        cur.execute("DROP USER ''@%s", (host,))
        finally:
            conn.close()
        return self

    def root_connect(
        self, database: str | None = None
    ) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        ctx = self.tls.client_context() if self.tls else None
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password="", database=database,
            connect_timeout=5, autocommit=True, ssl=ctx, ssl_disabled=ctx is None,
        )  # fmt: skip

    def create_database(self, name: str) -> None:
        conn = self.root_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
        finally:
            conn.close()


# --------------------------------------------------------------------------- Secrets Manager


class SecretsManager:
    """A local Secrets Manager endpoint (moto's server, in this process's threads).

    The services find it through ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` (boto3's standard
    per-service endpoint variable) plus dummy credentials: :meth:`runtime_env`, which
    stands in for what ECS gives every task (a region and the task role's credentials).
    """

    REGION = "eu-west-1"

    def __init__(self, port: int | None = None) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = port or free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SecretsManager:
        self._server.start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        self._server.stop()

    def runtime_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.url,
            "AWS_REGION": self.REGION,
            "AWS_DEFAULT_REGION": self.REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "secretsmanager", endpoint_url=self.url, region_name=self.REGION,
            aws_access_key_id="local", aws_secret_access_key="local",  # noqa: S106 (moto)
        )  # fmt: skip

    def put(self, name: str, username: str, password: str) -> str:
        """(Re)create secret ``name`` with one version; returns its ARN."""
        import json

        client = self.client()
        value = json.dumps({"username": username, "password": password})
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        return str(client.create_secret(Name=name, SecretString=value)["ARN"])


class LocalQueueUsers:
    """The rotation function's ElastiCache ``ModifyUser``, on the local redis-server."""

    def __init__(self, server: RedisServer, user_name: str) -> None:
        self.server = server
        self.user_name = user_name

    def set_passwords(self, passwords: Sequence[str]) -> None:
        (user,) = [u for u in self.server.users if u.name == self.user_name]
        self.server.set_passwords(user, passwords)


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    """Redis, MariaDB and Secrets Manager as the stacks deploy them, and the app's
    credentials on them (each also stored in its secret, as the stacks store them)."""

    redis: RedisServer
    maria: MariaDBServer
    tls: TlsFiles
    queue_user: AclUser
    db_user: str
    db_password: str
    secrets: SecretsManager
    stream: str = QUEUE_STREAM
    db_secret: str = "/local/mysql/app"  # noqa: S105 (a name)
    queue_secret: str = "/local/queue/app"  # noqa: S105
    master_secret: str = "/local/mysql/master"  # noqa: S105

    def reset_credentials(self) -> None:
        """Undo any rotation: the initial credentials, current in their secrets, and no
        rotation partner user."""
        self.secrets.put(self.db_secret, self.db_user, self.db_password)
        self.secrets.put(self.queue_secret, self.queue_user.name, self.queue_user.password)
        self.secrets.put(self.master_secret, "root", "")
        (user,) = [u for u in self.redis.users if u.name == self.queue_user.name]
        if user.password != self.queue_user.password:
            self.redis.set_passwords(user, [self.queue_user.password])
        from apps.migrate.provision import partner

        conn = self.maria.root_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("DROP USER IF EXISTS %s@'%%'", (partner(self.db_user),))
        finally:
            conn.close()

    def provision_database(self, name: str, *, drop: bool = False) -> None:
        """Create (or recreate) database ``name`` and the application user on it, exactly
        as the deploy-time migration Lambda does (schema + least-privilege grants)."""
        from apps.migrate.provision import provision

        conn = self.maria.root_connect()
        try:
            if drop:
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            conn.autocommit(False)
            provision(conn, database=name, app_user=self.db_user, app_password=self.db_password)
        finally:
            conn.close()

    def app_env(self, database: str) -> dict[str, str]:
        """What a service needs to reach both servers as the application user."""
        return {
            EnvVar.REDIS_URL: self.redis.url,
            "REDIS_USERNAME": self.queue_user.name,
            "REDIS_PASSWORD": self.queue_user.password,
            EnvVar.REDIS_TLS_CA: str(self.tls.ca),
            EnvVar.QUEUE_STREAM: self.stream,
            EnvVar.DB_HOST: "127.0.0.1",
            EnvVar.DB_PORT: str(self.maria.port),
            EnvVar.DB_NAME: database,
            "DB_USER": self.db_user,
            "DB_PASSWORD": self.db_password,
            EnvVar.DB_TLS: "verify",
            EnvVar.DB_TLS_CA: str(self.tls.ca),
            EnvVar.DB_CREDENTIALS_SECRET: self.db_secret,
            EnvVar.REDIS_CREDENTIALS_SECRET: self.queue_secret,
            **self.secrets.runtime_env(),
        }

    def stop(self) -> None:
        self.maria.stop()
        self.redis.stop()
        self.secrets.stop()


def start_world(base: Path, shape: RedisShape = RedisShape.CLUSTER) -> World:
    """Start Redis (``shape``) and MariaDB with TLS and the application's users."""
    tls = make_tls(base / "tls")
    queue_user = AclUser("app", _password(), queue_access_string(QUEUE_STREAM))
    redis_srv = RedisServer(base, shape=shape, tls=tls, users=[queue_user]).start()
    try:
        maria = MariaDBServer(base, tls=tls).start()
    except Exception:
        redis_srv.stop()
        raise
    world = World(
        redis_srv, maria, tls, queue_user, db_user="app", db_password=_password(),
        secrets=SecretsManager().start(),
    )  # fmt: skip
    world.reset_credentials()
    return world


@dataclass
class ClusterWorld(World):
    """:class:`World` with a multi-node cluster: ``redis`` is its first node (the URL the
    apps get), ``cluster`` all of them."""

    cluster: RedisClusterServers | None = None

    def stop(self) -> None:
        self.maria.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.secrets.stop()


def start_cluster_world(base: Path, nodes: int = 3, *, access: str | None = None) -> ClusterWorld:
    """Like :func:`start_world`, with a cluster of ``nodes`` primaries. The application
    user's ACL is ``access``, by default the contract's for a cluster-aware client (what a
    ``SHARDED`` queue gives its user)."""
    tls = make_tls(base / "tls")
    if access is None:
        access = queue_access_string(QUEUE_STREAM, cluster_client=True)
    queue_user = AclUser("app", _password(), access)
    cluster = RedisClusterServers(base, tls=tls, users=[queue_user], count=nodes).start()
    try:
        maria = MariaDBServer(base, tls=tls).start()
    except Exception:
        cluster.stop()
        raise
    world = ClusterWorld(
        cluster.nodes[0], maria, tls, queue_user, db_user="app", db_password=_password(),
        secrets=SecretsManager().start(), cluster=cluster,
    )  # fmt: skip
    world.reset_credentials()
    return world


def _serve(base: Path) -> int:
    """Start both servers, print ``export`` lines, block until SIGTERM/SIGINT."""
    world = start_world(base)
    world.provision_database("platform")
    done = threading.Event()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for name, value in world.app_env("platform").items():
        print(f"export {name}='{value}'")
    print("READY", flush=True)
    try:
        while not done.wait(0.5):
            if not (world.redis.running and world.maria.running):
                print("a server exited unexpectedly", file=sys.stderr)
                return 1
    finally:
        world.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/apps-local")))  # noqa: S108
