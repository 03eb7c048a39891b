"""The /metrics + /health server every service runs (shared/metrics.py) against hostile clients:
an over-long request line or header block, slow headers, too many connections. Each is refused
with a 4xx/503 and a close, nothing escapes to the log as a crash, and the next scrape works.

Real sockets to a real MetricsServer on its own loop (tests/helpers/http.py); the limits are
lowered in a subclass so that the test waits a second, not five.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.metrics import MetricsServer
from tests.helpers.procs import wait_until
from tests.helpers.raw_http import connect, exchange, get, served_in_thread, status_of, wait_closed


async def _healthy() -> dict[str, Any]:
    return {"ok": True}


class QuickServer(MetricsServer):
    HEAD_TIMEOUT_S = 1.0
    MAX_CONNECTIONS = 4


@pytest.fixture
def server() -> Iterator[tuple[QuickServer, list[dict[str, Any]]]]:
    with served_in_thread(lambda: QuickServer("127.0.0.1", 0, _healthy)) as (srv, errors):
        yield srv, errors
        assert not errors, f"the loop saw unhandled exceptions: {errors}"


def assert_still_serves(port: int) -> None:
    status, body = get(port, "/metrics")
    assert status == 200 and b"# TYPE" in body
    assert get(port, "/health") == (200, b'{"ok":true}')


def test_a_70_kib_request_line_is_refused_and_the_server_still_serves(server: Any) -> None:
    srv, _ = server
    reply = exchange(srv.port, b"GET /" + b"a" * (70 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(reply) == 414, reply[:200]
    assert_still_serves(srv.port)


def test_a_header_block_over_the_limit_is_refused(server: Any) -> None:
    srv, _ = server
    headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(70))
    reply = exchange(srv.port, b"GET /metrics HTTP/1.1\r\n" + headers + b"\r\n")
    assert status_of(reply) == 431, reply[:200]
    assert_still_serves(srv.port)


def test_slow_headers_are_cut_off_and_do_not_block_a_scrape(server: Any) -> None:
    """Three clients trickle a header byte at a time: the server closes them once the head
    timeout has passed, and answers a normal scrape meanwhile."""
    srv, _ = server
    slow = [connect(srv.port) for _ in range(3)]
    try:
        for sock in slow:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        assert_still_serves(srv.port)
        wait_closed(slow, within=15.0, feed=b"a\r\nX-Slow: ")  # a header line at a time
    finally:
        for sock in slow:
            sock.close()
    assert_still_serves(srv.port)


def test_connections_over_the_cap_are_refused_at_once(server: Any) -> None:
    srv, _ = server
    idle = [connect(srv.port) for _ in range(QuickServer.MAX_CONNECTIONS)]
    try:
        with connect(srv.port) as extra:  # sends nothing: the refusal must come unasked
            reply = extra.recv(4096)
        assert status_of(reply) == 503, reply
    finally:
        for sock in idle:
            sock.close()
    # the server frees their places once it reads their ends
    wait_until(lambda: get(srv.port, "/health")[0] == 200, timeout=15.0, what="a free place")
    assert_still_serves(srv.port)


def test_malformed_and_unsupported_requests_get_4xx(server: Any) -> None:
    srv, _ = server
    assert status_of(exchange(srv.port, b"\x00\xff garbage\r\n\r\n")) == 400
    assert status_of(exchange(srv.port, b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")) == 405
    assert status_of(exchange(srv.port, b"GET /nope HTTP/1.1\r\n\r\n")) == 404
    head = exchange(srv.port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert status_of(head) == 200 and head.endswith(b"\r\n\r\n")  # no body after the head
    assert_still_serves(srv.port)
