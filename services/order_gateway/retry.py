"""The order gateway's one retry helper: which failures are tried again, after how long, until when.

Policy by error class (venues/base.py), so every caller retries a venue the same way:

- OutcomeUnknown (MalformedReply too): a query or a cancel, which may safely be repeated, is
  tried again after a backoff; a place never is here: its outcome is resolved by querying the
  cid (reconcile.resolve), so one order is never sent twice.
- RateLimited: again after the venue's own `retry_after`. Banned (HTTP 418): never; the
  venue is halted (router.py).
- ClockSkew: the clock is resynced with the venue, then tried again at once.
- Rejected (DuplicateOrder too), AuthError: never, the venue refused for good.
- OrderNotFound: never: it is the caller's case (resend once recvWindow has passed).
- Redis unreachable or timing out: again after a backoff.

The backoff is exponential with a cap and equal jitter (half the step fixed, half random), so
gateways and CLIs retrying at once do not hit a venue in lockstep, and ends after `attempts`
tries, past `deadline_s`, or when the service stops; the last failure is then raised. Clock,
sleep and randomness are injectable for tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from services.order_gateway.venues.base import Banned, ClockSkew, OutcomeUnknown, RateLimited
from shared.redis_conn import REDIS_ERRORS

log = logging.getLogger("automata.order_gateway.retry")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# What the policy may retry; everything else goes straight to the caller.
RETRIED = (OutcomeUnknown, RateLimited, ClockSkew, *REDIS_ERRORS)


@dataclass(frozen=True)
class Backoff:
    """How long to wait after the n-th failure, and when to stop trying."""

    base: float  # seconds, the first step
    cap: float  # no step is longer
    attempts: int | None = None  # tries in all; None: until the deadline or the stop
    deadline_s: float | None = None  # no wait may end later than this after the first try

    def delay(self, failures: int, rand: float) -> float:
        """The wait after `failures` failures in a row; rand in [0, 1) picks within the step."""
        step = min(self.cap, self.base * 2 ** min(failures - 1, 62))
        return step / 2 + step / 2 * rand


# The policies of the gateway's paths (the delays its hand-written loops had).
RESOLVE = Backoff(0.05, 2.0, attempts=8)  # querying an order whose outcome is unknown
CHECK = Backoff(0.05, 0.5, attempts=3)  # checking an open order at start (the poller checks again)
SEND = Backoff(0.2, 2.0, attempts=5)  # a place or a cancel
SYNC = Backoff(0.1, 2.0, attempts=8)  # listing a bot's orders for SyncBot
CONNECT = Backoff(0.5, 15.0)  # the venue at start: until it answers or the service stops
FEES = Backoff(0.05, 0.2, attempts=3)  # an order's trades, asked again while they lag its report


def wait_after(
    exc: BaseException, failures: int, backoff: Backoff, rand: float, *, repeatable: bool
) -> float | None:
    """Seconds to wait before trying again after `exc`, or None: not retried (the caller's case)."""
    if isinstance(exc, Banned):
        return None
    if isinstance(exc, RateLimited):
        return max(exc.retry_after, 0.0)
    if isinstance(exc, ClockSkew):
        return 0.0  # resynced first: the request was refused, never taken
    if isinstance(exc, OutcomeUnknown):
        return backoff.delay(failures, rand) if repeatable else None
    if isinstance(exc, REDIS_ERRORS):
        return backoff.delay(failures, rand)
    return None


class Retry:
    """Runs an operation under a Backoff, by the policy above.

    `resync` measures the venue's clock again (the adapter's sync_time) after a ClockSkew;
    `stopped` says the service is stopping (no more tries then); `sleep` should end early on
    a stop."""

    def __init__(
        self,
        resync: Callable[[], Awaitable[object]] | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.resync, self.sleep, self.clock, self.rand, self.stopped = resync, sleep, clock, rand, stopped

    async def run(
        self,
        op: Callable[[], Awaitable[T]],
        backoff: Backoff,
        *,
        what: str,
        repeatable: bool = True,
        also: tuple[type[BaseException], ...] = (),
    ) -> T:
        """op(), tried again by the policy; `repeatable=False` for a request that must not be
        repeated blind (a place); `also`: further classes tried again after the backoff (what
        a start-up retries that a request would not)."""
        start = self.clock()
        failures = 0
        while True:
            try:
                return await op()
            except (*RETRIED, *also) as exc:
                failures += 1
                wait = wait_after(exc, failures, backoff, self.rand(), repeatable=repeatable)
                if wait is None and isinstance(exc, also):
                    wait = backoff.delay(failures, self.rand())
                if wait is None or self._spent(backoff, failures, start, wait):
                    raise
                log.warning("%s failed (%s: %s); again in %.2fs", what, type(exc).__name__, exc, wait)
                if isinstance(exc, ClockSkew) and self.resync is not None:
                    await self.resync()
                await self.sleep(wait)

    def _spent(self, backoff: Backoff, failures: int, start: float, wait: float) -> bool:
        """Whether trying again is over: attempts used up, the deadline passed, or stopping."""
        if backoff.attempts is not None and failures >= backoff.attempts:
            return True
        if backoff.deadline_s is not None and self.clock() + wait - start > backoff.deadline_s:
            return True
        return self.stopped()
