"""POST /api/smart-trades: a manual smart trade from the dashboard, as `automata trade buy|sell` sends it.

The fields are the CLI's, as text (shared/trade_terms.py checks them: a 422 names the bad field);
the bot is the one taking manual trades on the symbol (shared/trade_control.py: the bots file and
the strategy runners' heartbeats), the TradeRequest (source "web") goes to its control stream,
and the answer waits up to `wait` seconds for the bot's decision and its entry's first update.
The guard (auth.py) has already checked the token, CSRF and read-only, as for every control.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import msgspec
from starlette.requests import Request

from services.web.context import WebContext
from services.web.openapi import ApiError, Operation
from shared import control, trade_control
from shared.trade_terms import FIELDS, TermsError, describe, parse_terms

Text = Annotated[str, msgspec.Meta(max_length=100)]


class SmartTradeRequest(msgspec.Struct, forbid_unknown_fields=True):
    side: Annotated[str, msgspec.Meta(pattern=r"^(?i:buy|sell)$")]
    symbol: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{2,30}$")]
    bot: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_]{1,24}$")] | None = None  # default: the symbol's
    quote: Text | None = None  # quote asset to spend ("100")
    qty: Text | None = None  # or base asset to buy
    price: Text | None = None  # a limit entry; none: at market
    tp: Text | None = None  # "2%,4%", "43000,44000", "2%,4%:50%,50%"
    sl: Text | None = None  # "1%"
    stop: Text | None = None  # or a stop price
    trailing: Text | None = None  # "0.5%"
    trailing_tp: Text | None = None  # "0.5%"
    break_even: bool = False
    time_limit: Text | None = None  # "4h"
    wait: Annotated[float, msgspec.Meta(ge=0, le=10)] = 5.0  # seconds to wait for the bot's answer


class TradeSent(msgspec.Struct):
    id: str  # the request's id (the bot's decision carries it as `request`)
    bot: str
    stream: str
    entry: str
    trade: str  # the trade in the grammar's words
    outcome: str  # "sent" (the bot placed the entry), "refused", "duplicate", "closing", or "waiting"
    answer: str = ""  # the bot's decision, word for word
    cid: str = ""  # the entry order (a close: its sale, once placed)
    status: str = ""  # its status at the answer (FILLED, NEW, REJECTED...)
    reason: str = ""  # a refused entry's reason


def place_trade(ctx: WebContext, request: Request, body: SmartTradeRequest) -> TradeSent:
    """A manual smart trade for the bot taking them on the symbol, as `automata trade`."""
    fields = {name: getattr(body, name) for name in FIELDS if name != "break_even"}
    fields["break_even"] = "yes" if body.break_even else None
    try:
        terms = parse_terms(body.side, body.symbol, fields)
    except TermsError as exc:
        raise ApiError(422, f"{exc.field}: {exc.reason}") from None
    from cli.heartbeats import read_heartbeats

    bots_file = Path(ctx.settings.bots_file) if ctx.settings.bots_file else None
    extras = (b.extra for b in read_heartbeats(ctx.redis) if b.service == "strategy_runner")
    bots = {**trade_control.file_trade_bots(bots_file), **trade_control.heartbeat_trade_bots(extras)}
    try:
        holding = trade_control.holders(ctx.redis, bots)
        bot, _venue = trade_control.pick_bot(bots, terms.symbol, body.bot, side=terms.side, holding=holding)
    except control.ControlError as exc:
        raise ApiError(422, str(exc)) from None
    trade = terms.request(
        id=trade_control.new_request_id(), bot=bot, source="web", ts=int(time.time() * 1000)
    )
    sent = trade_control.submit_trade(ctx.redis, trade)
    watch = trade_control.wait_answer(ctx.redis, trade, sent, body.wait)
    decision, update = watch.decision, watch.update
    return TradeSent(
        trade.id, bot, sent.stream, sent.entry, describe(terms),
        outcome=decision.fields.get("outcome", "") if decision else "waiting",
        answer=decision.text if decision else "", cid=update.cid if update else watch.cid,
        status=update.status.value if update else "", reason=update.reason if update else "",
    )  # fmt: skip


OPERATIONS = [
    Operation("POST", "/api/smart-trades", "Send a manual smart trade", place_trade, TradeSent, body=SmartTradeRequest,
              control=True, tags=("control",), errors={422: "a bad term, or no bot takes manual trades there"}),
]  # fmt: skip
