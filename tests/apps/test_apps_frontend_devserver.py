"""The frontend dev server (apps/frontend/devserver.py) answers a request whose body length
it cannot know with 400, and never waits on it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from apps.frontend.devserver import make_server


@pytest.fixture
def devserver() -> Iterator[int]:
    server = make_server("127.0.0.1", 0, "http://127.0.0.1:9")  # no API behind it
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def answer(port: int, request: bytes) -> bytes:
    """Everything the server sends back until it closes (a 5 s read timeout fails)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("length", ["abc", "-1", "1.5", "+3", " ", "5, 5", "\u0661"])
def test_an_invalid_content_length_is_400(devserver: int, length: str) -> None:
    request = (
        f"POST /api/count HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
        "Content-Type: application/json\r\n\r\n"
    ).encode()
    reply = answer(devserver, request)
    assert reply.startswith(b"HTTP/1.0 400 ") or reply.startswith(b"HTTP/1.1 400 "), reply[:80]


def test_a_valid_length_reaches_the_proxy(devserver: int) -> None:
    request = (
        b"POST /api/count HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n\r\n{}"
    )
    reply = answer(devserver, request)
    assert b" 502 " in reply.split(b"\r\n", 1)[0]  # the API (port 9) is unreachable
