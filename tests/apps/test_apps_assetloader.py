"""The asset loader (``apps/assetloader``) against a real directory standing in for the EFS
mount and moto's S3 served over HTTP (``ThreadedMotoServer``): the code under test builds its
boto3 client as in Lambda and talks HTTP to it, as to AWS.

Every test names, in its docstring, the naive implementation it catches.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from apps.assetloader import (
    LOCK_NAME,
    MARKER_NAME,
    LoaderSettings,
    LoadRequest,
    LockBusyError,
    LockLostError,
    UnsafeKeyError,
    UnsafePathError,
    load_assets,
    parse_event,
)
from apps.assetloader import bundle as bundle_module
from apps.assetloader.handler import handler, lock_wait_s
from apps.assetloader.loader import TEMP_PREFIX
from apps.common.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
BUCKET = "pi-assets-test"
PREFIX = "assets/"
DRIVER = bytes((i * 7919) % 251 for i in range(3 * (1 << 20) // 2))  # 1.5 MiB: several chunks
SHIPPED = {
    "images/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>\n',
    "index.html": b"<!doctype html><title>dashboard</title>\n",
    "jdbc/driver.jar": DRIVER,
    "locale/de.properties": "gruss=Grüß Gott\n".encode(),
    "themes/dark/theme.css": b"body { color: #fff; }\n",
}
"""The shipped assets, relative to the prefix (sorted: the load order)."""
NOT_SHIPPED = {
    "assets-old/themes/old.css": b"outside the prefix folder",
    "other/readme.txt": b"outside the prefix",
    "assets/empty/": b"",  # a folder placeholder
}
SUMMARY_KEYS = {
    "status", "reason", "objects", "copied", "skipped", "backed_up", "kept", "version",
    "listing_sha256", "shipped_changed", "marker",
}  # fmt: skip


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client of a fresh moto S3 (the environment points every boto3 client at it) with
    the shipped assets and some objects that are not."""
    for name, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))  # noqa: S310
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    for rel, body in SHIPPED.items():
        client.put_object(Bucket=BUCKET, Key=PREFIX + rel, Body=body)
    for key, body in NOT_SHIPPED.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return client


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    path = tmp_path / "efs"
    path.mkdir()
    return path


def settings_for(mount: Path, **changes: Any) -> LoaderSettings:
    base: dict[str, Any] = {"bucket": BUCKET, "prefix": PREFIX, "mount_path": mount}
    return LoaderSettings(**{**base, "lock_wait_s": 5.0, **changes})


def run(s3: Any, mount: Path, *, page_size: int = 2, **request: Any) -> dict[str, Any]:
    """One load (pages of 2 keys: every listing takes several pages)."""
    return load_assets(settings_for(mount), LoadRequest(**request), s3=s3, page_size=page_size)


def files(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every regular file below ``root``: content, mtime (ns) and inode."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            st = path.lstat()
            found[path.relative_to(root).as_posix()] = (
                path.read_bytes(),
                st.st_mtime_ns,
                st.st_ino,
            )
    return found


def contents(root: Path) -> dict[str, bytes]:
    return {rel: data for rel, (data, _, _) in files(root).items()}


def marker(mount: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((mount / MARKER_NAME).read_text())
    return data


def debris(mount: Path) -> list[str]:
    """Temporary files and locks left behind."""
    return [
        rel for rel in files(mount)
        if Path(rel).name.startswith(TEMP_PREFIX) or Path(rel).name.startswith(LOCK_NAME)
    ]  # fmt: skip


class S3Proxy:
    """A real client with hooks: count calls, slow or break a download."""

    def __init__(
        self, client: Any, *, break_at: int | None = None, delay_s: float = 0.0,
        before_get: Callable[[int], None] | None = None,
    ) -> None:  # fmt: skip
        self.client, self.break_at, self.delay_s = client, break_at, delay_s
        self.before_get = before_get
        self.gets = 0
        self.lists = 0

    def list_objects_v2(self, **kwargs: Any) -> Any:
        self.lists += 1
        return self.client.list_objects_v2(**kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        self.gets += 1
        if self.before_get is not None:
            self.before_get(self.gets)
        time.sleep(self.delay_s)
        reply = self.client.get_object(**kwargs)
        if self.gets == self.break_at:
            reply["Body"] = BrokenBody(reply["Body"])
        return reply


class BrokenBody:
    """Gives the first bytes, then fails like a dropped connection (the crash)."""

    def __init__(self, body: Any) -> None:
        self.body, self.calls = body, 0

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 1:
            raise ConnectionError("simulated crash mid-download")
        data: bytes = self.body.read(100)
        return data


def test_handler_first_load_copies_every_shipped_object(
    s3: Any, mount: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end through the Lambda handler (its own boto3 client, settings from the
    environment). Catches: a prefix without its ``/`` (``assets-old/`` copied), folder
    placeholders written as files, a marker without the manifest, debris left behind."""
    monkeypatch.setenv("ASSETS_BUCKET", BUCKET)
    monkeypatch.setenv("ASSETS_PREFIX", "assets")
    monkeypatch.setenv("ASSETS_MOUNT_PATH", str(mount))
    context = SimpleNamespace(aws_request_id="req-1", get_remaining_time_in_millis=lambda: 60_000)

    result = handler({"force": False, "assets_version": "v1"}, context)

    json.dumps(result)
    assert set(result) == SUMMARY_KEYS
    assert result["status"] == "loaded"
    assert (result["objects"], result["copied"], result["skipped"]) == (len(SHIPPED), 5, 0)
    assert (result["backed_up"], result["kept"], result["version"]) == (0, 0, "v1")
    assert contents(mount) == {**SHIPPED, MARKER_NAME: (mount / MARKER_NAME).read_bytes()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["efs"]
    loaded = marker(mount)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]
    expected = {
        o["Key"][len(PREFIX) :]: {"size": o["Size"], "etag": o["ETag"], "outcome": "copied"}
        for o in listed
        if not o["Key"].endswith("/")
    }
    assert loaded["manifest"] == expected
    assert (loaded["version"], loaded["objects"], loaded["bucket"]) == ("v1", 5, BUCKET)
    assert loaded["prefix"] == PREFIX
    assert loaded["listing_sha256"] == result["listing_sha256"]
    assert debris(mount) == []


def test_the_listing_is_paged(s3: Any, mount: Path) -> None:
    """Catches: one ``list_objects_v2`` call (only its first page loaded)."""
    proxy = S3Proxy(s3)
    result = run(proxy, mount, page_size=2)
    assert proxy.lists == 3  # 5 objects and a placeholder, 2 per page
    assert result["copied"] == len(SHIPPED)
    assert contents(mount).keys() - {MARKER_NAME} == SHIPPED.keys()


def test_rerun_changes_nothing_even_after_user_edits(
    s3: Any, mount: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Catches: no marker (or one not read), so a re-deploy overwrites a user's edit or
    re-creates a file a user deleted; and a skip that says nothing, or too much."""
    run(s3, mount, assets_version="v1")
    theme = mount / "themes/dark/theme.css"
    theme.write_bytes(b"body { color: hotpink; }\n")
    os.utime(theme, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    (mount / "images/logo.svg").unlink()
    (mount / "images/mine.png").write_bytes(b"user image")
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "themes/dark/theme.css", Body=b"new shipped\n")
    before = files(mount)
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="apps.assetloader"):
        result = run(s3, mount, assets_version="v2")

    assert files(mount) == before  # content, mtime and inode of every file
    assert result["status"] == "skipped"
    assert (result["copied"], result["skipped"], result["backed_up"]) == (0, len(SHIPPED), 0)
    assert result["version"] == "v1"
    assert result["shipped_changed"] is True
    lines = [r for r in caplog.records if r.name == "apps.assetloader"]
    assert len(lines) == 1
    assert "already loaded" in lines[0].getMessage()
    assert "force_token" in lines[0].getMessage()  # says how to restore the shipped ones


@pytest.mark.parametrize("break_at", [1, 3, len(SHIPPED)], ids=["first", "middle", "last"])
def test_a_crash_mid_load_leaves_no_marker_and_the_next_run_completes(
    s3: Any, mount: Path, break_at: int
) -> None:
    """The download of object ``break_at`` dies half way. Catches: the marker written
    first or before the last object (the next run skips and files stay missing), a direct
    write to the target (a half file), temporary files left, a lock left held."""
    with pytest.raises(ConnectionError):
        run(S3Proxy(s3, break_at=break_at), mount)

    rels = sorted(SHIPPED)
    assert not (mount / MARKER_NAME).exists()
    assert contents(mount) == {rel: SHIPPED[rel] for rel in rels[: break_at - 1]}
    assert debris(mount) == []
    # A run killed outright (the Lambda timed out) leaves its temporary file behind.
    dead = mount / "jdbc" / f"{TEMP_PREFIX}deadbeef"
    dead.parent.mkdir(exist_ok=True)
    dead.write_bytes(DRIVER[:10])

    result = run(s3, mount)

    assert result["status"] == "loaded"
    assert (result["copied"], result["skipped"]) == (len(SHIPPED) - break_at + 1, break_at - 1)
    assert contents(mount) == {**SHIPPED, MARKER_NAME: (mount / MARKER_NAME).read_bytes()}
    assert debris(mount) == []
    outcomes = [marker(mount)["manifest"][rel]["outcome"] for rel in rels]
    assert outcomes == ["unchanged"] * (break_at - 1) + ["copied"] * (len(SHIPPED) - break_at + 1)


def test_force_restores_shipped_files_keeps_user_files_and_backs_up(s3: Any, mount: Path) -> None:
    """Catches: a force that deletes files it does not ship (a sync), overwrites without a
    backup, rewrites identical files, reuses a backup name, or forces on every invocation
    with the same token (the token not recorded), or resets the token on a plain force."""
    run(s3, mount)
    theme, logo = mount / "themes/dark/theme.css", mount / "images/logo.svg"
    theme.write_bytes(b"users' theme\n")
    edited_ns = 1_650_000_000_123_456_789
    os.utime(theme, ns=(edited_ns, edited_ns))
    logo.unlink()
    (mount / "themes/dark/custom.css").write_bytes(b"added by a user\n")
    (mount / "notes.txt").write_bytes(b"mine\n")
    before = files(mount)

    forced = run(s3, mount, force_token="restore-1")

    assert forced["status"] == "forced"
    assert (forced["copied"], forced["skipped"], forced["backed_up"]) == (2, 3, 1)
    after = files(mount)
    assert theme.read_bytes() == SHIPPED["themes/dark/theme.css"]
    assert logo.read_bytes() == SHIPPED["images/logo.svg"]
    (backup,) = [rel for rel in after if ".bak-" in rel]
    assert backup.startswith("themes/dark/theme.css.bak-")
    assert after[backup][:2] == (b"users' theme\n", edited_ns)  # content and mtime kept
    for rel in ("themes/dark/custom.css", "notes.txt", "index.html", "jdbc/driver.jar"):
        assert after[rel] == before[rel], rel  # untouched: same content, mtime, inode
    loaded = marker(mount)
    assert loaded["force_token"] == "restore-1"
    assert loaded["manifest"]["themes/dark/theme.css"]["backup"] == backup
    assert [h["status"] for h in loaded["history"]] == ["loaded"]

    settled = files(mount)
    assert run(s3, mount, force_token="restore-1")["status"] == "skipped"
    assert files(mount) == settled

    theme.write_bytes(b"edited again\n")
    again = run(s3, mount, force=True)
    assert (again["status"], again["copied"], again["backed_up"]) == ("forced", 1, 1)
    backups = sorted(rel for rel in contents(mount) if ".bak-" in rel)
    assert len(backups) == 2
    assert {contents(mount)[rel] for rel in backups} == {b"users' theme\n", b"edited again\n"}
    assert marker(mount)["force_token"] == "restore-1"
    assert run(s3, mount, force_token="restore-1")["status"] == "skipped"
    assert debris(mount) == []


def test_first_load_keeps_differing_files_already_there(s3: Any, mount: Path) -> None:
    """A mount an earlier, unguarded loader filled and users then edited. Catches: a first
    load that overwrites existing files (the bug of the original Lambda)."""
    theme = mount / "themes/dark/theme.css"
    theme.parent.mkdir(parents=True)
    theme.write_bytes(b"edited long ago\n")
    (mount / "index.html").write_bytes(SHIPPED["index.html"])

    result = run(s3, mount)

    assert (result["status"], result["copied"], result["skipped"]) == ("loaded", 3, 2)
    assert (result["kept"], result["backed_up"]) == (1, 0)
    assert theme.read_bytes() == b"edited long ago\n"
    assert marker(mount)["manifest"]["themes/dark/theme.css"]["outcome"] == "kept"
    assert marker(mount)["manifest"]["index.html"]["outcome"] == "unchanged"


@pytest.mark.parametrize(
    "key",
    [
        "assets/../escape.txt",
        "assets/themes/../../escape.txt",
        "assets//tmp/escape.txt",
        "assets/./escape.txt",
        "assets/themes\\..\\..\\escape.txt",
        "assets/.assets-loaded.json",
        "assets/index.html/inner.txt",
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "dot", "backslash", "marker", "file-as-folder"],
)
def test_keys_that_escape_the_mount_are_refused(
    s3: Any, mount: Path, tmp_path: Path, key: str
) -> None:
    """Catches: keys joined to the mount as they are (``..`` or an absolute path writes
    outside it, a shipped marker fakes "loaded"), and a partial load before the refusal."""
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"escaped")

    with pytest.raises(UnsafeKeyError) as refused:
        run(s3, mount)

    assert repr(key) in str(refused.value)
    assert files(tmp_path) == {}  # nothing written, inside the mount or next to it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["efs"]


@pytest.mark.parametrize("link", ["themes", "themes/dark/theme.css"], ids=["folder", "file"])
@pytest.mark.parametrize("force", [False, True], ids=["load", "force"])
def test_symlinks_in_the_mount_are_not_followed(
    s3: Any, mount: Path, tmp_path: Path, link: str, force: bool
) -> None:
    """A user (or an attacker with write access to the share) put a symlink where an asset
    goes. Catches: ``open(mount / rel, "wb")``, which follows it and writes outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "theme.css").write_bytes(b"outside")
    target = outside if link == "themes" else outside / "theme.css"
    (mount / link).parent.mkdir(parents=True, exist_ok=True)
    (mount / link).symlink_to(target)

    with pytest.raises(UnsafePathError, match="symlink"):
        run(s3, mount, force=force)

    assert contents(outside) == {"theme.css": b"outside"}
    assert not (mount / MARKER_NAME).exists()
    assert debris(mount) == []


def test_a_file_where_a_folder_goes_is_refused(s3: Any, mount: Path) -> None:
    """Catches: a user's file named like a shipped folder replaced or written through."""
    (mount / "themes").write_bytes(b"a user's file")

    with pytest.raises(UnsafePathError, match="'themes' is a file where a folder"):
        run(s3, mount)

    assert (mount / "themes").read_bytes() == b"a user's file"
    assert not (mount / MARKER_NAME).exists()


def test_concurrent_runs_load_once(s3: Any, mount: Path) -> None:
    """Two invocations at once (threads, each with its own client, over the same directory).
    Catches: no lock (both load: two "loaded", every object copied twice, racing writes)."""
    clients = [S3Proxy(boto3.client("s3", region_name=REGION), delay_s=0.05) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def invoke(client: S3Proxy) -> None:
        start.wait()
        try:
            results.append(run(client, mount))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=invoke, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    assert sorted(r["status"] for r in results) == ["loaded", "skipped"]
    assert sum(c.gets for c in clients) == len(SHIPPED)
    assert contents(mount) == {**SHIPPED, MARKER_NAME: (mount / MARKER_NAME).read_bytes()}
    assert marker(mount)["copied"] == len(SHIPPED)
    assert debris(mount) == []


def test_a_held_lock_is_waited_for_and_a_stale_one_taken_over(s3: Any, mount: Path) -> None:
    """Catches: a lock that is ignored (loads while another run holds it), and one that is
    never taken over (a run killed by the Lambda timeout blocks every later run)."""
    lock = mount / LOCK_NAME
    lock.write_text(json.dumps({"token": "other", "owner": "request req-0"}))
    settings = settings_for(mount, lock_stale_s=60.0)

    t0 = time.monotonic()
    with pytest.raises(LockBusyError, match="request req-0"):
        load_assets(settings, LoadRequest(), s3=s3, lock_wait_s=0.5)
    assert time.monotonic() - t0 >= 0.5
    assert contents(mount) == {LOCK_NAME: lock.read_bytes()}

    old = time.time() - 120
    os.utime(lock, (old, old))
    result = load_assets(settings, LoadRequest(), s3=s3, lock_wait_s=0.5)

    assert result["status"] == "loaded"
    assert not lock.exists()
    assert debris(mount) == []


def test_a_run_whose_lock_was_taken_over_writes_no_marker(s3: Any, mount: Path) -> None:
    """Catches: a holder that never checks the lock is still its own, so a run judged dead
    and a new one both write markers."""

    def steal(gets: int) -> None:
        if gets == 2:
            (mount / LOCK_NAME).write_text(json.dumps({"token": "newer", "owner": "req-2"}))

    with pytest.raises(LockLostError):
        run(S3Proxy(s3, before_get=steal), mount)

    assert not (mount / MARKER_NAME).exists()
    assert json.loads((mount / LOCK_NAME).read_text())["token"] == "newer"  # left to its owner


def test_missing_bucket_empty_prefix_and_missing_mount_are_errors(
    s3: Any, mount: Path, tmp_path: Path
) -> None:
    """Catches: a missing bucket or an empty prefix treated as "nothing to load" (a silent
    success, possibly with a marker that blocks the real load later), and a mount path
    created on the function's own disk."""
    with pytest.raises(ConfigError, match=r"^environment\.ASSETS_BUCKET: got 'no-such-bucket'"):
        load_assets(settings_for(mount, bucket="no-such-bucket"), LoadRequest(), s3=s3)
    with pytest.raises(ConfigError, match=r"^environment\.ASSETS_PREFIX: got 'nothing/'"):
        load_assets(settings_for(mount, prefix="nothing/"), LoadRequest(), s3=s3)
    with pytest.raises(ConfigError, match=r"^environment\.ASSETS_MOUNT_PATH"):
        load_assets(settings_for(tmp_path / "not-mounted"), LoadRequest(), s3=s3)
    assert files(tmp_path) == {}
    assert not (tmp_path / "not-mounted").exists()

    allowed = settings_for(mount, prefix="later/", allow_empty=True)
    empty = load_assets(allowed, LoadRequest(), s3=s3)
    assert (empty["status"], empty["copied"]) == ("skipped", 0)
    assert files(mount) == {}  # no marker: the first run that finds objects loads them
    s3.put_object(Bucket=BUCKET, Key="later/index.html", Body=b"late")
    assert load_assets(allowed, LoadRequest(), s3=s3)["status"] == "loaded"
    assert (mount / "index.html").read_bytes() == b"late"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ASSETS_BUCKET": ""}, r"^environment\.ASSETS_BUCKET: got nothing"),
        ({"ASSETS_BUCKET": "s3://pi-assets"}, r"^environment\.ASSETS_BUCKET: got 's3://"),
        ({"ASSETS_PREFIX": "/assets"}, r"^environment\.ASSETS_PREFIX: got '/assets'"),
        ({"ASSETS_MOUNT_PATH": "mnt/assets"}, r"^environment\.ASSETS_MOUNT_PATH: got 'mnt"),
        ({"ASSETS_ALLOW_EMPTY": "yes"}, r"^environment\.ASSETS_ALLOW_EMPTY: got 'yes'"),
        ({"ASSETS_LOCK_STALE_S": "0"}, r"^environment\.ASSETS_LOCK_STALE_S: got 0"),
    ],
)
def test_handler_settings_are_checked_when_it_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    """Catches: settings read without checks (a wrong variable found only half way)."""
    base = {"ASSETS_BUCKET": BUCKET, "ASSETS_PREFIX": PREFIX, "ASSETS_MOUNT_PATH": str(tmp_path)}
    for name, value in {**base, **env}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        handler({}, None)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"froce": True}, r"^event\.froce: got an unknown field"),
        ({"force": "true"}, r"^event\.force: got 'true', use true or false"),
        ({"force_token": 7}, r"^event\.force_token: got 7"),
        (["force"], r"^event\.\(input\): got list"),
    ],
)
def test_a_wrong_event_is_refused(event: object, message: str) -> None:
    """Catches: a misspelt or mistyped ``force`` silently read as "no force"."""
    with pytest.raises(ConfigError, match=message):
        parse_event(event)


def test_event_fields_and_terraform_delete(mount: Path) -> None:
    """Catches: a Terraform destroy (CRUD lifecycle scope) that loads, and an empty token
    treated as a new token (a force on every run)."""
    request = parse_event({"force_token": "", "assets_version": "abc", "tf": {"action": "create"}})
    assert request == LoadRequest(force_token=None, assets_version="abc", terraform_action="create")
    assert parse_event(None) == LoadRequest()
    deleted = load_assets(
        settings_for(mount, bucket="no-such-bucket"),
        parse_event({"tf": {"action": "delete", "prev_input": {}}}),
        s3=None,
    )
    assert deleted["status"] == "skipped"
    assert files(mount) == {}


def test_lock_wait_is_capped_by_the_remaining_time() -> None:
    """Catches: waiting past the function's timeout (a timeout instead of a clear error)."""
    assert lock_wait_s(300.0, None) == 300.0
    assert lock_wait_s(300.0, SimpleNamespace(get_remaining_time_in_millis=lambda: 45_000)) == 15.0
    assert lock_wait_s(300.0, SimpleNamespace(get_remaining_time_in_millis=lambda: 10_000)) == 0.0


def test_the_bundle_names_the_handler_and_every_package_it_imports() -> None:
    """Catches: a package list missing a project package the handler imports (the zip is
    built from it by ``constructs_lib.migration.build_bundle``; its contents and an isolated
    import are tested in tests/constructs/test_asset_loader.py)."""
    assert bundle_module.HANDLER == "apps.assetloader.handler.handler"
    check = (
        "import sys; import apps.assetloader.handler as h; assert callable(h.handler); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('apps.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    packages = {p.replace("/", ".") for p in bundle_module.BUNDLED_PACKAGES}
    assert "apps.common.errors" in out
    assert [m for m in out if not any(m == p or m.startswith(f"{p}.") for p in packages)] == []
