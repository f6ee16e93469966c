"""Local, user-space redis-server and MariaDB for tests, the benchmark and ``make run``.

No Docker: each server runs from a temp directory on a loopback port and can be stopped,
killed and restarted on the same port and data directory. Works as root (``--user=root``)
and as an ordinary user.

``python -m apps.devtools.servers DIR`` starts both, prints shell ``export`` lines for the
services, and stops them on SIGTERM/SIGINT (used by scripts/run-local.sh).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO

import pymysql


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


class RedisServer(_Server):
    """redis-server with AOF ``appendfsync always`` so a restart loses nothing acknowledged."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.dir = base / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_file = self.dir / "redis.log"
        self.binary = _find("redis-server", "/usr/bin/redis-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self._spawn(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--daemonize", "no",
                "--protected-mode", "yes",
                "--unixsocket", "",
            ]
        )  # fmt: skip
        # Wait until the AOF is loaded (LOADING replies) before declaring it ready.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError("redis-server did not answer PING")


class MariaDBServer(_Server):
    """mariadbd from a fresh datadir; root has no password on 127.0.0.1 (local use only)."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.dir = base / "mariadb"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.datadir = self.dir / "data"
        self.port = port or free_port()
        self.log_file = self.dir / "mariadb.log"
        self.socket = self.dir / "mysqld.sock"
        self.mariadbd = _find("mariadbd", "/usr/sbin/mariadbd")
        self.install_db = _find("mariadb-install-db", "/usr/bin/mariadb-install-db")

    def _user_args(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def start(self) -> MariaDBServer:
        if not (self.datadir / "mysql").exists():
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
                *self._user_args(),
            ]
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.root_connect().close()
                return self
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def root_connect(
        self, database: str | None = None
    ) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password="", database=database,
            connect_timeout=5, autocommit=True,
        )  # fmt: skip

    def create_database(self, name: str) -> None:
        conn = self.root_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
        finally:
            conn.close()


def _serve(base: Path) -> int:
    """Start both servers, print ``export`` lines, block until SIGTERM/SIGINT."""
    redis_srv = RedisServer(base).start()
    maria = MariaDBServer(base).start()
    maria.create_database("platform")
    done = threading.Event()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"export REDIS_URL={redis_srv.url}")
    print(
        f"export DB_HOST=127.0.0.1 DB_PORT={maria.port} DB_NAME=platform DB_USER=root DB_PASSWORD="
    )
    print("READY", flush=True)
    try:
        while not done.wait(0.5):
            if not (redis_srv.running and maria.running):
                print("a server exited unexpectedly", file=sys.stderr)
                return 1
    finally:
        maria.stop()
        redis_srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/apps-local")))  # noqa: S108
