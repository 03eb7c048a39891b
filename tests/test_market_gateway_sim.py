"""The market gateway as a real process against the paper venue (step mode: the market moves only
when a test advances it), through python-binance's multiplex socket and pybit's WebSocket.

Every check compares the candle streams with the venue's own REST klines: complete (consecutive
open times), one entry per open time, closed candles only (a forming candle would differ).
"""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.codec import decode
from shared.messages import BookTicker, Candle
from tests.helpers.procs import Proc, python, wait_until
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
M = 60_000
IV = {"1m": M, "5m": 5 * M}


class Gateway:
    """`python -m services.market_gateway` with its own config file; kill -9 and restart."""

    def __init__(self, env: dict[str, str], tmp_path: Path, sim: SimVenue, protocol: str, **settings: Any):
        self.venue = "sim" if protocol == "binance" else "bysim"
        feed = {"symbols": ["BTCUSDT", "ETHUSDT"], "intervals": ["1m", "5m"], "book_tickers": []}
        feed.update({k: settings.pop(k) for k in list(settings) if k in feed})
        gateway = {"warmup": 20, "rest_poll_s": 0.3, "stall_factor": 100, **settings}
        lines = [f'[venues.{self.venue}]\nkind = "sim"\nprotocol = "{protocol}"\nbase_url = "{sim.base_url}"']
        lines.append("[market_gateway]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in gateway.items()))
        lines.append(
            f'[[market_gateway.feeds]]\nvenue = "{self.venue}"\n'
            + "\n".join(f"{k} = {json.dumps(v)}" for k, v in feed.items())
        )
        config = tmp_path / "automata.toml"
        config.write_text("\n\n".join(lines) + "\n")
        self.env = {**env, "AUTOMATA_CONFIG": str(config), "LOG_FORMAT": "plain"}
        self.symbols, self.intervals = feed["symbols"], feed["intervals"]
        self.log = tmp_path / "gateway.log"
        self.proc: Proc | None = None

    def start(self) -> Gateway:
        self.proc = python("services.market_gateway", env=self.env, log_path=self.log).start()
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()

    def stop(self) -> int:
        assert self.proc is not None
        return self.proc.terminate()

    def streams(self) -> list[tuple[str, str, str]]:
        return [(f"md:candles:{self.venue}:{s}:{i}", s, i) for s in self.symbols for i in self.intervals]


@pytest.fixture
def gateway_factory(env, tmp_path, sim):
    started: list[Gateway] = []

    def make(protocol: str = "binance", **settings: Any) -> Gateway:
        gw = Gateway(env, tmp_path, sim, protocol, **settings)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        if gw.proc is not None and gw.proc.alive():
            gw.proc.kill()


def venue_klines(sim: SimVenue, symbol: str, interval: str, start: int | None = None) -> list[list[Any]]:
    url = f"{sim.base_url}/api/v3/klines?symbol={symbol}&interval={interval}&limit=1000"
    if start is not None:
        url += f"&startTime={start}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


def newest_closed(sim: SimVenue, symbol: str, interval: str) -> int:
    """The venue's newest closed candle (its Binance klines list closed ones only)."""
    return venue_klines(sim, symbol, interval)[-1][0]


def candles(sync_redis, stream: str) -> list[Candle]:
    out = []
    for entry_id, fields in sync_redis.xrange(stream):
        c = decode(fields)
        assert isinstance(c, Candle) and entry_id.decode() == f"{c.open_time}-1"
        out.append(c)
    return out


def top(sync_redis, stream: str) -> int:
    entries = sync_redis.xrevrange(stream, count=1)
    return int(entries[0][0].split(b"-")[0]) if entries else 0


def assert_complete(sync_redis, sim: SimVenue, gw: Gateway) -> int:
    """Every stream: consecutive open times up to the venue's newest closed candle, each one equal to
    the venue's own kline (so never a forming candle). Returns the number of candles checked."""
    checked = 0
    for stream, symbol, interval in gw.streams():
        got = candles(sync_redis, stream)
        opens = [c.open_time for c in got]
        assert opens == list(range(opens[0], opens[0] + len(opens) * IV[interval], IV[interval])), stream
        assert opens[-1] == newest_closed(sim, symbol, interval), stream
        venue = {row[0]: row for row in venue_klines(sim, symbol, interval, opens[0])}
        for c in got:
            row = venue[c.open_time]
            assert c.closed and c.interval == interval and c.symbol == symbol
            assert (c.open, c.high, c.low, c.close, c.volume) == tuple(Decimal(x) for x in row[1:6]), c
        checked += len(got)
    return checked


def wait_caught_up(sync_redis, sim: SimVenue, gw: Gateway, timeout: float = 20) -> None:
    def caught_up() -> bool:
        return all(top(sync_redis, s) >= newest_closed(sim, sym, i) for s, sym, i in gw.streams())

    try:
        wait_until(
            caught_up, timeout=timeout, what="every candle stream up to the venue's newest closed candle"
        )
    except AssertionError:
        state = {s: (top(sync_redis, s), newest_closed(sim, sym, i)) for s, sym, i in gw.streams()}
        raise AssertionError(
            f"(stored top, venue newest closed): {state}\n{gw.log.read_text()[-3000:]}"
        ) from None


def sockets(sim: SimVenue) -> int:
    return sim.control.state()["websockets"]


def advance(sim: SimVenue, candles: int) -> None:
    for _ in range(candles):
        sim.control.advance(candles=1)


def ws_up(sync_redis, venue: str) -> float:
    return metric(metrics_text(sync_redis), "automata_md_ws_up", venue=venue)


def step_until_flowing(sim: SimVenue, sync_redis, venue: str) -> None:
    """Move the market a step at a time until the gateway sees data on its socket: pybit subscribes
    only after its socket is counted at the venue, and in step mode a step taken before that is
    never pushed to it (its candle would come later, over REST)."""

    def flowing() -> bool:
        if ws_up(sync_redis, venue) == 1:
            return True
        sim.control.advance(steps=1)
        return False

    wait_until(flowing, interval=0.2, what="data on the gateway's socket")


def notifications(sync_redis) -> list[Any]:
    return [decode(fields) for _, fields in sync_redis.xrange("notify")]


def metrics_text(sync_redis) -> str:
    (key,) = sync_redis.keys("svc:market_gateway:*")
    port = json.loads(sync_redis.get(key))["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and want in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


# -------------------------------------------------------------------------------------------------


def test_closed_candles_in_order_several_streams_one_socket(sim, sync_redis, gateway_factory) -> None:
    wait_until(lambda: sockets(sim) == 0, what="no socket left from an earlier test")
    gw = gateway_factory(warmup=30, book_tickers=["BTCUSDT"]).start()
    wait_until(lambda: sockets(sim) == 1, what="the gateway's socket")
    # warm-up: the last 30 closed candles the gateway can prove closed (this venue lists closed
    # candles only, so its newest one is proven by the first kline update of the next step)
    lengths = [30, 30, 30, 30]
    wait_until(lambda: [sync_redis.xlen(s) for s, _, _ in gw.streams()] == lengths, what="the warm-up")

    for burst in (1, 3, 2, 5):  # market steps arrive as kline updates; only closes are stored
        advance(sim, burst)
        wait_caught_up(sync_redis, sim, gw)
    assert sockets(sim) == 1  # 4 kline streams and a book ticker on one multiplexed socket
    assert assert_complete(sync_redis, sim, gw) >= 4 * 30 + 2 * 11 + 2

    books = [decode(f) for _, f in sync_redis.xrange("md:book:sim:BTCUSDT")]
    assert len(books) >= 11 and all(isinstance(b, BookTicker) and b.bid < b.ask for b in books)
    assert gw.stop() == 0  # SIGTERM: clean exit


def test_kill9_for_several_candles_then_restart_is_complete(sim, sync_redis, gateway_factory) -> None:
    wait_until(lambda: sockets(sim) == 0, what="no socket left from an earlier test")
    gw = gateway_factory().start()
    wait_until(lambda: sockets(sim) == 1, what="the gateway's socket")
    advance(sim, 2)
    wait_caught_up(sync_redis, sim, gw)
    before = {s: top(sync_redis, s) for s, _, _ in gw.streams()}

    gw.kill()
    wait_until(lambda: sockets(sim) == 0, what="the venue to notice the dead socket")
    advance(sim, 7)  # closes 7 one-minute candles (and one or two 5m ones) nobody is listening to
    gw.start()
    wait_until(lambda: sockets(sim) == 1, what="the restarted gateway's socket")
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    assert assert_complete(sync_redis, sim, gw)
    assert top(sync_redis, "md:candles:sim:BTCUSDT:1m") >= before["md:candles:sim:BTCUSDT:1m"] + 8 * M
    assert "Traceback" not in gw.log.read_text()


def test_venue_closes_the_socket_and_the_gap_is_backfilled(sim, sync_redis, gateway_factory) -> None:
    wait_until(lambda: sockets(sim) == 0, what="no socket left from an earlier test")
    gw = gateway_factory().start()
    wait_until(lambda: sockets(sim) == 1, what="the gateway's socket")
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    assert sim.control.close_ws(protocol="binance") == 1
    advance(sim, 4)  # while the gateway reconnects: these closes come over REST, not the socket
    wait_until(lambda: sockets(sim) == 1, what="the gateway to reconnect")
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    assert assert_complete(sync_redis, sim, gw)
    text = metrics_text(sync_redis)
    assert metric(text, "automata_md_reconnects_total", venue="sim") >= 1
    assert metric(text, "automata_md_backfilled_candles_total", stream="md:candles:sim:BTCUSDT:1m") >= 20
    assert (
        metric(text, "automata_md_ws_messages_total", stream="md:candles:sim:BTCUSDT:1m") >= 2 * 4
    )  # 2 steps x 4
    stream = "md:candles:sim:BTCUSDT:1m"  # every stored candle counted once, live or backfilled
    assert metric(text, "automata_md_entries_total", stream=stream) == sync_redis.xlen(stream)
    assert "automata_md_feed_lag_seconds" in text


def test_socket_down_rest_polling_keeps_candles_flowing_and_stall_is_notified(
    sim, sync_redis, gateway_factory
) -> None:
    wait_until(lambda: sockets(sim) == 0, what="no socket left from an earlier test")
    # stalled after 0.05 x 60 s = 3 s without a kline; socket down for 1 s is worth a notification
    gw = gateway_factory(stall_factor=0.05, ws_down_alert_s=1.0, intervals=["1m"]).start()
    wait_until(lambda: sockets(sim) == 1, what="the gateway's socket")
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    start_top = top(sync_redis, "md:candles:sim:BTCUSDT:1m")

    sim.control.fault("refuse_ws", seconds=6, match={"path": "/stream"})
    assert sim.control.close_ws(protocol="binance") == 1
    for _ in range(3):  # the market goes on while the socket cannot come back
        advance(sim, 1)
        wanted = newest_closed(sim, "BTCUSDT", "1m") - M  # the newest one waits for proof it closed
        wait_until(lambda w=wanted: top(sync_redis, "md:candles:sim:BTCUSDT:1m") >= w, what="REST polling")
    assert sockets(sim) == 0  # those candles came over REST
    assert top(sync_redis, "md:candles:sim:BTCUSDT:1m") >= start_top + 2 * M

    def stalled() -> set[str]:
        notes = [n for n in notifications(sync_redis) if n.kind == "feed_stalled"]
        return {n.data.get("stream", "socket") for n in notes if n.venue == "sim"}

    wait_until(
        lambda: stalled() >= {"socket", "md:candles:sim:BTCUSDT:1m", "md:candles:sim:ETHUSDT:1m"},
        timeout=10,
        what="feed_stalled for the socket and both silent streams",
    )
    wait_until(lambda: sockets(sim) == 1, timeout=30, what="the socket back once the venue accepts it")
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    assert assert_complete(sync_redis, sim, gw)
    kinds = [n.kind for n in notifications(sync_redis)]
    assert kinds.count("feed_stalled") == 3  # one per episode, not one per check


def test_bybit_through_pybit_same_guarantees(sim, sync_redis, gateway_factory) -> None:
    wait_until(lambda: sockets(sim) == 0, what="no socket left from an earlier test")
    gw = gateway_factory("bybit", warmup=15).start()
    wait_until(lambda: sockets(sim) == 1, what="pybit's socket")
    step_until_flowing(sim, sync_redis, "bysim")
    advance(sim, 2)
    wait_caught_up(sync_redis, sim, gw)
    assert [len(candles(sync_redis, s)) >= 15 for s, _, _ in gw.streams()] == [True] * 4

    assert sim.control.close_ws(protocol="bybit") == 1  # pybit reconnects and resubscribes silently
    wait_until(lambda: ws_up(sync_redis, "bysim") == 0, what="the gateway to notice the drop")
    advance(sim, 3)
    wait_until(lambda: sockets(sim) == 1, what="pybit to reconnect")
    step_until_flowing(sim, sync_redis, "bysim")
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    assert assert_complete(sync_redis, sim, gw)  # same market, compared with the venue's klines

    gw.kill()
    advance(sim, 4)
    gw.start()
    wait_until(lambda: sockets(sim) == 1, what="the restarted gateway's socket")
    step_until_flowing(sim, sync_redis, "bysim")
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    assert assert_complete(sync_redis, sim, gw)


def test_bybit_book_tickers_from_the_orderbook_topic(sim, sync_redis, gateway_factory) -> None:
    """A Bybit paper venue: pybit's `orderbook.1` subscription is accepted and each change of the
    top of the book becomes a BookTicker on md:book (what an emulated OCO on Bybit watches)."""
    wait_until(lambda: sockets(sim) == 0, what="no socket left from an earlier test")
    gw = gateway_factory("bybit", warmup=5, book_tickers=["BTCUSDT"]).start()
    stream = "md:book:bysim:BTCUSDT"

    def books() -> list[BookTicker]:
        return [decode(f) for _, f in sync_redis.xrange(stream)]

    wait_until(lambda: books(), timeout=30, what="the book at subscribe time")
    price = Decimal(str(sim.control.state()["prices"]["BTCUSDT"]))
    for step in range(1, 4):
        seen = len(books())
        sim.control.set_price("BTCUSDT", str(price + 7 * step))
        wait_until(lambda n=seen: len(books()) > n, what=f"the book after move {step}")
    got = books()
    assert all(isinstance(b, BookTicker) and b.venue == "bysim" and b.bid < b.ask for b in got)
    assert [b.update_id for b in got] == sorted({b.update_id for b in got})
    with urllib.request.urlopen(f"{sim.base_url}/v5/market/tickers?category=spot&symbol=BTCUSDT") as reply:
        [venue] = json.loads(reply.read())["result"]["list"]
    assert (got[-1].bid, got[-1].ask) == (Decimal(venue["bid1Price"]), Decimal(venue["ask1Price"]))
    assert "refused a subscription" not in gw.log.read_text()
    assert gw.stop() == 0


def test_data_download_then_import_round_trip(sim, sync_redis, env, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cli.data import data_app
    from shared.candle_files import read_candles

    config = tmp_path / "automata.toml"
    config.write_text(f'[venues.sim]\nkind = "sim"\nbase_url = "{sim.base_url}"\n')
    monkeypatch.setenv("AUTOMATA_CONFIG", str(config))
    monkeypatch.setenv("REDIS_URL", env["REDIS_URL"])
    sim.control.advance(candles=800)  # history: the venue's 500 warm-up candles and these
    newest = newest_closed(sim, "BTCUSDT", "1m")
    start, end = newest - 1200 * M, newest - 10 * M  # more than one page of 1000
    out = tmp_path / "btc.csv"
    args = ["download", "sim", "BTCUSDT", "1m", "--start", str(start), "--end", str(end), "--out", str(out)]
    result = CliRunner().invoke(data_app, args)
    assert result.exit_code == 0, result.output
    rows = list(read_candles(out))
    assert [r.open_time for r in rows] == list(range(start, end, M))
    venue = {row[0]: row for row in venue_klines(sim, "BTCUSDT", "1m", start)}
    venue.update({row[0]: row for row in venue_klines(sim, "BTCUSDT", "1m", start + 1000 * M)})
    assert all(Decimal(r.close) == Decimal(venue[r.open_time][4]) for r in rows)

    args = ["import", str(out), "--venue", "sim", "--symbol", "BTCUSDT", "--interval", "1m"]
    for expected in ("1190 candles imported", "0 candles imported"):  # the second time adds nothing
        result = CliRunner().invoke(data_app, args)
        assert result.exit_code == 0 and expected in result.output, result.output
    stored = candles(sync_redis, "md:candles:sim:BTCUSDT:1m")
    assert [c.open_time for c in stored] == [r.open_time for r in rows]


def test_bybit_socket_that_gave_up_is_rebuilt(sim, sync_redis, gateway_factory) -> None:
    wait_until(lambda: sockets(sim) == 0, what="no socket left from an earlier test")
    gw = gateway_factory("bybit", warmup=5, symbols=["BTCUSDT"], intervals=["1m"]).start()
    wait_until(lambda: sockets(sim) == 1, what="pybit's socket")
    step_until_flowing(sim, sync_redis, "bysim")

    # pybit's 10 reconnect attempts take milliseconds: all refused, it stops for good, silently
    sim.control.fault("refuse_ws", seconds=1.5, match={"path": "/v5/public"})
    assert sim.control.close_ws(protocol="bybit") == 1
    advance(sim, 2)
    wait_until(lambda: sockets(sim) == 1, timeout=20, what="a new pybit socket")
    assert "building a new one" in gw.log.read_text()
    step_until_flowing(sim, sync_redis, "bysim")
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    assert assert_complete(sync_redis, sim, gw)


def test_dropped_kline_messages_leave_no_gap(sim, sync_redis, gateway_factory) -> None:
    """The venue loses kline messages, closes included, on a socket that stays up: the gateway
    notices the candle that skipped ahead and fills the gap over REST."""
    wait_until(lambda: sockets(sim) == 0, what="no socket left from an earlier test")
    gw = gateway_factory().start()
    wait_until(lambda: sockets(sim) == 1, what="the gateway's socket")
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    sim.control.fault(
        "drop_event", count=40, match={"protocol": "binance", "event": "kline", "symbol": "BTCUSDT"}
    )
    advance(sim, 3)  # 3 candles of 4 steps each: every BTCUSDT kline message of them is lost
    assert not sim.control.faults() or sim.control.faults()[0]["used"] >= 12
    sim.control.clear_faults()
    advance(sim, 1)
    wait_caught_up(sync_redis, sim, gw)
    assert assert_complete(sync_redis, sim, gw)
    assert sockets(sim) == 1, "no reconnect was needed"
    assert gw.stop() == 0
