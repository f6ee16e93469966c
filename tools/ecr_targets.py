#!/usr/bin/env python
"""Print ``-target=`` arguments for what a stack's first apply must create before the rest:
its ECR repositories and, when it has one, the assets bucket (``assets/``) a loader reads.

The first deploy of an environment needs images in its (immutable) repositories before
the services can start (and Panintelligence's assets in their bucket before its loader
runs), and the stack itself creates them. So: create just those, push and upload, then
deploy everything::

    terraform -chdir=cdktf.out/stacks/dev init
    terraform -chdir=cdktf.out/stacks/dev apply $(python tools/ecr_targets.py dev)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def targets(stack_json: dict[str, object]) -> list[str]:
    """The repositories (what ``make deploy`` creates first)."""
    resources = stack_json.get("resource", {})
    assert isinstance(resources, dict)
    out = []
    for type_ in ("aws_ecr_repository", "aws_ecr_lifecycle_policy"):
        out += [f"-target={type_}.{name}" for name in sorted(resources.get(type_, {}))]
    return out


def first_apply_targets(stack_json: dict[str, object]) -> list[str]:
    """The repositories, and every resource of the stack's ``assets`` bucket construct."""
    resources = stack_json.get("resource", {})
    assert isinstance(resources, dict)
    assets = sorted(
        f"-target={type_}.{name}"
        for type_, found in resources.items()
        for name, resource in found.items()
        if "/assets/" in str(resource.get("//", {}).get("metadata", {}).get("path", ""))
    )
    return [*targets(stack_json), *assets]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = ROOT / "cdktf.out" / "stacks" / sys.argv[1] / "cdk.tf.json"
    print(" ".join(first_apply_targets(json.loads(path.read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
