"""Market gateway, the parts that need no venue: which REST answers count as closed candles, the
per-stream writer's ordering against a real Redis, stall rules, config errors, wire parsing,
history from the stream and `automata data import`."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from cli.data import import_file
from services.market_gateway.alerts import stall_notification
from services.market_gateway.backfill import closed_pages
from services.market_gateway.binance_venue import parse_book, parse_kline
from services.market_gateway.bybit_venue import BookState, parse_rest_kline, parse_ws_kline
from services.market_gateway.candles import CandleWriter
from services.market_gateway.plan import CandleKey, build_plan
from services.market_gateway.stall import StallTracker
from shared.codec import decode
from shared.config import ConfigError, load_config
from shared.history import candle_history, last_open_time
from shared.messages import Candle
from shared.ratelimit import WeightLimiter

M = 60_000
T0 = 1_700_000_040_000 // M * M  # a minute boundary
KEY = CandleKey("sim", "BTCUSDT", "1m")


def candle(open_time: int, close: str = "100", closed: bool = True) -> Candle:
    return Candle(
        venue="sim",
        symbol="BTCUSDT",
        interval="1m",
        open_time=open_time,
        close_time=open_time + M - 1,
        open=Decimal("100"),
        high=Decimal("101"),
        low=Decimal("99"),
        close=Decimal(close),
        volume=Decimal("1.5"),
        closed=closed,
    )


class FakeVenue:
    """A KlineSource over a list of candles; `forming` adds the candle still in progress, as
    Binance and Bybit list it. Records each request."""

    def __init__(
        self, closed_until: int, *, forming: bool = True, limit: int = 5, gaps: set[int] = frozenset()
    ):
        self.closed_until, self.forming, self.max_limit, self.gaps = closed_until, forming, limit, gaps
        self.requests: list[tuple[int | None, int | None, int]] = []

    def all(self) -> list[Candle]:
        top = self.closed_until + (M if self.forming else 0)
        return [
            candle(t, closed=t < self.closed_until) for t in range(T0 - 100 * M, top, M) if t not in self.gaps
        ]

    async def klines(self, symbol, interval, start_ms, end_ms, limit):
        self.requests.append((start_ms, end_ms, limit))
        rows = [c for c in self.all() if (start_ms is None or c.open_time >= start_ms)]
        rows = [c for c in rows if end_ms is None or c.open_time <= end_ms]
        rows = [msgspec.structs.replace(c, closed=False) for c in rows]  # REST never says
        return rows[:limit] if start_ms is not None else rows[-limit:]

    async def close(self) -> None:
        pass


async def collect(venue: FakeVenue, start: int, **kw) -> list[int]:
    out = []
    async for page in closed_pages(venue, "BTCUSDT", "1m", M, start, **kw):
        assert all(c.closed for c in page)
        out.extend(c.open_time for c in page)
    return out


# -- which candles are closed ---------------------------------------------------------------------


@pytest.mark.parametrize("forming", [True, False])
async def test_backfill_to_the_present_holds_back_the_newest_candle(forming: bool) -> None:
    # the venue lists 12 closed candles (+ the forming one on Binance/Bybit); windows of 5
    venue = FakeVenue(T0 + 12 * M, forming=forming)
    got = await collect(venue, T0)
    # with a forming candle listed, all 12 closed ones are proven by a newer one; without, the newest
    # closed one cannot be told from a forming one and waits for the socket
    expected = list(range(T0, T0 + (12 if forming else 11) * M, M))
    assert got == expected
    assert all(end is not None and start is not None for start, end, _ in venue.requests)


async def test_backfill_trusts_the_socket_bound_for_the_newest_candle() -> None:
    venue = FakeVenue(T0 + 12 * M, forming=False)
    got = await collect(venue, T0, closed_before=T0 + 12 * M)  # the socket shows candle 12 forming
    assert got == list(range(T0, T0 + 12 * M, M))


async def test_gap_fill_up_to_a_live_candle_is_exact_and_pages() -> None:
    venue = FakeVenue(T0 + 30 * M, forming=True)
    got = await collect(venue, T0 + 3 * M, stop_ms=T0 + 17 * M)
    assert got == list(range(T0 + 3 * M, T0 + 17 * M, M))
    assert len(venue.requests) == 3  # 14 candles, windows of 5 (the last one peeks one slot further)


async def test_backfill_steps_over_a_venue_gap() -> None:
    gaps = {T0 + i * M for i in range(4, 11)}  # the venue printed nothing for 7 minutes
    venue = FakeVenue(T0 + 20 * M, gaps=gaps)
    got = await collect(venue, T0, stop_ms=T0 + 15 * M)
    assert got == [t for t in range(T0, T0 + 15 * M, M) if t not in gaps]


# -- the writer: order, gaps, duplicates, warm-up, against a real Redis -----------------------------


def ids(entries) -> list[int]:
    return [int(e[0].split(b"-")[0]) for e in entries]


async def run_writer(writer: CandleWriter, until) -> None:
    task = asyncio.create_task(writer.run())
    try:
        for _ in range(500):
            if await until():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("writer did not get there")
    finally:
        task.cancel()


async def test_writer_warms_up_fills_gaps_and_never_duplicates(redis_client) -> None:
    venue = FakeVenue(T0 + 10 * M, forming=True)
    writer = CandleWriter(redis_client, KEY, venue, maxlen=10_000, warmup=4)
    stream = KEY.stream
    writer.request_sync()

    async def length(n: int):
        return await redis_client.xlen(stream) >= n

    await run_writer(writer, lambda: length(4))
    assert ids(await redis_client.xrange(stream)) == [T0 + i * M for i in range(6, 10)]  # the last 4 closed

    # live: the successor, a duplicate, then a candle after a gap (3 missing ones come over REST)
    venue.closed_until = T0 + 16 * M
    writer.seen(T0 + 10 * M, candle(T0 + 10 * M, close="110"))
    writer.seen(T0 + 10 * M, candle(T0 + 10 * M, close="999"))
    writer.seen(T0 + 14 * M, candle(T0 + 14 * M, close="114"))
    await run_writer(writer, lambda: length(9))
    entries = await redis_client.xrange(stream)
    assert ids(entries) == [T0 + i * M for i in range(6, 15)]
    by_open = {c.open_time: c for c in (decode(f) for _, f in entries)}
    assert by_open[T0 + 10 * M].close == Decimal("110")  # the first one stays; the replay was refused
    assert all(c.closed for c in by_open.values())

    # a restarted writer (new object, same stream) continues from the stream's top: candle 15 closed
    # (the venue lists 16 forming), nothing is written twice
    again = CandleWriter(redis_client, KEY, venue, maxlen=10_000, warmup=4)
    again.request_sync()
    await run_writer(again, lambda: length(10))
    assert ids(await redis_client.xrange(stream)) == [T0 + i * M for i in range(6, 16)]
    assert await last_open_time(redis_client, stream) == T0 + 15 * M


async def test_a_lost_close_is_pulled_as_soon_as_the_next_candle_forms(redis_client) -> None:
    venue = FakeVenue(T0 + 10 * M, forming=False)  # lists closed candles only (the paper venue's way)
    writer = CandleWriter(redis_client, KEY, venue, maxlen=10_000, warmup=3)
    writer.request_sync()

    async def length(n: int):
        return await redis_client.xlen(KEY.stream) >= n

    await run_writer(writer, lambda: length(3))
    assert ids(await redis_client.xrange(KEY.stream)) == [T0 + 6 * M, T0 + 7 * M, T0 + 8 * M]  # 9 unproven
    # the socket never delivers candle 9's close, but shows candle 10 forming: 9 closed
    writer.seen(T0 + 10 * M, None)
    await run_writer(writer, lambda: length(4))
    assert ids(await redis_client.xrange(KEY.stream)) == [T0 + i * M for i in range(6, 10)]
    writer.seen(T0 + 10 * M, None)  # the same forming candle again: nothing more to ask
    assert writer._queue.qsize() == 0
    writer.seen(T0 + 11 * M, None)  # the next one forming while 10's close was not seen: ask again
    assert writer._queue.qsize() == 1


async def test_history_returns_the_last_n_oldest_first(redis_client) -> None:
    venue = FakeVenue(T0 + 10 * M, forming=True)
    writer = CandleWriter(redis_client, KEY, venue, maxlen=10_000, warmup=8)
    writer.request_sync()

    async def full():
        return await redis_client.xlen(KEY.stream) >= 8

    await run_writer(writer, full)
    got = await candle_history(redis_client, "sim", "BTCUSDT", "1m", 3)
    assert [c.open_time for c in got] == [T0 + 7 * M, T0 + 8 * M, T0 + 9 * M]
    before = await candle_history(redis_client, "sim", "BTCUSDT", "1m", 2, before_ms=T0 + 8 * M)
    assert [c.open_time for c in before] == [T0 + 6 * M, T0 + 7 * M]
    assert await candle_history(redis_client, "sim", "ETHUSDT", "1m", 5) == []


# -- stalls, alerts, limiter ----------------------------------------------------------------------


def test_stall_rules_report_each_episode_once() -> None:
    key5 = CandleKey("sim", "BTCUSDT", "5m")
    t = StallTracker([KEY, key5], factor=2, down_alert_s=10, now=0.0)
    t.socket_up()
    assert t.check(100.0) == []
    events = t.check(121.0)  # 1m silent for 121 s > 2 x 60 s; 5m not yet (600 s)
    assert [(e.kind, e.key) for e in events] == [("stalled", KEY)]
    assert t.check(130.0) == []  # once
    t.seen(KEY, 131.0)
    assert [(e.kind, e.key) for e in t.check(132.0)] == [("recovered", KEY)]
    assert t.socket_down(200.0) and not t.socket_down(201.0)
    t.seen(KEY, 205.0)
    assert [e.kind for e in t.check(211.0)] == ["socket_down"]
    assert t.socket_up()
    assert [e.kind for e in t.check(212.0)] == ["socket_up"]


def test_stall_notification_is_stable_per_episode() -> None:
    t = StallTracker([KEY], factor=1, down_alert_s=5, now=0.0)
    t.socket_up()
    (event,) = t.check(61.0)
    a = stall_notification("sim", event, 1_000_000)
    b = stall_notification("sim", event, 1_000_000)
    assert a == b and a.kind == "feed_stalled" and a.data["stream"] == KEY.stream
    assert "BTCUSDT" in a.text and a.level == "warning"


def test_limiter_spends_its_budget_then_asks_to_wait() -> None:
    now = [0.0]
    lim = WeightLimiter(600, clock=lambda: now[0])  # 10/s, bursts of 120
    assert sum(lim.delay_for(2) == 0 for _ in range(60)) == 60
    assert lim.delay_for(2) == pytest.approx(0.2)
    now[0] += 1.0
    assert lim.delay_for(2) == 0
    lim.block(30, "test")
    assert lim.delay_for(1) == pytest.approx(30)


# -- config and plan ------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "automata.toml"
    path.write_text(text)
    return path


def test_plan_merges_feeds_of_a_venue_into_one_socket(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[venues.sim]
kind = "sim"
base_url = "http://127.0.0.1:9999"
[[market_gateway.feeds]]
venue = "sim"
symbols = ["BTCUSDT", "ETHUSDT"]
intervals = ["1m", "5m"]
book_tickers = ["BTCUSDT"]
[[market_gateway.feeds]]
venue = "sim"
symbols = ["BTCUSDT"]
intervals = ["1h", "1m"]
""",
    )
    (plan,) = build_plan(load_config(path, env={}))
    assert plan.protocol == "binance" and plan.base_url == "http://127.0.0.1:9999"
    assert [k.stream for k in plan.candles] == [
        "md:candles:sim:BTCUSDT:1m",
        "md:candles:sim:BTCUSDT:5m",
        "md:candles:sim:ETHUSDT:1m",
        "md:candles:sim:ETHUSDT:5m",
        "md:candles:sim:BTCUSDT:1h",
    ]
    assert plan.books == ("BTCUSDT",)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            '[[market_gateway.feeds]]\nvenue = "sim"\nsymbols = ["BTCUSDT"]\nintervals = ["2m"]',
            "feeds.0.intervals.0",
        ),
        ('[[market_gateway.feeds]]\nvenue = "sim"\nsymbols = ["btc usdt"]', "feeds.0.symbols.0"),
        ("[market_gateway]\nstall_factor = 0", "market_gateway.stall_factor"),
        ("[market_gateway]\nwarmup = -1", "market_gateway.warmup"),
        ("[market_gateway]\nunknown = 1", "market_gateway"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"automata.toml: .*{field}"):
        load_config(write(tmp_path, text), env={})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[[market_gateway.feeds]]\nvenue = "nowhere"\nsymbols = ["BTCUSDT"]', "feeds.0.venue"),
        (
            '[venues.by]\nkind = "bybit"\n[[market_gateway.feeds]]\nvenue = "by"\nsymbols = ["BTCUSDT"]\n'
            'intervals = ["1m", "8h"]',
            "feeds.0.intervals.1",
        ),
    ],
)
def test_plan_errors_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    cfg = load_config(write(tmp_path, text), env={})
    with pytest.raises(ConfigError, match=rf"market_gateway\.{field}"):
        build_plan(cfg)


# -- wire formats ---------------------------------------------------------------------------------


def test_binance_kline_and_book_ticker_parse_to_decimals() -> None:
    k = {"t": T0, "T": T0 + M - 1, "i": "1m", "o": "1.10", "h": "1.30", "l": "1.00", "c": "1.20"}
    k |= {"v": "5", "q": "6", "n": 7, "x": True}
    c = parse_kline("sim", "BTCUSDT", k)
    assert (c.open, c.close, c.trades, c.closed) == (Decimal("1.10"), Decimal("1.20"), 7, True)
    b = parse_book("sim", "BTCUSDT", {"u": 9, "b": "1.1", "B": "2", "a": "1.2", "A": "3"}, now_ms=5)
    assert (b.bid, b.ask_qty, b.ts, b.update_id) == (Decimal("1.1"), Decimal("3"), 5, 9)


def test_a_malformed_message_is_skipped_not_fatal(tmp_path: Path) -> None:
    from services.market_gateway.binance_venue import BinanceSocket

    path = write(
        tmp_path,
        '[venues.sim]\nkind = "sim"\n[[market_gateway.feeds]]\nvenue = "sim"\nsymbols = ["BTCUSDT"]\n',
    )
    (plan,) = build_plan(load_config(path, env={}))
    got: list[tuple] = []

    class Sink:
        def on_kline(self, key, open_time, candle):
            got.append((key.stream, open_time, candle is not None))

        def on_book(self, symbol, ticker):
            got.append((symbol,))

        def on_down(self, reason):
            got.append(("down", reason))

    socket, sink = BinanceSocket(plan), Sink()
    bad = {"stream": "btcusdt@kline_1m", "data": {"k": {"t": T0, "x": True, "o": "not a number"}}}
    good = {"stream": "btcusdt@kline_1m", "data": {"k": {"t": T0 + M, "x": False}}}
    assert socket._dispatch(bad, sink) and socket._dispatch(good, sink)
    assert got == [("md:candles:sim:BTCUSDT:1m", T0 + M, False)]
    assert not socket._dispatch({"e": "error", "type": "BinanceWebsocketUnableToConnect"}, sink)
    assert got[-1] == ("down", "BinanceWebsocketUnableToConnect")


def test_bybit_kline_and_book_parse() -> None:
    item = {"start": T0, "open": "1", "high": "2", "low": "0.5", "close": "1.5", "volume": "3"}
    c = parse_ws_kline(KEY, item | {"turnover": "4", "confirm": True})
    assert (c.close_time, c.quote_volume, c.closed) == (T0 + M - 1, Decimal("4"), True)
    r = parse_rest_kline("sim", "BTCUSDT", "1m", [str(T0), "1", "2", "0.5", "1.5", "3", "4"])
    assert r.open_time == T0 and r.close == Decimal("1.5")
    state = BookState()
    assert not state.update({"b": [["10", "1"]], "a": []})
    assert state.update({"b": [], "a": [["11", "2"]]})  # a side missing keeps its last value
    t = state.ticker("sim", "BTCUSDT", 1, 2)
    assert (t.bid, t.ask, t.ask_qty) == (Decimal("10"), Decimal("11"), Decimal("2"))


# -- automata data import -------------------------------------------------------------------------


def test_import_loads_both_layouts_once(sync_redis, tmp_path: Path) -> None:
    shared_layout = tmp_path / "a.csv"
    shared_layout.write_text(
        "open_time,open,high,low,close,volume\n"
        "2023-03-01 00:00:00+00:00,1,2,0.5,1.5,3\n"
        "2023-03-01 00:01:00+00:00,1.5,2,1,1.75,4\n"
    )
    t = 1677628800000  # 2023-03-01T00:00Z
    binance_layout = tmp_path / "b.csv"
    binance_layout.write_text(
        "\n".join(f"{t + i * M},1,2,0.5,1.5,3,{t + i * M + M - 1},4,5,1,2,0" for i in range(1, 4)) + "\n"
    )
    assert import_file(sync_redis, shared_layout, "sim", "BTCUSDT", "1m", maxlen=1000) == (2, 0)
    assert import_file(sync_redis, binance_layout, "sim", "BTCUSDT", "1m", maxlen=1000) == (2, 1)
    assert import_file(sync_redis, binance_layout, "sim", "BTCUSDT", "1m", maxlen=1000) == (0, 3)
    entries = sync_redis.xrange("md:candles:sim:BTCUSDT:1m")
    assert ids(entries) == [t + i * M for i in range(4)]
    first = decode(entries[1][1])
    assert (first.close, first.close_time, first.closed) == (Decimal("1.75"), t + 2 * M - 1, True)


def test_import_refuses_a_file_of_another_interval(sync_redis, tmp_path: Path) -> None:
    from shared.candle_files import CandleFileError

    path = tmp_path / "a.csv"
    path.write_text(f"{T0 - T0 % (5 * M) + M},1,2,0.5,1.5,3,0,0,0,0,0,0\n")
    with pytest.raises(CandleFileError, match="5m boundary"):
        import_file(sync_redis, path, "sim", "BTCUSDT", "5m", maxlen=1000)


def test_import_refuses_coarser_candles_than_its_interval_and_writes_nothing(
    sync_redis, tmp_path: Path
) -> None:
    """5-minute candles imported with the default --interval 1m all sit on minute boundaries:
    they went into the 1m stream, and the 1-minute file imported next was "already there" (every
    id at or below the newest is refused), so the bots warmed up on 5-minute candles as minutes."""
    from shared.candle_files import CandleFileError

    path = tmp_path / "btc5m.csv"
    start = T0 - T0 % (5 * M)
    path.write_text(
        "open_time,open,high,low,close,volume\n"
        + "".join(f"{start + i * 5 * M},1,2,0.5,1.5,3\n" for i in range(4))
        + f"{start + 30 * M},1,2,0.5,1.5,3\n"  # a gap: still 5 minutes apart at the least
    )
    with pytest.raises(CandleFileError, match=r"5m apart.*--interval 5m"):
        import_file(sync_redis, path, "sim", "BTCUSDT", "1m", maxlen=1000)
    assert sync_redis.xlen("md:candles:sim:BTCUSDT:1m") == 0
    assert import_file(sync_redis, path, "sim", "BTCUSDT", "5m", maxlen=1000) == (5, 0)
