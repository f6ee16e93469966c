"""Secrets Manager rotation for the application's credentials (``apps.rotate.handler``).

Both strategies keep the credentials the services hold valid until the rotation after
next, so rotating never refuses a login in flight:

- **MySQL, alternating users**: the new password goes to the *other* user of the pair
  ``app`` / ``app_clone`` (same grants), and the secret then names that user.
- **ElastiCache, two passwords**: an ElastiCache user holds up to two passwords; the user
  keeps the current one and gains the new one.
"""
