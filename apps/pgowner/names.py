"""Which role and database names the owner function accepts (stdlib only: the
``DatabaseOwner`` construct checks the same names before anything is deployed)."""

from __future__ import annotations

import re

NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""Role and database names: PostgreSQL's unquoted identifiers, lowercase (so a client's
unquoted spelling names the same object)."""
RESERVED_PREFIXES = ("pg_", "rds")
"""Names PostgreSQL (``pg_``) and RDS (``rds_superuser``, ``rdsadmin``, ...) keep."""
RESERVED_NAMES = frozenset({"postgres", "public", "template0", "template1"})


def name_problem(name: str) -> str | None:
    """Why ``name`` may not be the owner role or its database (the fix to give), or None."""
    if NAME.match(name) and not name.startswith(RESERVED_PREFIXES) and name not in RESERVED_NAMES:
        return None
    return (
        "use 1-63 lowercase letters, digits and _ (not starting with a digit, pg_ or rds; "
        f"not {', '.join(sorted(RESERVED_NAMES))})"
    )
