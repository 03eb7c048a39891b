"""`automata reconcile VENUE`: make Redis agree with the venue now, on demand.

Design: the CLI runs the order gateway's own reconciliation (services/order_gateway/reconcile.py)
in its process, with an adapter built from the config exactly as the gateway builds it, and
prints the gateway's one-line summary (also published to `notify`). It does not need the
gateway to be running, and it is safe while the gateway (or another `automata reconcile`) runs:
every write goes through the write-ahead log's forward-only update under WATCH (a report that
does not move an order forward changes nothing, and a racing writer makes it re-read), and an
adoption is a create-if-absent, so an order is adopted once whoever gets there first.

One thing is left to the gateway on purpose: an order the venue has never seen (PENDING_SUBMIT
or UNKNOWN and not found by its cid) is only counted as unresolved here, never resent. A resend
is safe only from the one process that serialises a venue's commands; two processes resending
the same cid could both be accepted (Binance refuses a duplicate cid only among open orders).
"""

from __future__ import annotations

import asyncio

import typer

from cli import common, output
from cli import venue as venues
from services.order_gateway.list_wal import ListWal
from services.order_gateway.lists import reconcile_lists
from services.order_gateway.reconcile import Summary
from services.order_gateway.reconcile import reconcile as run_reconcile
from services.order_gateway.retry import Retry
from services.order_gateway.tracker import OrderTracker
from services.order_gateway.venues.base import VenueError
from services.order_gateway.wal import Wal
from shared.bus import publish
from shared.config import AppConfig, ConfigError
from shared.redis_conn import connect
from shared.streams import NOTIFY


async def reconcile_venue(cfg: AppConfig, venue: str, redis_url: str, notify: bool = True) -> Summary:
    redis = connect(redis_url, client_name="automata-reconcile")
    try:
        async with venues.opened(cfg, venue) as adapter:
            wal = Wal(redis, venue)
            tracker = OrderTracker(wal, adapter)
            # no resend: only the gateway, which serialises the venue's commands, sends again
            retry = Retry(adapter.sync_time)
            summary = await run_reconcile(wal, tracker, retry)
            await reconcile_lists(ListWal(wal), tracker, retry, summary)  # order lists by their query
        if notify:
            await publish(redis, NOTIFY, summary.notification(), maxlen=100_000)
        return summary
    finally:
        await redis.aclose()


def reconcile(
    venue: str = typer.Argument(..., help="venue name from the config, e.g. sim"),
    notify: bool = typer.Option(True, "--notify/--no-notify", help="also publish the summary to `notify`"),
    as_json: bool = output.json_option("print the summary as JSON (the counts), for scripts"),
) -> None:
    """Check every open or unresolved order against the venue now and adopt lost ones."""
    out = common.console()
    cfg = common.config(out)
    common.check_venue(out, cfg, venue)
    _r, url = common.redis_client(out)
    try:
        summary = asyncio.run(reconcile_venue(cfg, venue, url, notify))
    except ConfigError as exc:
        common.fail(out, f"configuration error: {exc}", 2)
    except (VenueError, OSError) as exc:
        common.fail(out, f"{venue}: the venue did not answer ({type(exc).__name__}: {common.short(exc)})")
    if as_json:
        output.emit(dict(summary.__dict__))
    else:
        out.print(summary.line())
    if summary.unresolved and not as_json:
        out.print(
            f"[yellow]{summary.unresolved} order(s) unresolved: the order gateway resends what never "
            "reached the venue, closes as lost an acknowledged order the venue keeps saying it does "
            "not know (after a minute), and retries the rest; see the gateway's log[/]"
        )
