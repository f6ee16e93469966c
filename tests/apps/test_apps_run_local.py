"""``make run`` (scripts/run-local.sh): Ctrl-C, even twice, leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from appsupport import ROOT, wait_until

from apps.devtools.servers import free_port, wait_port

pytestmark = pytest.mark.crash


def _left_behind(pgid: int, workdir_parent: Path) -> list[str]:
    """Processes of the script's process group, and servers whose command line names a
    directory under ``workdir_parent`` (Redis and MariaDB run in sessions of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        if int(fields[2]) == pgid or str(workdir_parent) in cmdline:
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


def test_ctrl_c_twice_leaves_no_process_behind(tmp_path: Path) -> None:
    ports = {name: str(free_port()) for name in ("WEB_PORT", "API_PORT", "CONSUMER_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_", "AWS_"))}
    env.update(ports, TMPDIR=str(tmp_path), PYTHON=str(ROOT / ".venv" / "bin" / "python"))
    with (tmp_path / "run-local.log").open("wb") as out:
        script = subprocess.Popen(
            ["bash", "scripts/run-local.sh"], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        for name in ports:
            wait_port(int(ports[name]), timeout_s=120, proc=script)  # type: ignore[arg-type]
        os.killpg(script.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        wait_until(lambda: "stopping" in (tmp_path / "run-local.log").read_text(), 10, 0.05)
        os.killpg(script.pid, signal.SIGINT)  # and once more while it stops
        script.wait(60)
        left = _left_behind(script.pid, tmp_path)
        log = (tmp_path / "run-local.log").read_text(errors="replace")[-3000:]
        assert not left, "left behind:\n" + "\n".join(left) + f"\n{log}"
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
