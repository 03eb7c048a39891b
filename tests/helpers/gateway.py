"""Order gateway test helpers: a config aimed at the paper venue, the gateway process, commands."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import redis
import redis.asyncio as aioredis

from services.order_gateway.venues.binance import BinanceAdapter
from services.order_gateway.wal import Wal
from shared.codec import decode, encode
from shared.messages import OrderStatus, OrderType, OrderUpdate, PlaceOrder, Side, TimeInForce
from shared.streams import order_commands, order_events
from tests.helpers.procs import Proc, python, wait_until
from tests.helpers.sim import SimVenue

BOT = "b1"


@contextlib.asynccontextmanager
async def binance_wal(
    sim: SimVenue, redis_url: str
) -> AsyncIterator[tuple[aioredis.Redis, BinanceAdapter, Wal]]:
    """In-process, what the gateway holds for the paper venue: real Redis, python-binance aimed
    at the venue (started), the write-ahead log of venue "sim"; all closed after."""
    r = aioredis.Redis.from_url(redis_url)
    adapter = BinanceAdapter("sim", sim.api_key, sim.api_secret, base_url=sim.base_url, timeout_s=5)
    await adapter.start()
    try:
        yield r, adapter, Wal(r, "sim")
    finally:
        await adapter.close()
        await r.aclose()


def write_config(path: Path, sim: SimVenue, **og: object) -> Path:
    settings = {
        "poll_every_s": 0.5,
        "recv_window_ms": 1000,
        "request_timeout_s": 1.5,
        "rescan_every_s": 0.5,
        **og,
    }
    lines = ["[venues.sim]", 'kind = "sim"', f'base_url = "{sim.base_url}"', "[order_gateway]"]
    lines += [f"{k} = {v}" for k, v in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_gateway(env: dict[str, str], config: Path, log: Path, **extra: str) -> Proc:
    return python(
        "services.order_gateway", env={**env, "AUTOMATA_CONFIG": str(config), **extra}, log_path=log
    ).start()


def wait_gateway_ready(r: redis.Redis, proc: Proc | None = None) -> None:
    """The gateway is connected to the venue (and, given proc, that very process is up)."""
    wait_until(lambda: r.exists("venue:sim:symbols"), timeout=30, what="gateway connected to the venue")
    if proc is not None:
        wait_until(lambda: any(json.loads(r.get(k) or b"{}").get("pid") == proc.pid for k in r.keys("svc:order_gateway:*")),
                   timeout=30, what="gateway heartbeat")  # fmt: skip


def place(r: redis.Redis, seq: int, *, side: Side = Side.BUY, order_type: OrderType = OrderType.LIMIT,
          qty: str | None = "0.001", price: str | None = None, quote: str | None = None, symbol: str = "BTCUSDT",
          stop: str | None = None) -> PlaceOrder:  # fmt: skip
    cmd = PlaceOrder(
        cid=f"{BOT}-{seq:06d}", bot=BOT, venue="sim", symbol=symbol, side=side, order_type=order_type,
        quantity=Decimal(qty) if qty else None, quote_quantity=Decimal(quote) if quote else None,
        price=Decimal(price) if price else None, stop_price=Decimal(stop) if stop else None,
        time_in_force=TimeInForce.GTC if order_type is not OrderType.MARKET else None, ts=int(time.time() * 1000),
    )  # fmt: skip
    r.xadd(order_commands("sim", BOT), encode(cmd))
    return cmd


def updates(r: redis.Redis, cid: str | None = None) -> list[OrderUpdate]:
    out = [decode(f) for _, f in r.xrange(order_events(BOT))]
    return [u for u in out if isinstance(u, OrderUpdate) and (cid is None or u.cid == cid)]  # not BotSynced


def wait_status(r: redis.Redis, cid: str, status: OrderStatus, timeout: float = 20) -> OrderUpdate:
    return wait_until(lambda: next((u for u in updates(r, cid) if u.status == status), None), timeout=timeout,
                      what=f"{cid} {status}")  # fmt: skip


def accepted(sim: SimVenue, cid: str) -> int:
    """How many times the venue accepted an order with this client order id (its journal)."""
    return sum(
        1 for e in sim.control.journal() if e["kind"] == "accepted" and e.get("client_order_id") == cid
    )
