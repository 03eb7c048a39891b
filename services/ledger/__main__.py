"""python -m services.ledger: the trading history from Redis streams into SQL, exactly once.

It reads, in its own consumer group `ledger` (created at id 0: a first start backfills whatever
the streams still hold), every bot's order updates (`orders:events:{bot}`, found by SCAN and a
rescan), each venue's `account:{venue}`, the candle streams of `[ledger] candles` and `notify`.
The entries of one read are written in one transaction with their keys in `ingested` and acked
only after the commit (services/ledger/writer.py; the Consumer's `flush`). A database that cannot be reached is waited for, with a log
line and a growing delay; nothing is acked meanwhile, and no trading service waits on the ledger.
Before a stream is read, entries trimmed before the ledger saw them are reported (gaps.py).
"""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from services.ledger.gaps import report_gap
from services.ledger.retention import Retention, Rule
from services.ledger.writer import Writer, read_opening
from shared import streams as s
from shared.bus import Consumer
from shared.bus.consumer import Entry
from shared.bus.dlq import dead_letter
from shared.bus.groups import as_text
from shared.display import filters_from_hash
from shared.filters import SymbolFilters
from shared.ledger.db import LedgerUrlError, at_head, cannot_connect, describe, ledger_url, open_ledger
from shared.ledger.migrate import TRANSIENT, upgrade_apart
from shared.messages import OrderUpdate
from shared.service import Component, ServiceContext, run_service
from shared.strategy.position import Position
from shared.urls import safe_url

log = logging.getLogger("automata.ledger")

RETRY_MAX_S = 30.0


async def wait_out(ctx: ServiceContext, delay: float) -> float:
    """Sleep `delay` unless the service stops; the next, longer delay."""
    try:
        await asyncio.wait_for(ctx.stopping.wait(), timeout=delay)
    except TimeoutError:
        pass
    return min(delay * 2, RETRY_MAX_S)


class Ledger:
    """The consumer's handler collects a read's entries; `flush` writes them in one transaction
    before the consumer acks them, waiting while the database is away."""

    def __init__(self, ctx: ServiceContext, engine: sa.Engine) -> None:
        self.ctx = ctx
        self.filters: dict[str, dict[str, SymbolFilters]] = {}
        self.openings: dict[str, Position | None] = {}  # bot -> the position it took over
        quotes = {name: v.quote_asset for name, v in ctx.config.venues.items()}
        self.writer = Writer(
            engine,
            lambda venue, symbol: self.filters.get(venue, {}).get(symbol),
            lambda venue: quotes.get(venue, "USDT"),
            self.openings.get,
        )
        self.batch: list[Entry] = []
        self.written = 0

    async def handle(self, entry: Entry) -> None:
        msg = entry.message
        venue = getattr(msg, "venue", "")
        if venue and getattr(msg, "symbol", "") not in self.filters.get(venue, {}):
            self.filters[venue] = filters_from_hash(await self.ctx.redis.hgetall(s.venue_symbols(venue)))
        if isinstance(msg, OrderUpdate) and msg.bot not in self.openings:
            # set before the bot's first order was sent (in the runner's commit), so read once
            self.openings[msg.bot] = await read_opening(self.ctx.redis, msg.bot)
        self.batch.append(entry)

    async def flush(self) -> bool:
        """Write the collected entries; False (nothing to ack) only when the service stops first."""
        batch, self.batch = self.batch, []
        if not batch:
            return True
        delay = 0.5
        while True:
            try:
                await self._write(batch)
                return True
            except TRANSIENT as exc:
                log.error("ledger database unavailable (%s): retrying in %.1fs", describe(exc), delay)
            if self.ctx.stopping.is_set():
                return False  # the batch stays pending in Redis, written at the next start
            delay = await wait_out(self.ctx, delay)

    async def _write(self, batch: list[Entry]) -> None:
        items = [(e.stream, e.id, e.message) for e in batch]
        try:
            self._count(await asyncio.to_thread(self.writer.write_many, items))
        except TRANSIENT:
            raise
        except Exception:  # one entry the database refuses: find it, write the others
            for entry, item in zip(batch, items, strict=True):
                try:
                    self._count(await asyncio.to_thread(self.writer.write_many, [item]))
                except TRANSIENT:
                    raise
                except Exception as exc:
                    log.error(
                        "%s %s cannot be written: %s (dead-lettered)", entry.stream, entry.id, describe(exc)
                    )
                    await dead_letter(
                        self.ctx.redis, entry.stream, entry.group, self.ctx.consumer_name, entry.id,
                        entry.fields, f"ledger: {describe(exc)}", entry.deliveries,
                    )  # fmt: skip

    def _count(self, written: int) -> None:
        self.written += written
        self.ctx.info["written"] = self.written


def engine_or_exit(ctx: ServiceContext) -> tuple[sa.Engine, str, str]:
    """(engine, url, source) of the ledger's database; a bad URL stops the service (exit 2)."""
    url, source = ledger_url(ctx.config.ledger.url)
    try:
        return open_ledger(url, source=source), url, source
    except LedgerUrlError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None


async def open_database(ctx: ServiceContext, engine: sa.Engine, url: str, source: str) -> bool:
    """Wait until the database answers and its schema is up to date (False: stopped first). Why
    a wait and not an exit: a database restarted, or a password fixed on the server, is taken up
    without anyone restarting the ledger; meanwhile its heartbeat says why (`database`)."""
    delay = 0.5
    while not ctx.stopping.is_set():
        try:
            if not await asyncio.to_thread(at_head, engine):  # migrations: in a child (migrate.py)
                await asyncio.to_thread(upgrade_apart, url, source)
            log.info("ledger database %s (%s) ready", safe_url(url), source)
            ctx.info.pop("database", None)
            return True
        except TRANSIENT as exc:
            ctx.info["database"] = cannot_connect(exc, url, source)
            log.error("cannot open the ledger database %s: retrying in %.1fs", ctx.info["database"], delay)
        delay = await wait_out(ctx, delay)
    return False


def fixed_streams(ctx: ServiceContext) -> list[str]:
    cfg = ctx.config
    named = [s.account(venue) for venue in cfg.venues]
    for feed in cfg.ledger.candles:
        named += [s.candles(feed.venue, symbol, i) for symbol in feed.symbols for i in feed.intervals]
    return [*named, s.NOTIFY]


async def order_event_streams(ctx: ServiceContext) -> list[str]:
    """Every bot's order-update stream a SCAN finds (bots come and go: polled by the consumer)."""
    found = []
    async for key in ctx.redis.scan_iter(match=s.ANY_ORDER_EVENTS, count=1000, _type="stream"):
        name = as_text(key)
        if s.order_events_bot(name) is not None:
            found.append(name)
    return sorted(found)


def retention(ctx: ServiceContext, engine: sa.Engine) -> Retention:
    """The retention task on the streams it may trim: all the ledger reads but the candles."""
    cfg = ctx.config

    async def trimmable() -> list[str]:
        return [*(s.account(venue) for venue in cfg.venues), s.NOTIFY, *await order_event_streams(ctx)]

    keep_ms = cfg.ledger.stream_keep_s * 1000
    rule = Rule(keep_ms, max(keep_ms, cfg.notifier.backfill_s * 1000), cfg.ledger.wal_keep_s * 1000)
    return Retention(ctx.redis, engine, trimmable, rule, cfg.ledger.retention_every_s, ctx.info)


class Deferred:
    """The ledger's work, begun once its database answers. Why a component of its own: the
    service is up (heartbeat, /health saying `database: false`) while it waits, so `automata run`
    and the trading services never wait on a database that is away: the ledger catches up later."""

    def __init__(self, ctx: ServiceContext, engine: sa.Engine, url: str, source: str) -> None:
        self.ctx, self.engine, self.url, self.source = ctx, engine, url, source
        self.parts: list[Component] = []

    async def run(self) -> None:
        if not await open_database(self.ctx, self.engine, self.url, self.source):
            return
        self.parts = await components(self.ctx, self.engine)
        if self.ctx.stopping.is_set():
            return
        tasks = [asyncio.create_task(p.run(), name=type(p).__name__) for p in self.parts]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            self.stop()
            await asyncio.wait(tasks)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def stop(self) -> None:
        for part in self.parts:
            part.stop()


async def components(ctx: ServiceContext, engine: sa.Engine) -> list[Component]:
    """The consumer (and the retention task) on a database that answers."""
    ledger = Ledger(ctx, engine)
    await asyncio.to_thread(ledger.writer.load_prices)
    seen: set[str] = set()

    async def checked(streams: list[str]) -> list[str]:
        for stream in streams:
            if stream not in seen:
                await report_gap(ctx.redis, engine, stream, s.GROUP_LEDGER)
                seen.add(stream)
        return streams

    async def discover() -> list[str]:
        return await checked(await order_event_streams(ctx))

    bus = ctx.config.bus
    streams = await checked(fixed_streams(ctx) + await order_event_streams(ctx))
    parts: list[Component] = [
        Consumer(
            ctx.redis,
            streams,
            s.GROUP_LEDGER,
            ctx.consumer_name,
            ledger.handle,
            count=ctx.config.ledger.batch,
            claim_idle_ms=bus.claim_idle_ms,
            max_deliveries=bus.max_deliveries,
            discover=discover,
            flush=ledger.flush,
        )
    ]
    if ctx.config.ledger.retention:
        parts.append(retention(ctx, engine))
    ctx.info["streams"] = len(streams)
    log.info("reading %d stream(s) into the ledger", len(streams))
    return parts


async def start(ctx: ServiceContext) -> None:
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin
    engine, url, source = engine_or_exit(ctx)
    ctx.on_stop.append(lambda: asyncio.to_thread(engine.dispose))

    async def database_ok() -> bool:  # /health: 503 while the database is away
        def ping() -> None:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))

        await asyncio.wait_for(asyncio.to_thread(ping), timeout=2.0)
        return True

    ctx.health_checks["database"] = database_ok
    ctx.add(Deferred(ctx, engine, url, source))


if __name__ == "__main__":
    run_service("ledger", start)
