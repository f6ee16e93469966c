"""Deploy-time PostgreSQL setup: an application's own login role, owner of its database.

``owner.py`` does it (pg8000: pure Python, with scramp, asn1crypto, dateutil and six),
``handler.py`` is the Lambda entry point, ``names.py`` (stdlib only) says which role and
database names are accepted, for the ``DatabaseOwner`` construct too. The Lambda zip holds
``apps/__init__.py``, ``apps/common``, ``apps/pgowner`` and those libraries
(``constructs_lib.database_owner.BUNDLE``). Nothing here imports pg8000 at package import.
"""
