"""The real pybit clients aimed at the paper venue, and an inbox for their threaded callbacks.

session = bybit_http(sim)                      # pybit HTTP, session.endpoint = the venue
inbox = Inbox()
ws = bybit_ws(sim, "private")                  # PRIVATE_WSS / PUBLIC_WSS patched first
ws.order_stream(inbox.put)
inbox.wait(lambda m: m["topic"] == "order")    # polls, never sleeps-and-hopes
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pybit.unified_trading as unified
import pytest
from pybit.unified_trading import HTTP, WebSocket

from tests.helpers.procs import wait_until
from tests.helpers.sim import SimVenue

NO_RETRY = {0}  # pybit replaces an empty retry set by its defaults; {0} never matches a retCode


def bybit_http(sim: SimVenue, *, retry: bool = False, **kwargs: Any) -> HTTP:
    """A pybit HTTP session on the venue; without `retry` it raises on 10002/10006 at once."""
    kwargs.setdefault("api_key", sim.api_key)
    kwargs.setdefault("api_secret", sim.api_secret)
    if not retry:
        kwargs.setdefault("retry_codes", NO_RETRY)
    kwargs.setdefault("retry_delay", 0)
    session = HTTP(testnet=True, **kwargs)
    session.endpoint = sim.base_url
    return session


def bybit_ws(sim: SimVenue, channel: str, **kwargs: Any) -> WebSocket:
    """A pybit WebSocket ("spot" or "private"); the constructor connects (and sends auth)."""
    unified.PUBLIC_WSS = sim.ws_url("/v5/public/{CHANNEL_TYPE}")
    unified.PRIVATE_WSS = sim.ws_url("/v5/private")
    if channel == "private":
        kwargs.setdefault("api_key", sim.api_key)
        kwargs.setdefault("api_secret", sim.api_secret)
    return WebSocket(testnet=True, channel_type=channel, **kwargs)


def acks(ws: WebSocket) -> list[dict[str, Any]]:
    """The subscribe answers the venue sends to this pybit socket, as they arrive.

    pybit only logs them; waiting for them proves the venue registered the topics before a
    test moves the market (else the first pushes could race the subscription)."""
    seen: list[dict[str, Any]] = []
    original = ws._process_subscription_message

    def record(message: dict[str, Any]) -> None:
        req_id = message.get("req_id")
        # pybit stores req_id after its send() returns; on a loaded machine the answer can win
        wait_until(lambda: not req_id or req_id in ws.subscriptions, timeout=5, what="pybit to store req_id")
        seen.append(message)
        original(message)

    ws._process_subscription_message = record
    return seen


def subscribed(ws: WebSocket, seen: list[dict[str, Any]], count: int) -> None:
    """Wait until `count` successful subscribe answers have arrived."""
    wait_until(lambda: sum(1 for m in seen if m.get("success")) >= count, what=f"{count} subscribe acks")


class Inbox:
    """Messages from pybit's websocket thread, kept in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []

    def put(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._messages.append(message)

    def all(self, topic: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self._messages if topic is None or m.get("topic") == topic]

    def items(self, topic: str) -> Iterator[dict[str, Any]]:
        """Every `data` item of the topic's messages, in order."""
        for message in self.all(topic):
            data = message["data"]
            yield from data if isinstance(data, list) else [data]

    def wait(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0, what: str = ""
    ) -> dict[str, Any]:
        """The first message matching predicate, polling until it arrives."""

        def found() -> dict[str, Any] | None:
            return next((m for m in self.all() if predicate(m)), None)

        return wait_until(found, timeout=timeout, what=what or "a websocket message")

    def wait_item(
        self, topic: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first data item of `topic` matching predicate."""

        def found() -> dict[str, Any] | None:
            return next((item for item in self.items(topic) if predicate(item)), None)

        return wait_until(found, timeout=timeout, what=f"a {topic} item")


def watch_subscriptions(adapter: Any) -> list[tuple[WebSocket, list[dict[str, Any]]]]:
    """Each private socket a BybitAdapter makes from now on, with its subscribe answers as they
    arrive (pybit subscribes without waiting for them): `subscribed(*seen[0], 3)` waits."""
    make, seen = adapter._new_socket, []

    def new_socket() -> WebSocket:
        ws = make()
        seen.append((ws, acks(ws)))
        return ws

    adapter._new_socket = new_socket
    return seen


def private_fixture() -> Callable[..., Any]:
    """A pytest fixture (name it `private` by assignment): the test's private_socket on the
    `sim` fixture's venue."""

    @pytest.fixture
    def private(sim: SimVenue) -> Iterator[tuple[WebSocket, Inbox]]:
        with private_socket(sim) as pair:
            yield pair

    return private


@contextlib.contextmanager
def private_socket(sim: SimVenue) -> Iterator[tuple[WebSocket, Inbox]]:
    """An authenticated pybit private socket subscribed to order, execution and wallet, their
    subscribe answers in (`ws.test_acks`), so no push a test causes can race the subscription."""
    inbox = Inbox()
    ws = bybit_ws(sim, "private")
    seen = acks(ws)
    try:
        wait_until(lambda: ws.auth, what="pybit to authenticate")
        for subscribe in (ws.order_stream, ws.execution_stream, ws.wallet_stream):
            subscribe(inbox.put)
        subscribed(ws, seen, 3)
        ws.test_acks = seen  # type: ignore[attr-defined]
        yield ws, inbox
    finally:
        ws.exit()
