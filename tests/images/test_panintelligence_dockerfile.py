"""images/panintelligence/Dockerfile's build step, run by /bin/sh as the build runs it, in a
scratch directory standing for the image (the paths it touches are mapped into it, and
``keytool`` / ``useradd`` / ``chgrp`` / ``chmod`` are small recording scripts, or absent)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT

DOCKERFILE = ROOT / "images" / "panintelligence" / "Dockerfile"
BUNDLE = ROOT / "apps" / "common" / "certs" / "rds-ca-bundle.pem"
MAPPED = ("/etc/ssl/rds/rds-ca-bundle.pem", "/etc/passwd", "/etc/group", "/var/panintelligence")
SYSTEM_TOOLS = ("awk", "grep", "basename", "rm")
"""What the step may take from this machine; everything else it calls is the test's (a
machine's own keytool must never run: it would change this machine's trust store)."""


def build_step() -> str:
    """The Dockerfile's RUN instruction, its line continuations joined."""
    text = DOCKERFILE.read_text()
    (run,) = re.findall(r"^RUN (.*?)(?<!\\)\n", text, re.S | re.M)
    return run.replace("\\\n", "\n")


def run_step(
    tmp_path: Path, service: str, *, tools: tuple[str, ...], users: str = ""
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the step for ``service`` with the recording ``tools``; ``users``: passwd lines the
    image already has besides root's."""
    root = tmp_path / "image"
    (root / "etc/ssl/rds").mkdir(parents=True)
    (root / "etc/ssl/rds/rds-ca-bundle.pem").write_bytes(BUNDLE.read_bytes())
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n" + users)
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "var/panintelligence").mkdir(parents=True)
    (root / "tmp").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    for tool in tools:
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
        script.chmod(0o755)
    step = build_step()
    for path in MAPPED:
        step = step.replace(path, f"{root}{path}")
    step = step.replace("/tmp/rds-", f"{root}/tmp/rds-")
    for tool in SYSTEM_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    result = subprocess.run(
        ["/bin/sh", "-eu", "-c", step],
        env={"PATH": str(bin_dir), "SERVICE": service},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, log


def calls(log: Path, tool: str) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line.startswith(f"{tool} ")]


@pytest.mark.parametrize("service", ["server", "scheduler"])
def test_repository_clients_trust_every_rds_ca(tmp_path: Path, service: str) -> None:
    result, log = run_step(tmp_path, service, tools=("keytool", "useradd", "chgrp", "chmod"))
    assert result.returncode == 0, result.stderr
    imported = calls(log, "keytool")
    assert len(imported) == BUNDLE.read_text().count("BEGIN CERTIFICATE") > 10
    assert all("-importcert -noprompt -cacerts" in c for c in imported)
    assert len({c.split("-alias ")[1].split()[0] for c in imported}) == len(imported)
    assert not list((tmp_path / "image" / "tmp").glob("rds-*"))  # no split files left
    (useradd,) = calls(log, "useradd")
    assert "--uid 10001" in useradd
    assert "--home-dir /tmp" in useradd
    assert calls(log, "chgrp") == [f"chgrp -R 10001 {tmp_path}/image/var/panintelligence"]


def test_a_repository_client_without_a_jvm_fails_the_build(tmp_path: Path) -> None:
    result, _ = run_step(tmp_path, "server", tools=("useradd", "chgrp", "chmod"))
    assert result.returncode != 0
    assert "keytool" in result.stderr


@pytest.mark.parametrize("service", ["renderer", "pirana"])
def test_services_that_never_open_the_database_need_no_jvm_nor_useradd(
    tmp_path: Path, service: str
) -> None:
    result, log = run_step(tmp_path, service, tools=("chgrp", "chmod"))
    assert result.returncode == 0, result.stderr
    assert calls(log, "keytool") == []
    passwd = (tmp_path / "image" / "etc" / "passwd").read_text().splitlines()
    assert passwd[-1] == "pi:x:10001:10001::/tmp:/sbin/nologin"
    assert (tmp_path / "image" / "etc" / "group").read_text().splitlines()[-1] == "pi:x:10001:"


def test_an_image_that_has_uid_10001_keeps_it(tmp_path: Path) -> None:
    existing = "app:x:10001:10001::/home/app:/bin/sh\n"
    result, log = run_step(
        tmp_path, "renderer", tools=("useradd", "chgrp", "chmod"), users=existing
    )
    assert result.returncode == 0, result.stderr
    assert calls(log, "useradd") == []
    passwd = (tmp_path / "image" / "etc" / "passwd").read_text()
    assert passwd == "root:x:0:0:root:/root:/bin/sh\n" + existing


def test_the_image_keeps_the_vendors_user() -> None:
    """The stacks run the images as the vendor does by default (no ECS ``user``): the image
    must not change the vendor's ``USER``; the non-root user it adds is for the hardened
    runtime, which names it in the task definition."""
    instructions = [
        line.split()[0]
        for line in DOCKERFILE.read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    ]
    assert "USER" not in instructions
    # HOME is not forced on the vendor's user (the hardened task sets HOME=/tmp itself).
    assert not re.search(r"^ENV .*HOME", DOCKERFILE.read_text(), re.M)


def test_both_users_may_write_the_application_directory(tmp_path: Path) -> None:
    """The vendor's user keeps owning it (a vendor image whose user is not root still
    works); group 10001, the hardened user's, may read and write it."""
    result, log = run_step(
        tmp_path, "server", tools=("keytool", "useradd", "chown", "chgrp", "chmod")
    )
    assert result.returncode == 0, result.stderr
    app = f"{tmp_path}/image/var/panintelligence"
    assert calls(log, "chown") == []
    assert calls(log, "chgrp") == [f"chgrp -R 10001 {app}"]
    assert calls(log, "chmod") == [f"chmod -R g+rwX {app}"]
    assert [c.split()[:4] for c in calls(log, "useradd")] == [
        ["useradd", "--system", "--uid", "10001"]
    ]
