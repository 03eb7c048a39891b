"""A small driver for unit tests of strategies: feed events by hand, read state and commands.

    d = Driver(DcaStrategy(), {"base_order_quote": 300})
    cmds = d.candle("100", "101", "99", "100")
    cmds = d.fill(cmds[0].cid, price="100")        # a cumulative OrderUpdate, as the gateway sends
    d.said()                                       # the decisions' texts, in order: "cycle 1 opened: ..."

No Redis, no venue: the test plays the exchange. (The backtester is the driver with a venue.)
The commands a step returns come back without its decisions (shared/strategy/decisions.py),
which are kept in `decisions` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.filters import SymbolFilters
from shared.messages import BotControl, Candle, ControlAction, Decision, OrderStatus, OrderUpdate
from shared.strategy.base import Strategy
from shared.strategy.commands import Command
from shared.strategy.context import StrategyContext
from shared.strategy.events import Event, TimerFired, event_time

BTC_FILTERS = SymbolFilters(
    symbol="BTCUSDT",
    base_asset="BTC",
    quote_asset="USDT",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.00001"),
    min_notional=Decimal("5"),
)


class Driver:
    def __init__(
        self,
        strategy: Strategy[Any, Any],
        params: Mapping[str, Any] | Any = None,
        *,
        filters: SymbolFilters = BTC_FILTERS,
        bot: str = "t1",
        venue: str = "sim",
        interval: str = "1m",
        balances: dict[str, Decimal] | None = None,
    ) -> None:
        self.strategy = strategy
        if params is None or isinstance(params, Mapping):
            params = strategy.parse_params(params or {})
        self.params = params
        self.filters, self.bot, self.venue, self.interval = filters, bot, venue, interval
        self.balances = balances
        self.history: list[Candle] = []
        self.decisions: list[Decision] = []
        self.now = 0
        self.state = strategy.initial_state(params, self.ctx())

    def ctx(self) -> StrategyContext:
        return StrategyContext(
            bot=self.bot,
            venue=self.venue,
            symbol=self.filters.symbol,
            interval=self.interval,
            filters=self.filters,
            now=self.now,
            history=tuple(self.history[-max(1, self.strategy.history_needed(self.params, self.interval)) :]),
            balances=self.balances,
        )

    def send(self, event: Event) -> list[Command]:
        self.now = max(self.now, event_time(event))
        self.state, commands = self.strategy.step(self.params, self.state, event, self.ctx())
        self.decisions.extend(c for c in commands if isinstance(c, Decision))
        return [c for c in commands if not isinstance(c, Decision)]

    def said(self, start: int = 0) -> list[str]:
        """The texts of the decisions so far (from the `start`-th), in order."""
        return [d.text for d in self.decisions[start:]]

    def candle(self, open_: str, high: str, low: str, close: str, *, minutes: int = 1) -> list[Command]:
        t = (len(self.history) + 1) * 60_000 * minutes
        c = Candle(
            venue=self.venue,
            symbol=self.filters.symbol,
            interval=self.interval,
            open_time=t,
            close_time=t + 60_000 * minutes - 1,
            open=Decimal(open_),
            high=Decimal(high),
            low=Decimal(low),
            close=Decimal(close),
            volume=Decimal(1),
        )
        self.history.append(c)
        return self.send(c)

    def update(
        self,
        cid: str,
        status: OrderStatus,
        *,
        cum_qty: Decimal | str = "0",
        cum_quote: Decimal | str = "0",
        fee: Decimal | str = "0",
        fee_asset: str = "",
        reason: str = "",
    ) -> list[Command]:
        rec = self.state.orders.get(cid)
        self.now += 1
        return self.send(
            OrderUpdate(
                cid=cid,
                bot=self.bot,
                venue=self.venue,
                symbol=self.filters.symbol,
                status=status,
                side=rec.side if rec else None,
                order_type=rec.order_type if rec else None,
                price=rec.price if rec else None,
                orig_qty=(rec.quantity or Decimal(0)) if rec else Decimal(0),
                cum_filled_qty=Decimal(cum_qty),
                cum_quote_qty=Decimal(cum_quote),
                fee=Decimal(fee),
                fee_asset=fee_asset or self.filters.quote_asset,
                reason=reason,
                venue_ts=self.now,
                ts=self.now,
            )
        )

    def fill(
        self,
        cid: str,
        *,
        price: Decimal | str | None = None,
        qty: Decimal | str | None = None,
        fee_rate: Decimal | str = "0",
        status: OrderStatus = OrderStatus.FILLED,
    ) -> list[Command]:
        """The order filled (cumulatively) up to qty (default: all of it) at price (default: its limit)."""
        rec = self.state.orders[cid]
        px = Decimal(price) if price is not None else rec.price
        if px is None:
            raise ValueError("a market order's fill needs a price")
        if qty is None:
            q = rec.quantity if rec.quantity is not None else self.filters.round_qty(rec.quote_quantity / px)
        else:
            q = Decimal(qty)
        quote = q * px
        return self.update(cid, status, cum_qty=q, cum_quote=quote, fee=quote * Decimal(fee_rate))

    def control(self, action: ControlAction | str, cid: str = "", source: str = "cli") -> list[Command]:
        """A person's control (`cid`: the order a CANCEL names)."""
        self.now += 1
        return self.send(
            BotControl(bot=self.bot, action=ControlAction(action), source=source, cid=cid, ts=self.now)
        )

    def timer(self, name: str, due: int) -> list[Command]:
        return self.send(TimerFired(name=name, due=due))
