"""Print a hash-pinned requirements file for the services from Pipfile.lock (stdlib only).

Used by the Dockerfiles so images get exactly the locked versions of the application's
dependencies, without the infrastructure's (cdktf, jsii...):

    python lockreq.py Pipfile.lock > requirements.txt
    pip install --require-hashes --no-deps -r requirements.txt

APP_PACKAGES is the dependency closure of APP_ROOTS; tests/apps checks it against the
installed metadata.
"""

from __future__ import annotations

import json
import sys

APP_ROOTS = ("flask", "waitress", "redis", "hiredis", "pymysql", "cryptography", "boto3")
"""What the services import directly (Pipfile [packages] minus the infrastructure)."""

APP_PACKAGES = (
    "blinker",
    "boto3",
    "botocore",
    "cffi",
    "click",
    "cryptography",
    "flask",
    "hiredis",
    "itsdangerous",
    "jinja2",
    "jmespath",
    "markupsafe",
    "pycparser",
    "pymysql",
    "python-dateutil",
    "redis",
    "s3transfer",
    "six",
    "urllib3",
    "waitress",
    "werkzeug",
)


def requirements(lock_text: str) -> str:
    default = json.loads(lock_text)["default"]
    lines = []
    for name in APP_PACKAGES:
        entry = default.get(name)
        if entry is None:
            raise SystemExit(f"{name} is not in Pipfile.lock [default]")
        hashes = " ".join(f"--hash={h}" for h in entry.get("hashes", []))
        marker = f"; {entry['markers']}" if entry.get("markers") else ""
        lines.append(f"{name}{entry['version']}{marker} {hashes}".rstrip())
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "Pipfile.lock"
    with open(path, encoding="utf-8") as fh:
        sys.stdout.write(requirements(fh.read()))
