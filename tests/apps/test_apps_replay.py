"""``python -m apps.consumer.replay``: dead letters put back on the queue, stored once.

Real servers in both Redis shapes; the replay runs as the operator runs it (a subprocess
given only the consumer's queue variables, logging in as the ACL-restricted app user), and
the dead letters are made by the real consumer: a row the database refuses (a trigger that
stands for the schema problem the operator then fixes), a malformed entry, an entry
delivered too often.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
from appsupport import (
    DB_NAME,
    DEAD_STREAM,
    GROUP,
    STREAM,
    Proc,
    backlog_zero,
    db_values,
    drain,
    fix_cause,
    reject_values,
    replay,
    start_consumer,
    wait_until,
)

from apps.common import contract, redisq
from apps.consumer import replay as replay_mod
from apps.consumer.worker import Consumer
from apps.devtools.servers import MariaDBServer, RedisShape, World


def stored(maria: MariaDBServer) -> dict[str, int]:
    conn = maria.root_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT msg_key, value FROM counts")
            return {str(k): int(v) for k, v in cur.fetchall()}
    finally:
        conn.close()


def dead_ids(client: redis.Redis) -> list[str]:
    return [eid for eid, _ in client.xrange(DEAD_STREAM)]


# ------------------------------------------------------------------ the runbook, end to end


def test_fixed_dead_letter_replayed_to_a_running_consumer_is_stored_once(
    consumer_env: dict[str, str], spawn: Callable[..., Proc], env: dict[str, str],
    rclient: redis.Redis, maria: MariaDBServer,
) -> None:  # fmt: skip
    reject_values(maria, "NEW.value = 13")
    start_consumer(spawn, consumer_env)
    for value in (12, 13, 14):
        redisq.enqueue(rclient, STREAM, value, key=f"order-{value}")
    assert wait_until(lambda: rclient.xlen(DEAD_STREAM) == 1 and len(db_values(maria)) == 2, 30)
    assert sorted(db_values(maria)) == [12, 14]

    listed = replay(env, "--list")
    assert listed.code == 0, listed.err
    ((letter,),) = [listed.out]
    assert letter["key"] == "order-13"
    assert letter["value"] == 13
    assert "database rejected the row" in letter["reason"]
    assert letter["replayable"] is True

    fix_cause(maria)
    done = replay(env, "--id", letter["dead_id"])
    assert done.code == 0, done.err
    assert [o["action"] for o in done.out] == ["replayed"]
    assert done.out[0]["entry_id"] != letter["original_id"]  # a new entry, read as new
    assert "replayed 1, skipped 0" in done.err
    assert wait_until(lambda: sorted(db_values(maria)) == [12, 13, 14], 30)
    assert wait_until(lambda: backlog_zero(rclient), 10)
    assert rclient.xlen(DEAD_STREAM) == 0
    assert stored(maria)["order-13"] == 13  # under its own idempotency key
    time.sleep(0.5)
    assert Counter(db_values(maria)) == Counter([12, 13, 14])


def test_replay_all_while_the_cause_persists_ends_and_loses_nothing(
    consumer_env: dict[str, str], spawn: Callable[..., Proc], env: dict[str, str],
    rclient: redis.Redis, maria: MariaDBServer,
) -> None:  # fmt: skip
    """``--all`` replays what is dead-lettered when it starts: the consumer dead-letters
    the replayed entries again (the cause is not fixed) and the run must not chase them.
    More than one page, so an unbounded read would see the new dead letters."""
    values = list(range(1000, 1000 + replay_mod.PAGE_SIZE + 50))
    reject_values(maria, "NEW.value >= 1000")
    start_consumer(spawn, consumer_env)
    for value in values:
        redisq.enqueue(rclient, STREAM, value)
    assert wait_until(lambda: rclient.xlen(DEAD_STREAM) == len(values), 60)
    before = dead_ids(rclient)

    run = replay(env, "--all", timeout_s=60)
    assert run.code == 0, run.err
    assert f"replayed {len(values)}, skipped 0" in run.err
    assert len(run.out) == len(values)
    assert wait_until(
        lambda: rclient.xlen(DEAD_STREAM) == len(values) and backlog_zero(rclient), 60
    )
    assert not set(dead_ids(rclient)) & set(before)  # dead-lettered again, as new letters
    assert db_values(maria) == []

    fix_cause(maria)
    again = replay(env, "--all", timeout_s=60)
    assert again.code == 0, again.err
    assert wait_until(lambda: len(db_values(maria)) == len(values), 60)
    assert wait_until(lambda: backlog_zero(rclient), 10)
    assert Counter(db_values(maria)) == Counter(values)
    assert rclient.xlen(DEAD_STREAM) == 0


# ------------------------------------------------------------------ listing and dry runs


def test_list_prints_one_json_object_per_dead_letter_oldest_first(
    consumer: Consumer, env: dict[str, str], rclient: redis.Redis, maria: MariaDBServer
) -> None:
    reject_values(maria, "NEW.value = 13")
    redisq.enqueue(rclient, STREAM, 13, key="order-13")
    rclient.xadd(STREAM, {"key": "bad-1", "count": "abc"})
    drain(consumer)
    # an entry whose consumer keeps dying on it: delivered more than MAX_ATTEMPTS=3 times
    redisq.enqueue(rclient, STREAM, 41, key="order-41")
    rclient.xreadgroup(GROUP, "ghost", {STREAM: ">"})
    ((ghost_id, _),) = rclient.xrange(STREAM)
    for _ in range(3):
        rclient.xclaim(STREAM, GROUP, "ghost", 0, [ghost_id])
    time.sleep(0.3)
    drain(consumer)
    assert rclient.xlen(DEAD_STREAM) == 3
    snapshot = rclient.xrange(DEAD_STREAM)

    run = replay(env, "--list")
    assert run.code == 0, run.err
    assert [o["dead_id"] for o in run.out] == [eid for eid, _ in snapshot]
    # one batch: the malformed entry is dead-lettered first, the refused row after
    malformed, poisoned, redelivered = run.out
    assert poisoned["key"] == "order-13"
    assert poisoned["value"] == 13
    assert poisoned["attempts"] is None
    assert poisoned["replayable"] is True
    assert poisoned["original_id"] == snapshot[1][1]["original_id"]
    assert poisoned["consumer"] == "c1"
    assert malformed["key"] == "bad-1"
    assert malformed["value"] == "abc"  # as it was: not a number
    assert malformed["reason"].startswith("malformed")
    assert malformed["replayable"] is False
    assert "malformed" in malformed["problem"]
    assert redelivered["original_id"] == ghost_id
    assert redelivered["attempts"] == 5
    assert redelivered["value"] == 41

    assert replay(env).out == run.out  # --list is the default
    limited = replay(env, "--list", "--limit", "2")
    assert limited.out == run.out[:2]
    assert rclient.xrange(DEAD_STREAM) == snapshot  # listing changes nothing


def _state(client: redis.Redis, maria: MariaDBServer) -> dict[str, Any]:
    def stream(key: str) -> dict[str, Any]:
        info = client.xinfo_stream(key)
        return {
            "entries": client.xrange(key),
            "last": info["last-generated-id"],
            "added": info.get("entries-added"),
        }

    return {"stream": stream(STREAM), "dead": stream(DEAD_STREAM), "db": stored(maria)}


def test_dry_run_changes_nothing(
    consumer: Consumer, env: dict[str, str], rclient: redis.Redis, maria: MariaDBServer
) -> None:
    reject_values(maria, "NEW.value IN (13, 14)")
    for value in (12, 13, 14):
        redisq.enqueue(rclient, STREAM, value)
    drain(consumer)
    fix_cause(maria)
    before = _state(rclient, maria)
    ids = dead_ids(rclient)
    assert len(ids) == 2

    run = replay(env, "--all", "--dry-run")
    assert run.code == 0, run.err
    assert [(o["dead_id"], o["action"]) for o in run.out] == [(i, "would_replay") for i in ids]
    assert [o["value"] for o in run.out] == [13, 14]
    assert "dry run, nothing changed: would replay 2, skipped 0" in run.err
    one = replay(env, "--id", ids[1], "--dry-run")
    assert one.code == 0, one.err
    assert [o["dead_id"] for o in one.out] == [ids[1]]
    missing = replay(env, "--id", "1-0", "--dry-run")
    assert missing.code == 1
    assert _state(rclient, maria) == before
    drain(consumer)
    assert db_values(maria) == [12]


# ------------------------------------------------------------------ what cannot be replayed


def dead_letter_13(
    consumer: Consumer, rclient: redis.Redis, maria: MariaDBServer, *raw: dict[str, str]
) -> None:
    """Dead-letter the value 13 (the database refuses it) after the ``raw`` stream
    entries, then fix the cause."""
    reject_values(maria, "NEW.value = 13")
    for fields in raw:
        rclient.xadd(STREAM, fields)  # type: ignore[arg-type]
    redisq.enqueue(rclient, STREAM, 13)
    drain(consumer)
    fix_cause(maria)


def test_unknown_id_exits_1_and_says_why_the_others_are_replayed(
    consumer: Consumer, env: dict[str, str], rclient: redis.Redis, maria: MariaDBServer
) -> None:
    dead_letter_13(consumer, rclient, maria)
    (real,) = dead_ids(rclient)

    run = replay(env, "--id", "1-0", real)
    assert run.code == 1
    assert f"skipped 1-0: no such entry in {DEAD_STREAM}" in run.err
    assert "replayed 1, skipped 1" in run.err
    assert {o["dead_id"]: o["action"] for o in run.out} == {"1-0": "skipped", real: "replayed"}
    assert rclient.xlen(DEAD_STREAM) == 0
    again = replay(env, "--id", real)  # already moved: no longer there
    assert again.code == 1
    assert f"skipped {real}: no such entry" in again.err
    drain(consumer)
    assert db_values(maria) == [13]


def test_malformed_entry_is_not_replayed_and_stays(
    consumer: Consumer, env: dict[str, str], rclient: redis.Redis, maria: MariaDBServer
) -> None:
    dead_letter_13(consumer, rclient, maria, {"key": "bad-1", "count": "abc"})
    bad, good = rclient.xrange(DEAD_STREAM)

    run = replay(env, "--all")
    assert run.code == 1
    assert f"skipped {bad[0]}: the original entry is malformed" in run.err
    assert "replayed 1, skipped 1" in run.err
    assert {o["dead_id"]: o["action"] for o in run.out} == {bad[0]: "skipped", good[0]: "replayed"}
    assert rclient.xrange(DEAD_STREAM) == [bad]  # left as it was, for the operator
    drain(consumer)
    assert db_values(maria) == [13]
    assert rclient.xrange(DEAD_STREAM) == [bad]


# ------------------------------------------------------------------ exactly once, least privilege


def test_replaying_a_key_already_stored_does_not_store_it_twice(
    consumer: Consumer, env: dict[str, str], world: World, rclient: redis.Redis,
    maria: MariaDBServer,
) -> None:  # fmt: skip
    reject_values(maria, "NEW.value = 13")
    redisq.enqueue(rclient, STREAM, 13, key="order-13")
    drain(consumer)
    assert rclient.xlen(DEAD_STREAM) == 1
    fix_cause(maria)
    # Meanwhile the client sent the value again under its key (after the producer's record
    # expired, so it was enqueued anew) and it was stored.
    admin = world.redis.client()
    try:  # the record's TTL ran out
        admin.delete(redisq.idempotency_record(STREAM, "order-13"))
    finally:
        admin.close()
    redisq.enqueue(rclient, STREAM, 13, key="order-13")
    drain(consumer)
    assert stored(maria) == {"order-13": 13}

    run = replay(env, "--all")
    assert run.code == 0, run.err
    drain(consumer)
    assert stored(maria) == {"order-13": 13}
    assert db_values(maria) == [13]
    assert consumer.stats.snapshot()["duplicates"] == 1  # the replayed entry, seen as such
    assert rclient.xlen(DEAD_STREAM) == 0
    assert backlog_zero(rclient)


def test_replay_runs_as_the_app_user_within_its_acl(
    consumer: Consumer, env: dict[str, str], world: World, rclient: redis.Redis,
    maria: MariaDBServer,
) -> None:  # fmt: skip
    assert world.queue_user.access == contract.queue_access_string(STREAM)
    assert env.get("REDIS_CREDENTIALS_SECRET") or env.get("REDIS_USERNAME") == "app"  # no admin
    with pytest.raises(redis.exceptions.NoPermissionError):
        rclient.keys()  # the app user really is restricted
    reject_values(maria, "NEW.value IN (13, 14)")
    redisq.enqueue(rclient, STREAM, 13)
    redisq.enqueue(rclient, STREAM, 14)
    originals = [fields for _, fields in rclient.xrange(STREAM)]
    drain(consumer)
    fix_cause(maria)
    admin = world.redis.client(decode_responses=True)
    try:
        if world.redis.shape is RedisShape.CLUSTER:
            assert admin.info("cluster")["cluster_enabled"] == 1
            assert admin.cluster("keyslot", STREAM) == admin.cluster("keyslot", DEAD_STREAM)
        admin.execute_command("ACL", "LOG", "RESET")
        run = replay(env, "--all")
        denied = admin.execute_command("ACL", "LOG")
    finally:
        admin.close()
    assert run.code == 0, run.err
    assert denied == []  # no command or key was refused to the app user
    assert rclient.xlen(DEAD_STREAM) == 0
    # Back on the stream: the original fields, not the dead-letter metadata.
    assert [fields for _, fields in rclient.xrange(STREAM)] == originals
    drain(consumer)
    assert sorted(db_values(maria)) == [13, 14]


# ------------------------------------------------------------------ configuration and usage


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "error: environment.REDIS_URL: got nothing"),
        ({"REDIS_URL": "http://cache"}, "environment.REDIS_URL: got http://cache"),
        (
            {"REDIS_URL": "rediss://cache:6379", "QUEUE_STREAM": "counts"},
            "environment.QUEUE_STREAM: got 'counts', use a key with a cluster hash tag",
        ),
    ],
)
def test_configuration_error_exits_2(
    environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert replay_mod.main(["--all"], environ) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["--id", "abc"], ["--limit", "0"], ["--dry-run"], ["--id", "1-0", "--all"],
     ["--id", "1-0", "--limit", "3"]],
)  # fmt: skip
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_mod.main(argv, {"REDIS_URL": "rediss://cache:6379"}) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert len(err.splitlines()) == 1
