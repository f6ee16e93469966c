"""The vendored Amazon RDS CA bundle (apps/common/certs/) is intact, current and usable."""

from __future__ import annotations

import datetime
import hashlib
import json
import ssl
from pathlib import Path

from cryptography import x509

from apps.common import contract
from environments import ENVIRONMENTS

CERTS = Path(__file__).resolve().parents[2] / "apps" / "common" / "certs"
BUNDLE = CERTS / "rds-ca-bundle.pem"
PIN = json.loads((CERTS / "rds-ca-bundle.json").read_text())
WARNING_DAYS = 90
"""CI fails this long before a CA in the bundle expires: time to refresh it."""


def certificates() -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(BUNDLE.read_bytes())


def test_bundle_matches_its_pin() -> None:
    assert hashlib.sha256(BUNDLE.read_bytes()).hexdigest() == PIN["sha256"]
    assert len(certificates()) == PIN["certificates"]


def test_every_certificate_is_a_current_amazon_rds_ca() -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=WARNING_DAYS)
    for cert in certificates():
        name = cert.subject.rfc4514_string()
        assert "Amazon RDS" in name
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca, name
        assert cert.not_valid_after_utc > soon, f"{name} expires: run scripts/refresh-rds-ca.py"


def test_every_region_the_environments_use_has_its_roots() -> None:
    names = {c.subject.rfc4514_string() for c in certificates()}
    for config in ENVIRONMENTS.values():
        for kind in ("RSA2048", "RSA4096", "ECC384"):
            wanted = f"Amazon RDS {config.region} Root CA {kind} G1"
            assert any(wanted in n for n in names), wanted


def test_tls_loads_the_bundle_at_the_path_the_apps_are_given() -> None:
    assert contract.RDS_CA_BUNDLE.endswith("apps/common/certs/rds-ca-bundle.pem")
    context = ssl.create_default_context(cafile=str(BUNDLE))
    assert context.cert_store_stats()["x509_ca"] == PIN["certificates"]
