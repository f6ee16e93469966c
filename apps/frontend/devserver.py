"""Local frontend server: static files from ``static/`` and ``/api/*`` proxied to the producer.

``python -m apps.frontend.devserver --port 8080 --api http://127.0.0.1:5080`` (stdlib only).
The path is forwarded unchanged (``/api/count`` -> producer ``/api/count``), as CloudFront
forwards ``/api/*`` to the load balancer in AWS.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import signal
import sys
import urllib.parse
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from apps.common.contract import PRODUCER_PORT

STATIC_DIR = Path(__file__).resolve().parent / "static"
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
}  # fmt: skip
MAX_BODY = 64 * 1024

log = logging.getLogger("apps.frontend")


class Handler(SimpleHTTPRequestHandler):
    api: urllib.parse.SplitResult

    def _body_length(self) -> int | None:
        """The declared body length, or None after answering 400 (a length that is not
        plain ASCII digits, or a body framed by Transfer-Encoding, which this server does
        not read: either way it cannot know where the body ends)."""
        declared = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") is not None:
            problem = "Transfer-Encoding is not supported: send Content-Length"
        elif len(declared) > 1:
            problem = "more than one Content-Length"
        elif declared and not (declared[0].isascii() and declared[0].isdigit()):
            problem = "Content-Length must be a non-negative integer"
        else:
            return int(declared[0]) if declared else 0
        self.close_connection = True
        self.send_error(400, problem)
        return None

    def _proxy(self) -> None:
        length = self._body_length()
        if length is None:
            return
        if length > MAX_BODY:
            self.close_connection = True
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn_cls = (
            http.client.HTTPSConnection
            if self.api.scheme == "https"
            else http.client.HTTPConnection
        )
        conn = conn_cls(self.api.hostname or "127.0.0.1", self.api.port, timeout=10)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            payload = (
                f'{{"error": "API unreachable: {type(exc).__name__}", "status": 502}}'.encode()
            )
            self.send_response(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        finally:
            conn.close()
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _is_api(self) -> bool:
        return self.path == "/api" or self.path.startswith("/api/")

    def do_GET(self) -> None:
        if self._is_api():
            self._proxy()
        else:
            super().do_GET()

    def do_HEAD(self) -> None:
        if self._is_api():
            self._proxy()
        else:
            super().do_HEAD()

    def do_POST(self) -> None:
        if self._is_api():
            self._proxy()
        else:
            self.send_error(405)

    def do_OPTIONS(self) -> None:
        if self._is_api():
            self._proxy()
        else:
            self.send_error(405)

    def end_headers(self) -> None:
        if not self._is_api():
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s " + format, self.address_string(), *args)


def make_server(host: str, port: int, api: str) -> ThreadingHTTPServer:
    handler = partial(Handler, directory=str(STATIC_DIR))
    Handler.api = urllib.parse.urlsplit(api)
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--api", default=f"http://127.0.0.1:{PRODUCER_PORT}", help="producer base URL"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    server = make_server(args.host, args.port, args.api)

    def stop(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"frontend on http://{args.host}:{server.server_address[1]}/ (api -> {args.api})",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
