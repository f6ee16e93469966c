"""Deploy-time MariaDB setup: an application's own user, with every privilege on its
database and nothing else.

``owner.py`` does it (pymysql, over the verified TLS of ``apps.common.db``),
``handler.py`` is the Lambda entry point, ``names.py`` (stdlib only) says which user and
database names are accepted, for the ``DatabaseOwner`` construct too. The Lambda zip holds
``apps/__init__.py``, ``apps/common``, ``apps/mariadbowner`` and pymysql
(``constructs_lib.database_owner.MARIADB_BUNDLE``).
"""
