"""GET /api/live on a real `python -m services.web`: an entry XADDed to a stream reaches an open
event stream (no consumer group: the services' own groups keep every entry)."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import redis

from shared.codec import encode
from shared.messages import Decision, Level, Notification, OrderStatus, OrderUpdate, Side
from shared.redis_server import RedisServer
from tests.helpers import procs
from tests.helpers.web import TOKEN, put_bot, start_service

AUTH = {"authorization": f"Bearer {TOKEN}"}


class Listener:
    """Reads /api/live in a thread, collecting (event, data) until told to stop."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.events: list[tuple[str, dict]] = []
        self.connected = threading.Event()
        self.status = 0
        self._thread = threading.Thread(target=self._read, args=(base, headers), daemon=True)
        self._thread.start()

    def _read(self, base: str, headers: dict[str, str]) -> None:
        with httpx.stream("GET", base + "/api/live?seconds=30", headers=headers, timeout=35) as reply:
            self.status = reply.status_code
            name = ""
            for line in reply.iter_lines():
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    self.events.append((name, orjson.loads(line[6:])))
            self.connected.set()

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def test_an_entry_reaches_an_open_event_stream(redis_server: RedisServer, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_server.url)
    put_bot(r, "b1")
    r.xgroup_create("orders:events:b1", "ledger", id="$", mkstream=True)  # a service's group on it
    proc, base = start_service(redis_server.url, tmp_path, AUTOMATA_WEB_TOKEN=TOKEN)
    listener = Listener(base, AUTH)
    # ": connected" is the promise: every entry added after it reaches the page (nothing else waited for)
    assert listener.connected.wait(10) and listener.status == 200
    fill = OrderUpdate(cid="b1-000001", bot="b1", venue="sim", symbol="BTCUSDT", status=OrderStatus.FILLED,
                       side=Side.BUY, orig_qty=Decimal("0.1"), cum_filled_qty=Decimal("0.1"),
                       cum_quote_qty=Decimal("10"), last_fill_price=Decimal("100"), last_fill_qty=Decimal("0.1"))  # fmt: skip
    r.xadd("orders:events:b1", encode(fill))
    r.xadd("bot:b1:decisions", encode(Decision(bot="b1", text="take profit at 110")))
    r.xadd(
        "notify",
        encode(Notification(id="n1", kind="fill", text="b1 bought 0.1 BTC", level=Level.INFO, bot="b1")),
    )
    procs.wait_until(lambda: {"fill", "order", "decision", "notification"} <= set(listener.names()),
                     timeout=15, what="the events")  # fmt: skip
    data = dict(listener.events)
    assert (
        data["fill"]["bot"] == "b1" and data["fill"]["symbol"] == "BTCUSDT" and data["fill"]["venue"] == "sim"
    )
    assert data["fill"]["last_fill_qty"] == "0.1"
    assert data["decision"]["text"] == "take profit at 110"
    put_bot(r, "b1", {"version": 9, "state": {"mode": "paused"}, "last_applied": {}})
    procs.wait_until(lambda: "bot" in listener.names(), timeout=15, what="the bot event")
    assert dict(listener.events)["bot"] == {"bot": "b1", "mode": "paused", "version": 9}
    # a viewer takes nothing from the services: the ledger's group still has its entry to read
    assert r.xreadgroup("ledger", "c1", {"orders:events:b1": ">"}, count=10)[0][1]
    assert proc.terminate() == 0


def test_the_event_stream_needs_the_token(redis_server: RedisServer, tmp_path: Path) -> None:
    _proc, base = start_service(redis_server.url, tmp_path, AUTOMATA_WEB_TOKEN=TOKEN)
    assert httpx.get(base + "/api/live?seconds=1", timeout=5).status_code == 401
    wrong = {"authorization": "Bearer " + "y" * len(TOKEN)}
    assert httpx.get(base + "/api/live?seconds=1", headers=wrong, timeout=5).status_code == 401
