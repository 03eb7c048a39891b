"""The range bot (`strategy = "range_oco"`): buy a break out of a range, either way, then let the
smart-trade exits sell (docs/STRATEGIES.md §4).

While the price is inside the range widened by `percent`, the bot keeps one buy OCO out for
`quote_amount` (its quantity: quote_amount / the upper price, so neither leg spends more):
- above: a buy STOP_LOSS at top x (1 + percent/100): the price broke out upwards (with
  `limit_percent`, a STOP_LOSS_LIMIT whose limit is that far above its stop);
- below: a buy LIMIT_MAKER at bottom x (1 - percent/100): the price fell through the floor.
The first leg to trade expires the other; the filled leg is the entry of a smart trade
(shared/strategy/smart.py) whose exits are the params' take_profits, stop_loss, trailing_stop,
trailing_take_profit, break_even and time_limit_s (percents, like `percent`). When the trade
has ended (every exit sold) the bot re-arms: the OCO goes out again at the next candle inside
the band (`rearm = false`: once only). A candle closing outside the band arms nothing (a stop
already crossed, or a maker order that would take, are refused by the venue): it waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from shared.exits import Exits, Target
from shared.messages import Candle, Side
from shared.strategy.base import Step, Strategy
from shared.strategy.context import StrategyContext
from shared.strategy.decisions import decide, price
from shared.strategy.lists import place_oco
from shared.strategy.smart import watch_entry
from shared.strategy.state import StrategyState

_HUNDRED = Decimal(100)


def _pct(name: str, value: Decimal | None) -> Decimal | None:
    """A percent param as a fraction; ValueError naming it when it is not in (0, 100)."""
    if value is None:
        return None
    if not (value.is_finite() and 0 < value < _HUNDRED):
        raise ValueError(f"{name} must be a percent in (0, 100) (1 is 1 %), got {value}")
    return value / _HUNDRED


class RangeOcoParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    top: Decimal
    bottom: Decimal
    percent: Decimal = Decimal("0.5")  # how far beyond the range each leg waits, in percent
    # the break-up leg as a STOP_LOSS_LIMIT whose limit is this percent above its stop (None: a
    # STOP_LOSS, bought at market once triggered)
    limit_percent: Decimal | None = None
    quote_amount: Decimal = Decimal("100")
    take_profits: tuple[Decimal, ...] = (Decimal("2"),)  # percents above the entry, equal shares
    stop_loss: Decimal | None = Decimal("1")  # percent below the entry; 0: none
    trailing_stop: Decimal | None = None  # percent below the highest price since the entry
    trailing_take_profit: Decimal | None = None  # the last target's share trails this percent
    break_even: bool = False
    time_limit_s: int | None = None
    rearm: bool = True  # place the OCO again once a trade has ended

    def __post_init__(self) -> None:
        if not (self.bottom.is_finite() and self.bottom > 0):
            raise ValueError(f"bottom must be above 0, got {self.bottom}")
        if not (self.top.is_finite() and self.bottom < self.top):
            raise ValueError(f"bottom ({self.bottom}) must be below top ({self.top})")
        _pct("percent", self.percent)
        _pct("limit_percent", self.limit_percent)
        if not (self.quote_amount.is_finite() and self.quote_amount > 0):
            raise ValueError(f"quote_amount must be above 0, got {self.quote_amount}")
        for value in self.take_profits:
            if not (value.is_finite() and value > 0):
                raise ValueError(f"take_profits must be percents above 0, got {value}")
        self.exits()  # the exits' own checks, each naming its field

    def exits(self) -> Exits:
        return Exits(
            take_profits=tuple(Target(gain=g / _HUNDRED) for g in self.take_profits),
            stop_loss=_pct("stop_loss", self.stop_loss or None),  # 0: none
            trailing_stop=_pct("trailing_stop", self.trailing_stop),
            trailing_take_profit=_pct("trailing_take_profit", self.trailing_take_profit),
            break_even=self.break_even,
            time_limit_s=self.time_limit_s,
        )

    def band(self) -> tuple[Decimal, Decimal]:
        """The OCO's two prices: (above, below)."""
        p = self.percent / _HUNDRED
        return self.top * (1 + p), self.bottom * (1 - p)

    def stop_limit(self, above: Decimal) -> Decimal | None:
        """The break-up leg's limit price, None for a STOP_LOSS."""
        return None if self.limit_percent is None else above * (1 + self.limit_percent / _HUNDRED)


class RangeOcoState(StrategyState, frozen=True, kw_only=True):
    armed: int = 0  # OCOs placed so far


class RangeOcoStrategy(Strategy[RangeOcoParams, RangeOcoState]):
    name = "range_oco"
    params_type = RangeOcoParams
    state_type = RangeOcoState

    def parse_params(self, raw: Mapping[str, Any] | None, source: str = "params") -> RangeOcoParams:
        """As any strategy's, and one target may be given alone: `take_profits = 2` is `[2]` (so
        `--sweep take_profits=1,2,3` tries one target each)."""
        tps = (raw or {}).get("take_profits")
        if tps is not None and not isinstance(tps, list | tuple):
            raw = {**(raw or {}), "take_profits": [tps]}
        return super().parse_params(raw, source)

    def on_candle(
        self, params: RangeOcoParams, state: RangeOcoState, candle: Candle, ctx: StrategyContext
    ) -> Step:
        if state.trade is not None or state.orders or (state.armed and not params.rearm):
            return state, []
        above, below = params.band()
        if not below < candle.close < above:
            why = f"not armed: close {price(ctx, candle.close)} outside {price(ctx, below)} - {price(ctx, above)}"
            return state, [decide(ctx, why, topic="outside_band")]
        top = params.stop_limit(above) or above  # the most a unit may cost
        qty = ctx.filters.round_qty(params.quote_amount / ctx.filters.round_price(top, Side.BUY))
        state, oco = place_oco(state, ctx, Side.BUY, qty, above=above, below=below, stop_limit=params.stop_limit(above),
                               tag="range")  # fmt: skip
        if oco is None:
            return state, [decide(ctx, f"not armed: an OCO of {ctx.qty(qty)} is refused by the filters",
                                  topic="refused")]  # fmt: skip
        state = watch_entry(state, params.exits(), tuple(leg.cid for leg in oco.legs), tag="range")
        state = msgspec.structs.replace(state, armed=state.armed + 1)
        stop, maker = oco.legs
        said = decide(ctx, f"armed: buy {ctx.qty(qty)} {ctx.base_asset} on a break above "
                           f"{price(ctx, stop.stop_price or above)} or a fall to {price(ctx, maker.price or below)}")  # fmt: skip
        return state, [oco, said]
