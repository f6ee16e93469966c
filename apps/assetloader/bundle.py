"""What the asset loader function's deployment package (a zip) holds.

The zip is built at synth time the one way the project builds Lambda zips,
``constructs_lib.migration.build_bundle`` (reproducible: sorted names, fixed times and
modes), from ``constructs_lib.asset_loader.BUNDLE``, which takes its contents from here. It
is a package of its own, not the migration one: adding this code to that shared zip would
change the migration and rotation functions' code hash (and re-run the migration) in every
existing stack, and would carry pymysql and redis, which this function does not need.

It holds ``apps/__init__.py``, ``apps/common`` and ``apps/assetloader``; no third-party
module and no data file (boto3 comes from the Lambda runtime). This module only names them:
it imports nothing, so the app tests stay free of the CDKTF bindings.
"""

from __future__ import annotations

HANDLER = "apps.assetloader.handler.handler"
"""The function's ``handler`` setting."""
BUNDLED_PACKAGES = ("apps/common", "apps/assetloader")
"""Project packages in the zip (their ``*.py`` files), plus ``apps/__init__.py``."""
BUNDLED_MODULES: tuple[str, ...] = ()
"""Third-party modules in the zip: none (boto3 is the runtime's)."""
BUNDLED_DATA: tuple[str, ...] = ()
"""Non-Python project files in the zip: none."""
