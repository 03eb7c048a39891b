"""/api/bots...: every bot at a glance, one bot's state, decisions, orders, fills, cycles, its
candle chart with its orders and fills, and a DCA bot's ladder."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import msgspec
from starlette.requests import Request

from services.web import live_state, views
from services.web.context import WebContext
from services.web.openapi import ApiError, Operation, Param
from shared import bot_view, display
from shared.codec import DecodeError, decode
from shared.config import Interval
from shared.display import filters_from_hash
from shared.ids import BOT_ID_RE
from shared.messages import Candle
from shared.strategy.orders import BotOrder
from shared.streams import candles, venue_symbols

BotId = Annotated[str, msgspec.Meta(pattern=BOT_ID_RE.pattern)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
BOT = Param("bot", BotId, "path", description="bot id")
LIMIT = Param("limit", Limit, description="at most this many rows (default 100)")
NOT_FOUND = {404: "no such bot"}


def _bot_config(ctx: WebContext, bot: str) -> Any:
    """The bot's entry in the bots file (None: no bots file, or not in it)."""
    if not ctx.settings.bots_file:
        return None
    from services.strategy_runner.bots import load_bots
    from shared.config import ConfigError

    try:
        configs = load_bots(Path(ctx.settings.bots_file), check_params=False)
    except ConfigError:
        return None
    return next((b for b in configs if b.id == bot), None)


def _state(ctx: WebContext, bot: str) -> dict[str, Any]:
    doc = bot_view.read_state(ctx.redis, bot)
    if doc is None:
        raise ApiError(404, f"no bot {bot!r} with state in Redis")
    return doc


def _open_orders(state: dict[str, Any]) -> list[views.OpenOrder]:
    out = []
    for raw in (state.get("orders") or {}).values():
        try:
            o = msgspec.convert(raw, BotOrder, strict=False)
        except msgspec.ValidationError:
            continue
        out.append(views.OpenOrder(o.cid, o.side.value, o.order_type.value, o.tag, o.price, o.stop_price, o.quantity,
                                   o.quote_quantity, o.status.value, o.cum_filled_qty))  # fmt: skip
    return out


def summaries(ctx: WebContext, one: tuple[str, dict[str, Any]] | None = None) -> list[views.BotSummary]:
    """The bots' summaries (every bot with state, or just `one`: a bot and its state document,
    read once per request): the one computation behind
    both /api/bots and /api/bots/{bot}, so the overview and a bot's page always show the same
    figures (the unrealised profit: the ledger's open cycles at the last price, None while the
    ledger has no tables yet)."""
    from services.web import history  # SQLAlchemy: loaded when history is first asked for

    rows = live_state.bot_rows(ctx.redis, one)
    with ctx.reading() as conn:
        unrealised = history.unrealised_by_bot(conn, [row["bot"] for row in rows])
    return [live_state.summary(ctx.redis, row, unrealised[row["bot"]]) for row in rows]


def list_bots(ctx: WebContext, request: Request) -> views.Bots:
    """Every bot with state: mode, position, open orders, realised and unrealised profit, last decision."""
    return views.Bots(summaries(ctx))


def get_bot(ctx: WebContext, request: Request, bot: str) -> views.BotDetail:
    """One bot: its summary, its strategy's state (ladder, grid, stop...) and open orders."""
    doc = _state(ctx, bot)
    config = _bot_config(ctx, bot)
    state = doc.get("state") or {}
    return views.BotDetail(
        summary=summaries(ctx, (bot, doc))[0],
        strategy=config.strategy if config else None,
        params=dict(config.params) if config else {},
        state=state,
        orders=_open_orders(state),
        version=int(doc.get("version", 0) or 0),
    )


def get_decisions(ctx: WebContext, request: Request, bot: str, limit: int | None) -> views.Decisions:
    """What the bot decided and why, newest first."""
    return views.Decisions(live_state.decisions(ctx.redis, bot, limit or 100))


def get_orders(ctx: WebContext, request: Request, bot: str, limit: int | None) -> views.Orders:
    """The bot's orders as the ledger recorded them, newest first."""
    from services.web import history

    with ctx.reading() as conn:
        return views.Orders(history.order_rows(conn, bot=bot, limit=limit or 100))


def get_fills(ctx: WebContext, request: Request, bot: str, limit: int | None) -> views.Fills:
    """The bot's fills, newest first."""
    from services.web import history

    with ctx.reading() as conn:
        return views.Fills(history.fills(conn, bot=bot, limit=limit or 100))


def get_cycles(ctx: WebContext, request: Request, bot: str, limit: int | None) -> views.Cycles:
    """The bot's cycles (round trips) with their profit, newest first."""
    from services.web import history

    with ctx.reading() as conn:
        return views.Cycles(history.cycle_rows(conn, bot=bot, limit=limit or 100))


def _bars(ctx: WebContext, venue: str, symbol: str, interval: str, limit: int) -> list[Candle]:
    bars = []
    for _id, fields in reversed(ctx.redis.xrevrange(candles(venue, symbol, interval), count=limit)):
        try:
            c = decode(fields)
        except DecodeError:
            continue
        if isinstance(c, Candle):
            bars.append(c)
    return bars


def get_chart(
    ctx: WebContext, request: Request, bot: str, interval: str | None, limit: int | None
) -> views.Chart:
    """The bot's market as candles (from Redis, newest `limit`), with its fills in that span and
    its open orders."""
    doc = _state(ctx, bot)
    market = display.bot_market(doc)
    interval = interval or doc_interval(doc) or "1m"
    if market is None:
        return views.Chart(bot, None, None, interval, [], [], [])
    venue, symbol = market
    bars = _bars(ctx, venue, symbol, interval, limit or 300)
    fills: list[views.Fill] = []
    if bars:
        from services.web import history

        with ctx.reading() as conn:
            fills = history.fills(
                conn, bot=bot, limit=1000, since=bars[0].open_time, until=bars[-1].close_time + 1
            )
    return views.Chart(bot, venue, symbol, interval, bars, fills, _open_orders(doc.get("state") or {}))


def doc_interval(doc: dict[str, Any]) -> str | None:
    """The interval of the candle stream the bot reads."""
    for stream in doc.get("last_applied") or {}:
        parts = stream.split(":")
        if len(parts) == 5 and parts[:2] == ["md", "candles"]:
            return parts[4]
    return None


def get_plan(ctx: WebContext, request: Request, bot: str, price: Decimal | None) -> views.DcaPlan:
    """A DCA bot's ladder for one cycle (strategies/dca_plan.py, the code the bot runs) and the
    levels its current cycle has done. The reference price: `price`, else the open cycle's
    opening buy (the ledger's; the state's last buy only while no safety order has filled:
    after one, `last_buy_price` is that level's and would shift the whole ladder)."""
    from services.web import history
    from strategies.dca_params import parse_dca_params
    from strategies.dca_plan import build_plan

    doc = _state(ctx, bot)
    config = _bot_config(ctx, bot)
    if config is None or config.strategy != "dca":
        raise ApiError(404, f"{bot} is not a DCA bot of the bots file")
    state = doc.get("state") or {}
    if price is not None and _decimal(price) is None:
        raise ApiError(422, f"price: must be a positive number, got {price}")
    ref = price
    if ref is None:
        with ctx.reading() as conn:
            ref = history.opening_price(conn, bot)
    if ref is None and not int(state.get("level") or 0):
        ref = _decimal(state.get("last_buy_price"))
    if not ref:
        raise ApiError(404, f"{bot} has no buy to start the ladder from yet: give ?price=")
    filters = filters_from_hash(ctx.redis.hgetall(venue_symbols(config.venue))).get(config.symbol)
    if filters is None:
        raise ApiError(404, f"no filters of {config.symbol} on {config.venue} in Redis yet")
    try:
        plan = build_plan(parse_dca_params(config.params), ref, filters)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    done = int(state.get("level") or 0) if state.get("phase", "idle") != "idle" else -1
    placed = {row.level for row in plan.placed}
    levels = [views.PlanLevel(**msgspec.structs.asdict(row), placed=row.level in placed, filled=row.level <= done)
              for row in plan.rows]  # fmt: skip
    return views.DcaPlan(bot, config.symbol, plan.ref_price, levels, plan.total_cost, plan.placed_cost,
                         plan.stop_level, plan.stop_reason, int(state.get("cycle") or 0), str(state.get("phase", "")))  # fmt: skip


def _decimal(value: Any) -> Decimal | None:
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        return None
    return result if result.is_finite() and result > 0 else None


OPERATIONS = [
    Operation("GET", "/api/bots", "Every bot at a glance", list_bots, views.Bots, tags=("bots",)),
    Operation("GET", "/api/bots/{bot}", "One bot: state, open orders", get_bot, views.BotDetail, (BOT,),
              tags=("bots",), errors=NOT_FOUND),
    Operation("GET", "/api/bots/{bot}/decisions", "The bot's decisions", get_decisions, views.Decisions,
              (BOT, LIMIT), tags=("bots",)),
    Operation("GET", "/api/bots/{bot}/orders", "The bot's orders", get_orders, views.Orders, (BOT, LIMIT),
              tags=("bots",)),
    Operation("GET", "/api/bots/{bot}/fills", "The bot's fills", get_fills, views.Fills, (BOT, LIMIT),
              tags=("bots",)),
    Operation("GET", "/api/bots/{bot}/cycles", "The bot's cycles", get_cycles, views.Cycles, (BOT, LIMIT),
              tags=("bots",)),
    Operation("GET", "/api/bots/{bot}/chart", "Candles with the bot's orders and fills", get_chart, views.Chart,
              (BOT, Param("interval", Interval), Param("limit", Limit)), tags=("bots",), errors=NOT_FOUND),
    Operation("GET", "/api/bots/{bot}/plan", "A DCA bot's ladder", get_plan, views.DcaPlan,
              (BOT, Param("price", Decimal, description="reference price of the opening buy (positive)")), tags=("bots",),
              errors=NOT_FOUND),
]  # fmt: skip
