"""Raw HTTP over real sockets, for tests of how the servers treat hostile clients.

`exchange` sends bytes as they are (no client library would send a 70 KiB request line),
half-closes, and reads whatever comes back until the server closes; `request` is urllib that
returns a 4xx/5xx instead of raising. `served_in_thread` runs an asyncio server (the services'
MetricsServer) on its own loop in a thread, so a test can talk to it with blocking sockets and
read what the loop reported as unhandled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, TypeVar


class Server(Protocol):
    port: int

    async def start(self) -> int: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Server)


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (a reset after some bytes keeps those bytes)."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data`, end our side, and return the whole reply."""
    with connect(port, timeout) as sock:
        with contextlib.suppress(ConnectionError):  # the server may answer (and close) early
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        return read_all(sock)


def status_of(reply: bytes) -> int | None:
    """The status code of an HTTP/1.x reply, None when there is none."""
    first = reply.split(b"\r\n", 1)[0].split()
    if len(first) >= 2 and first[0].startswith(b"HTTP/1.") and first[1].isdigit():
        return int(first[1])
    return None


def get(port: int, path: str) -> tuple[int | None, bytes]:
    """A well-formed GET: (status, body)."""
    reply = exchange(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return status_of(reply), reply.partition(b"\r\n\r\n")[2]


def request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """(status, JSON or text of the reply) with urllib; a 4xx/5xx is returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as reply:
            status, raw = reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def closed_by_peer(sock: socket.socket) -> bool:
    """True once the server has closed this connection (EOF or reset); never blocks."""
    sock.setblocking(False)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    finally:
        sock.setblocking(True)


def wait_closed(socks: list[socket.socket], within: float, feed: bytes = b"") -> None:
    """Poll until the server has closed every socket, sending `feed` on each still open meanwhile
    (a slow client trickling its headers); fail after `within` seconds."""
    deadline = time.monotonic() + within
    open_ = list(socks)
    while open_:
        open_ = [s for s in open_ if not closed_by_peer(s)]
        for sock in open_:
            with contextlib.suppress(OSError):
                sock.send(feed)
        if open_ and time.monotonic() > deadline:
            raise AssertionError(f"{len(open_)} of {len(socks)} connection(s) still open after {within}s")
        time.sleep(0.05)


@contextlib.contextmanager
def served_in_thread(make: Callable[[], S]) -> Iterator[tuple[S, list[dict[str, Any]]]]:
    """(server, errors): the server started on a loop of its own; `errors` collects what the
    loop's exception handler saw (an exception escaping a connection handler lands there)."""
    loop = asyncio.new_event_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    thread = threading.Thread(target=loop.run_forever, name="served-in-thread", daemon=True)
    thread.start()

    def call(coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(10)  # type: ignore[arg-type]

    async def build() -> S:
        server = make()
        await server.start()
        return server

    server = call(build())
    try:
        yield server, errors
    finally:
        call(server.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
