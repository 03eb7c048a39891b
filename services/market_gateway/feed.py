"""One venue's feed: its socket, one CandleWriter per candle stream, its book writer, and a
watchdog that detects stalls and polls REST klines while the socket is down or a stream is silent.

Sync (REST backfill of everything closed since a stream's newest candle) is requested on start and
on the first data after every (re)connect, so candles that closed while the socket was away are
filled in before new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as aioredis

from services.market_gateway.alerts import stall_notification
from services.market_gateway.books import BookWriter
from services.market_gateway.candles import CandleWriter
from services.market_gateway.metrics import gateway_metrics
from services.market_gateway.plan import CandleKey, VenuePlan
from services.market_gateway.stall import StallEvent, StallTracker
from services.market_gateway.venue import make_rest, make_socket
from shared.bus import publish
from shared.config import MarketGatewayConfig
from shared.messages import BookTicker, Candle
from shared.ratelimit import VenueBudget, WeightLimiter, budget_limit
from shared.redis_conn import REDIS_ERRORS
from shared.streams import EVENTS_MAXLEN, NOTIFY

log = logging.getLogger("automata.market_gateway.feed")

MAX_RECONNECT_WAIT_S = 15.0


class VenueFeed:
    """A service component (run/stop) for one venue."""

    def __init__(
        self,
        redis: aioredis.Redis,
        plan: VenuePlan,
        cfg: MarketGatewayConfig,
        *,
        weight_limit: int,
    ) -> None:
        self.redis, self.plan, self.cfg = redis, plan, cfg
        # the venue's budget, shared with the order gateway (backfill gives way to orders and
        # recovery), and our own pace within it (weight_per_minute)
        budget = VenueBudget(
            plan.name, budget_limit(weight_limit), redis=redis, pace=WeightLimiter(cfg.weight_per_minute)
        )
        self.rest = make_rest(plan, budget)
        self.writers = {
            key: CandleWriter(redis, key, self.rest, maxlen=cfg.candles_maxlen, warmup=cfg.warmup)
            for key in plan.candles
        }
        self.books = BookWriter(redis, plan.name, plan.books, maxlen=cfg.book_maxlen)
        self.tracker = StallTracker(
            plan.candles, factor=cfg.stall_factor, down_alert_s=cfg.ws_down_alert_s, now=time.monotonic()
        )
        self._need_sync = True
        self._stop = asyncio.Event()
        m = gateway_metrics()
        self._m_reconnects = m.reconnects.labels(plan.name)
        self._m_up = m.ws_up.labels(plan.name)
        self._m_stalls = m.stalls

    # -- FeedSink: called by the socket for every message ---------------------------------------

    def on_kline(self, key: CandleKey, open_time: int, candle: Candle | None) -> None:
        self.tracker.last_seen[key] = time.monotonic()
        if self._need_sync:
            self._socket_up()
        self.writers[key].seen(open_time, candle)

    def on_book(self, symbol: str, ticker: BookTicker) -> None:
        if self._need_sync:
            self._socket_up()
        self.books.add(symbol, ticker)

    def on_down(self, reason: str) -> None:
        self._need_sync = True
        if self.tracker.socket_down(time.monotonic()):
            self._m_reconnects.inc()
            self._m_up.set(0)
            log.warning("%s: market socket down (%s)", self.plan.name, reason)

    def _socket_up(self) -> None:
        self._need_sync = False
        if self.tracker.socket_up():
            log.info("%s: market socket up; syncing %d candle stream(s)", self.plan.name, len(self.writers))
        self._m_up.set(1)
        self.sync_all()

    def sync_all(self, keys: list[CandleKey] | None = None) -> None:
        for key in keys if keys is not None else self.writers:
            self.writers[key].request_sync()

    # -- component ------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def healthy(self) -> bool:
        """False once the socket has been down longer than the alert threshold."""
        return self.tracker.down_for(time.monotonic()) < self.cfg.ws_down_alert_s

    async def run(self) -> None:
        self.sync_all()  # warm-up / catch-up even if the socket never comes
        tasks = [asyncio.create_task(w.run(), name=f"candles {k.stream}") for k, w in self.writers.items()]
        tasks.append(asyncio.create_task(self.books.run(), name=f"books {self.plan.name}"))
        tasks.append(asyncio.create_task(self._socket_loop(), name=f"socket {self.plan.name}"))
        tasks.append(asyncio.create_task(self._watch(), name=f"watchdog {self.plan.name}"))
        stopper = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # a bug: let the service report it and exit non-zero
        finally:
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
            await self.rest.close()

    async def _socket_loop(self) -> None:
        wait = 0.5
        while True:
            started = time.monotonic()
            try:
                await make_socket(self.plan).run(self)
                reason = "socket finished"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.on_down(reason)
            if time.monotonic() - started > 30:
                wait = 0.5
            log.warning("%s: rebuilding the market socket in %.1fs (%s)", self.plan.name, wait, reason)
            await asyncio.sleep(wait)
            wait = min(wait * 2, MAX_RECONNECT_WAIT_S)

    async def _watch(self) -> None:
        """Stall alerts, and REST polling of silent streams (all of them while the socket is down)."""
        poll_every = self.cfg.rest_poll_s
        tick = min(1.0, poll_every / 2, *(s / 4 for s in self.tracker.limit_s.values()))
        next_poll = 0.0
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for event in self.tracker.check(now):
                await self._alert(event)
            down_for = self.tracker.down_for(now)
            silent = list(self.writers) if down_for >= poll_every else sorted(self.tracker.stalled, key=str)
            if silent and now >= next_poll:
                next_poll = now + poll_every
                self.sync_all(silent)
            elif not silent:
                next_poll = 0.0

    async def _alert(self, event: StallEvent) -> None:
        what = "socket" if event.key is None else event.key.stream
        if event.kind in ("stalled", "socket_down"):
            self._m_stalls.labels(self.plan.name, what).inc()
            log.warning("%s: feed stalled (%s, silent %.1fs)", self.plan.name, what, event.silent_s)
        else:
            log.info("%s: feed recovered (%s)", self.plan.name, what)
        note = stall_notification(self.plan.name, event, int(time.time() * 1000))
        with contextlib.suppress(*REDIS_ERRORS):
            await publish(self.redis, NOTIFY, note, maxlen=EVENTS_MAXLEN)
