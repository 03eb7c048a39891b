"""The venue as one object: engine, market, faults, clock, open websockets, and the market runner.

Protocol layers get this object in their `setup(app, venue)`; the control API changes it.
The runner steps the market at SIM_SPEED (market minutes per wall minute); with speed 0
(step mode) only the control API moves the market, so tests never depend on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from aiohttp import web

from services.exchange_sim import feeds as feed_mod
from services.exchange_sim import store as store_mod
from services.exchange_sim.config import SimConfig
from services.exchange_sim.faults import FaultBook
from services.exchange_sim.market import STEPS_PER_CANDLE, Market
from services.exchange_sim.ratelimit import RateLimiter
from services.exchange_sim.store import Snapshot, Store
from services.exchange_sim.tape import Tape
from shared.matching.engine import CorruptState, Engine
from shared.matching.symbols import select

log = logging.getLogger("exchange_sim.venue")


def stop_on_corrupt_state(exc: BaseException) -> None:
    """Corrupt state stops the process at once (exit 70) rather than trading on;
    supervisord restarts a clean venue."""
    log.critical("corrupt venue state, stopping: %s", exc)
    logging.shutdown()
    os._exit(70)


class ServerClock:
    """Wall-clock time as the venue's API sees it, shifted by an injected skew."""

    def __init__(self) -> None:
        self.skew_ms = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.skew_ms


@dataclass(eq=False)
class Socket:
    ws: web.WebSocketResponse
    protocol: str  # "binance" / "bybit"
    kind: str  # "market" / "user" / "ws_api" / "private" ...
    topics: frozenset[str] = frozenset()  # what it is subscribed to (Bybit's subscribe op)


class SocketRegistry:
    """Every open websocket, so the control API can close them and shutdown does not hang."""

    def __init__(self) -> None:
        self._open: dict[int, Socket] = {}

    def add(self, ws: web.WebSocketResponse, *, protocol: str, kind: str) -> None:
        self._open[id(ws)] = Socket(ws, protocol, kind)

    def discard(self, ws: web.WebSocketResponse) -> None:
        self._open.pop(id(ws), None)

    def subscribed(self, ws: web.WebSocketResponse, topics: frozenset[str]) -> None:
        """The socket's topics now (after a subscribe or unsubscribe op)."""
        if (socket := self._open.get(id(ws))) is not None:
            socket.topics = topics

    def topics(self) -> dict[str, list[str]]:
        """The topics subscribed by "protocol:kind": a test waits for a subscription, not only for
        the socket (a push sent between the two is not for that socket)."""
        out: dict[str, set[str]] = {}
        for s in self._open.values():
            out.setdefault(f"{s.protocol}:{s.kind}", set()).update(s.topics)
        return {k: sorted(v) for k, v in out.items() if v}

    def count(self, protocol: str | None = None, kind: str | None = None) -> int:
        return len(self._select(protocol, kind))

    def by_kind(self) -> dict[str, int]:
        """Open sockets counted by "protocol:kind" (e.g. "binance:market")."""
        counts: dict[str, int] = {}
        for s in self._open.values():
            key = f"{s.protocol}:{s.kind}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def _select(self, protocol: str | None, kind: str | None) -> list[Socket]:
        return [
            s
            for s in self._open.values()
            if (protocol in (None, "all", s.protocol)) and (kind in (None, "all", s.kind))
        ]

    async def close(self, protocol: str | None = None, kind: str | None = None, code: int = 1001) -> int:
        """Close the matching sockets (1001 going away, as an exchange restarting does)."""
        chosen = self._select(protocol, kind)
        for sock in chosen:
            self._open.pop(id(sock.ws), None)
            with contextlib.suppress(Exception):
                await sock.ws.close(code=code, message=b"closed by the venue")
        return len(chosen)


@dataclass(eq=False)
class Venue:
    config: SimConfig
    engine: Engine
    market: Market
    faults: FaultBook = field(default_factory=FaultBook)
    clock: ServerClock = field(default_factory=ServerClock)
    sockets: SocketRegistry = field(default_factory=SocketRegistry)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    on_reset: list[Callable[[], None]] = field(default_factory=list)
    speed: float = 0.0
    store: Store | None = None
    _runner: asyncio.Task[None] | None = None

    @functools.cached_property
    def tape(self) -> Tape:
        """The market's prints (tape.py): one for the venue, read by both faces."""
        return Tape(self)

    @classmethod
    def build(cls, config: SimConfig) -> Venue:
        specs = select(config.symbols)
        engine = Engine(
            specs,
            balances=config.balances,
            maker_fee=config.maker_fee,
            taker_fee=config.taker_fee,
            market_fill=config.market_fill,
        )
        rows = feed_mod.load_rows(feed_mod.data_files(config.data, config.symbols))
        origin = feed_mod.origin_of(rows, config.start_ms)

        def make_feeds(at: int = origin, prev: dict[str, Decimal] | None = None) -> dict[str, feed_mod.Feed]:
            return {
                s.symbol: feed_mod.Feed(
                    s,
                    origin_ms=at,
                    interval_ms=60_000,
                    seed=config.seed,
                    rows=rows.get(s.symbol, ()),
                    prev=prev[s.symbol] if prev else None,
                )
                for s in specs
            }

        market = Market(
            engine, make_feeds, origin_ms=origin, warmup=config.warmup, history_max=config.history_max
        )
        clock = ServerClock()
        venue = cls(
            config=config,
            engine=engine,
            market=market,
            clock=clock,
            limiter=RateLimiter(
                weight_limit=config.weight_limit,
                order_limit_10s=config.order_limit_10s,
                ban_after=config.ban_after,
                ban_seconds=config.ban_seconds,
                clock=lambda: clock.now_ms() / 1000,  # Binance counts in the server's minutes
            ),
            speed=config.speed,
        )
        if config.state_dir:
            venue._open_store(Path(config.state_dir), make_feeds)
        venue._apply_liquidity_defaults()
        return venue

    def _open_store(self, directory: Path, make_feeds: Callable[..., dict[str, feed_mod.Feed]]) -> None:
        """Resume from what SIM_STATE_DIR holds (store.py), then record every change there."""
        saved = store_mod.load(directory, self.market.symbols, self.config.seed, self.config.data)
        if saved is not None:
            snap = saved.snapshot
            self.engine.restore(snap.engine)
            last = {s: h[-1] for s, h in snap.history.items()}
            at = max(c.close_time + 1 for c in last.values())
            self.market.resume(
                make_feeds(at, {s: c.close for s, c in last.items()}), snap.history, snap.dropped, snap.steps
            )
            log.info(
                "resumed from %s: %d open orders, market at %s",
                directory,
                sum(len(self.engine.open_orders(a)) for a in self.engine.accounts()),
                time.strftime("%Y-%m-%d %H:%M", time.gmtime(at / 1000)),
            )
        else:
            log.info("no saved state in %s: a fresh start, saved there from now on", directory)
        store = Store(directory, self.saved_state)
        store.open()
        self.store = store
        self.engine.on_change = store.on_change
        self.engine.add_listener(store.on_event)
        self.market.add_listener(
            lambda ticks: store.on_ticks(ticks, self.engine.trade_ids(), self.market.steps)
        )
        self.on_reset.append(store.snapshot)

    def saved_state(self) -> Snapshot:
        """Everything a restarted venue resumes from (store.py)."""
        return Snapshot(
            symbols=self.market.symbols,
            seed=self.config.seed,
            data=self.config.data,
            steps=self.market.steps,
            history={s: h[-store_mod.KEEP_CANDLES :] for s, h in self.market.history.items()},
            dropped={
                s: d + max(0, len(self.market.history[s]) - store_mod.KEEP_CANDLES)
                for s, d in self.market.dropped.items()
            },
            engine=self.engine.state(store_mod.KEEP_CLOSED_ORDERS, store_mod.KEEP_TRADES),
        )

    def _apply_liquidity_defaults(self) -> None:
        self.engine.market_fill = self.config.market_fill
        for knobs in self.market.knobs.values():
            knobs.participation = self.config.participation
            knobs.max_fill = self.config.max_fill

    def reset(self) -> None:
        """Everything back to how the process started: book, balances, market, faults, limits, skew."""
        self.engine.reset()
        self.market.reset()
        self._apply_liquidity_defaults()
        self.faults.clear()
        self.limiter.configure(
            weight_limit=self.config.weight_limit,
            order_limit_10s=self.config.order_limit_10s,
            ban_after=self.config.ban_after,
            ban_seconds=self.config.ban_seconds,
        )
        self.limiter.reset()
        self.clock.skew_ms = 0
        for hook in list(self.on_reset):
            hook()

    # ----------------------------------------------------------------- runner
    def start(self) -> None:
        if self.store is not None:
            self.store.start()
        if self.speed > 0 and self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="market-runner")

    async def stop(self) -> None:
        task, self._runner = self._runner, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Stop the market and write a last snapshot (a clean stop)."""
        await self.stop()
        if self.store is not None:
            await self.store.close()

    async def set_speed(self, speed: float) -> None:
        await self.stop()
        self.speed = max(0.0, speed)
        self.start()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                self.market.step()
            except CorruptState as exc:
                stop_on_corrupt_state(exc)
            except Exception:  # the feed or a listener broke: say so, keep the venue up
                log.exception("market step failed; the runner stops")
                return
            next_at += self.market.interval_ms / 1000 / self.speed / STEPS_PER_CANDLE
            delay = next_at - loop.time()
            if delay < -1.0:  # fell behind by more than a second: do not burst to catch up
                next_at = loop.time()
            await asyncio.sleep(max(0.0, delay))
