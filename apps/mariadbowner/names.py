"""Which user and database names the MariaDB owner function accepts (stdlib only: the
``DatabaseOwner`` construct checks the same names before anything is deployed)."""

from __future__ import annotations

import re

USER = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")
"""User names: lowercase letters, digits and ``_``, at most 32 characters (MySQL's limit;
MariaDB allows 80), so no quoting question ever arises."""
DATABASE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
"""Database names: the same characters, at most 64 (the server's limit)."""
RESERVED_PREFIX = "rds"
"""Names RDS keeps (``rdsadmin``, ``rdsrepladmin``, ...)."""
RESERVED_USERS = frozenset({"root", "public", "none", "current_user", "current_role"})
"""The server's own user, and words ``GRANT``/``SET DEFAULT ROLE`` read as keywords."""
RESERVED_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
"""The server's own schemas."""


def user_problem(name: str) -> str | None:
    """Why ``name`` may not be the application user (the fix to give), or None."""
    if USER.match(name) and not name.startswith(RESERVED_PREFIX) and name not in RESERVED_USERS:
        return None
    return (
        "use 1-32 lowercase letters, digits and _ (not starting with a digit or rds; "
        f"not {', '.join(sorted(RESERVED_USERS))})"
    )


def database_problem(name: str) -> str | None:
    """Why ``name`` may not be the application database (the fix to give), or None."""
    if (
        DATABASE.match(name)
        and not name.startswith(RESERVED_PREFIX)
        and name not in RESERVED_DATABASES
    ):
        return None
    return (
        "use 1-64 lowercase letters, digits and _ (not starting with a digit or rds; "
        f"not {', '.join(sorted(RESERVED_DATABASES))})"
    )
