"""REST request weight: one budget per venue and minute, shared by every process through Redis.

Binance counts request weight per IP per minute (header `X-MBX-USED-WEIGHT-1M`) and answers 429
(then 418, a ban) when it is exceeded; Bybit counts requests per 5 s. The market gateway's
backfill and the order gateway's orders, recovery and polling all spend the same IP's weight.
With a budget each, a restarted order gateway's polling starved the backfill: the market gateway
saw the venue's count pass its own budget and paused for the rest of the minute ("REST paused for
41.2s"), and the bots got no candles. So the budget of a venue lives in Redis (`VenueBudget`, one
hash per venue, counted atomically by a Lua script on Redis's clock), and every request says how
urgent it is. Each priority may spend the budget only up to its share, so the less urgent back off
first and the urgent always find room:

| priority | share | what |
|---|---|---|
| orders | 100 % | place, cancel, and what placing needs (the clock sync, a market order's price) |
| recovery | 85 % | single-order queries, order history, trades, exchange info; open orders and account for reconciliation, a bot's sync, the CLI |
| backfill | 70 % | market-data klines |
| polling | 50 % | the poller's open orders and account (it also waits longer as the level rises) |

The venue's own count still wins when it is higher (other programs on the IP, requests made
before a restart): the level is the larger of ours and the venue's. A 429/418's Retry-After
pauses every process. If Redis cannot be reached, each process falls back to its own token bucket
(`WeightLimiter`), which is also what a process uses to pace itself (the market gateway's
`weight_per_minute`) and what `automata data download` uses alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from enum import IntEnum
from typing import Any, Protocol

from shared import metrics
from shared.redis_conn import REDIS_ERRORS, connect
from shared.streams import weight_budget

log = logging.getLogger("automata.ratelimit")


class Priority(IntEnum):
    """How urgent a request is; lower values are served first."""

    ORDERS = 0
    RECOVERY = 1
    BACKFILL = 2
    POLLING = 3


# Share of the venue budget a priority may bring the minute's level up to.
SHARES: dict[Priority, float] = {
    Priority.ORDERS: 1.0,
    Priority.RECOVERY: 0.85,
    Priority.BACKFILL: 0.7,
    Priority.POLLING: 0.5,
}
# The adapters' endpoint names (services/order_gateway/venues/binance.py, the market gateway).
ENDPOINT_PRIORITY: dict[str, Priority] = {
    "order": Priority.ORDERS,
    "cancel": Priority.ORDERS,
    "time": Priority.ORDERS,
    "ticker": Priority.ORDERS,  # the price a market order is checked against (min notional)
    "get_order": Priority.RECOVERY,
    "all_orders": Priority.RECOVERY,
    "my_trades": Priority.RECOVERY,
    "exchange_info": Priority.RECOVERY,
    "open_orders": Priority.RECOVERY,  # POLLING from the poller's task (polling_task)
    "account": Priority.RECOVERY,
    "klines": Priority.BACKFILL,
}
POLL_ENDPOINTS = frozenset({"open_orders", "account"})
VENUE_SHARE = 0.8  # of the venue's own limit: room for other programs on the same IP
MAX_WAIT_S = 60.0  # one sleep at most (then ask again)
# An order does not wait out a pause longer than this: sent minutes late it would be another
# order than the bot meant (VenuePaused; the order gateway refuses it as during its own ban).
ORDER_PAUSE_REFUSED_S = 10.0
WAKE_STAGGER_S = 0.02  # per priority level: when a minute rolls, the urgent wake first
RETRY_REDIS_S = 5.0  # after Redis failed, use the local bucket this long before trying again
# Orders go at once, counted right after, while the level last seen this minute is below this
# share: an order then never waits for a Redis round trip (a durable write with appendfsync
# always) before the venue request. The budget is 80 % of the venue's limit, so the few orders
# in flight while others raise the level cannot reach the venue's.
ORDERS_AT_ONCE_BELOW = 0.9
COUNT_BATCH_S = 0.05  # orders sent at once are counted in Redis together, this often at most

_polling: ContextVar[bool] = ContextVar("automata_ratelimit_polling", default=False)


def priority_of(endpoint: str) -> Priority:
    """The endpoint's priority (unknown endpoints count as recovery); the poller's listings
    (open orders, account) are polling, the same listings elsewhere recovery."""
    if endpoint in POLL_ENDPOINTS and _polling.get():
        return Priority.POLLING
    return ENDPOINT_PRIORITY.get(endpoint, Priority.RECOVERY)


def polling_task() -> None:
    """Mark the current asyncio task as a poller (call it at the top of the poller's own task):
    its listings of open orders and balances become the budget's least urgent use, while the
    same listings for reconciliation or a bot's sync stay recovery. Single-order queries stay
    recovery everywhere: they bring the fills the user stream missed."""
    _polling.set(True)


class Limiter(Protocol):
    """What the adapters need from a limiter (VenueBudget or WeightLimiter)."""

    async def acquire(self, weight: int = 1, priority: Priority = Priority.RECOVERY) -> None: ...

    def block(self, seconds: float, why: str) -> None: ...

    def observe_used(self, used_1m: int) -> None: ...


class WeightLimiter:
    """This process alone: `per_minute` weight per minute on average, in bursts of at most a
    fifth of it. Priorities are not told apart (FIFO)."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 5.0)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay_for(self, weight: int) -> float:
        """Seconds to wait before `weight` may be spent (0 = now). Spends it when 0."""
        self._refill()
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now
        weight = min(float(weight), self.capacity)
        if self._tokens >= weight:
            self._tokens -= weight
            return 0.0
        return (weight - self._tokens) / self.rate

    async def acquire(self, weight: int = 1, priority: Priority = Priority.RECOVERY) -> None:
        async with self._lock:  # FIFO: a big backfill cannot starve a small poll forever
            delay = self.delay_for(weight)
            while delay > 0:  # a token bucket: the wait is computed, not polled
                await asyncio.sleep(delay)
                delay = self.delay_for(weight)

    def block(self, seconds: float, why: str) -> None:
        """The venue said stop (429/418 Retry-After, or its weight header near our budget)."""
        until = self._clock() + seconds
        if until > self._blocked_until:
            log.warning("REST paused for %.1fs: %s", seconds, why)
            self._blocked_until = until

    def observe_used(self, used_1m: int) -> None:
        """Binance's own count for this minute: above our budget (other processes on this IP
        count too), wait for the next minute."""
        if used_1m >= self.per_minute:
            self.block(60.0 - time.time() % 60.0 + 0.5, f"venue reports weight {used_1m} used this minute")


# KEYS[1] the venue's budget hash. ARGV: weight, cap (the priority's share of the budget),
# priority, the venue's reported count and the window it was seen in, a pause (ms) to record.
# Returns {wait_ms (0 = spent, go), level, window, ms left in the window, ms left of a pause}. The window is the
# minute on Redis's clock, so every process agrees on it; Binance's window is the minute too.
_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local weight, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local seen, seen_window, block_ms = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(now / 60000)
local left = (window + 1) * 60000 - now
local h = redis.call('HMGET', key, 'window', 'used', 'venue', 'blocked_until')
local used, venue, blocked = 0, 0, tonumber(h[4]) or 0
if tonumber(h[1]) == window then
  used, venue = tonumber(h[2]) or 0, tonumber(h[3]) or 0
else
  redis.call('HSET', key, 'window', window, 'used', 0, 'venue', 0, 'p0', 0, 'p1', 0, 'p2', 0, 'p3', 0)
end
if seen_window == window and seen > venue then
  venue = seen
  redis.call('HSET', key, 'venue', venue)
end
if block_ms > 0 and now + block_ms > blocked then
  blocked = now + block_ms
  redis.call('HSET', key, 'blocked_until', blocked)
end
redis.call('PEXPIRE', key, math.max(120000, blocked - now + 60000))
local level = math.max(used, venue)
if now < blocked then return {blocked - now, level, window, left, blocked - now} end
if level + weight <= cap or level == 0 then
  if weight > 0 then
    used = redis.call('HINCRBY', key, 'used', weight)
    redis.call('HINCRBY', key, 'p' .. ARGV[3], weight)
  end
  return {0, math.max(used, venue), window, left, 0}
end
return {left, level, window, left, 0}
"""


class VenuePaused(Exception):
    """The venue's REST is paused for every process (a 418 or a long 429 another process met)
    longer than an order may wait: `seconds` left."""

    def __init__(self, venue: str, seconds: float) -> None:
        super().__init__(f"{venue}: REST paused for {seconds:.0f}s more (HTTP 418/429 met by a process)")
        self.seconds = seconds


class VenueBudget:
    """One venue's request weight per minute, shared through Redis by every process that calls
    it; `limit` must be the same number in each (the config's, see `budget_limit`).

    `pace`, when given, is this process's own token bucket, spent before the shared budget (the
    market gateway keeps backfill to its `weight_per_minute`). While Redis cannot be reached the
    process counts alone (pace, or a local bucket of the whole limit)."""

    def __init__(
        self,
        venue: str,
        limit: int,
        *,
        redis: Any = None,
        redis_url: str | None = None,
        pace: WeightLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venue, self.limit = venue, max(1, int(limit))
        self.key = weight_budget(venue)
        self._redis, self._url = redis, redis_url
        self._pace = pace
        self._fallback = pace or WeightLimiter(self.limit)
        self._clock = clock
        self._script: Any = None
        self.level = 0  # weight used this minute as last seen (the larger of ours and the venue's)
        self._window = -1  # Redis minute of our last answer
        self._window_end = 0.0  # clock() when that minute ends
        self._venue_used, self._venue_window = 0, -1  # the venue's header, to pass on
        self._block_ms = 0  # a pause to pass on
        self._paused_until = 0.0  # clock() when a pause Redis told us of ends
        self._charges: set[asyncio.Task[None]] = set()  # orders sent at once, being counted
        self._uncounted = 0  # weight of orders sent at once, not yet counted in Redis
        self._counting: asyncio.Task[None] | None = None
        self._redis_down_until = 0.0
        self._flush: asyncio.Task[None] | None = None
        self._m_waits = metrics.counter(
            "automata_weight_waits_total",
            "Requests that waited for the venue's shared weight budget",
            ("venue", "priority"),
        )
        self._m_level = metrics.gauge(
            "automata_weight_budget_level", "Weight used this minute, shared budget (last seen)", ("venue",)
        ).labels(venue)

    def cap(self, priority: Priority) -> int:
        """The level up to which `priority` may spend this minute."""
        return max(1, int(self.limit * SHARES[priority]))

    async def acquire(self, weight: int = 1, priority: Priority = Priority.RECOVERY) -> None:
        """Wait until `weight` fits under `priority`'s share of this minute, then count it."""
        if self._pace is not None:
            await self._pace.acquire(weight)
        if priority is Priority.ORDERS and self.orders_at_once(weight):
            self._count_later(weight)
            return
        while True:
            if self._clock() < self._redis_down_until:
                return await self._alone(weight)
            try:
                wait_s = await self.try_acquire(weight, priority)
            except REDIS_ERRORS as exc:
                log.warning(
                    "%s: shared weight budget unreachable (%s); counting alone for %.0fs",
                    self.venue,
                    type(exc).__name__,
                    RETRY_REDIS_S,
                )
                self._redis_down_until = self._clock() + RETRY_REDIS_S
                return await self._alone(weight)
            if wait_s <= 0:
                return
            paused_s = self._paused_until - self._clock()
            if priority is Priority.ORDERS and paused_s > ORDER_PAUSE_REFUSED_S:
                raise VenuePaused(self.venue, paused_s)
            self._m_waits.labels(self.venue, priority.name.lower()).inc()
            log.debug("%s: %s waits %.1fs for weight %d", self.venue, priority.name, wait_s, weight)
            await asyncio.sleep(min(wait_s, MAX_WAIT_S) + WAKE_STAGGER_S * int(priority))

    async def try_acquire(self, weight: int, priority: Priority) -> float:
        """Count `weight` now if it fits under `priority`'s share of this minute and nothing
        paused the venue (returns 0.0); else count nothing and return the seconds to wait. Redis
        errors are raised."""
        return await self._ask(weight, priority) / 1000

    def orders_at_once(self, weight: int) -> bool:
        """Whether an order may go without waiting for Redis's answer: a level seen this minute,
        well below the budget, and no pause known."""
        now = self._clock()
        return (
            now < self._window_end  # a level seen this minute
            and now >= self._paused_until
            and now >= self._redis_down_until
            and not self._block_ms
            and self.level + weight <= self.limit * ORDERS_AT_ONCE_BELOW
        )

    def _count_later(self, weight: int) -> None:
        """Count an order sent at once; the orders of COUNT_BATCH_S are counted in one call (a
        script call an order was a third of the gateway's Redis commands)."""
        self.level += weight  # until the answer says better
        self._uncounted += weight
        if self._counting is None or self._counting.done():
            task = asyncio.get_running_loop().create_task(self._count())
            self._counting = task
            self._charges.add(task)
            task.add_done_callback(self._charges.discard)

    async def _count(self) -> None:
        await asyncio.sleep(COUNT_BATCH_S)
        weight, self._uncounted = self._uncounted, 0
        try:
            await self._ask(weight, Priority.ORDERS, sent=True)
        except REDIS_ERRORS:
            self._redis_down_until = self._clock() + RETRY_REDIS_S

    async def settle(self) -> None:
        """Until the orders sent at once are counted (for tests and a clean stop)."""
        while self._charges:
            await asyncio.gather(*self._charges)

    async def _alone(self, weight: int) -> None:
        if self._pace is None:  # with a pace, that bucket was spent already
            await self._fallback.acquire(weight)

    async def _ask(self, weight: int, priority: Priority, *, sent: bool = False) -> int:
        """One script call; `sent`: the request went already, count it whatever the level."""
        if self._script is None:
            if self._redis is None:
                self._redis = connect(self._url, client_name="ratelimit")
            self._script = self._redis.register_script(_SCRIPT)
        seen, seen_window, block_ms = self._venue_used, self._venue_window, self._block_ms
        cap = 2**52 if sent else self.cap(priority)
        args = [weight, cap, int(priority), seen, seen_window, block_ms]
        wait_ms, level, window, left_ms, paused_ms = (
            int(x) for x in await self._script(keys=[self.key], args=args)
        )
        if self._venue_used == seen:  # passed on (unless a higher one came meanwhile)
            self._venue_used = 0
        if self._block_ms == block_ms:
            self._block_ms = 0
        now = self._clock()
        self.level, self._window = level, window
        self._window_end, self._paused_until = now + left_ms / 1000, now + paused_ms / 1000
        self._m_level.set(level)
        return wait_ms

    def observe_used(self, used_1m: int) -> None:
        """The venue's own count this minute (sent along with the next request's count)."""
        if used_1m > self._venue_used or self._venue_window != self._window:
            self._venue_used, self._venue_window = used_1m, self._window
        if self._clock() < self._redis_down_until:
            self._fallback.observe_used(used_1m)

    def block(self, seconds: float, why: str) -> None:
        """The venue said stop (a 429/418's Retry-After): every process pauses, not just us."""
        self._block_ms = max(self._block_ms, int(seconds * 1000))
        if self._clock() < self._redis_down_until:
            self._fallback.block(seconds, why)
        else:
            log.warning("%s: REST paused for %.1fs: %s", self.venue, seconds, why)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._flush is None or self._flush.done():
            self._flush = loop.create_task(self._send_block())

    async def _send_block(self) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self._ask(0, Priority.ORDERS)

    def poll_interval(self, every_s: float) -> float:
        """How long a poller should wait before its next poll: `every_s` while the budget is
        loose, longer as the level nears polling's share, until the minute ends once it is
        reached (the level seen is this process's last answer; a new minute starts at zero)."""
        now = self._clock()
        if now >= self._window_end:
            return every_s
        left = self._window_end - now
        spent = self.level / self.cap(Priority.POLLING)
        if spent >= 1.0:
            return max(every_s, left)
        return min(every_s / max(1.0 - spent, 0.1), max(every_s, left))

    async def aclose(self) -> None:
        await self.settle()
        if self._url is not None and self._redis is not None:  # our own connection only
            await self._redis.aclose()
            self._redis = self._script = None


def budget_limit(weight_limit: int) -> int:
    """Our budget from the venue's limit per minute (the config's `order_gateway.weight_limit`)."""
    return max(1, int(weight_limit * VENUE_SHARE))
