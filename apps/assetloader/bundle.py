"""The asset loader function's deployment package (a zip), built at synth time.

The migration bundle (``constructs_lib.migration.build_bundle``) is not reused: it is one zip
shared by the existing migration and rotation functions, and adding this package to it would
change their code hash (and re-run the migration) in every existing stack; it also carries
pymysql and redis, which this function does not need. This package holds
``apps/__init__.py``, ``apps/common`` and ``apps/assetloader`` (boto3 comes from the Lambda
runtime), built the same reproducible way (sorted names, fixed times and modes).
"""

from __future__ import annotations

import functools
import tempfile
import zipfile
from pathlib import Path

HANDLER = "apps.assetloader.handler.handler"
"""The function's ``handler`` setting."""
BUNDLED_PACKAGES = ("apps/common", "apps/assetloader")
"""Project packages in the zip (their ``*.py`` files), plus ``apps/__init__.py``."""
_EPOCH = (1980, 1, 1, 0, 0, 0)


def bundle_files(project_root: Path) -> list[tuple[str, Path]]:
    """``(name in the zip, source file)`` of every file in the package, sorted."""
    files = [("apps/__init__.py", project_root / "apps" / "__init__.py")]
    for package in BUNDLED_PACKAGES:
        for path in sorted((project_root / package).rglob("*.py")):
            files.append((path.relative_to(project_root).as_posix(), path))
    return sorted(files)


@functools.cache
def build_bundle(project_root: Path) -> Path:
    """Write the zip (byte-for-byte reproducible) to a new temporary directory; its path."""
    out = Path(tempfile.mkdtemp(prefix="pcp-assetloader-")) / "assetloader.zip"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, path in bundle_files(project_root):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, path.read_bytes())
    return out
