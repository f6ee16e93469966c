"""The asset load: settings, event, S3 listing, key checks, the lock, the file writes and the
marker. The behaviour is described in :mod:`apps.assetloader`."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import stat
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.common.config import Env
from apps.common.errors import ConfigError, env_error

log = logging.getLogger("apps.assetloader")
log.setLevel(logging.INFO)

MARKER_NAME = ".assets-loaded.json"
"""Written last, in the mount's root: its presence means the assets were loaded."""
LOCK_NAME = ".assets-loader.lock"
"""Held (``O_CREAT | O_EXCL``) by the run that loads, in the mount's root."""
TEMP_PREFIX = ".assetloader-tmp-"
"""Temporary files (downloads, backups, the marker) start with this; renamed into place."""
MARKER_FORMAT = 1
HISTORY_LIMIT = 20
"""Earlier loads the marker remembers (without their manifests)."""

# The three names the stack sets. Not in the contract's EnvVar yet: apps/common is part of the
# migration and rotation bundle, so editing contract.py changes those functions (and re-runs
# the migration) in every existing stack.
BUCKET_VAR = "ASSETS_BUCKET"
"""Name (not ARN or URL) of the S3 bucket the assets are copied from (required)."""
PREFIX_VAR = "ASSETS_PREFIX"
"""Key prefix (a folder, e.g. ``assets/``) of the objects to copy; unset: the whole bucket."""
MOUNT_PATH_VAR = "ASSETS_MOUNT_PATH"
"""The function's EFS mount (its ``local_mount_path``, e.g. ``/mnt/assets``) (required)."""
ALLOW_EMPTY = "ASSETS_ALLOW_EMPTY"
LOCK_STALE_S = "ASSETS_LOCK_STALE_S"
LOCK_WAIT_S = "ASSETS_LOCK_WAIT_S"
DEFAULT_LOCK_STALE_S = 900.0
"""The longest a Lambda function runs: a lock untouched this long has no live holder."""
DEFAULT_LOCK_WAIT_S = 300.0

EVENT_FIELDS = ("force", "force_token", "assets_version", "tf")
_TEXT_MAX = 256
_CHUNK = 1 << 20
_LOCK_POLL_S = 0.2
_OUTSIDE = "it could lead out of the mount"
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class LoadError(RuntimeError):
    """The load could not be done safely; nothing after the failing step was written, and
    no marker was, so the next run starts over."""


class UnsafeKeyError(LoadError):
    """Object keys that would not map to a file inside the mount (refused before any write)."""


class UnsafePathError(LoadError):
    """A symlink, file or directory on the file system where the load must write."""


class LockBusyError(LoadError):
    """Another run holds the lock and did not finish within the wait."""


class LockLostError(LoadError):
    """The lock was taken over (this run looked dead): the marker is left to the new holder."""


@dataclass(frozen=True)
class LoaderSettings:
    bucket: str
    prefix: str
    """Ends with ``/``; empty: the whole bucket."""
    mount_path: Path
    allow_empty: bool = False
    """Unset: nothing under the prefix is an error."""
    lock_stale_s: float = DEFAULT_LOCK_STALE_S
    """Unset: 900 s."""
    lock_wait_s: float = DEFAULT_LOCK_WAIT_S
    """Unset: 300 s."""


def load_settings(env: Env) -> LoaderSettings:
    """The settings from the environment (call it when the function runs)."""
    bucket = env.required(BUCKET_VAR).strip()
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise env_error(BUCKET_VAR, repr(bucket), "use the bucket's name (not an ARN or s3:// URL)")
    prefix = env.string(PREFIX_VAR, "")
    if prefix.startswith("/"):
        raise env_error(PREFIX_VAR, repr(prefix), "drop the leading / (S3 keys have none)")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    mount = env.required(MOUNT_PATH_VAR).strip()
    if not os.path.isabs(mount):
        raise env_error(MOUNT_PATH_VAR, repr(mount), "use the absolute local_mount_path, /mnt/...")
    return LoaderSettings(
        bucket=bucket,
        prefix=prefix,
        mount_path=Path(mount),
        allow_empty=env.choice(ALLOW_EMPTY, "false", ("true", "false")) == "true",
        lock_stale_s=env.number(LOCK_STALE_S, DEFAULT_LOCK_STALE_S, minimum=1, maximum=86400),
        lock_wait_s=env.number(LOCK_WAIT_S, DEFAULT_LOCK_WAIT_S, minimum=0, maximum=900),
    )


@dataclass(frozen=True)
class LoadRequest:
    """What the event asks for."""

    force: bool = False
    force_token: str | None = None
    assets_version: str | None = None
    terraform_action: str | None = None
    """``tf.action`` of a Terraform CRUD-scoped invocation: ``create``, ``update``, ``delete``."""


def _event_text(event: Mapping[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > _TEXT_MAX:
        raise ConfigError("event", name, repr(value)[:80], f"use a string of 1 to {_TEXT_MAX}")
    return value


def parse_event(event: object) -> LoadRequest:
    """The request in a Lambda event (``None`` or ``{}``: a plain load)."""
    if event is None:
        return LoadRequest()
    if not isinstance(event, Mapping):
        raise ConfigError(
            "event", "(input)", type(event).__name__, 'send a JSON object, e.g. {"force": false}'
        )
    unknown = sorted(str(k) for k in event if k not in EVENT_FIELDS)
    if unknown:
        raise ConfigError(
            "event", unknown[0], "an unknown field", f"use only {', '.join(EVENT_FIELDS)}"
        )
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise ConfigError("event", "force", repr(force), "use true or false (a JSON boolean)")
    action = None
    tf = event.get("tf")
    if tf is not None:
        if not isinstance(tf, Mapping) or not isinstance(tf.get("action"), str):
            raise ConfigError("event", "tf", repr(tf)[:80], "leave it to Terraform")
        action = str(tf["action"])
    return LoadRequest(
        force=force,
        force_token=_event_text(event, "force_token"),
        assets_version=_event_text(event, "assets_version"),
        terraform_action=action,
    )


@dataclass(frozen=True)
class Asset:
    """One object to copy: its key and its path below the mount (``/``-separated)."""

    key: str
    rel: str
    size: int
    etag: str

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.rel.split("/"))


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def list_assets(s3: Any, bucket: str, prefix: str, *, page_size: int = 1000) -> list[Asset]:
    """Every object under ``prefix`` (all pages), folder placeholders left out, sorted."""
    assets: list[Asset] = []
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
    while True:
        try:
            page = s3.list_objects_v2(**args)
        except Exception as exc:
            if _error_code(exc) == "NoSuchBucket":
                raise env_error(
                    BUCKET_VAR, repr(bucket), "name an existing bucket (none has it)"
                ) from None
            raise
        for item in page.get("Contents", []):
            key = str(item["Key"])
            assets.append(Asset(key, key[len(prefix) :], int(item["Size"]), str(item["ETag"])))
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            break
        args["ContinuationToken"] = token
    return sorted(assets, key=lambda a: a.rel)


def _unsafe(rel: str) -> str | None:
    """Why ``rel`` (a key relative to the prefix) must not be written, or None."""
    if rel.startswith("/"):
        return "an absolute path"
    if "\\" in rel or "\x00" in rel:
        return "a backslash or NUL character"
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "an empty, '.' or '..' path segment"
    if parts[0] == MARKER_NAME or parts[0].startswith(LOCK_NAME):
        return "the loader's own marker or lock file"
    if any(p.startswith(TEMP_PREFIX) for p in parts):
        return "the loader's temporary file name"
    return None


def check_keys(listed: Sequence[Asset]) -> list[Asset]:
    """The assets to write (folder placeholders dropped); :class:`UnsafeKeyError` naming every
    key that would escape the mount, hit the loader's files, or be both a file and a folder."""
    problems: list[str] = []
    assets: list[Asset] = []
    for asset in listed:
        placeholder = asset.rel == "" or asset.rel.endswith("/")
        rel = asset.rel.rstrip("/") if placeholder else asset.rel
        reason = _unsafe(rel) if rel else None
        if reason is not None:
            problems.append(f"{asset.key!r} ({reason})")
        elif not placeholder:
            assets.append(asset)
    files = {a.rel for a in assets}
    for asset in assets:
        parts = asset.parts
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder in files:
                problems.append(f"{asset.key!r} (its folder {folder!r} is also a file)")
                break
    if problems:
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        shown = "; ".join(problems[:10]) + more
        raise UnsafeKeyError(f"refused {len(problems)} object key(s), nothing written: {shown}")
    return assets


def listing_sha256(assets: Sequence[Asset]) -> str:
    """A hash of what is shipped: relative paths, sizes and ETags."""
    digest = hashlib.sha256()
    for a in assets:
        digest.update(f"{a.rel}\t{a.size}\t{a.etag}\n".encode())
    return digest.hexdigest()


# -- the file system, walked by directory descriptors (no symlink is followed) ---------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _fsync_dir(fd: int) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse fsync on a directory
        os.fsync(fd)


def _temp_name() -> str:
    return f"{TEMP_PREFIX}{uuid.uuid4().hex}"


def _write_new(dir_fd: int, name: str, chunks: Iterator[bytes]) -> int:
    """Create ``name`` (must not exist) with ``chunks``, fsynced; the byte count."""
    fd = os.open(name, _NEW_FILE_FLAGS, 0o644, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)
            written = 0
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        return written
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        raise


def _read_chunks(dir_fd: int, name: str) -> Iterator[bytes]:
    fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _same_content(dir_fd: int, a: str, b: str) -> bool:
    if os.stat(a, dir_fd=dir_fd).st_size != os.stat(b, dir_fd=dir_fd).st_size:
        return False
    fa = os.fdopen(os.open(a, _READ_FLAGS, dir_fd=dir_fd), "rb")
    fb = os.fdopen(os.open(b, _READ_FLAGS, dir_fd=dir_fd), "rb")
    with fa, fb:
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


class Tree:
    """The mount's directories, opened one component at a time with ``O_NOFOLLOW``."""

    def __init__(self, mount: Path) -> None:
        try:
            self.root = os.open(mount, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise env_error(
                MOUNT_PATH_VAR, repr(str(mount)),
                "mount the file system there (the function's local_mount_path)",
            ) from None  # fmt: skip
        self._dirs: dict[tuple[str, ...], int] = {(): self.root}
        self._swept: set[tuple[str, ...]] = set()

    def close(self) -> None:
        for fd in self._dirs.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._dirs.clear()

    def directory(self, parts: tuple[str, ...]) -> int:
        """The descriptor of ``parts`` below the mount, created (0755) where missing."""
        if parts in self._dirs:
            return self._dirs[parts]
        parent = self.directory(parts[:-1])
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=parent)
            _fsync_dir(parent)
            fd = self._open_existing(parts, parent)
        except OSError as exc:
            raise self._refused(parts, parent, exc) from None
        self._dirs[parts] = fd
        return fd

    def _open_existing(self, parts: tuple[str, ...], parent: int) -> int:
        try:
            return os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            raise self._refused(parts, parent, exc) from None

    @staticmethod
    def _refused(parts: tuple[str, ...], parent: int, exc: OSError) -> LoadError:
        """Why a folder could not be opened (Linux says ELOOP or ENOTDIR for a symlink)."""
        path = "/".join(parts)
        try:
            mode = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        if stat.S_ISLNK(mode) or exc.errno == errno.ELOOP:
            return UnsafePathError(f"{path!r} is a symlink: refused ({_OUTSIDE})")
        if mode and not stat.S_ISDIR(mode):
            return UnsafePathError(f"{path!r} is a file where a folder of assets goes")
        return LoadError(f"cannot open folder {path!r}: {exc}")

    def sweep(self, parts: tuple[str, ...]) -> int:
        """Remove temporary files a dead run left in the folder ``parts`` (once per run)."""
        if parts in self._swept:
            return 0
        fd = self.directory(parts)
        removed = 0
        for entry in os.listdir(fd):
            if entry.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry, dir_fd=fd)
                    removed += 1
        self._swept.add(parts)
        return removed


def _existing(dir_fd: int, name: str, rel: str) -> os.stat_result | None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{rel!r} is a symlink: refused ({_OUTSIDE})")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{rel!r} exists and is not a regular file")
    return st


def _backup(dir_fd: int, name: str, original: os.stat_result, stamp: str) -> str:
    """Copy ``name`` to ``name.bak-<stamp>`` (``-N`` added while taken), times kept."""
    candidate, n = f"{name}.bak-{stamp}", 0
    while True:
        try:
            os.stat(candidate, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            break
        n += 1
        candidate = f"{name}.bak-{stamp}-{n}"
    temp = _temp_name()
    _write_new(dir_fd, temp, _read_chunks(dir_fd, name))
    os.utime(temp, ns=(original.st_atime_ns, original.st_mtime_ns), dir_fd=dir_fd)
    os.rename(temp, candidate, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    return candidate


# -- the lock -----------------------------------------------------------------------------


class AssetLock:
    """``<mount>/.assets-loader.lock``: created with ``O_CREAT | O_EXCL``, holding a token."""

    def __init__(self, root_fd: int, owner: str, stale_s: float) -> None:
        self.root = root_fd
        self.owner = owner
        self.stale_s = stale_s
        self.token = uuid.uuid4().hex
        self.held = False

    def _read(self, name: str) -> tuple[dict[str, Any], float] | None:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.root)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            raw, mtime = f.read(4096), os.fstat(f.fileno()).st_mtime
        try:
            data = json.loads(raw)
        except ValueError:  # being written, or garbage: judged by its age alone
            data = {}
        return (data if isinstance(data, dict) else {}), mtime

    def acquire(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        content = json.dumps(
            {"token": self.token, "owner": self.owner, "acquired_at": _utc_iso()}
        ).encode()
        while True:
            try:
                _write_new(self.root, LOCK_NAME, iter([content]))
            except FileExistsError:
                seen = self._read(LOCK_NAME)
                if seen is None:
                    continue  # released meanwhile
                holder, mtime = seen
                if time.time() - mtime > self.stale_s:
                    self._take_over_stale(holder.get("token"))
                    continue
                if time.monotonic() >= deadline:
                    raise LockBusyError(
                        f"another load holds {LOCK_NAME} (owner {holder.get('owner', '?')}, "
                        f"since {holder.get('acquired_at', '?')}); retry when it has finished "
                        f"(a lock untouched for {self.stale_s:.0f} s is taken over)"
                    ) from None
                time.sleep(min(_LOCK_POLL_S, max(0.0, deadline - time.monotonic())))
                continue
            self.held = True
            return

    def _take_over_stale(self, token: object) -> None:
        """Move the stale lock away; if what moved is not that stale lock (its holder
        touched it, or it was replaced meanwhile), put it back."""
        moved = f"{LOCK_NAME}.stale-{uuid.uuid4().hex}"
        try:
            os.rename(LOCK_NAME, moved, src_dir_fd=self.root, dst_dir_fd=self.root)
        except FileNotFoundError:
            return
        seen = self._read(moved)
        live = seen is None or (
            seen[0].get("token") != token or time.time() - seen[1] <= self.stale_s
        )
        if live:
            with contextlib.suppress(FileExistsError, FileNotFoundError):
                os.link(moved, LOCK_NAME, src_dir_fd=self.root, dst_dir_fd=self.root)
        else:
            log.warning(
                "took over a stale %s (owner %s, untouched for over %.0f s)",
                LOCK_NAME, seen[0].get("owner", "?") if seen else "?", self.stale_s,
            )  # fmt: skip
        with contextlib.suppress(FileNotFoundError):
            os.unlink(moved, dir_fd=self.root)

    def _mine(self) -> bool:
        seen = self._read(LOCK_NAME)
        return seen is not None and seen[0].get("token") == self.token

    def keep(self) -> None:
        """Check the lock is still this run's and touch it (so it is not judged stale)."""
        if not self._mine():
            self.held = False
            raise LockLostError(
                f"{LOCK_NAME} was taken over by another run; stopping without a marker"
            )
        with contextlib.suppress(FileNotFoundError):
            os.utime(LOCK_NAME, dir_fd=self.root, follow_symlinks=False)

    def release(self) -> None:
        if self.held and self._mine():
            os.unlink(LOCK_NAME, dir_fd=self.root)
        self.held = False


# -- marker ----------------------------------------------------------------------------------


def _utc_iso(seconds: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def read_marker(root_fd: int) -> dict[str, Any] | None:
    """The marker, or None when there is none. An unreadable marker still counts as loaded
    (returned as ``{}``): a reload then needs ``force``."""
    try:
        fd = os.open(MARKER_NAME, _READ_FLAGS, dir_fd=root_fd)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        raw = f.read()
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("%s is not JSON: treated as loaded", MARKER_NAME)
        return {}
    return data if isinstance(data, dict) else {}


def _write_marker(root_fd: int, marker: Mapping[str, Any]) -> None:
    temp = _temp_name()
    body = json.dumps(marker, indent=1, sort_keys=True).encode() + b"\n"
    _write_new(root_fd, temp, iter([body]))
    os.replace(temp, MARKER_NAME, src_dir_fd=root_fd, dst_dir_fd=root_fd)
    _fsync_dir(root_fd)


# -- the load --------------------------------------------------------------------------------


@dataclass
class _Counts:
    copied: int = 0
    skipped: int = 0
    backed_up: int = 0
    kept: int = 0


def _place(
    tree: Tree, s3: Any, bucket: str, asset: Asset, *, force: bool, stamp: str
) -> dict[str, Any]:
    """Download ``asset`` next to its target and put it in place; its manifest entry."""
    folder, name = asset.parts[:-1], asset.parts[-1]
    dir_fd = tree.directory(folder)
    tree.sweep(folder)
    entry: dict[str, Any] = {"size": asset.size, "etag": asset.etag}
    body = s3.get_object(Bucket=bucket, Key=asset.key, IfMatch=asset.etag)["Body"]
    temp = _temp_name()
    try:
        written = _write_new(dir_fd, temp, iter(lambda: bytes(body.read(_CHUNK)), b""))
    finally:
        with contextlib.suppress(Exception):
            body.close()  # the HTTP connection goes back to the pool, or is dropped
    try:
        if written != asset.size:
            raise LoadError(f"{asset.key!r}: got {written} bytes, listed {asset.size}")
        current = _existing(dir_fd, name, asset.rel)
        if current is not None and _same_content(dir_fd, temp, name):
            entry["outcome"] = "unchanged"
        elif current is not None and not force:
            entry["outcome"] = "kept"
        else:
            if current is not None:
                backup = _backup(dir_fd, name, current, stamp)
                entry["backup"] = "/".join((*folder, backup))
                entry["outcome"] = "replaced"
            else:
                entry["outcome"] = "copied"
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            _fsync_dir(dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=dir_fd)
    return entry


def _summary(
    status: str, reason: str, *, objects: int, counts: _Counts, version: str | None,
    listing: str | None, shipped_changed: bool, settings: LoaderSettings,
) -> dict[str, Any]:  # fmt: skip
    return {
        "status": status,
        "reason": reason,
        "objects": objects,
        "copied": counts.copied,
        "skipped": counts.skipped,
        "backed_up": counts.backed_up,
        "kept": counts.kept,
        "version": version,
        "listing_sha256": listing,
        "shipped_changed": shipped_changed,
        "marker": str(settings.mount_path / MARKER_NAME),
    }


def _report(summary: Mapping[str, Any], *, warn: bool = False) -> None:
    level = logging.WARNING if warn else logging.INFO
    log.log(level, "asset load %s: %s", summary["status"], json.dumps(summary, sort_keys=True))


def load_assets(
    settings: LoaderSettings,
    request: LoadRequest,
    *,
    s3: Any,
    owner: str = "unknown",
    lock_wait_s: float | None = None,
    page_size: int = 1000,
) -> dict[str, Any]:
    """Load, skip or force-reload the assets as :mod:`apps.assetloader` describes; the answer.

    ``s3``: a boto3 S3 client; ``owner``: who holds the lock (shown to a waiting run);
    ``lock_wait_s``: how long to wait for the lock (unset: the settings'); ``page_size``: keys
    per ``list_objects_v2`` page."""
    none = _Counts()
    if request.terraform_action == "delete":
        summary = _summary(
            "skipped", "Terraform deletes the invocation: nothing to load", objects=0,
            counts=none, version=None, listing=None, shipped_changed=False, settings=settings,
        )  # fmt: skip
        _report(summary)
        return summary
    assets = check_keys(list_assets(s3, settings.bucket, settings.prefix, page_size=page_size))
    where = f"s3://{settings.bucket}/{settings.prefix}"
    if not assets and not settings.allow_empty:
        raise env_error(
            PREFIX_VAR, f"{settings.prefix!r} (no objects in {where})",
            f"upload the assets there, fix the prefix, or set {ALLOW_EMPTY}=true",
        )  # fmt: skip
    listing = listing_sha256(assets)
    tree = Tree(settings.mount_path)
    try:
        lock = AssetLock(tree.root, owner, settings.lock_stale_s)
        lock.acquire(settings.lock_wait_s if lock_wait_s is None else lock_wait_s)
        try:
            return _load_locked(settings, request, s3, tree, lock, assets, listing)
        finally:
            lock.release()
    finally:
        tree.close()


def _load_locked(
    settings: LoaderSettings, request: LoadRequest, s3: Any, tree: Tree, lock: AssetLock,
    assets: Sequence[Asset], listing: str,
) -> dict[str, Any]:  # fmt: skip
    marker = read_marker(tree.root)
    objects = len(assets)
    if not assets:
        summary = _summary(
            "skipped", f"nothing under s3://{settings.bucket}/{settings.prefix} "
            f"({ALLOW_EMPTY}=true): no marker written", objects=0, counts=_Counts(),
            version=None if marker is None else marker.get("version"), listing=listing,
            shipped_changed=False, settings=settings,
        )  # fmt: skip
        _report(summary)
        return summary
    if marker is None:
        force = request.force
    else:
        token_new = request.force_token is not None and request.force_token != marker.get(
            "force_token"
        )
        force = request.force or token_new
    version = request.assets_version or f"sha256:{listing}"
    if marker is not None and not force:
        changed = marker.get("listing_sha256") != listing or (
            request.assets_version is not None and request.assets_version != marker.get("version")
        )
        summary = _summary(
            "skipped",
            f"already loaded at {marker.get('loaded_at', '?')} (version "
            f"{marker.get('version', '?')}): nothing changed"
            + ("; the shipped assets differ: invoke with a new force_token to restore them"
               if changed else ""),
            objects=objects, counts=_Counts(skipped=objects), version=marker.get("version"),
            listing=listing, shipped_changed=changed, settings=settings,
        )  # fmt: skip
        _report(summary, warn=changed)
        return summary

    status = "forced" if force else "loaded"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    counts, manifest = _Counts(), dict[str, Any]()
    tree.sweep(())
    for done, asset in enumerate(assets):
        try:
            entry = _place(tree, s3, settings.bucket, asset, force=force, stamp=stamp)
            lock.keep()
        except BaseException as exc:
            log.error(
                "asset load failed at %r after %d of %d objects (%s); no marker written: "
                "the next invocation loads again", asset.key, done, objects, exc,
            )  # fmt: skip
            raise
        manifest[asset.rel] = entry
        outcome = entry["outcome"]
        if outcome in ("copied", "replaced"):
            counts.copied += 1
        else:
            counts.skipped += 1
        counts.backed_up += outcome == "replaced"
        counts.kept += outcome == "kept"
    lock.keep()
    history = list(marker.get("history", [])) if isinstance(marker, dict) else []
    if marker:
        history.append({k: v for k, v in marker.items() if k not in ("manifest", "history")})
    _write_marker(
        tree.root,
        {
            "format": MARKER_FORMAT,
            "status": status,
            "version": version,
            "listing_sha256": listing,
            "bucket": settings.bucket,
            "prefix": settings.prefix,
            "loaded_at": _utc_iso(),
            "force_token": request.force_token
            if request.force_token is not None
            else (marker or {}).get("force_token"),
            "objects": objects,
            "copied": counts.copied,
            "backed_up": counts.backed_up,
            "kept": counts.kept,
            "manifest": manifest,
            "history": history[-HISTORY_LIMIT:],
        },
    )
    if counts.kept:
        reason = (
            f"{counts.kept} existing file(s) differ from the shipped ones and were kept "
            "(a forced reload restores them, with backups)"
        )
    elif force:
        reason = "shipped assets restored; changed files backed up, added files untouched"
    else:
        reason = "no marker: assets loaded"
    summary = _summary(
        status, reason, objects=objects, counts=counts, version=version, listing=listing,
        shipped_changed=False, settings=settings,
    )  # fmt: skip
    _report(summary, warn=counts.kept > 0)
    return summary
