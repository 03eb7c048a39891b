"""A strategy mixin for backtest tests: writes down each order, list and cancel the strategy sends,
with the index of the 1-minute candle it happens in (a candle's own event counts at its close)."""

from __future__ import annotations

from typing import Any

from shared.messages import CancelOrder, CancelOrderList, PlaceOrder, PlaceOrderList


class Recorder:
    said: list[tuple[Any, ...]]

    def step(self, params: Any, state: Any, event: Any, ctx: Any) -> Any:
        if not hasattr(self, "said"):
            self.said = []
        candle = ctx.now // 60_000
        state, cmds = super().step(params, state, event, ctx)  # type: ignore[misc]
        for c in cmds:
            if isinstance(c, PlaceOrderList):
                legs = (
                    (leg.side.value, leg.order_type.value, leg.quantity, leg.price or leg.stop_price)
                    for leg in c.legs
                )
                self.said.append((candle, "oco", *legs))
            elif isinstance(c, PlaceOrder):
                self.said.append((candle, c.side.value, c.order_type.value, c.quantity or c.quote_quantity,
                                  c.price or c.stop_price))  # fmt: skip
            elif isinstance(c, (CancelOrder, CancelOrderList)):
                self.said.append((candle, "cancel"))
        return state, cmds
