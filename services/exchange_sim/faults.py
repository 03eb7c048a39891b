"""Faults a test or a demo asks the venue to inject, each for the next N matches or a time window.

A fault has a kind, optional match fields, and a budget: `count` uses and/or `seconds` of
wall time from when it was added. The protocol layers ask `take(kind, **ctx)` at the points
where a real exchange could misbehave; the first active fault whose match fields all equal
the context (`path` matches as a prefix) is used once.

Kinds and where they act:
- drop_reply: the request is processed (an order is accepted) but no reply is sent; the
  connection is held until the client gives up (`hold_s`), then closed.
- error: the request is processed, then answered with HTTP `http_status` (500, 502, 503, 504) and
  a JSON or HTML body (`body`), so the client cannot know whether it worked.
- reject: answered with HTTP `http_status` BEFORE processing (nothing happened).
- empty_body: the request is processed, then answered HTTP 200 with an empty JSON object `{}`
  (a broken proxy or venue release): the client learns nothing of the outcome.
- rate_limit: answered 429 (Binance -1003 with Retry-After) without processing.
- ban: answered 418 (IP banned) without processing.
- drop_event: a user-stream event is not sent (match on event, exec_type, status, symbol,
  client_order_id); on the Binance market streams, a step's message of a stream is lost
  (event = kline, bookTicker, trade..., symbol).
- refuse_ws: a websocket handshake is refused with HTTP 503.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

log = logging.getLogger("exchange_sim.faults")

KINDS = frozenset(
    {"drop_reply", "error", "empty_body", "reject", "rate_limit", "ban", "drop_event", "refuse_ws"}
)
MATCH_FIELDS = frozenset(
    {"protocol", "path", "method", "event", "exec_type", "status", "symbol", "client_order_id"}
)


class FaultError(ValueError):
    pass


OPTIONS = frozenset({"http_status", "body", "hold_s", "retry_after"})


class Fault(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    match: dict[str, str] = {}
    count: int | None = None  # uses left; None = unlimited within the window
    until: float | None = None  # wall-clock expiry (time.time()); None = until used up
    http_status: Annotated[int, Meta(ge=400, le=599)] = 503  # error / reject
    body: Literal["json", "html"] = "json"  # error / reject
    hold_s: Annotated[float, Meta(ge=0, le=600)] = 30.0  # drop_reply: how long to hold the connection
    retry_after: Annotated[int, Meta(ge=0, le=86_400)] = 10  # rate_limit: Retry-After seconds
    used: int = 0

    def live(self, now: float) -> bool:
        return (self.count is None or self.count > 0) and (self.until is None or now < self.until)

    def matches(self, ctx: dict[str, Any]) -> bool:
        for key, want in self.match.items():
            have = ctx.get(key)
            if have is None:
                return False
            have = str(have)
            if key == "path":
                if not have.startswith(want):
                    return False
            elif have.upper() != want.upper():
                return False
        return True


class FaultBook:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        self._faults: list[Fault] = []

    def add(
        self,
        kind: str,
        *,
        count: int | None = None,
        seconds: float | None = None,
        match: dict[str, str] | None = None,
        **options: Any,
    ) -> Fault:
        """Register a fault; without count or seconds it acts once."""
        if kind not in KINDS:
            raise FaultError(f"unknown fault kind {kind!r}; one of {', '.join(sorted(KINDS))}")
        unknown = set(match or {}) - MATCH_FIELDS
        if unknown:
            raise FaultError(f"unknown match field(s) {sorted(unknown)}; one of {sorted(MATCH_FIELDS)}")
        if set(options) - OPTIONS:
            raise FaultError(f"unknown option(s) {sorted(set(options) - OPTIONS)}; one of {sorted(OPTIONS)}")
        if count is None and seconds is None:
            count = 1
        try:
            fault = msgspec.convert(
                {
                    "id": next(self._ids),
                    "kind": kind,
                    "match": {k: str(v) for k, v in (match or {}).items()},
                    "count": count,
                    "until": None if seconds is None else self._clock() + float(seconds),
                    **options,
                },
                Fault,
            )
        except msgspec.ValidationError as exc:
            raise FaultError(f"bad fault option: {exc}") from None
        self._faults.append(fault)
        return fault

    def take(self, kind: str, **ctx: Any) -> Fault | None:
        """Use one unit of the first live fault of this kind matching ctx, or None."""
        now = self._clock()
        self._faults = [f for f in self._faults if f.live(now)]
        for fault in self._faults:
            if fault.kind == kind and fault.matches(ctx):
                fault.used += 1
                if fault.count is not None:
                    fault.count -= 1
                log.info(
                    "fault %s #%d acted on %s",
                    kind,
                    fault.id,
                    {k: v for k, v in ctx.items() if v is not None},
                )
                return fault
        return None

    def active(self) -> list[Fault]:
        now = self._clock()
        return [f for f in self._faults if f.live(now)]

    def remove(self, fault_id: int) -> bool:
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) < before

    def clear(self) -> None:
        self._faults = []
