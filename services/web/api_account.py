"""/api/services, /api/balances, /api/notifications, /api/profit, /api/equity, /api/trades and
its CSV export: the system and the account as a whole."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import StreamingResponse

from services.web import live_state, views
from services.web.api_bots import LIMIT, BotId
from services.web.context import WebContext
from services.web.openapi import Operation, Param
from shared.ledger.rows import MAX_BUCKETS, Period

Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
Millis = Annotated[int, msgspec.Meta(ge=0, le=10**14)]
BOT_FILTER = Param("bot", BotId, description="only this bot")
SINCE = Param("since", Millis, description="from this time on (ms since the epoch, UTC)")
UNTIL = Param("until", Millis, description="before this time (ms since the epoch, UTC)")


def get_services(ctx: WebContext, request: Request) -> views.Services:
    """Every service's heartbeat: age, staleness, uptime and what it reports."""
    return live_state.services(ctx.redis)


def get_balances(ctx: WebContext, request: Request, venue: str | None) -> views.Balances:
    """Free, locked and total per asset and the equity in the venue's quote asset (assets
    without a price named, left out of it), as the order gateway last published them."""
    return live_state.balances(ctx.redis, dict(ctx.settings.quotes), venue)


def get_notifications(
    ctx: WebContext, request: Request, limit: int | None, bot: str | None
) -> views.Notifications:
    """The newest notifications (what the notifier sends to Telegram and the console)."""
    return views.Notifications(live_state.notifications(ctx.redis, limit or 100, bot))


def get_profit(
    ctx: WebContext, request: Request, period: Period | None, n: int | None, bot: str | None
) -> views.Profit:
    """Realised and unrealised profit per bot, and by day, week or month (UTC)."""
    from services.web import history

    with ctx.reading() as conn:
        return history.profit(conn, ctx.profit_cache, period or "daily", n, bot)


def get_equity(
    ctx: WebContext, request: Request, venue: str | None, since: int | None, n: int | None
) -> views.Equity:
    """Each account's equity over time (the ledger's snapshots), its extremes and drawdown: the
    last n UTC days (30), or from `since`, as `automata equity` shows them."""
    from services.web import history

    with ctx.reading() as conn:
        return history.equity(conn, venue, since, n)


def get_trades(
    ctx: WebContext,
    request: Request,
    bot: str | None,
    limit: int | None,
    since: int | None,
    until: int | None,
) -> views.Fills:
    """Fills of every bot (or one), newest first."""
    from services.web import history

    with ctx.reading() as conn:
        return views.Fills(history.fills(conn, bot=bot, limit=limit or 100, since=since, until=until))


def _csv(ctx: WebContext, bot: str | None, since: int | None, until: int | None) -> Iterator[str]:
    from services.web.history import from_ms
    from shared.ledger.export import CSV_HEADER, csv_rows

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    with ctx.reading() as conn:
        rows = csv_rows(conn, bot=bot, since=from_ms(since), until=from_ms(until)) if conn else ()
        for i, row in enumerate(rows):
            writer.writerow(row)
            if i % 500 == 499:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def export_trades(
    ctx: WebContext, request: Request, bot: str | None, since: int | None, until: int | None
) -> StreamingResponse:
    """Every fill as a CSV row, oldest first (as `automata export trades --csv`)."""
    name = f"trades-{bot}.csv" if bot else "trades.csv"
    return StreamingResponse(_csv(ctx, bot, since, until), media_type="text/csv",
                             headers={"content-disposition": f'attachment; filename="{name}"'})  # fmt: skip


OPERATIONS = [
    Operation("GET", "/api/services", "Services and their heartbeats", get_services, views.Services,
              tags=("system",)),
    Operation("GET", "/api/balances", "Balances and equity per venue", get_balances, views.Balances,
              (Param("venue", Name, description="only this venue"),), tags=("account",)),
    Operation("GET", "/api/notifications", "The newest notifications", get_notifications, views.Notifications,
              (LIMIT, BOT_FILTER), tags=("account",)),
    Operation("GET", "/api/profit", "Profit per bot and by period", get_profit, views.Profit,
              (Param("period", Period, description="daily (default), weekly or monthly"),
               Param("n", Annotated[int, msgspec.Meta(ge=1, le=MAX_BUCKETS)], description="how many periods"),
               BOT_FILTER), tags=("account",)),
    Operation("GET", "/api/equity", "Equity over time", get_equity, views.Equity,
              (Param("venue", Name, description="only this venue"), SINCE,
               Param("n", Annotated[int, msgspec.Meta(ge=1, le=100_000)],
                     description="the last n UTC days (30; without one in them, the n up to the newest)")),
              tags=("account",)),
    Operation("GET", "/api/trades", "Fills, newest first", get_trades, views.Fills,
              (BOT_FILTER, LIMIT, SINCE, UNTIL), tags=("account",)),
    Operation("GET", "/api/trades.csv", "Every fill as CSV", export_trades, None, (BOT_FILTER, SINCE, UNTIL),
              media="text/csv", tags=("account",)),
]  # fmt: skip
