"""Order-list test helpers: a config with the market gateway's book tickers and the order
gateway (lists emulated or native), the two gateways as processes, and list commands."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import redis

from shared.codec import decode, encode
from shared.messages import (
    BookTicker,
    CancelOrderList,
    ListKind,
    OrderType,
    PlaceOrder,
    PlaceOrderList,
    Side,
    TimeInForce,
)
from shared.streams import book, og_list, order_commands
from tests.helpers.gateway import BOT
from tests.helpers.procs import Proc, python
from tests.helpers.sim import SimVenue

SYMBOL = "BTCUSDT"


def write_config(path: Path, sim: SimVenue, *, emulate: bool, venue: str = "sim", protocol: str = "binance",
                 **og: object) -> Path:  # fmt: skip
    """One config for both gateways: the venue (lists emulated or not), the market gateway's
    book tickers of SYMBOL (what an emulated OCO watches), the order gateway's tuning."""
    settings = {
        "poll_every_s": 0.5,
        "recv_window_ms": 1000,
        "request_timeout_s": 1.5,
        "rescan_every_s": 0.5,
        **og,
    }
    lines = [
        f"[venues.{venue}]", 'kind = "sim"', f'protocol = "{protocol}"', f'base_url = "{sim.base_url}"',
        f"emulate_lists = {'true' if emulate else 'false'}",
        "[market_gateway]", "warmup = 5", "rest_poll_s = 0.3", "stall_factor = 100",
        "[[market_gateway.feeds]]", f'venue = "{venue}"', f'symbols = ["{SYMBOL}"]', 'intervals = ["1m"]',
        f'book_tickers = ["{SYMBOL}"]',
        "[order_gateway]", *(f"{k} = {json.dumps(v)}" for k, v in settings.items()),
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def start(module: str, env: dict[str, str], config: Path, log: Path, **extra: str) -> Proc:
    return python(module, env={**env, "AUTOMATA_CONFIG": str(config), "LOG_FORMAT": "plain", **extra},
                  log_path=log).start()  # fmt: skip


def oco(r: redis.Redis, seq: int, *, venue: str = "sim", **terms) -> PlaceOrderList:
    """Send the bot's OCO command (oco_command's terms) on its command stream."""
    cmd = oco_command(seq, venue=venue, **terms)
    r.xadd(order_commands(venue, BOT), encode(cmd))
    return cmd


def oco_command(seq: int, *, above: Decimal, below: Decimal, qty: str = "0.002", side: Side = Side.SELL,
                stop_type: OrderType = OrderType.STOP_LOSS, venue: str = "sim") -> PlaceOrderList:  # fmt: skip
    """A sell OCO [LIMIT_MAKER above, stop below] (a buy: [stop above, LIMIT_MAKER below]); ids
    from the bot's sequence: the list seq, its legs seq+1, seq+2."""
    now = int(time.time() * 1000)

    def leg(n: int, order_type: OrderType, price: Decimal) -> PlaceOrder:
        stop = order_type in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)
        limit_price = price if order_type is not OrderType.STOP_LOSS else None
        return PlaceOrder(
            cid=f"{BOT}-{seq + n:06d}", bot=BOT, venue=venue, symbol=SYMBOL, side=side, order_type=order_type,
            quantity=Decimal(qty), price=limit_price, stop_price=price if stop else None,
            time_in_force=None if order_type in (OrderType.STOP_LOSS, OrderType.LIMIT_MAKER) else TimeInForce.GTC,
            ts=now,
        )  # fmt: skip

    if side is Side.SELL:
        legs = (leg(1, OrderType.LIMIT_MAKER, above), leg(2, stop_type, below))
    else:
        legs = (leg(1, stop_type, above), leg(2, OrderType.LIMIT_MAKER, below))
    return PlaceOrderList(list_cid=f"{BOT}-{seq:06d}", bot=BOT, venue=venue, symbol=SYMBOL, kind=ListKind.OCO,
                          legs=legs, ts=now)  # fmt: skip


def cancel_list(r: redis.Redis, list_cid: str, venue: str = "sim") -> None:
    cmd = CancelOrderList(list_cid=list_cid, bot=BOT, venue=venue, symbol=SYMBOL)
    r.xadd(order_commands(venue, BOT), encode(cmd))


def list_record(r: redis.Redis, list_cid: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(og_list(list_cid)).items()}


def books(r: redis.Redis, venue: str = "sim") -> list[tuple[str, BookTicker]]:
    """The book tickers the market gateway published, (entry id, ticker), oldest first."""
    return [(i.decode(), decode(f)) for i, f in r.xrange(book(venue, SYMBOL))]
