"""Logging: one JSON object per line on stderr (stdout of the consumer is reserved for EMF
metric lines).

Every line has the contract's base fields (:class:`~apps.common.contract.LogField`:
``time`` in ISO-8601 UTC, ``level``, ``service``, ``logger``, ``message``); a call adds the
trail fields with ``extra=fields(...)``::

    log.info("stored value %d", value, extra=fields(idempotency_key=key, entry_id=eid))

Besides the contract's fields a line may carry ``reason`` (why an entry was dead-lettered)
and ``exception`` (a traceback, kept inside the one line). Passwords in URLs
(``scheme://user:password@``) are masked in messages and tracebacks.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

from apps.common.contract import LogField

REASON = "reason"
"""Why an entry was dead-lettered (not a contract field: read by people, not queries)."""
EXCEPTION = "exception"
"""The traceback of a logged exception."""

_TIME = LogField.TIME.value
_LEVEL = LogField.LEVEL.value
_SERVICE = LogField.SERVICE.value
_LOGGER = LogField.LOGGER.value
_MESSAGE = LogField.MESSAGE.value
_KEY = LogField.IDEMPOTENCY_KEY.value
_ENTRY_ID = LogField.ENTRY_ID.value
_VALUE = LogField.VALUE.value
_STATUS = LogField.STATUS.value
_PATH = LogField.PATH.value
_DURATION_MS = LogField.DURATION_MS.value

_TRAIL_FIELDS = (_KEY, _ENTRY_ID, _VALUE, _STATUS, _PATH, _DURATION_MS, REASON)
"""Record attributes (set through ``extra=``) written to the line when present."""

_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]+@")


def fields(
    *,
    idempotency_key: str | None = None,
    entry_id: str | None = None,
    value: int | None = None,
    status: int | None = None,
    path: str | None = None,
    duration_ms: float | None = None,
    reason: str | None = None,
) -> Mapping[str, object]:
    """The ``extra=`` of a logging call: the given trail fields, under their contract names."""
    given = {
        _KEY: idempotency_key,
        _ENTRY_ID: entry_id,
        _VALUE: value,
        _STATUS: status,
        _PATH: path,
        _DURATION_MS: duration_ms,
        REASON: reason,
    }
    return {name: v for name, v in given.items() if v is not None}


def batch_fields(
    *, idempotency_keys: Sequence[str], entry_ids: Sequence[str], values: Sequence[int]
) -> Mapping[str, object]:
    """The ``extra=`` of a line about several values: the trail fields as parallel lists
    (element ``i`` of each list belongs to the same value)."""
    return {_KEY: list(idempotency_keys), _ENTRY_ID: list(entry_ids), _VALUE: list(values)}


def redact(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@host`` masked."""
    if "://" not in text:
        return text
    return _URL_PASSWORD.sub(r"\1***@", text)


@functools.lru_cache(maxsize=4)
def _second_text(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso_time(created: float) -> str:
    """``created`` (seconds since the epoch) as ISO-8601 UTC with milliseconds."""
    seconds = int(created)
    return f"{_second_text(seconds)}.{int((created - seconds) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            _TIME: iso_time(record.created),
            _LEVEL: record.levelname,
            _SERVICE: self.service,
            _LOGGER: record.name,
            _MESSAGE: redact(record.getMessage()),
        }
        attributes = record.__dict__
        for name in _TRAIL_FIELDS:
            v = attributes.get(name)
            if v is not None:
                line[name] = v
        if record.exc_info:
            line[EXCEPTION] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line[EXCEPTION] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(line)


def setup(level: str, service: str) -> None:
    """JSON lines on stderr at ``level`` for every logger; uncaught exceptions (main thread
    and others) and warnings are logged the same way, so every stderr line is JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("apps").critical("uncaught exception: %s", exc, exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    exc = args.exc_value if args.exc_value is not None else args.exc_type()
    logging.getLogger("apps").error(
        "uncaught exception in thread %s: %s", name, exc,
        exc_info=(args.exc_type, exc, args.exc_traceback),
    )  # fmt: skip
