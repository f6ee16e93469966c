"""Copies shipped assets (themes, images, SVG files, JDBC drivers, locale files) from an S3
prefix onto a file system (EFS) once, safely: a re-run or a re-deploy never overwrites what
users changed there, and a forced reload is explicit and recoverable.

Entry point: the Lambda handler ``apps.assetloader.handler.handler``
(:mod:`apps.assetloader.handler`); the work is :func:`load_assets`. Only ``apps.common``
(stdlib) and boto3 (from the Lambda runtime) are needed: see :mod:`apps.assetloader.bundle`.

**Configuration** (environment, read when the handler runs, never at import):

- ``ASSETS_BUCKET`` (required): the bucket's name. A bucket that does not exist is an error.
- ``ASSETS_PREFIX`` (unset: the whole bucket): a folder; ``assets`` means ``assets/``. Object
  ``<prefix>a/b.css`` is copied to ``<mount>/a/b.css``. Keys ending in ``/`` (folder
  placeholders) are skipped.
- ``ASSETS_MOUNT_PATH`` (required): the function's EFS mount (``/mnt/assets``); it must be an
  existing directory (the loader never creates it: a missing mount is an error, not a copy
  onto the function's own disk).
- ``ASSETS_ALLOW_EMPTY`` (``false``): nothing under the prefix is an error (a wrong prefix or
  assets not uploaded yet); ``true`` accepts it, loads nothing and writes no marker, so the
  first invocation that finds objects loads them.
- ``ASSETS_LOCK_STALE_S`` (900), ``ASSETS_LOCK_WAIT_S`` (300): see *Concurrency*.

**Event** (Terraform's ``aws_lambda_invocation`` input; every field optional, others refused
so that a misspelt ``force`` is an error rather than a silent no-op)::

    {"force": false, "force_token": "2024-06-restore", "assets_version": "<hash or version>"}

``force`` is a JSON boolean; ``force_token`` and ``assets_version`` are strings (``""`` is the
same as unset). Terraform's ``tf`` field (``lifecycle_scope = "CRUD"``) is accepted; its
``"action": "delete"`` loads nothing.

**What a run does.** Every object under the prefix is listed (pages of
``list_objects_v2``) and checked first: a key whose path relative to the prefix is absolute,
has an empty, ``.`` or ``..`` segment, a backslash or NUL, names the loader's own files, or is
both a file and a folder refuses the whole run before anything is written. Then, holding the
lock, the marker ``<mount>/.assets-loaded.json`` decides:

- *no marker*: **load**. Each object is downloaded (``IfMatch`` its listed ETag, so an object
  replaced meanwhile fails the run) into a temporary file in its target directory, fsynced and
  renamed over the target: a file is never half written. A target that does not exist is
  created; one with the shipped content is left as it is; one with other content (e.g. files
  an earlier, unguarded loader wrote and users then edited) is **kept**, never overwritten.
  Directories are walked without following symlinks: a symlink (or a file) where a
  directory or an asset goes fails the run, so nothing is written outside the mount.
- *marker present*: **skip**. Nothing on the file system changes (no file is written, touched
  or re-created, even one a user deleted); the answer and one log line say "already loaded",
  and whether the shipped listing (or ``assets_version``) differs from the loaded one.
- *force*: ``"force": true``, or a ``force_token`` different from the marker's (a token is
  consumed once: the marker records it, so re-invoking with the same input skips). A forced
  run restores the shipped assets: like a load, but a target whose content differs from the
  shipped object **is overwritten**, after its content is copied to
  ``<name>.bak-<UTC time YYYYmmddTHHMMSSZ>`` (with ``-1``, ``-2`` ... if taken; the backup keeps
  the file's times), so a forced reload is recoverable. Files that are not shipped (added by
  users, or no longer in the bucket) are never deleted or changed. A force on a mount without
  a marker works the same way.

The marker (format 1: ``version``, ``listing_sha256``, ``bucket``, ``prefix``,
``loaded_at``, ``status``, ``force_token``, ``objects``, ``copied``, ``backed_up``, ``kept``,
``manifest`` {relative path: ``size``, ``etag``, ``outcome`` copied|unchanged|kept|replaced,
``backup``}, ``history`` of earlier loads) is written atomically and **last**, after every
object is in place: a run that dies earlier leaves no marker, and the next run loads again
(files already in place are left as they are). ``version`` is the event's ``assets_version``,
else ``sha256:<listing_sha256>`` (a hash of the relative paths, sizes and ETags).

**Concurrency.** A run holds ``<mount>/.assets-loader.lock``, created with
``O_CREAT | O_EXCL`` and holding a random token and the owner (the Lambda request id); the
holder touches it after every object and checks the token is still its own before writing the
marker. A second run waits for it (``ASSETS_LOCK_WAIT_S``, capped by the function's
remaining time), then reads the marker and skips; when the wait ends first it fails with
:class:`LockBusyError` naming the holder. A lock untouched for ``ASSETS_LOCK_STALE_S`` (900 s:
the longest a Lambda runs) belongs to a dead run and is taken over (renamed away, then checked
to be that stale lock, else put back). Temporary files a dead run left in the directories
being loaded are removed.

**Answer** (JSON-able; also logged as one line)::

    {"status": "loaded"|"skipped"|"forced", "reason": str, "objects": int, "copied": int,
     "skipped": int, "backed_up": int, "kept": int, "version": str | None,
     "listing_sha256": str | None, "shipped_changed": bool, "marker": str}

``copied``: files written (created, or replaced on force); ``skipped``: shipped objects not
written (already identical, kept, or the whole run skipped); ``backed_up``: backups made;
``kept``: differing files left alone by a load without force. ``version``: the marker's version
after the run (``None`` when no marker exists).

**Errors** (the invocation fails, so ``terraform apply`` fails with the message):
:class:`~apps.common.errors.ConfigError` for a missing or wrong variable, event field, bucket
(``NoSuchBucket``), mount, or an empty prefix; :class:`UnsafeKeyError`, :class:`UnsafePathError`,
:class:`LockBusyError`, :class:`LockLostError` (all :class:`LoadError`); S3 errors
(access denied, ``PreconditionFailed``) as boto3 raises them.
"""

from apps.assetloader.loader import (
    LOCK_NAME,
    MARKER_NAME,
    LoadError,
    LoaderSettings,
    LoadRequest,
    LockBusyError,
    LockLostError,
    UnsafeKeyError,
    UnsafePathError,
    load_assets,
    load_settings,
    parse_event,
)

__all__ = [
    "LOCK_NAME",
    "MARKER_NAME",
    "LoadError",
    "LoadRequest",
    "LoaderSettings",
    "LockBusyError",
    "LockLostError",
    "UnsafeKeyError",
    "UnsafePathError",
    "load_assets",
    "load_settings",
    "parse_event",
]
