"""Consumer behaviour against real Redis and MariaDB, in process (deterministic cases)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter

import pytest
import redis
from appsupport import DEAD_STREAM, GROUP, STREAM, db_values, drain, enqueue_values, wait_until

from apps.common import redisq
from apps.consumer.service import Service
from apps.consumer.settings import load_settings
from apps.consumer.worker import Consumer
from apps.devtools.servers import MariaDBServer


def test_batch_insert_exactly_once(
    consumer: Consumer, rclient: redis.Redis, maria: MariaDBServer
) -> None:
    values = list(range(-50, 75))
    enqueue_values(rclient, values)
    drain(consumer)
    assert Counter(db_values(maria)) == Counter(values)
    assert rclient.xlen(STREAM) == 0  # acked entries are deleted
    assert consumer.queue_depth() == {"lag": 0, "pending": 0, "backlog": 0}
    assert consumer.stats.snapshot()["processed"] == len(values)


def test_same_idempotency_key_twice_is_stored_once(
    consumer: Consumer, rclient: redis.Redis, maria: MariaDBServer
) -> None:
    # Two entries with one key: the producer's script adds one per key while its record
    # lives, so this is a producer of an earlier release, or a key reused after the record
    # expired.
    raw_entry(rclient, "k1", 11)
    raw_entry(rclient, "k1", 11)
    raw_entry(rclient, "k2", 12)
    drain(consumer)
    assert sorted(db_values(maria)) == [11, 12]
    assert consumer.stats.snapshot()["duplicates"] == 1
    assert consumer.stats.snapshot()["dead_lettered"] == 0


def test_key_reused_for_another_value_is_dead_lettered_not_dropped(
    consumer: Consumer, rclient: redis.Redis, maria: MariaDBServer
) -> None:
    raw_entry(rclient, "order-7", 70)
    drain(consumer)
    raw_entry(rclient, "order-7", 71)  # later, another value under the stored key
    raw_entry(rclient, "Order-7", 72)  # keys compare exactly: this one is new
    drain(consumer)
    assert sorted(db_values(maria)) == [70, 72]
    dead = rclient.xrange(DEAD_STREAM)
    assert len(dead) == 1
    assert dead[0][1]["orig_count"] == "71"
    assert "already stored with another value" in dead[0][1]["reason"]


def raw_entry(client: redis.Redis, key: str, value: int) -> None:
    client.xadd(STREAM, {redisq.FIELD_KEY: key, redisq.FIELD_VALUE: str(value)})


class CrashAfterCommit(Consumer):
    """Dies between the database COMMIT and the XACK (fault injection in our own code)."""

    def _ack(self, ids: list[str], dead: list[tuple[str, dict[str, str], str]]) -> None:
        raise RuntimeError("simulated crash after commit, before ack")


def test_crash_between_commit_and_ack_redelivers_without_duplicates(
    cenv: dict[str, str], rclient: redis.Redis, maria: MariaDBServer
) -> None:
    values = list(range(30))
    enqueue_values(rclient, values)
    crashing = CrashAfterCommit(load_settings(cenv))
    crashing._db()
    crashing._ensure_group()
    with pytest.raises(RuntimeError, match="simulated crash"):  # noqa: PT012
        for _ in range(5):
            crashing.step()
    crashing.close()
    committed = db_values(maria)
    assert len(committed) == 20  # one batch committed, none acked
    # a different consumer reclaims the stale pending entries and finishes the job
    other = Consumer(load_settings({**cenv, "CONSUMER_NAME": "c2"}))
    assert wait_until(lambda: (drain(other), rclient.xlen(STREAM) == 0)[1], 20)
    other.close()
    assert Counter(db_values(maria)) == Counter(values)


def test_malformed_messages_go_to_dead_letter(
    consumer: Consumer, rclient: redis.Redis, maria: MariaDBServer
) -> None:
    enqueue_values(rclient, [1, 2])
    rclient.xadd(STREAM, {"count": "5"})  # no key
    rclient.xadd(STREAM, {"key": "bad-1", "count": "abc"})
    rclient.xadd(STREAM, {"key": "bad-2", "count": str(2**63)})
    rclient.xadd(STREAM, {"key": "bad key", "count": "1"})
    enqueue_values(rclient, [3])
    drain(consumer)
    assert sorted(db_values(maria)) == [1, 2, 3]
    dead = rclient.xrange(f"{STREAM}:dead")
    assert len(dead) == 4
    reasons = [fields["reason"] for _, fields in dead]
    assert all(r.startswith("malformed") for r in reasons)
    assert dead[1][1]["orig_count"] == "abc"
    assert dead[1][1]["original_id"]
    assert consumer.queue_depth()["backlog"] == 0
    assert consumer.stats.snapshot()["dead_lettered"] == 4


def test_message_delivered_too_often_is_dead_lettered(
    consumer: Consumer, rclient: redis.Redis, maria: MariaDBServer
) -> None:
    rclient.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    enqueue_values(rclient, [41, 42])
    # A consumer that keeps dying on the entries: read, then claimed again and again.
    rclient.xreadgroup(GROUP, "ghost", {STREAM: ">"})
    ids = [eid for eid, _ in rclient.xrange(STREAM)]
    for _ in range(3):
        rclient.xclaim(STREAM, GROUP, "ghost", 0, ids)
    time.sleep(0.3)  # idle longer than CLAIM_IDLE_MS=100, so XAUTOCLAIM takes them
    drain(consumer)  # XAUTOCLAIM: 5th delivery > MAX_ATTEMPTS=3
    assert db_values(maria) == []
    dead = rclient.xrange(f"{STREAM}:dead")
    assert len(dead) == 2
    assert "delivered" in dead[0][1]["reason"]
    assert consumer.queue_depth()["backlog"] == 0


def test_poison_row_is_isolated_from_its_batch(
    consumer: Consumer, rclient: redis.Redis, maria: MariaDBServer, env: dict[str, str]
) -> None:
    conn = maria.root_connect(env["DB_NAME"])
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TRIGGER reject13 BEFORE INSERT ON counts FOR EACH ROW "
            "IF NEW.value = 13 THEN SIGNAL SQLSTATE '22003' "
            "SET MYSQL_ERRNO = 1264, MESSAGE_TEXT = 'poison value'; END IF"
        )
    conn.close()
    values = list(range(10, 30))
    enqueue_values(rclient, values)
    drain(consumer)
    assert Counter(db_values(maria)) == Counter(v for v in values if v != 13)
    dead = rclient.xrange(f"{STREAM}:dead")
    assert len(dead) == 1
    assert dead[0][1]["orig_count"] == "13"
    assert "database rejected" in dead[0][1]["reason"]


def test_service_health_metrics_and_emf(
    cenv: dict[str, str], rclient: redis.Redis, maria: MariaDBServer
) -> None:
    out = io.StringIO()
    settings = load_settings({**cenv, "METRICS_NAMESPACE": "NS", "ENVIRONMENT": "dev"})
    service = Service(settings, out=out)
    enqueue_values(rclient, [5, 6, 7])
    service._worker = threading.Thread(target=service.consumer.run)
    service._worker.start()
    try:
        # Rows are committed before the batch is acknowledged and counted: wait for both.
        assert wait_until(lambda: service.consumer.stats.snapshot()["processed"] == 3, 20)
        assert len(db_values(maria)) == 3
        code, health = service.health()
        assert code == 200
        assert health["redis"]["reachable"] is True
        assert health["database"]["reachable"] is True
        metrics = service.metrics()
        assert metrics["processed"] == 3
        assert metrics["backlog"] == 0
        assert metrics["oldest_pending_age_s"] == 0
        enqueue_values(rclient, [8])  # may or may not be consumed yet: backlog 0 or 1
        service.emit_metrics()
    finally:
        service.stop.set()
        service._worker.join(10)
    assert not service._worker.is_alive()
    code, _ = service.health()
    assert code == 503  # worker gone
    record = json.loads(out.getvalue().splitlines()[-1])
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert isinstance(record["_aws"]["Timestamp"], int)
    assert directive["Namespace"] == "NS"
    assert directive["Dimensions"] == [["Environment"]]
    assert directive["Metrics"] == [
        {"Name": "QueueBacklog", "Unit": "Count"},
        {"Name": "MessagesProcessed", "Unit": "Count"},
        {"Name": "MessagesDeadLettered", "Unit": "Count"},
        {"Name": "OldestPendingAgeSeconds", "Unit": "Seconds"},
    ]
    assert record["Environment"] == "dev"
    assert record["MessagesProcessed"] in (3, 4)
    assert record["QueueBacklog"] in (0, 1)
    assert record["MessagesDeadLettered"] == 0
    assert 0 <= record["OldestPendingAgeSeconds"] < 10  # 8 may be pending: seconds old at most


@pytest.mark.parametrize(
    "fields",
    [
        {"key": "nl-key\n", "count": "1"},  # `$` matches before a trailing newline
        {"key": "k-underscore", "count": "1_000"},
        {"key": "k-blanks", "count": " 12 "},
        {"key": "k-plus", "count": "+5"},
        {"key": "k-arabic-indic", "count": "\u0661\u0662"},
        {"key": "k-leading-zero", "count": "007"},
        {"key": "k-minus-zero", "count": "-0"},
        {"key": "k-newline", "count": "5\n"},
    ],
    ids=["key-newline", "underscore", "blanks", "plus", "arabic-indic", "zero", "-0", "nl"],
)
def test_entries_the_producer_could_not_have_written_are_dead_lettered(
    consumer: Consumer, rclient: redis.Redis, maria: MariaDBServer, fields: dict[str, str]
) -> None:
    """The consumer reads an entry with the producer's rules (contract.py), not int()'s: a
    value another writer (or the replay tool) adds in another form is not stored."""
    rclient.xadd(STREAM, fields)
    enqueue_values(rclient, [7])
    drain(consumer)
    assert db_values(maria) == [7]
    dead = rclient.xrange(DEAD_STREAM)
    assert [f["orig_key"] for _, f in dead] == [fields["key"]]
    assert dead[0][1]["reason"].startswith("malformed")


def test_a_connection_idle_past_half_its_wait_timeout_is_pinged_not_lost(
    cenv: dict[str, str], rclient: redis.Redis, maria: MariaDBServer
) -> None:
    """A quiet queue: the server would end the session after DB_IDLE_TIMEOUT_S; the consumer
    pings it after half that, so the next batch needs no reconnect and logs no outage."""
    consumer = Consumer(load_settings({**cenv, "DB_IDLE_TIMEOUT_S": "2"}))
    try:
        enqueue_values(rclient, [1])
        drain(consumer)
        conn = consumer._conn
        for _ in range(4):  # 4 s in all, twice the session's wait_timeout
            time.sleep(1)
            consumer._db()
        enqueue_values(rclient, [2])
        drain(consumer)
        assert consumer._conn is conn
        assert consumer.stats.snapshot()["failed"] == 0
        assert sorted(db_values(maria)) == [1, 2]
    finally:
        consumer.close()
