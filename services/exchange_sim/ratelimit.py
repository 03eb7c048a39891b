"""Binance's request-weight and order-count limits, counted for real.

Weight is summed per wall-clock minute (X-MBX-USED-WEIGHT-1M); orders per 10 seconds and
per day (X-MBX-ORDER-COUNT-10S / -1D). Going over answers 429 with Retry-After; going on
after `ban_after` 429s in the same minute gets the IP banned: 418 until the ban ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimited(Exception):
    """A 429 or 418 answer: HTTP status, Binance code and message, seconds to wait."""

    def __init__(self, status: int, code: int, msg: str, retry_after: int) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.retry_after = status, code, msg, retry_after


class RateLimiter:
    def __init__(
        self,
        *,
        weight_limit: int = 6000,
        order_limit_10s: int = 100,
        ban_after: int = 3,
        ban_seconds: int = 120,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.weight_limit, self.order_limit_10s = weight_limit, order_limit_10s
        self.ban_after, self.ban_seconds = ban_after, ban_seconds
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        self._minute = self._ten = self._day = -1
        self.used_weight = self.orders_10s = self.orders_1d = self.violations = 0
        self.banned_until = 0.0

    def configure(self, **limits: int) -> None:
        for name, value in limits.items():
            if name not in ("weight_limit", "order_limit_10s", "ban_after", "ban_seconds"):
                raise ValueError(f"unknown limit {name!r}")
            setattr(self, name, int(value))

    def _roll(self, now: float) -> None:
        minute, ten, day = int(now // 60), int(now // 10), int(now // 86400)
        if minute != self._minute:
            self._minute, self.used_weight, self.violations = minute, 0, 0
        if ten != self._ten:
            self._ten, self.orders_10s = ten, 0
        if day != self._day:
            self._day, self.orders_1d = day, 0

    def charge(self, weight: int, *, orders: int = 0) -> None:
        """Count a request; raise RateLimited (nothing counted) when it may not pass."""
        now = self._clock()
        self._roll(now)
        if now < self.banned_until:
            raise self._banned(now)
        if self.weight_limit and self.used_weight + weight > self.weight_limit:
            self.violations += 1
            if self.ban_after and self.violations > self.ban_after:
                self.banned_until = now + self.ban_seconds
                raise self._banned(now)
            raise RateLimited(
                429,
                -1003,
                f"Too much request weight used; current limit is {self.weight_limit} request weight "
                "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                math.ceil(60 - now % 60),
            )
        if orders and self.order_limit_10s and self.orders_10s + orders > self.order_limit_10s:
            raise RateLimited(
                429,
                -1015,
                f"Too many new orders; current limit is {self.order_limit_10s} orders per 10 SECOND.",
                math.ceil(10 - now % 10),
            )
        self.used_weight += weight
        self.orders_10s += orders
        self.orders_1d += orders

    def _banned(self, now: float) -> RateLimited:
        until_ms = int(self.banned_until * 1000)
        return RateLimited(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {until_ms}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            math.ceil(self.banned_until - now),
        )

    def headers(self, *, orders: bool = False) -> dict[str, str]:
        out = {"X-MBX-USED-WEIGHT-1M": str(self.used_weight)}
        if orders:
            out["X-MBX-ORDER-COUNT-10S"] = str(self.orders_10s)
            out["X-MBX-ORDER-COUNT-1D"] = str(self.orders_1d)
        return out
