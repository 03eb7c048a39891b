"""The Bybit adapter's private socket survives a message of a topic pybit has subscribed but
not yet filed a callback for (pybit sends the subscription first): before, pybit raised KeyError
in its thread and closed the socket for good, and the adapter's next subscribe waited for a
connection on the event loop, which froze the order gateway (seen in a full run: a placed order
never heard back)."""

from __future__ import annotations

import asyncio
import threading

from services.order_gateway.venues.bybit import BybitAdapter, SocketGivenUp, _subscribe
from tests.helpers.procs import wait_until
from tests.helpers.sim import running_sim, sim_fixture

sim = sim_fixture()


async def test_a_topic_without_its_callback_yet_reaches_the_one_callback(sim):
    adapter = BybitAdapter("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=5)
    ws = await asyncio.to_thread(adapter._new_socket)
    try:
        heard: list[dict] = []
        ws.fallback = heard.append
        message = {"topic": "order", "data": []}
        ws._process_normal_message(message)  # what pybit's thread does with an incoming message
        assert heard == [message]
        assert ws.is_connected()
    finally:
        ws.exit()


def test_a_socket_given_up_while_pybit_waits_to_subscribe_frees_its_thread(tmp_path):
    """pybit's subscribe waits for a connection in a sleep loop with no end: a socket that died
    before the subscription (the venue gone) kept that thread, the adapter's to_thread worker,
    sleeping for good after the adapter gave the socket up: one worker of the event loop's thread
    pool lost at every such failure, and with them all gone every pybit call (to_thread) waited.
    Giving the socket up (give_up, as user_events does) now ends the wait."""
    with running_sim(tmp_path) as venue:
        adapter = BybitAdapter("sim", venue.api_key, venue.api_secret, base_url=venue.base_url, timeout_s=5)
        ws = adapter._new_socket()
        venue.stop()
    try:
        wait_until(lambda: not ws.is_connected(), timeout=15, what="the socket to see the venue gone")
        raised: list[BaseException] = []

        def subscribe() -> None:  # as user_events runs it: in a worker of the loop's thread pool
            try:
                _subscribe(ws, lambda msg: None)
            except SocketGivenUp as exc:
                raised.append(exc)

        waiting = threading.Thread(target=subscribe, daemon=True)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # pybit waits for a connection that will not come
    finally:
        closer = threading.Thread(target=ws.give_up, daemon=True)  # what user_events does on failure
        closer.start()
        closer.join(15)
    waiting.join(5)
    assert not waiting.is_alive(), "the subscribe thread still waits after the socket was given up"
    assert raised and "given up" in str(raised[0])
