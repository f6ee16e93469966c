"""Code shared by the services and the migration Lambda (stdlib + pymysql + redis only).

Keep this package import-light: the migration Lambda ships ``apps/common`` without redis,
so only ``apps.common.redisq`` may import redis.
"""
