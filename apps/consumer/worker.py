"""Queue consumer: Redis Streams consumer group -> MySQL, at-least-once delivery made
exactly-once in the table by an idempotent insert keyed on the message's idempotency key.

Order per batch: XREADGROUP -> INSERT ... ON DUPLICATE KEY (one transaction) -> COMMIT ->
XACK + XDEL. A crash anywhere before XACK leaves the entries pending; they are re-read by
this consumer (``0`` id) after a Redis reconnect or reclaimed by another with XAUTOCLAIM.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pymysql
import redis

from apps.common import contract, logs, redisq
from apps.common import db as dbmod
from apps.common.schema import COUNTS_TABLE, migrate
from apps.consumer.settings import ConsumerSettings

log = logging.getLogger("apps.consumer")

# IGNORE skips rows whose msg_key is already stored (a redelivery) and needs only the INSERT
# privilege (ON DUPLICATE KEY UPDATE would need UPDATE). Values are range-checked before, so
# IGNORE never clamps data; errors raised by the server (e.g. SIGNAL) still fail.
INSERT_SQL = f"INSERT IGNORE INTO `{COUNTS_TABLE}` (msg_key, value) VALUES (%s, %s)"  # noqa: S608

# Errors that say "this data can never be stored" (isolate and dead-letter the message);
# everything else from the database is treated as transient (retry, never ack).
POISON_DB_ERRORS = (pymysql.err.DataError, pymysql.err.IntegrityError)
REDIS_ERRORS = redisq.TRANSIENT_ERRORS

STORED_PER_LINE = 100
"""Values per "stored" log line: at most about 11 KB (64-character keys, 20-digit values),
under the 16 KB at which the container runtime splits a line into several log events."""

Entry = tuple[str, dict[str, str] | None]


class StoppingError(Exception):
    """Stop was requested while a batch could not be stored: hand it back (no ack)."""


class _LockWaitError(Exception):
    """A statement waited ``DB_LOCK_WAIT_S`` for a row lock another session holds (a
    consumer frozen, or cut off from the database, mid-transaction); it was rolled back."""


@dataclass
class Stats:
    processed: int = 0
    duplicates: int = 0
    failed: int = 0
    dead_lettered: int = 0
    batches: int = 0
    redis_ok: bool = False
    db_ok: bool = False
    pruned: int = 0
    deferred: int = 0
    """Entries left pending because their rows were locked by another session."""
    heartbeat: float = field(default_factory=time.monotonic)
    batch_started: float | None = None
    """monotonic time the batch in hand was read; None between batches."""
    batch_entries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {
                "processed": self.processed,
                "duplicates": self.duplicates,
                "failed": self.failed,
                "dead_lettered": self.dead_lettered,
                "batches": self.batches,
                "pruned_consumers": self.pruned,
                "deferred": self.deferred,
            }


class Consumer:
    def __init__(self, settings: ConsumerSettings, stop: threading.Event | None = None) -> None:
        self.s = settings
        self.stop = stop or threading.Event()
        self.stats = Stats()
        self.stream = settings.redis.stream
        self.dead_stream = settings.redis.dead_letter_stream
        self.redis = redisq.make_redis(
            settings.redis,
            socket_timeout_s=max(settings.redis.socket_timeout_s, settings.block_ms / 1000 + 5),
        )
        self._conn: pymysql.connections.Connection[Any] | None = None
        self._conn_used = 0.0
        """monotonic time of the connection's last statement"""
        self._group_ready = False
        self._recover_own = True  # first read our own pending entries (restart, reconnect)
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._next_prune = 0.0

    # ----------------------------------------------------------------- main loop
    def run(self) -> None:
        log.info(
            "consumer %s starting: stream=%s group=%s batch=%d",
            self.s.consumer_name,
            self.stream,
            self.s.group,
            self.s.batch_size,
        )
        backoff = _Backoff(self.s.backoff_max_s)
        while not self.stop.is_set():
            self.stats.heartbeat = time.monotonic()
            try:
                self._db()  # connect (and migrate) before taking any work
                self._ensure_group()
                self.step()
                backoff.reset()
            except REDIS_ERRORS as exc:
                self.stats.redis_ok = False
                self._group_ready = False
                self._recover_own = True
                self.stats.add(failed=1)
                log.warning("redis unavailable: %s; retrying", exc)
                self.stop.wait(backoff.next())
            except pymysql.err.MySQLError as exc:
                self.stats.db_ok = False
                self._drop_db()
                self.stats.add(failed=1)
                log.warning("database unavailable: %s; retrying", exc)
                self.stop.wait(backoff.next())
            except StoppingError:
                log.info("stop requested; current batch handed back unacknowledged")
                break
            except redis.ResponseError as exc:
                if not _stream_gone(exc):
                    raise
                # NOGROUP: the group was destroyed. UNBLOCKED: the stream key was deleted
                # (DEL, FLUSHALL) while this consumer was blocked on it. Either way the group
                # is recreated on an empty stream and work goes on.
                log.warning("stream or consumer group vanished (%s); recreating", exc)
                self._group_ready = False
                self._recover_own = True
                self.stats.batch_started = None
        self.close()
        log.info("consumer %s stopped", self.s.consumer_name)

    def step(self) -> int:
        """One unit of work; returns the number of entries handled."""
        if self._recover_own:
            entries = self._read("0")
            if not entries:
                self._recover_own = False
                return 0
            return self.handle(entries, self._deliveries(entries))
        now = time.monotonic()
        if now >= self._next_prune:
            self._next_prune = now + min(self.s.prune_idle_ms / 2000, 300.0)
            self.prune_consumers()
        if now >= self._next_claim:
            self._next_claim = now + self.s.claim_interval_ms / 1000
            claimed = self._reclaim()
            if claimed:
                return self.handle(claimed, self._deliveries(claimed))
        entries = self._read(">", block=self.s.block_ms)
        self.stats.redis_ok = True
        if not entries:
            return 0
        return self.handle(entries, {})

    def close(self) -> None:
        self._drop_db()
        try:
            self.redis.close()
            self.redis.connection_pool.disconnect()
        except redis.RedisError:
            pass

    # ----------------------------------------------------------------- redis side
    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # id 0: entries added before the group existed are delivered too.
            self.redis.xgroup_create(self.stream, self.s.group, id="0", mkstream=True)
            log.info("created consumer group %s on %s", self.s.group, self.stream)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True
        self.stats.redis_ok = True

    def _read(self, from_id: str, block: int | None = None) -> list[Entry]:
        reply: Any = self.redis.xreadgroup(
            self.s.group,
            self.s.consumer_name,
            {self.stream: from_id},
            count=self.s.batch_size,
            block=block,
        )
        if not reply:
            return []
        _name, entries = reply[0]
        return [(str(eid), fields or None) for eid, fields in entries]

    def _reclaim(self) -> list[Entry]:
        reply: Any = self.redis.xautoclaim(
            self.stream,
            self.s.group,
            self.s.consumer_name,
            min_idle_time=self.s.claim_idle_ms,
            start_id=self._claim_cursor,
            count=self.s.batch_size,
        )
        self._claim_cursor = str(reply[0])
        if self._claim_cursor != "0-0":
            self._next_claim = 0.0  # more to scan: continue on the next step
        entries = [(str(eid), fields or None) for eid, fields in reply[1]]
        if entries:
            log.info("reclaimed %d stale pending entries", len(entries))
        return entries

    def prune_consumers(self) -> list[str]:
        """Remove the group's consumers idle longer than the bound that hold nothing (a
        task that died); their entries, if any, are first reclaimed by XAUTOCLAIM. One
        script, so no consumer can take an entry between the check and the delete."""
        try:
            reply: Any = self.redis.eval(
                _PRUNE_LUA, 1, self.stream, self.s.group, str(self.s.prune_idle_ms),
                self.s.consumer_name,
            )  # fmt: skip
        except REDIS_ERRORS:
            raise  # the loop's reconnect and backoff
        except redis.ResponseError as exc:
            # Housekeeping never stops the work: the stream may be gone for a moment, or
            # the ACL may still be the previous release's during a deploy.
            log.warning("pruning idle consumers failed: %s", exc)
            return []
        removed = [str(name) for name in reply or []]
        if removed:
            self.stats.add(pruned=len(removed))
            log.info("pruned %d idle consumers: %s", len(removed), ", ".join(removed))
        return removed

    def _deliveries(self, entries: list[Entry]) -> dict[str, int]:
        ids = [eid for eid, _ in entries]
        info: Any = self.redis.xpending_range(
            self.stream,
            self.s.group,
            min=min(ids, key=_id_tuple),
            max=max(ids, key=_id_tuple),
            count=len(ids) + 1000,
            consumername=self.s.consumer_name,
        )
        wanted = set(ids)
        return {
            str(p["message_id"]): int(p["times_delivered"])
            for p in info
            if str(p["message_id"]) in wanted
        }

    def _ack(self, ids: list[str], dead: list[tuple[str, dict[str, str], str]]) -> None:
        """Dead-letter, XACK and XDEL in one MULTI/EXEC."""
        if not ids and not dead:
            return
        pipe = self.redis.pipeline(transaction=True)
        now = int(time.time() * 1000)
        for eid, fields, reason in dead:
            record = redisq.dead_letter_record(
                eid,
                fields,
                reason=reason,
                stream=self.stream,
                consumer=self.s.consumer_name,
                now_ms=now,
            )
            pipe.xadd(self.dead_stream, record)  # type: ignore[arg-type]
        all_ids = ids + [eid for eid, _, _ in dead]
        pipe.xack(self.stream, self.s.group, *all_ids)
        pipe.xdel(self.stream, *all_ids)
        pipe.execute()
        if dead:
            self.stats.add(dead_lettered=len(dead))
            for eid, fields, reason in dead:
                key = fields.get(redisq.FIELD_KEY)
                key = None if key is None else key[:80]
                log.warning(
                    "dead-lettered entry %s (key %s) to %s: %s",
                    eid, key, self.dead_stream, reason,
                    extra=logs.fields(
                        entry_id=eid, idempotency_key=key, value=_int_or_none(fields),
                        reason=reason,
                    ),
                )  # fmt: skip

    # ----------------------------------------------------------------- batch handling
    def handle(self, entries: list[Entry], deliveries: dict[str, int]) -> int:
        self.stats.batch_started = time.monotonic()
        self.stats.batch_entries = len(entries)
        try:
            return self._handle(entries, deliveries)
        finally:
            self.stats.batch_started = None

    def _handle(self, entries: list[Entry], deliveries: dict[str, int]) -> int:
        good: list[tuple[str, redisq.Message]] = []
        gone: list[str] = []
        dead: list[tuple[str, dict[str, str], str]] = []
        for eid, fields in entries:
            if fields is None:  # deleted while pending: nothing to store
                gone.append(eid)
                continue
            attempts = deliveries.get(eid, 1)
            if attempts > self.s.max_attempts:
                dead.append(
                    (eid, fields, f"delivered {attempts} times (max {self.s.max_attempts})")
                )
                continue
            try:
                good.append((eid, redisq.decode(fields)))
            except redisq.BadMessageError as exc:
                dead.append((eid, fields, f"malformed: {exc}"))
        stored, poisoned, locked = self._store_until_done(good)
        fields_by_id = {eid: f for eid, f in entries if f is not None}
        dead.extend((eid, fields_by_id[eid], reason) for eid, reason in poisoned)
        self._ack(stored + gone, dead)
        if locked:
            self._defer(locked, deliveries)
        self.stats.add(processed=len(stored), batches=1)
        if stored and log.isEnabledFor(logging.INFO):
            self._log_stored(stored, dict(good))
        return len(entries)

    @staticmethod
    def _log_stored(stored: list[str], messages: dict[str, redisq.Message]) -> None:
        """The trail of the stored values: lines of up to STORED_PER_LINE values, each with
        the keys, entry ids and values as parallel lists, one element per value (a line
        per value cost more than half the consumer's throughput; see apps/README.md)."""
        for start in range(0, len(stored), STORED_PER_LINE):
            ids = stored[start : start + STORED_PER_LINE]
            chunk = [messages[eid] for eid in ids]
            trail = logs.batch_fields(
                idempotency_keys=[m.key for m in chunk], entry_ids=ids,
                values=[m.value for m in chunk],
            )  # fmt: skip
            if len(ids) == 1:
                log.info("stored value %d (entry %s, key %s)", chunk[0].value, ids[0],
                         chunk[0].key, extra=trail)  # fmt: skip
            else:
                log.info("stored %d values: entries %s .. %s", len(ids), ids[0], ids[-1],
                         extra=trail)  # fmt: skip

    def _store_until_done(
        self, batch: list[tuple[str, redisq.Message]]
    ) -> tuple[list[str], list[tuple[str, str]], list[str]]:
        """Retry a transient database failure with the batch held in memory.

        Re-reading it from Redis would count deliveries and could dead-letter good messages
        during a long outage; instead the entries' idle time is refreshed with
        XCLAIM JUSTID (no delivery count increment) so no other consumer reclaims them.

        Returns (stored ids, [(poisoned id, reason)], ids whose rows another session holds
        locked): those are not waited for (see :meth:`_store_around_locks`).
        """
        backoff = _Backoff(self.s.backoff_max_s)
        last_refresh = time.monotonic()
        while True:
            try:
                return self._store_around_locks(batch)
            except pymysql.err.MySQLError as exc:
                self.stats.db_ok = False
                self.stats.add(failed=1)
                log.warning("database unavailable: %s; retrying the batch", exc)
            if self.stop.wait(backoff.next()):
                raise StoppingError
            now = time.monotonic()
            self.stats.heartbeat = now
            if now - last_refresh > self.s.claim_idle_ms / 2000:
                last_refresh = now
                self._keep_claimed([eid for eid, _ in batch])

    def _store_around_locks(
        self, batch: list[tuple[str, redisq.Message]]
    ) -> tuple[list[str], list[tuple[str, str]], list[str]]:
        """:meth:`_store`, except that rows another session holds locked are not waited for.

        When the batch waits ``DB_LOCK_WAIT_S`` for a lock, each half is tried once more on
        its own and a half that waits again is returned as locked: at most three lock waits
        per batch, and the entries of a consumer frozen mid-transaction (all locked, all
        reclaimed together) do not hold up the ones around them."""
        try:
            return (*self._store(batch), [])
        except _LockWaitError:
            pass
        half = len(batch) // 2
        if not half:
            return [], [], [eid for eid, _ in batch]
        stored: list[str] = []
        poisoned: list[tuple[str, str]] = []
        locked: list[str] = []
        for part in (batch[:half], batch[half:]):
            try:
                part_stored, part_poisoned = self._store(part)
            except _LockWaitError:
                locked.extend(eid for eid, _ in part)
                continue
            stored += part_stored
            poisoned += part_poisoned
        return stored, poisoned, locked

    def _defer(self, ids: list[str], deliveries: dict[str, int]) -> None:
        """Leave entries whose rows are locked pending, to be reclaimed (by any consumer)
        after CLAIM_IDLE_MS. XCLAIM JUSTID restarts their idle time and RETRYCOUNT puts
        back their delivery count: waiting on another session's lock is not a failed
        delivery, and must not bring an entry closer to the dead-letter stream."""
        by_count: dict[int, list[str]] = {}
        for eid in ids:
            by_count.setdefault(max(deliveries.get(eid, 1) - 1, 0), []).append(eid)
        try:
            for count, group in by_count.items():
                self.redis.xclaim(
                    self.stream, self.s.group, self.s.consumer_name, 0, list[Any](group),
                    justid=True, retrycount=count,
                )  # fmt: skip
        except REDIS_ERRORS as exc:
            log.warning("could not reset the locked entries' delivery count: %s", exc)
        self.stats.add(deferred=len(ids))
        log.warning(
            "%d entries left pending: their rows are locked by another database session "
            "(waited %d s); tried again in %.1f s", len(ids), self.s.db.lock_wait_s,
            self.s.claim_idle_ms / 1000,
        )  # fmt: skip

    def _keep_claimed(self, ids: list[str]) -> None:
        try:
            self.redis.xclaim(
                self.stream, self.s.group, self.s.consumer_name, 0, list[Any](ids), justid=True
            )
        except REDIS_ERRORS as exc:
            log.warning("could not refresh pending entries: %s", exc)

    def _store(
        self, batch: list[tuple[str, redisq.Message]]
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Insert the batch in one transaction; on a data error fall back to one by one.

        Returns (stored ids, [(poisoned id, reason)]). Other database errors propagate.
        """
        if not batch:
            return [], []
        try:
            conn = self._db()
            with conn.cursor() as cur:
                cur.executemany(INSERT_SQL, [(m.key, m.value) for _, m in batch])
                inserted = max(cur.rowcount, 0)
                conflicts = self._conflicts(cur, batch) if inserted < len(batch) else {}
            conn.commit()
        except POISON_DB_ERRORS as exc:
            self._rollback()
            log.warning("batch insert failed (%s); isolating message by message", exc)
            return self._store_one_by_one(batch)
        except pymysql.err.MySQLError as exc:
            self._failed(exc)
        self._conn_used = time.monotonic()
        self.stats.db_ok = True
        self.stats.add(duplicates=max(len(batch) - inserted - len(conflicts), 0))
        return [eid for eid, _ in batch if eid not in conflicts], list(conflicts.items())

    @staticmethod
    def _conflicts(cur: Any, batch: list[tuple[str, redisq.Message]]) -> dict[str, str]:
        """Entries whose key is stored with another value: a key reused for a new value
        after the producer's record of it expired. Reported, never silently dropped."""
        keys = sorted({m.key for _, m in batch})
        marks = ", ".join(["%s"] * len(keys))
        cur.execute(f"SELECT msg_key, value FROM `{COUNTS_TABLE}` WHERE msg_key IN ({marks})", keys)  # noqa: S608
        stored = {str(k): int(v) for k, v in cur.fetchall()}
        return {
            eid: f"idempotency key {m.key!r} already stored with another value ({stored[m.key]})"
            for eid, m in batch
            if m.key in stored and stored[m.key] != m.value
        }

    def _store_one_by_one(
        self, batch: list[tuple[str, redisq.Message]]
    ) -> tuple[list[str], list[tuple[str, str]]]:
        stored: list[str] = []
        poisoned: list[tuple[str, str]] = []
        for eid, msg in batch:
            conn = self._db()
            try:
                with conn.cursor() as cur:
                    cur.execute(INSERT_SQL, (msg.key, msg.value))
                    conflict = self._conflicts(cur, [(eid, msg)]) if cur.rowcount < 1 else {}
                conn.commit()
                if conflict:
                    poisoned.extend(conflict.items())
                else:
                    stored.append(eid)
            except POISON_DB_ERRORS as exc:
                self._rollback()
                poisoned.append((eid, f"database rejected the row: {exc}"))
            except pymysql.err.MySQLError as exc:
                self._failed(exc)
        return stored, poisoned

    def _failed(self, exc: pymysql.err.MySQLError) -> NoReturn:
        """A statement failed for a reason other than its data: a lock wait that timed out
        (the connection is fine: roll back, :class:`_LockWaitError`), or a lost or broken
        connection (drop it, re-raise)."""
        if dbmod.is_lock_wait_timeout(exc):
            self._rollback()
            raise _LockWaitError(str(exc)) from exc
        self._drop_db()
        raise exc

    # ----------------------------------------------------------------- database side
    def _db(self) -> pymysql.connections.Connection[Any]:
        """The connection (made, and the schema migrated, when there is none). One idle for
        half the session's ``wait_timeout`` is pinged first (which restarts the server's
        count), and replaced when the server has already ended it."""
        if (
            self._conn is not None
            and time.monotonic() - self._conn_used > self.s.db.idle_timeout_s / 2
        ):
            try:
                self._conn.ping(reconnect=False)
                self._conn_used = time.monotonic()
            except pymysql.err.MySQLError:
                self._drop_db()
        if self._conn is None:
            conn = dbmod.connect(self.s.db, autocommit=False)
            if self.s.db_migrate == "auto":
                result = migrate(conn)
                if result["from"] != result["to"]:
                    log.info("schema migrated from %d to %d", result["from"], result["to"])
            self._conn = conn
            self._conn_used = time.monotonic()
            self.stats.db_ok = True
        return self._conn

    def _rollback(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
            except pymysql.err.MySQLError:
                self._drop_db()

    def _drop_db(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()

    # ----------------------------------------------------------------- metrics
    def queue_depth(self, client: redisq.RedisClient | None = None) -> dict[str, int | None]:
        """lag (never delivered to the group) and pending (delivered, not acked)."""
        r = client or self.redis
        lag: int | None = None
        pending = 0
        groups: Any = r.xinfo_groups(self.stream)
        for g in groups:
            if str(g.get("name")) == self.s.group:
                pending = int(g.get("pending") or 0)
                raw_lag = g.get("lag")
                lag = int(raw_lag) if raw_lag is not None else None
        if lag is None:
            # Acked entries are XDELed, so the stream holds only pending + undelivered ones.
            lag = max(int(r.xlen(self.stream)) - pending, 0)
        return {"lag": lag, "pending": pending, "backlog": lag + pending}

    def oldest_pending_age_s(
        self, client: redisq.RedisClient | None = None, now: float | None = None
    ) -> float:
        """Seconds since the group's oldest pending entry (delivered, not acknowledged) was
        added to the stream; 0 when nothing is pending.

        The oldest pending entry is the smallest pending id (XPENDING summary); an id's
        first part is the Redis server's clock, in milliseconds, when XADD added it. It is
        compared with this host's clock (``now``, default ``time.time()``): the app user's
        ACL does not grant TIME (it is in no category the access string allows), and both
        clocks are NTP-synchronised. Not the entry's idle time: a redelivery, and the
        XCLAIM that keeps a batch claimed through a database outage, reset that, hiding
        exactly the entries that are stuck. Raises redis errors (NOGROUP included).
        """
        r = client or self.redis
        summary: Any = r.xpending(self.stream, self.s.group)
        if not summary or not int(summary.get("pending") or 0) or not summary.get("min"):
            return 0.0
        added_ms, _ = _id_tuple(str(summary["min"]))
        now_ms = (time.time() if now is None else now) * 1000
        return max(now_ms - added_ms, 0.0) / 1000


def _stream_gone(exc: redis.ResponseError) -> bool:
    text = str(exc)
    return text.startswith(("NOGROUP", "UNBLOCKED")) or "NOGROUP" in text


# KEYS[1] stream; ARGV group, idle bound (ms), the caller's own name (never pruned).
_PRUNE_LUA = """
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[2]) and f['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    table.insert(removed, f['name'])
  end
end
return removed
"""


def _int_or_none(fields: dict[str, str]) -> int | None:
    """The entry's value when it is an integer (a dead letter may be malformed)."""
    raw = fields.get(redisq.FIELD_VALUE)
    try:
        return None if raw is None else contract.parse_count(raw)
    except contract.ContractError:
        return None


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class _Backoff:
    def __init__(self, maximum: float, first: float = 0.1) -> None:
        self.first = first
        self.maximum = maximum
        self.current = first

    def next(self) -> float:
        value = self.current
        self.current = min(self.current * 2, self.maximum)
        return min(value, self.maximum)

    def reset(self) -> None:
        self.current = self.first
