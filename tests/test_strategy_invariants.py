"""Property tests of the built-in strategies (issue 12, rule 6): whatever the candles and the
venue do — fills, partial fills, cancels answered late (the order filling meanwhile),
refusals, duplicated and late updates, pause / stop / close / resume, a person's cancel of one
of its orders (or of one it does not hold) — driven through the pure `step`
(shared/strategy/testing.py's Driver), each strategy keeps:

1. the sells out (accepted or in flight) never sell more than the bot holds at the venue, and
   the open sells it knows never exceed its position;
2. never two live orders for one purpose — DCA: one sell (the take profit), at most one safety
   buy; grid: one order per interval; fractal: at most one sell. An order is live from the
   moment it is sent until the venue's last answer for it (one asked to cancel still is);
3. its average cost within the prices it traded at (fees in quote allowed on top);
4. the same refused terms not sent more than 3 times in a row (a person's resume starts over).

The test plays the venue: `Venue` below is one account's orders, answered in the order the
drawn actions say. It refuses at random (some terms stubbornly, as a short balance would), a
stop the last price is already through always; limit orders fill only where the last candle
(or the price since) reached them, a stop-limit once triggered; the price also moves between
candles ("tick"), so the venue and the bot's last close need not agree. Examples are drawn by
hypothesis; each test stays within a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.messages import (
    CancelOrder,
    ControlAction,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Side,
)
from shared.order_terms import terms_key, terms_of
from shared.strategy.testing import Driver
from strategies.dca import DcaStrategy
from strategies.fractal_trailing import FractalTrailingStrategy
from strategies.grid import GridStrategy

FEE = D("0.001")  # charged in quote on every fill
ZERO = D(0)
ACTIONS = (
    ["candle"] * 3 + ["answer"] * 4 + ["fill"] * 3 + ["cancel"] * 2 + ["tick", "dup", "control", "asked"]
)
SCRIPT = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 10_000)), min_size=30, max_size=100)
FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class VenueOrder:
    cmd: PlaceOrder
    tag: str
    status: OrderStatus = OrderStatus.NEW
    triggered: bool = False  # a stop-limit whose stop the price reached
    filled: D = ZERO
    quote: D = ZERO
    fee: D = ZERO

    @property
    def remaining(self) -> D:
        return (self.cmd.quantity or ZERO) - self.filled


class Venue:
    """One bot's account at a venue that answers when the drawn script says so."""

    def __init__(self, driver: Driver, *, base: D, price: D, purpose: Any, low: D, high: D) -> None:
        self.d = driver
        self.base = base  # what the bot holds at the venue (the truth)
        self.price, self.low, self.high = price, low, high
        self.purpose = purpose  # PlaceOrder tag -> purpose, or None for an order without one
        self.inflight: list[tuple[PlaceOrder, str]] = []  # sent, not answered yet
        self.live: dict[str, VenueOrder] = {}  # accepted, not finished
        self.done: dict[str, OrderUpdate] = {}  # last update of each finished order
        self.cancels: list[str] = []  # cancels sent, not answered yet
        self.sent: list[OrderUpdate] = []
        self.traded: list[D] = []
        self.refused: dict[str, int] = {}  # terms key -> refusals in a row
        self.stubborn: set[str] = set()  # terms refused every time (a balance that stays short)
        self.reach = (price, price)  # lowest and highest price since the last candle opened

    # --- the bot's side ------------------------------------------------------------------------

    def handle(self, cmds: list[Any]) -> None:
        for cmd in cmds:
            if isinstance(cmd, PlaceOrder):
                key = terms_key(terms_of(cmd))
                assert self.refused.get(key, 0) < 3, f"terms refused 3 times in a row sent again: {key}"
                rec = self.d.state.orders.get(cmd.cid)
                self.inflight.append((cmd, rec.tag if rec is not None else ""))
            elif isinstance(cmd, CancelOrder):
                self.cancels.append(cmd.cid)
        self.check()

    def deliver(self, update: OrderUpdate) -> None:
        self.sent.append(update)
        self.handle(self.d.send(update))

    def _move(self, n: int) -> tuple[D, D]:
        step = (self.high - self.low) / 40
        return step, min(self.high, max(self.low, self.price + step * (n % 9 - 4)))

    def candle(self, n: int) -> None:
        step, close = self._move(n)
        top = max(self.price, close, self.reach[1]) + step * (n // 9 % 3)
        bottom = max(step, min(self.price, close, self.reach[0]) - step * (n // 27 % 3))
        open_, self.price = self.price, close
        self.reach = (bottom, top)
        self._trigger()
        self.handle(self.d.candle(str(open_), str(top), str(bottom), str(close)))
        self.reach = (close, close)

    def tick(self, n: int) -> None:
        """The price moves between two candles."""
        _, self.price = self._move(n)
        self.reach = (min(self.reach[0], self.price), max(self.reach[1], self.price))
        self._trigger()

    def _trigger(self) -> None:
        for o in self.live.values():
            if o.cmd.order_type == OrderType.STOP_LOSS_LIMIT and self.reach[0] <= (o.cmd.stop_price or ZERO):
                o.triggered = True

    def control(self, n: int) -> None:
        actions = [ControlAction.PAUSE, ControlAction.RESUME, ControlAction.STOP, ControlAction.RESUME]
        action = [*actions, ControlAction.CLOSE, ControlAction.RESUME][n % 6]
        if action == ControlAction.RESUME:
            self.refused.clear()  # a person's resume tries refused terms again
        self.handle(self.d.control(action))

    def asked(self, n: int) -> None:
        """A person asks the bot to cancel one of its orders (now and then one it does not hold)."""
        held = sorted(self.d.state.orders)
        cid = held[n % len(held)] if held and n % 5 else f"{self.d.bot}-{900_000 + n}"
        self.handle(self.d.control(ControlAction.CANCEL, cid=cid, source="web"))

    # --- the venue's side ----------------------------------------------------------------------

    def _update(
        self, o: VenueOrder | None, cmd: PlaceOrder, status: OrderStatus, reason: str = ""
    ) -> OrderUpdate:
        self.d.now += 1
        return OrderUpdate(
            cid=cmd.cid,
            bot=cmd.bot,
            venue=cmd.venue,
            symbol=cmd.symbol,
            status=status,
            side=cmd.side,
            order_type=cmd.order_type,
            price=cmd.price,
            stop_price=cmd.stop_price,
            orig_qty=cmd.quantity or (o.filled if o else ZERO),
            cum_filled_qty=o.filled if o else ZERO,
            cum_quote_qty=o.quote if o else ZERO,
            fee=o.fee if o else ZERO,
            fee_asset="USDT",
            reason=reason,
            venue_ts=self.d.now,
            ts=self.d.now,
        )

    def answer(self, n: int) -> None:
        """The oldest command in flight: refused, or accepted (a market order fills at once)."""
        if not self.inflight:
            return
        cmd, tag = self.inflight.pop(0)
        key = terms_key(terms_of(cmd))
        reason = ""
        if cmd.order_type == OrderType.STOP_LOSS_LIMIT and self.price <= (cmd.stop_price or ZERO):
            reason = "Order would trigger immediately."
        elif n % 4 == 0 or key in self.stubborn:
            reason = "Account has insufficient balance for requested action."
            if n % 3:
                self.stubborn.add(key)
        if reason:
            self.refused[key] = self.refused.get(key, 0) + 1
            update = self._update(None, cmd, OrderStatus.REJECTED, reason)
            self.done[cmd.cid] = update
            self.deliver(update)
            return
        self.refused.pop(key, None)
        order = VenueOrder(cmd, tag)
        if cmd.order_type == OrderType.MARKET:
            qty = cmd.quantity or self.d.filters.round_qty((cmd.quote_quantity or ZERO) / self.price)
            self._trade(order, qty, self.price)
            order.status = OrderStatus.FILLED
            update = self._update(order, cmd, OrderStatus.FILLED)
            self.done[cmd.cid] = update
            self.deliver(update)
            return
        self.live[cmd.cid] = order
        self.deliver(self._update(order, cmd, OrderStatus.NEW))

    def _reached(self, order: VenueOrder) -> bool:
        """Whether the price since the last candle opened reached the order's limit."""
        price = order.cmd.price or ZERO
        if order.cmd.side == Side.BUY:
            return self.reach[0] <= price
        if order.cmd.order_type == OrderType.STOP_LOSS_LIMIT and not order.triggered:
            return False
        return self.reach[1] >= price

    def _trade(self, order: VenueOrder, qty: D, price: D) -> None:
        if order.cmd.side == Side.SELL:
            assert qty <= self.base, f"the venue sold {qty}, the bot held {self.base}"
            self.base -= qty
        else:
            self.base += qty
        order.filled += qty
        order.quote += qty * price
        order.fee += qty * price * FEE
        self.traded.append(price)

    def fill(self, n: int) -> None:
        """One live order fills, whole or in part, at its limit price."""
        if not self.live:
            return
        cid = sorted(self.live)[n % len(self.live)]
        order = self.live[cid]
        if not self._reached(order):
            return
        qty = order.remaining
        if n // 7 % 3 == 0:
            qty = self.d.filters.round_qty(qty / 2)
        if qty <= 0:
            return
        self._trade(order, qty, order.cmd.price or self.price)
        if order.remaining > 0:
            self.deliver(self._update(order, order.cmd, OrderStatus.PARTIALLY_FILLED))
            return
        del self.live[cid]
        update = self._update(order, order.cmd, OrderStatus.FILLED)
        self.done[cid] = update
        self.deliver(update)

    def cancel(self, n: int) -> None:
        """The oldest cancel is answered: cancelled with what filled, or the final state again."""
        if not self.cancels:
            return
        cid = self.cancels[0]
        if any(cmd.cid == cid for cmd, _ in self.inflight):
            self.answer(n)  # the gateway handles a bot's commands in order: the place first
            return
        self.cancels.pop(0)
        order = self.live.pop(cid, None)
        if order is None:
            if cid in self.done:
                self.deliver(self.done[cid])
            return
        update = self._update(order, order.cmd, OrderStatus.CANCELED)
        self.done[cid] = update
        self.deliver(update)

    def dup(self, n: int) -> None:
        if self.sent:
            self.deliver(self.sent[n % len(self.sent)])

    def run(self, script: list[tuple[str, int]]) -> None:
        for action, n in script:
            getattr(self, action)(n)

    # --- the rules -----------------------------------------------------------------------------

    def check(self) -> None:
        out = [(o.cmd, o.tag, o.remaining) for o in self.live.values()]
        out += [(cmd, tag, cmd.quantity or ZERO) for cmd, tag in self.inflight]
        selling = sum((left for cmd, _, left in out if cmd.side == Side.SELL), ZERO)
        assert selling <= self.base, f"sells out for {selling}, the bot holds {self.base}"
        state = self.d.state
        known = sum((r.remaining or ZERO for r in state.orders.values() if r.side == Side.SELL), ZERO)
        assert known <= state.position.base, f"open sells {known} > position {state.position.base}"
        purposes: dict[str, int] = {}
        for cmd, tag, _ in out:
            purpose = self.purpose(cmd, tag)
            if purpose is not None:
                purposes[purpose] = purposes.get(purpose, 0) + 1
        assert all(n <= 1 for n in purposes.values()), f"two live orders for one purpose: {purposes}"
        avg = state.position.avg_price
        if avg is not None and self.traded:
            lo, hi = min(self.traded), max(self.traded) * (1 + FEE)
            assert lo * (1 - D("1e-20")) <= avg <= hi * (1 + D("1e-20")), f"average {avg} outside {lo}..{hi}"


def dca_purpose(cmd: PlaceOrder, tag: str) -> str | None:
    if cmd.side == Side.SELL:
        return "sell"
    return "safety" if tag.startswith("so") else "base"


def grid_purpose(cmd: PlaceOrder, tag: str) -> str | None:
    if tag[:1] in ("b", "s") and tag[1:].isdigit():
        return f"interval {int(tag[1:]) - (tag[0] == 's')}"
    return tag or None  # the opening buy, the stop-loss sale


def fractal_purpose(cmd: PlaceOrder, tag: str) -> str | None:
    return "sell" if cmd.side == Side.SELL else None


@FAST
@given(script=SCRIPT)
def test_dca_keeps_its_invariants(script):
    d = Driver(DcaStrategy(), {"fee": "0", "max_safety_orders": 4, "step": "0.02", "budget": "0"})
    v = Venue(d, base=ZERO, price=D(100), purpose=dca_purpose, low=D(80), high=D(120))
    v.run([("candle", 4), *script])


@FAST
@given(script=SCRIPT)
def test_grid_keeps_its_invariants(script):
    params = {"lower": "90", "upper": "110", "levels": 5, "quote_per_level": "100", "fee": "0"}
    d = Driver(GridStrategy(), {**params, "stop_loss": "82", "take_profit": "118"})
    v = Venue(d, base=ZERO, price=D(101), purpose=grid_purpose, low=D(78), high=D(122))
    v.run([("candle", 4), *script])


@FAST
@given(script=SCRIPT)
def test_fractal_keeps_its_invariants(script):
    d = Driver(FractalTrailingStrategy(), {"entry": "100", "quantity": "1", "interval": "1m", "pad": "1"})
    v = Venue(d, base=D(1), price=D(105), purpose=fractal_purpose, low=D(96), high=D(116))
    v.traded.append(D(100))  # the entry: the position it protects was bought there
    for low in ("105", "104", "102", "104", "106"):  # a fractal at 102: a stop from the start
        close = str(D(low) + 2)
        v.handle(d.candle(close, str(D(close) + 1), low, close))
    v.price, v.reach = D(108), (D(108), D(108))
    v.run(script)
