"""The `manual` bot: a person's smart trades (`automata trade`, Telegram's `/trade`, the
dashboard's trade form) carried out as a bot (docs/STRATEGIES.md §5).

It does nothing on its own. Each TradeRequest on its control stream (once per request id:
Strategy._trade) is a trade: a BUY opens a smart trade through the smart-trade helper
(shared/strategy/smart.py `open_trade`: the entry at market or at a limit price, then the
declared exits: take-profit levels, stop loss or trailing stop, trailing take profit, break-even,
time limit), which Strategy.step then carries out like any bot's declared exits, the same code in
the runner and the backtester. The helper keeps one trade in a bot's state (StrategyState.trade),
so a second request while a trade is open is refused, saying so: close it (`automata trade sell`)
or wait for it to end. Several manual bots on a symbol hold several trades: the front ends give a
buy to one holding none (shared/trade_control.py `pick_bot`).
A SELL closes the trade: every open order (the exits) is cancelled and the position is sold at
market once they are gone, as `automata close` does, but the bot keeps its mode: a running bot
takes the next trade as soon as that sale is done (a buy before is refused, saying so).

Params (optional): `max_quote`, the most one trade may spend (a quantity is valued at its limit
price or the last close).

The bot's decision on each request carries `request` (its id), `outcome` (sent, refused,
closing, duplicate) and the entry's `cid`, so the sender can wait for the entry's first update;
a close's carries `sells` (yes, or no when nothing is held: no sale will follow).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from shared.messages import Decision, Level, PlaceOrder, PlaceOrderList, Side, TradeRequest
from shared.money import ZERO
from shared.strategy import (
    Step,
    Strategy,
    StrategyContext,
    StrategyState,
    decide,
    notification,
    sell_out_commands,
)
from shared.strategy.base import refuse_trade
from shared.strategy.commands import Command
from shared.strategy.smart import drop_trade, open_trade
from shared.trade_terms import describe


class ManualParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_quote: Decimal | None = None  # the most one trade may spend

    def __post_init__(self) -> None:
        if self.max_quote is not None and not (self.max_quote.is_finite() and self.max_quote > 0):
            raise ValueError(f"max_quote must be above 0, got {self.max_quote}")


class ManualStrategy(Strategy[ManualParams, StrategyState]):
    name = "manual"
    params_type = ManualParams
    state_type = StrategyState

    def on_trade(
        self, params: ManualParams, state: StrategyState, request: TradeRequest, ctx: StrategyContext
    ) -> Step[StrategyState]:
        if request.side == Side.SELL:
            return self._close(state, request, ctx)
        if not state.running:
            return state, refuse_trade(
                ctx, request, f"{ctx.bot} is {state.mode}: `automata resume {ctx.bot}` first"
            )
        why = self._over_limits(params, state, request, ctx) or _wrong_side(request, ctx)
        if why:
            return state, refuse_trade(ctx, request, why)
        new, cmds = open_smart_trade(state, ctx, request)
        entry = next((c for c in cmds if isinstance(c, PlaceOrder | PlaceOrderList)), None)
        if entry is None:  # the helper sent nothing and says why: the refusal says it instead
            said = [c for c in cmds if isinstance(c, Decision)]
            why = "; ".join(c.fields.get("why", c.text) for c in said) or "the helper sent no entry"
            return new, [*(c for c in cmds if not isinstance(c, Decision)), *refuse_trade(ctx, request, why)]
        cid = entry.cid if isinstance(entry, PlaceOrder) else entry.legs[0].cid
        text = f"trade {request.id} ({request.source}): {describe(request)}; entry {cid}"
        note = notification(ctx, "info", f"trade-{request.id}", f"{ctx.bot}: {text}")
        return new, [*cmds, decide(ctx, text, request=request.id, outcome="sent", cid=cid), note]

    def _over_limits(
        self, params: ManualParams, state: StrategyState, request: TradeRequest, ctx: StrategyContext
    ) -> str:
        """Why the trade goes beyond the bot's params ("" when it does not)."""
        if state.closing:
            return f"{ctx.bot} is still selling out its last trade: try again once that sale is done"
        if trade_open(state):
            return (f"{ctx.bot} has a trade open already (one at a time): `automata trade sell {ctx.symbol}` "
                    "closes it")  # fmt: skip
        if params.max_quote is None:
            return ""
        price = request.price or ctx.last_price
        if request.quote is None and price is None:
            return f"{ctx.bot} has no price yet to value the quantity against max_quote"
        spend = request.quote if request.quote is not None else (request.quantity or ZERO) * (price or ZERO)
        if spend > params.max_quote:
            return (
                f"the trade spends {ctx.quote(spend)} {ctx.quote_asset}, above max_quote {params.max_quote}"
            )
        return ""

    def _close(
        self, state: StrategyState, request: TradeRequest, ctx: StrategyContext
    ) -> Step[StrategyState]:
        """SELL: cancel every exit and sell the position at market once they are gone."""
        if state.position.base <= 0 and not state.orders:
            return drop_trade(state), refuse_trade(ctx, request, f"{ctx.bot} holds nothing to sell")
        sells = "yes" if state.position.base > 0 else "no"  # no: only an entry still open to cancel
        state, cmds = sell_out_commands(drop_trade(state), ctx)
        text = (f"trade {request.id} ({request.source}): close — open orders cancelled, the position sold at "
                "market")  # fmt: skip
        note = notification(ctx, "bot_close", f"trade-{request.id}", f"{ctx.bot}: {text}", level=Level.INFO)
        return state, [*cmds, decide(ctx, text, request=request.id, outcome="closing", sells=sells), note]


def _wrong_side(request: TradeRequest, ctx: StrategyContext) -> str:
    """Why a fixed target or stop cannot work against the entry's price (its limit, else the last
    close), "" when they can. A target price at or under it would sell at once (a bare `2` in
    `--tp` is a price: the person meant 2%), a stop at or over it would trigger at once: refused
    before anything is bought, rather than the entry filling with exits the venue refuses."""
    ref = request.price or ctx.last_price
    if ref is None:
        return ""
    where = "the entry price" if request.price else "the last price"
    for t in request.exits.take_profits:
        if t.price is not None and t.price <= ref:
            return (f"the target {ctx.price(t.price)} is not above {where} {ctx.price(ref)} (a bare number "
                    f"is a price; a percent needs its sign: {t.price:f}%)")  # fmt: skip
    stop = request.exits.stop_price
    if stop is not None and stop >= ref:
        return f"the stop {ctx.price(stop)} is not below {where} {ctx.price(ref)}"
    return ""


def open_smart_trade(
    state: StrategyState, ctx: StrategyContext, request: TradeRequest
) -> tuple[StrategyState, list[Command]]:
    """The trade the request asks for, opened by the smart-trade helper."""
    new, cmds = open_trade(
        state, ctx, request.exits, quote=request.quote, qty=request.quantity, price=request.price,
        tag=f"trade:{request.id}",
    )  # fmt: skip
    return new, list(cmds)


def trade_open(state: StrategyState) -> bool:
    """Whether the helper holds a trade of this bot (it keeps one: StrategyState.trade)."""
    return state.trade is not None
