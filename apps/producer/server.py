"""Serve the producer with waitress: slow clients cost a buffer, never a thread.

Why waitress (measured, see apps/README.md "Benchmark"): gunicorn's gthread worker hands a
connection to a thread as soon as its first bytes arrive and then reads with no timeout, so
40 sockets that stop mid-body or trickle headers held every thread and health probes failed
for a minute. waitress reads requests in its I/O loop and hands a thread only a complete,
buffered request, so the application's concurrency (threads, database and Redis
connections) stays bounded while idle or slow sockets cost one buffer each, and it
de-chunks bodies under the same size limit as declared ones. On top of it this module adds:

* a deadline for a whole request to arrive (``REQUEST_TIMEOUT_S``, headers and body): past
  it the connection is closed, as a server-side read timeout;
* JSON answers for the errors waitress itself gives (413, 400), like the application's;
* a graceful stop on SIGTERM: stop accepting, finish and send in-flight answers, exit 0.

One process per task: Fargate sizes the producer at 0.25-0.5 vCPU and scales by tasks.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from apps.producer.app import CORS_HEADERS, create_app, log_access
from apps.producer.settings import ProducerSettings

log = logging.getLogger("apps.producer")

HEADER_LIMIT_BYTES = 16 * 1024
"""Longest request head (request line and headers) the server buffers."""
LINGER_S = 2.0
"""How long a closing connection keeps reading (and discarding) what the client still sends."""
BODY_BACKSTOP_BYTES = 16 * 1024
"""Longest body the server buffers at all (413 above it); the application's own limit,
``MAX_BODY_BYTES``, is lower and answered the same way."""


class _TimedParser(HTTPRequestParser):  # type: ignore[misc]
    """A request being received, stamped with when its first byte arrived."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()

    def parse_header(self, header_plus: bytes) -> None:
        """waitress's parsing, then the framing and Host rules of RFC 9112 that it leaves
        out. A request that breaks one is answered 400 and its connection closed, so
        nothing after it on the connection (a smuggled request) is read."""
        super().parse_header(header_plus)
        headers = self.headers
        if self.version == "1.1":
            if self.chunked and "CONTENT_LENGTH" in headers:
                # waitress would frame by Transfer-Encoding and keep the connection open
                raise ParsingError("both Content-Length and Transfer-Encoding (RFC 9112 6.1)")
            host = headers.get("HOST")
            if host is None:
                raise ParsingError("an HTTP/1.1 request must have a Host header (RFC 9112 3.2)")
            if "," in host:  # waitress joins repeated headers with ", "
                raise ParsingError("more than one Host header (RFC 9112 3.2)")
        elif "TRANSFER_ENCODING" in headers:
            # waitress frames an HTTP/1.0 request by Content-Length alone
            raise ParsingError("Transfer-Encoding in an HTTP/1.0 request (RFC 9112 6.1)")


class _JsonErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's own error answers (a body over the backstop, a malformed request) in the
    API's error format ``{"error": ..., "status": ...}``, with the API's CORS headers."""

    def execute(self) -> None:
        error = self.request.error
        body = json.dumps({"error": f"{error.reason}: {error.body}", "status": error.code})
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.response_headers.extend(CORS_HEADERS.items())  # so a browser can read it
        self.set_close_on_finish()
        data = body.encode()
        self.content_length = len(data)
        request = self.request
        started = getattr(request, "started", None)
        # Logged before the answer leaves: once the client has it, it may send its next
        # request, whose access line must not come first.
        log_access(
            getattr(request, "command", None) or "-", getattr(request, "path", None) or "",
            error.code,
            0.0 if started is None else (time.monotonic() - started) * 1000,
        )  # fmt: skip
        self.write(data)


class _Channel(HTTPChannel):  # type: ignore[misc]
    """A connection; closes by "lingering": closing a socket that still holds unread request
    bytes makes the kernel send a reset, which can destroy the answer before the client
    reads it (a 413 for an oversized body would arrive as a reset, or as a 502 through the
    load balancer). So the answer is followed by a FIN, and what the client still sends is
    read and discarded for up to ``LINGER_S`` before the socket is closed."""

    parser_class = _TimedParser
    error_task_class = _JsonErrorTask
    lingering_until: float | None = None
    _closed = False

    def handle_close(self) -> None:
        if self._closed:
            return
        if (
            self.lingering_until is None
            and self.connected
            and not self.total_outbufs_len
            and not self.requests  # a request being served must still send its answer
        ):
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            else:
                self.lingering_until = time.monotonic() + LINGER_S
                self.will_close = False
                self.close_when_flushed = False
                return
        self._closed = True
        super().handle_close()

    def linger_expired(self, now: float) -> bool:
        return self.lingering_until is not None and now > self.lingering_until

    def readable(self) -> bool:
        return True if self.lingering_until is not None else bool(super().readable())

    def writable(self) -> bool:
        return False if self.lingering_until is not None else bool(super().writable())

    def handle_read(self) -> None:
        if self.lingering_until is None:
            super().handle_read()
            return
        try:
            data = self.socket.recv(65536)
        except OSError:
            data = b""
        if not data or self.linger_expired(time.monotonic()):
            self._closed = True
            HTTPChannel.handle_close(self)


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel
    request_timeout_s = 10.0

    def maintenance(self, now: float) -> None:
        """Every ``cleanup_interval``: close idle keep-alive connections (waitress) and
        connections whose request has not fully arrived within the deadline."""
        super().maintenance(now)
        mono = time.monotonic()
        cutoff = mono - self.request_timeout_s
        for channel in list(self.active_channels.values()):
            if channel.linger_expired(mono):
                channel._closed = True
                HTTPChannel.handle_close(channel)
                continue
            request = channel.request
            if channel.requests:
                continue  # an earlier request is being served; this one waits its turn
            if request is not None and not request.completed and request.started < cutoff:
                log.info("closing %s: request not received within %.0f s",
                         channel.addr, self.request_timeout_s)  # fmt: skip
                channel.will_close = True

    def busy(self) -> bool:
        """Some connection has a request arriving or being served, or an answer not yet
        sent. (Idle keep-alive connections do not count: they are closed.)"""
        return any(
            channel.requests or channel.total_outbufs_len or channel.request is not None
            for channel in list(self.active_channels.values())
            if channel.lingering_until is None
        )


class ProducerServer:
    def __init__(self, settings: ProducerSettings) -> None:
        self.settings = settings
        s = settings
        self.adjustments = Adjustments(
            host=s.bind_host,
            port=s.port,
            threads=s.threads,
            connection_limit=s.connection_limit,
            # Above the load balancer's idle timeout (60 s), so the load balancer closes
            # idle connections first and never sends on one the server is closing.
            channel_timeout=s.idle_timeout_s,
            cleanup_interval=1,
            max_request_header_size=HEADER_LIMIT_BYTES,
            # Above the application's limit, so a body just over MAX_BODY_BYTES still gets
            # the application's answer.
            max_request_body_size=max(BODY_BACKSTOP_BYTES, 2 * s.max_body_bytes),
            asyncore_use_poll=True,  # select() stops at 1024 descriptors
            ident="producer",
            expose_tracebacks=False,
            log_socket_errors=False,
        )
        self.map: dict[int, Any] = {}
        self.dispatcher = ThreadedTaskDispatcher()
        self.dispatcher.set_thread_count(s.threads)
        self.server = _Server(
            create_app(settings), self.map, dispatcher=self.dispatcher, adj=self.adjustments
        )
        self.server.request_timeout_s = s.request_timeout_s
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d received: stopping", signum)
        self._stop.set()
        self.server.pull_trigger()  # wake the I/O loop

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        log.info("producer listening on %s:%d (%d threads)",
                 self.settings.bind_host, self.port, self.settings.threads)  # fmt: skip
        while not self._stop.is_set():
            wasyncore.loop(timeout=1.0, map=self.map, use_poll=True, count=1)
        self.drain()

    def drain(self) -> None:
        """Stop accepting; let in-flight requests finish and their answers go out."""
        self.server.accepting = False
        self.server.del_channel()
        self.server.socket.close()
        for channel in list(self.server.active_channels.values()):
            idle = not (channel.requests or channel.total_outbufs_len or channel.request)
            if idle and channel.lingering_until is None:
                channel.will_close = True  # idle keep-alive: close it now
        deadline = time.monotonic() + self.settings.graceful_timeout_s
        while self.server.busy() and time.monotonic() < deadline:
            wasyncore.loop(timeout=0.1, map=self.map, use_poll=True, count=1)
            self.server.maintenance(time.time())  # request deadlines still hold
        self.dispatcher.shutdown(cancel_pending=True, timeout=1)
        wasyncore.close_all(self.map)
        log.info("producer stopped")


def serve(settings: ProducerSettings) -> None:
    ProducerServer(settings).run()
