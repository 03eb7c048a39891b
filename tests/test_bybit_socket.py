"""The Bybit adapter's private socket survives a message of a topic pybit has subscribed but
not yet filed a callback for (pybit sends the subscription first): before, pybit raised KeyError
in its thread and closed the socket for good, and the adapter's next subscribe waited for a
connection on the event loop, which froze the order gateway (seen in a full run: a placed order
never heard back)."""

from __future__ import annotations

import asyncio

from services.order_gateway.venues.bybit import BybitAdapter
from tests.helpers.sim import sim_fixture

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
