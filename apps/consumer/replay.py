"""``python -m apps.consumer.replay``: list dead-lettered entries and put them back on the queue.

The runbook's recovery step for dead letters: once the cause is fixed (a schema problem, a
trigger, a database rule), an operator replays the entries and the consumer processes them
like any new entry::

    python -m apps.consumer.replay [--list] [--id ENTRY_ID ...] [--all] [--limit N] [--dry-run]

Configured from the consumer's queue variables (``REDIS_URL``, ``REDIS_TLS_CA``,
``REDIS_CREDENTIALS_SECRET`` or ``REDIS_USERNAME``/``REDIS_PASSWORD``, ``QUEUE_STREAM``,
``REDIS_CLUSTER`` for a sharded queue); it needs no database settings and works within
the app user's ACL (:func:`apps.common.contract.queue_access_string`).

The move, per entry, is one optimistic transaction on the dead-letter stream's slot:
``WATCH <dead>``, ``XRANGE <dead> id id`` (the entry must still be there), then
``MULTI``, ``XADD <stream> * <original fields>``, ``XDEL <dead> id``, ``EXEC``. The stream
and its dead-letter stream share the cluster hash tag, so this works on cluster-mode Redis
(no ``CROSSSLOT``). EXEC aborts when the dead stream changed after the WATCH (another
replay, or the consumer dead-lettering), and the move is retried from the read: an entry
is never added twice by two replays racing, and never lost.

Storage stays exactly-once through the idempotency key the entry keeps: the consumer's
insert stores a key once, so replaying a value whose key was meanwhile stored adds nothing
to the table (a key stored with *another* value is dead-lettered again, with that reason).

Exit codes: 0 done; 1 some selected entry was not replayed (each named on stderr with the
reason), or the queue could not be reached; 2 a configuration or usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import redis

from apps.common import redisq
from apps.common.config import Env, RedisSettings, load_redis
from apps.common.errors import ConfigError

PROG = "python -m apps.consumer.replay"
PAGE_SIZE = 100
"""Dead-letter entries read per XRANGE."""
MOVE_ATTEMPTS = 5
"""Tries of one entry's move (a busy dead stream aborts EXEC; a lost connection)."""

_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_DELIVERED = re.compile(r"\bdelivered (\d+) times\b")


@dataclass(frozen=True)
class ReplaySettings:
    """What the replay reads from the environment: the consumer's queue settings."""

    redis: RedisSettings


def load_settings(environ: Mapping[str, str] | None = None) -> ReplaySettings:
    """The queue settings, by the loader the services use (:class:`ConfigError` when wrong)."""
    return ReplaySettings(redis=load_redis(Env(environ)))


@dataclass(frozen=True)
class DeadLetter:
    """One entry of the dead-letter stream, as the consumer wrote it."""

    dead_id: str
    fields: dict[str, str]

    @property
    def original(self) -> dict[str, str]:
        """The original entry's fields (prefix removed, order kept), without the metadata."""
        return redisq.original_fields(self.fields)

    @property
    def attempts(self) -> int | None:
        """Deliveries of the original entry, when recorded: an ``attempts`` field, else the
        count in a "delivered N times" reason; None when the consumer did not say."""
        raw = self.fields.get("attempts")
        if raw is not None and raw.isdigit():
            return int(raw)
        match = _DELIVERED.search(self.fields.get("reason", ""))
        return int(match[1]) if match else None

    def problem(self) -> str | None:
        """Why the entry cannot be replayed, or None when it can.

        An entry whose original fields the consumer cannot decode would only be
        dead-lettered again: its data, not the system, is at fault.
        """
        original = self.original
        if not original:
            return f"not a dead-letter record (no {redisq.ORIGINAL_PREFIX}* fields)"
        try:
            redisq.decode(original)
        except redisq.BadMessageError as exc:
            return (
                f"the original entry is malformed ({exc}): the consumer would dead-letter it again"
            )
        return None

    def describe(self) -> dict[str, Any]:
        """The entry as one JSON object: what an operator needs to decide on a replay."""
        original = self.original
        raw_value = original.get(redisq.FIELD_VALUE)
        value: int | str | None = raw_value
        with contextlib.suppress(redisq.BadMessageError):
            value = redisq.decode(original).value
        problem = self.problem()
        out: dict[str, Any] = {
            "dead_id": self.dead_id,
            "original_id": self.fields.get("original_id"),
            "key": original.get(redisq.FIELD_KEY),
            "value": value,
            "reason": self.fields.get("reason"),
            "attempts": self.attempts,
            "consumer": self.fields.get("consumer"),
            "dead_lettered_ms": _int_or_none(self.fields.get("ts")),
            "replayable": problem is None,
        }
        if problem is not None:
            out["problem"] = problem
        return out


@dataclass(frozen=True)
class Outcome:
    """What happened to one selected entry."""

    dead_id: str
    action: str
    """``replayed``, ``would_replay`` (dry run) or ``skipped``."""
    letter: DeadLetter | None = None
    entry_id: str | None = None
    """The entry id the original got back on the stream (``replayed``)."""
    why: str | None = None
    """Why it was skipped."""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = (
            self.letter.describe() if self.letter is not None else {"dead_id": self.dead_id}
        )
        out["action"] = self.action
        if self.entry_id is not None:
            out["entry_id"] = self.entry_id
        if self.why is not None:
            out["why"] = self.why
        return out


class Replayer:
    """Reads the dead-letter stream of ``settings.stream`` and moves entries back."""

    def __init__(self, client: redisq.RedisClient, settings: RedisSettings) -> None:
        self.client = client
        self.stream = settings.stream
        self.dead_stream = settings.dead_letter_stream

    def newest_id(self) -> str | None:
        """The id of the newest dead letter now, or None when there is none."""
        rows: Any = self.client.xrevrange(self.dead_stream, "+", "-", count=1)
        return str(rows[0][0]) if rows else None

    def entries(self, *, until: str = "+", limit: int | None = None) -> Iterator[DeadLetter]:
        """Dead letters oldest first, up to id ``until`` and at most ``limit``, a page at
        a time (entries moved meanwhile do not disturb the cursor)."""
        start = "-"
        left = limit
        while left is None or left > 0:
            count = PAGE_SIZE if left is None else min(PAGE_SIZE, left)
            rows: Any = self.client.xrange(self.dead_stream, start, until, count=count)
            for eid, fields in rows:
                yield DeadLetter(str(eid), dict(fields or {}))
            if len(rows) < count:
                return
            if left is not None:
                left -= len(rows)
            start = f"({rows[-1][0]}"

    def move(self, dead_id: str, *, dry_run: bool = False) -> Outcome:
        """Put dead letter ``dead_id``'s original fields back on the stream and delete it
        from the dead-letter stream, in one transaction (see the module docstring)."""
        maybe_moved = False
        last: Exception | None = None
        for attempt in range(MOVE_ATTEMPTS):
            if attempt:
                time.sleep(0.05 * 2 ** (attempt - 1))
            exec_sent = False
            letter: DeadLetter | None = None
            try:
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.watch(self.dead_stream)  # type: ignore[no-untyped-call]
                    rows: Any = pipe.xrange(self.dead_stream, dead_id, dead_id)
                    if not rows:
                        return self._missing(dead_id, maybe_moved)
                    letter = DeadLetter(str(rows[0][0]), dict(rows[0][1] or {}))
                    problem = letter.problem()
                    if problem is not None:
                        return Outcome(dead_id, "skipped", letter, why=problem)
                    if dry_run:
                        return Outcome(dead_id, "would_replay", letter)
                    pipe.multi()
                    pipe.xadd(self.stream, letter.original)  # type: ignore[arg-type]
                    pipe.xdel(self.dead_stream, dead_id)
                    exec_sent = True
                    added, deleted = pipe.execute(raise_on_error=False)
            except redis.WatchError as exc:
                # "Watched variable changed": EXEC ran nothing. Otherwise redis-py reports
                # a connection lost while watching, possibly after EXEC was sent.
                maybe_moved = maybe_moved or (
                    exec_sent and not str(exc).startswith("Watched variable changed")
                )
                last = exc
                continue
            except redisq.TRANSIENT_ERRORS as exc:
                # An error reply (READONLY, LOADING, ...) refused the transaction whole;
                # no reply at all leaves a sent EXEC's outcome open.
                maybe_moved = maybe_moved or (
                    exec_sent and not isinstance(exc, redis.ResponseError)
                )
                last = exc
                continue
            except redis.ResponseError as exc:  # EXECABORT, NOPERM, CROSSSLOT: nothing ran
                return Outcome(dead_id, "skipped", letter, why=f"the queue refused the move: {exc}")
            if isinstance(added, Exception):
                return self._undo(letter, added, deleted)
            return Outcome(dead_id, "replayed", letter, entry_id=str(added))
        state = (
            "the move may have happened: check the stream and the dead-letter stream"
            if maybe_moved
            else "nothing was changed"
        )
        return Outcome(
            dead_id, "skipped", why=f"gave up after {MOVE_ATTEMPTS} attempts ({state}): {last}"
        )

    def _missing(self, dead_id: str, maybe_moved: bool) -> Outcome:
        if maybe_moved:
            why = (
                "gone from the dead-letter stream after a move whose reply was lost: it was "
                "most likely replayed by this run (or by another one at the same time)"
            )
        else:
            why = f"no such entry in {self.dead_stream}"
        return Outcome(dead_id, "skipped", why=why)

    def _undo(self, letter: DeadLetter, error: Exception, deleted: object) -> Outcome:
        """XADD failed inside EXEC (Redis does not roll a transaction back): if the XDEL
        went through, write the dead letter back so that nothing is lost."""
        why = f"the queue refused the entry: {error}"
        if deleted == 1:
            try:
                new_dead: Any = self.client.xadd(self.dead_stream, letter.fields)  # type: ignore[arg-type]
            except redis.RedisError as exc:
                why += (
                    f"; writing the dead letter back failed too ({exc}): its fields were "
                    f"{json.dumps(letter.fields, sort_keys=True)}"
                )
            else:
                why += f"; the dead letter was written back as {new_dead}"
        return Outcome(letter.dead_id, "skipped", letter, why=why)


# ---------------------------------------------------------------------------- the CLI


def _entry_id(text: str) -> str:
    if not _ENTRY_ID.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a stream entry id (<ms>-<seq>)")
    return text


def _positive(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


class _UsageError(Exception):
    """A wrong command line: one line for the user, exit status 2."""


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def parser() -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog=PROG,
        description=(
            "List the consumer's dead-lettered entries, or put them back on the queue "
            "(atomically per entry) once the cause is fixed."
        ),
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--list",
        action="store_true",
        help="print the dead letters, one JSON object per line, oldest first (the default)",
    )
    what.add_argument(
        "--id",
        dest="ids",
        metavar="ENTRY_ID",
        type=_entry_id,
        nargs="+",
        action="extend",
        help="replay these dead-letter entries (their ids in the dead-letter stream)",
    )
    what.add_argument(
        "--all",
        action="store_true",
        help="replay every dead letter there is when the run starts, oldest first",
    )
    p.add_argument("--limit", type=_positive, help="at most N entries (with --list or --all)")
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be replayed, change nothing"
    )
    return p


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


def _err(text: str) -> None:
    print(f"replay: {text}", file=sys.stderr, flush=True)


def run(settings: ReplaySettings, args: argparse.Namespace) -> int:
    """Carry out the parsed command against the queue; the process exit code."""
    client = redisq.make_redis(settings.redis)
    replayer = Replayer(client, settings.redis)
    try:
        if not args.ids and not args.all:
            for letter in replayer.entries(limit=args.limit):
                _print(letter.describe())
            return 0
        return _replay(replayer, args)
    except redis.RedisError as exc:
        _err(f"queue unavailable: {exc}")
        return 1
    finally:
        client.close()
        client.connection_pool.disconnect()


def _selected(replayer: Replayer, args: argparse.Namespace) -> Iterator[str]:
    if args.ids:
        unique = dict.fromkeys(args.ids)
        yield from sorted(unique, key=lambda i: tuple(int(p) for p in i.split("-")))
        return
    # Only what is there now: with the cause not fixed, the consumer dead-letters replayed
    # entries again, and "--all" must not chase them round forever.
    newest = replayer.newest_id()
    if newest is not None:
        for letter in replayer.entries(until=newest, limit=args.limit):
            yield letter.dead_id


def _replay(replayer: Replayer, args: argparse.Namespace) -> int:
    done = skipped = 0
    for dead_id in _selected(replayer, args):
        outcome = replayer.move(dead_id, dry_run=args.dry_run)
        _print(outcome.describe())
        if outcome.action == "skipped":
            skipped += 1
            _err(f"skipped {dead_id}: {outcome.why}")
        else:
            done += 1
    if args.dry_run:
        _err(f"dry run, nothing changed: would replay {done}, skipped {skipped}")
    else:
        _err(f"replayed {done}, skipped {skipped}")
    return 1 if skipped else 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """The process exit code: 0 done, 1 something not replayed, 2 configuration or usage."""
    try:
        args = parser().parse_args(argv)  # --help prints and exits 0
        if args.limit is not None and args.ids:
            raise _UsageError("--limit goes with --list or --all, not --id")
        if args.dry_run and not (args.ids or args.all):
            raise _UsageError("--dry-run goes with --id or --all")
        settings = load_settings(environ)
    except (_UsageError, ConfigError) as exc:  # one line each; see --help for the options
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(settings, args)


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


if __name__ == "__main__":
    sys.exit(main())
