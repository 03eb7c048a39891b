"""Order-list test helpers: a config with the market gateway's book tickers and the order
gateway (lists emulated or native), the two gateways as processes, and list commands."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
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
from shared.streams import book, og_list, og_open, og_open_lists, og_order, order_commands
from tests.helpers.gateway import BOT
from tests.helpers.procs import Proc, python, wait_until
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
    return send_list(r, oco_command(seq, venue=venue, **terms))


def oco_command(seq: int, *, above: Decimal, below: Decimal, qty: str = "0.002", side: Side = Side.SELL,
                stop_type: OrderType = OrderType.STOP_LOSS, venue: str = "sim") -> PlaceOrderList:  # fmt: skip
    """A sell OCO [LIMIT_MAKER above, stop below] (a buy: [stop above, LIMIT_MAKER below]); ids
    from the bot's sequence: the list seq, its legs seq+1, seq+2."""
    if side is Side.SELL:
        legs = ((side, OrderType.LIMIT_MAKER, above), (side, stop_type, below))
    else:
        legs = ((side, stop_type, above), (side, OrderType.LIMIT_MAKER, below))
    return list_command(seq, ListKind.OCO, legs, qty=qty, venue=venue)


def list_command(seq: int, kind: ListKind, legs: Sequence[tuple[Side, OrderType, Decimal]], *, qty: str = "0.002",
                 venue: str = "sim", tif: TimeInForce = TimeInForce.GTC) -> PlaceOrderList:  # fmt: skip
    """A list of `legs` (side, type, price: a stop's trigger, a limit's price), each of `qty`, in
    PlaceOrderList's order; ids from the bot's sequence: the list seq, its legs seq+1, seq+2...;
    `tif` is a LIMIT leg's."""
    now = int(time.time() * 1000)

    def leg(n: int, side: Side, order_type: OrderType, price: Decimal) -> PlaceOrder:
        stop = order_type in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)
        limit_price = price if order_type is not OrderType.STOP_LOSS else None
        return PlaceOrder(
            cid=f"{BOT}-{seq + n:06d}", bot=BOT, venue=venue, symbol=SYMBOL, side=side, order_type=order_type,
            quantity=Decimal(qty), price=limit_price, stop_price=price if stop else None,
            time_in_force=None if order_type in (OrderType.STOP_LOSS, OrderType.LIMIT_MAKER)
            else tif if order_type is OrderType.LIMIT else TimeInForce.GTC, ts=now,
        )  # fmt: skip

    return PlaceOrderList(list_cid=f"{BOT}-{seq:06d}", bot=BOT, venue=venue, symbol=SYMBOL, kind=kind,
                          legs=tuple(leg(i + 1, *x) for i, x in enumerate(legs)), ts=now)  # fmt: skip


def send_list(r: redis.Redis, cmd: PlaceOrderList) -> PlaceOrderList:
    """Send the bot's list command on its command stream."""
    r.xadd(order_commands(cmd.venue, BOT), encode(cmd))
    return cmd


def cancel_list(r: redis.Redis, list_cid: str, venue: str = "sim") -> None:
    cmd = CancelOrderList(list_cid=list_cid, bot=BOT, venue=venue, symbol=SYMBOL)
    r.xadd(order_commands(venue, BOT), encode(cmd))


def forget_list(r: redis.Redis, cmd: PlaceOrderList) -> None:
    """Redis loses the list's writes and its legs' (a power cut while the gateway was down)."""
    r.delete(og_list(cmd.list_cid), *(og_order(leg.cid) for leg in cmd.legs))
    r.srem(og_open_lists("sim"), cmd.list_cid)
    r.srem(og_open("sim"), *(leg.cid for leg in cmd.legs))


def list_record(r: redis.Redis, list_cid: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(og_list(list_cid)).items()}


def books(r: redis.Redis, venue: str = "sim") -> list[tuple[str, BookTicker]]:
    """The book tickers the market gateway published, (entry id, ticker), oldest first."""
    return [(i.decode(), decode(f)) for i, f in r.xrange(book(venue, SYMBOL))]


def emulated_fixtures() -> tuple[object, object, object]:
    """The fixtures of a module testing emulated lists, named by assignment (`protocol, config,
    market = emulated_fixtures()`), beside a `sim` one: the protocol, the gateways' config and
    the market gateway publishing book tickers."""

    @pytest.fixture(params=["binance", "bybit"])
    def protocol(request) -> str:
        """Binance's protocol with emulation asked for in the venue's config; Bybit's (no lists:
        always emulated), through the gateway's pybit adapter."""
        return request.param

    @pytest.fixture
    def config(tmp_path, sim, protocol):
        return write_config(tmp_path / "automata.toml", sim, emulate=protocol == "binance", protocol=protocol)

    @pytest.fixture
    def market(env, tmp_path, sim, sync_redis, protocol):
        """The market gateway publishing SYMBOL's book tickers (one per change of the book), read
        from the face the order gateway speaks: Binance's bookTicker or Bybit's orderbook.1."""
        config = write_config(tmp_path / "market.toml", sim, emulate=False, protocol=protocol)
        proc = start("services.market_gateway", env, config, tmp_path / "mg.log")
        price = sim.control.state()["prices"][SYMBOL]
        wait_until(lambda: sim.control.set_price(SYMBOL, price) and books(sync_redis), timeout=30,
                   what="the market gateway's first book ticker")  # fmt: skip
        yield proc
        proc.kill()

    return protocol, config, market


def price_of(sim: SimVenue) -> Decimal:
    return Decimal(sim.control.state()["prices"][SYMBOL])


def move(sim: SimVenue, r: redis.Redis, price: Decimal) -> tuple[str, BookTicker]:
    """A trade at `price` at the venue; returns the book ticker the market gateway published for it."""
    seen = len(books(r))
    sim.control.set_price(SYMBOL, str(price))
    return wait_until(lambda: books(r)[seen:] and books(r)[-1], what=f"book at {price}")


def open_at_venue(sim: SimVenue) -> list[str]:
    """Open orders at the venue, on either protocol's account."""
    orders = sim.control.orders("binance") + sim.control.orders("bybit")
    return [o["client_order_id"] for o in orders if o["status"] in ("NEW", "PARTIALLY_FILLED")]


def wait_phase(r: redis.Redis, cmd: PlaceOrderList, phase: str) -> None:
    wait_until(lambda: list_record(r, cmd.list_cid).get("phase") == phase, what=f"list {phase}")


def assert_finished(sim: SimVenue, r: redis.Redis, cmd: PlaceOrderList) -> None:
    """The list done and closed, no leg left open in the log or at the venue."""
    wait_phase(r, cmd, "done")
    assert cmd.list_cid.encode() not in r.smembers(og_open_lists("sim"))
    legs = {leg.cid for leg in cmd.legs}
    assert not legs & {c.decode() for c in r.smembers(og_open("sim"))}
    assert not legs & set(open_at_venue(sim))
