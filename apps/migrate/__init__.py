"""Deploy-time database setup: database, schema migration and the least-privilege app user.

Only depends on ``apps.common`` (config, db, schema) and pymysql, so the Lambda zip holds
``apps/__init__.py``, ``apps/common``, ``apps/migrate`` and pymysql.
"""

from apps.migrate.provision import provision

__all__ = ["provision"]
