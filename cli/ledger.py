"""`automata ledger sync [VENUE]`: one fill per venue trade, gaps filled (services/ledger/sync.py).

The system is located as for every command (cli/connect.py), the ledger as `automata trades`
finds it (cli/history.py) and each venue's keys as `automata reconcile` uses them (cli/venue.py:
the adapter the order gateway would build). Safe while the ledger service runs, and to run
twice: a second run finds every fill with its trade id and changes nothing.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
import typer

from cli import common, output
from cli import venue as venues
from cli.history import ledger_engine
from services.ledger.sync import Summary, sync_venue
from services.order_gateway.venues.base import VenueError
from shared.config import AppConfig, ConfigError
from shared.ledger.db import reason, upgrade
from shared.redis_conn import connect

ledger_app = typer.Typer(
    name="ledger", help="The ledger's own upkeep.", no_args_is_help=True, add_completion=False
)


async def _sync(cfg: AppConfig, venue: str, redis_url: str, engine: sa.Engine) -> Summary:
    redis = connect(redis_url, client_name="automata-ledger-sync")
    try:
        async with venues.opened(cfg, venue) as adapter:
            return await sync_venue(redis, engine, adapter, venue, cfg.venues[venue].quote_asset)
    finally:
        await redis.aclose()


@ledger_app.command("sync")
def sync(
    venue: str = typer.Argument(None, help="venue name from the config (default: every venue)"),
    as_json: bool = output.json_option("print each venue's counts as JSON, for scripts"),
) -> None:
    """Give every fill its venue trade id and fill gaps from the venue's trade list and the order
    gateway's records: afterwards the ledger holds one row per venue trade."""
    out = common.console()
    system = common.located(out)
    cfg = common.config(out, system)
    if venue is not None:
        common.check_venue(out, cfg, venue)
    _r, url = common.redis_client(out, system)
    summaries = []
    with ledger_engine(out) as (engine, _system, where):
        try:
            upgrade(engine)  # `syncs` is in revision 0004: a ledger not yet restarted gets it here
        except sa.exc.DBAPIError as exc:
            common.fail(out, f"cannot write the ledger at {where}: {reason(exc)}")
        for name in [venue] if venue else sorted(cfg.venues):
            try:
                summary = asyncio.run(_sync(cfg, name, url, engine))
            except ConfigError as exc:
                common.fail(out, f"configuration error: {exc}", 2)
            except (VenueError, OSError) as exc:
                common.fail(
                    out, f"{name}: the venue did not answer ({type(exc).__name__}: {common.short(exc)})"
                )
            except sa.exc.DBAPIError as exc:
                common.fail(out, f"cannot write the ledger at {where}: {reason(exc)}")
            summaries.append(summary)
            if not as_json:
                out.print(summary.line())
                for why in summary.skipped[:10]:
                    out.print(f"[yellow]  {why}[/]")
    if as_json:
        output.emit(
            [
                {"venue": x.venue, "trades": x.trades, "annotated": x.annotated, "inserted": x.inserted,
                 "replaced": x.replaced, "orders": x.orders, "bots": sorted(x.bots), "skipped": x.skipped}
                for x in summaries
            ]
        )  # fmt: skip
