#!/usr/bin/env python
"""Print ``-target=`` arguments for the ECR repositories of one synthesized stack.

The first deploy of an environment needs images in its (immutable) repositories before
the services can start, and the repositories are created by the environment stack
itself. So: create just the repositories, push, then deploy everything::

    terraform -chdir=cdktf.out/stacks/dev init
    terraform -chdir=cdktf.out/stacks/dev apply $(python tools/ecr_targets.py dev)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def targets(stack_json: dict[str, object]) -> list[str]:
    resources = stack_json.get("resource", {})
    assert isinstance(resources, dict)
    out = []
    for type_ in ("aws_ecr_repository", "aws_ecr_lifecycle_policy"):
        out += [f"-target={type_}.{name}" for name in sorted(resources.get(type_, {}))]
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = ROOT / "cdktf.out" / "stacks" / sys.argv[1] / "cdk.tf.json"
    print(" ".join(targets(json.loads(path.read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
