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
import time

import typer

from cli import common, output
from cli import venue as venues
from services.order_gateway.reconcile import Summary
from services.order_gateway.reconcile import reconcile as run_reconcile
from services.order_gateway.tracker import OrderTracker
from services.order_gateway.venues.base import (
    ClockSkew,
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    VenueAdapter,
    VenueError,
)
from services.order_gateway.wal import Wal
from shared.bus import publish
from shared.config import AppConfig, ConfigError
from shared.order_record import OrderRecord
from shared.redis_conn import connect
from shared.streams import NOTIFY

QUERY_ATTEMPTS = 6


class QueryOnlyResolver:
    """Stands in for the gateway's CommandRouter in reconcile(): resolves a PENDING_SUBMIT /
    UNKNOWN order by querying its cid, and never resends it (see the module docstring)."""

    def __init__(self, wal: Wal, tracker: OrderTracker, adapter: VenueAdapter) -> None:
        self.wal, self.tracker, self.adapter = wal, tracker, adapter

    async def resolve(self, record: OrderRecord, entry: object = None) -> OrderRecord | None:
        """The record after applying the venue's view, or None when the venue has no such order."""
        delay = 0.1
        for _ in range(QUERY_ATTEMPTS):
            try:
                report = await self.adapter.query(record.symbol, record.cid)
            except OrderNotFound:
                # a request sent moments ago may still arrive: wait out its recvWindow once
                wait_ms = record.sent_ts + self.adapter.recv_window_ms + 1000 - int(time.time() * 1000)
                if record.sent_ts and wait_ms > 0:
                    await asyncio.sleep(wait_ms / 1000)
                    continue
                return None
            except (OutcomeUnknown, RateLimited, ClockSkew) as exc:
                if isinstance(exc, ClockSkew):
                    await self.adapter.sync_time()
                await asyncio.sleep(getattr(exc, "retry_after", delay))
                delay = min(delay * 2, 2.0)
                continue
            await self.tracker.apply(report, reconciled=True)
            return await self.wal.get(record.cid)
        return None


async def reconcile_venue(cfg: AppConfig, venue: str, redis_url: str, notify: bool = True) -> Summary:
    redis = connect(redis_url, client_name="automata-reconcile")
    try:
        async with venues.opened(cfg, venue) as adapter:
            wal = Wal(redis, venue)
            tracker = OrderTracker(wal, adapter)
            summary = await run_reconcile(wal, tracker, QueryOnlyResolver(wal, tracker, adapter))  # type: ignore[arg-type]
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
            "reached the venue and retries the rest; see the gateway's log[/]"
        )
