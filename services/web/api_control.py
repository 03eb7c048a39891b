"""Control: pause / resume / stop / close a bot, a manual order, a cancel.

Each goes through shared/control.py, the code `automata pause|order|cancel` runs: the same
checks (a known bot, a configured venue, a listed symbol, a manual or forced cancel) and the
same streams (`bot:{bot}:control`, `orders:cmd:{venue}:manual`), so the bot's runner and the
order gateway apply them as they apply the CLI's: a bot's order is cancelled by the bot itself,
asked by a CANCEL control. Nothing here touches a bot's state or an exchange. The guard
(auth.py) has already checked the token, CSRF and read-only. The web service's Redis user
(shared/redis_acl.py) may write only the control streams, a manual order's, and `manual:seq`."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import msgspec
from starlette.requests import Request

from services.web.api_bots import BOT
from services.web.context import WebContext
from services.web.openapi import ApiError, Operation, Param
from shared import control
from shared.messages import BotControl, CancelOrder, ControlAction, Side
from shared.streams import bot_control

Amount = Decimal  # positive and finite: control.amount checks it, naming the field
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{2,30}$")]
Cid = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_]{1,24}-\d{6,20}$")]
VenueName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]


class ControlRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


class Sent(msgspec.Struct):
    stream: str
    entry: str  # the stream entry id: the bot's state says it applied it (last_applied)
    mode_after: str


class OrderRequest(msgspec.Struct, forbid_unknown_fields=True):
    side: Side
    symbol: Symbol
    venue: VenueName = "sim"
    quantity: Amount | None = None  # base asset
    price: Amount | None = None  # limit price (GTC); none: a market order
    quote_quantity: Amount | None = None  # a market order spending (buy) or receiving (sell) this much quote


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    force: bool = False  # a bot's order too (the CLI's --force): the bot is asked and cancels it
    venue: VenueName | None = None  # a manual order without a record in Redis
    symbol: Symbol | None = None
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""  # a bot's order: in its decision


class OrderSent(msgspec.Struct):
    cid: str
    stream: str  # a bot's order: its control stream (the bot answers on bot:{bot}:decisions)
    status: str  # "sent", or the order's final status when it was already over


def _known(ctx: WebContext) -> set[str]:
    from cli.heartbeats import heartbeat_bots, read_heartbeats

    runners = heartbeat_bots(read_heartbeats(ctx.redis))
    bots_file = Path(ctx.settings.bots_file) if ctx.settings.bots_file else None
    return control.known_bots(ctx.redis, bots_file, runners=runners)


def _action(action: ControlAction) -> Callable[..., Sent]:
    def handler(ctx: WebContext, request: Request, bot: str, body: ControlRequest) -> Sent:
        try:
            control.check_known(bot, _known(ctx))
        except control.ControlError as exc:
            raise ApiError(404, str(exc)) from None
        entry = control.send_control(ctx.redis, bot, action, source="web", reason=body.reason)
        return Sent(bot_control(bot), entry, control.MODE_AFTER[action])

    handler.__name__ = f"{action.value}_bot"
    return handler


def place_order(ctx: WebContext, request: Request, body: OrderRequest) -> OrderSent:
    """A manual order (bot id `manual`) through the order gateway, as `automata order buy|sell`."""
    try:
        for name in ("quantity", "price", "quote_quantity"):
            control.amount(name, getattr(body, name))
        cmd = control.manual_order(ctx.redis, body.side, body.symbol, venue=body.venue, venues=list(ctx.settings.quotes),
                                   quantity=body.quantity, price=body.price, quote_quantity=body.quote_quantity)  # fmt: skip
    except control.ControlError as exc:
        raise ApiError(422, str(exc)) from None
    stream, _after = control.submit(ctx.redis, cmd)
    return OrderSent(cmd.cid, stream, "sent")


def cancel_order(ctx: WebContext, request: Request, cid: str, body: CancelRequest) -> OrderSent:
    """Cancel an order by its client order id, as `automata order cancel [--force]`: a manual
    order through the gateway; a bot's order (force) by the bot, asked on its control stream
    (only its runner writes its command stream, the gateway's proof of the sender)."""
    try:
        cmd = control.cancel_command(ctx.redis, cid, force=body.force, venue=body.venue, symbol=body.symbol,
                                     source="web", reason=body.reason)  # fmt: skip
    except control.ControlError as exc:
        raise ApiError(422, str(exc)) from None
    if not isinstance(cmd, CancelOrder | BotControl):
        return OrderSent(cid, "", cmd.status.value)
    stream, _after = control.submit(ctx.redis, cmd)
    return OrderSent(cid, stream, "sent")


CONTROL_ERRORS = {404: "unknown bot"}
OPERATIONS = [
    *(
        Operation("POST", f"/api/bots/{{bot}}/{action.value}", f"{action.value.capitalize()} a bot", _action(action),
                  Sent, (BOT,), body=ControlRequest, control=True, tags=("control",), errors=CONTROL_ERRORS)
        for action in (ControlAction.PAUSE, ControlAction.RESUME, ControlAction.STOP, ControlAction.CLOSE)
    ),
    Operation("POST", "/api/orders", "Place a manual order", place_order, OrderSent, body=OrderRequest,
              control=True, tags=("control",)),
    Operation("POST", "/api/orders/{cid}/cancel", "Cancel an order", cancel_order, OrderSent,
              (Param("cid", Cid, "path", description="client order id: manual-000001, or a bot's (force)"),),
              body=CancelRequest, control=True, tags=("control",)),
]  # fmt: skip
