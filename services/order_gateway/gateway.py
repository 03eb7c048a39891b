"""One venue's gateway: lease, adapter, write-ahead log, command lanes and user stream, wired.

- One active gateway per venue: it holds `og:lease:{venue}` (shared/lease.py), renewed every
  third of `lease_ms`. Another gateway for the venue waits as a standby (heartbeat
  `lease: {venue: standby}`) and takes over once the lease expires: it reconciles first, as
  on start, then takes every command the dead holder left pending and replays them in stream
  order. A process restarted under the same consumer name replaces its earlier run's lease at
  once instead of waiting for it to expire.
- Fencing: every write-ahead-log write checks the lease (wal.py), and an order is never sent
  once the lease may have lapsed (`LeasedAdapter`), so a holder that was frozen past its lease
  writes and sends nothing: it gets FencedError, stops serving and waits again.
- Commands run in per-bot lanes (shared/bus/lanes.py): concurrently across bots, strictly in
  order within a bot, so one bot's stuck order (resolve retries, venue timeouts, a failing
  cancel) never delays another bot's orders.
- Each bot writes its own command stream `orders:cmd:{venue}:{bot}` (only its runner's Redis
  user may), all read in the one consumer group: at start the streams of the bots file's bots,
  of `manual` and of every bot a SCAN finds; then a rescan every `rescan_every_s` adds the
  streams of bots that appear later. The legacy shared `orders:cmd:{venue}` is drained too
  while it exists (what an upgrade left on it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.order_gateway.emulated_oco import Emulator
from services.order_gateway.lists import ListRouter
from services.order_gateway.reconcile import reconcile, venue_bots
from services.order_gateway.retry import CONNECT
from services.order_gateway.router import CommandRouter
from services.order_gateway.symbols import SymbolCache
from services.order_gateway.tracker import OrderTracker
from services.order_gateway.user_stream import UserStream
from services.order_gateway.venues import make_adapter
from services.order_gateway.venues.base import Banned, VenueAdapter, VenueError
from services.order_gateway.wal import Wal
from shared.bus import Consumer, Entry, FencedError, publish
from shared.bus.groups import take_over_pending
from shared.bus.lanes import Lanes
from shared.lease import Lease
from shared.messages import Notification
from shared.redis_conn import TRANSIENT_ERRORS
from shared.service import ServiceContext
from shared.streams import (
    GROUP_ORDER_GATEWAY,
    MANUAL_BOT,
    NOTIFY,
    any_order_commands,
    command_stream_bot,
    legacy_order_commands,
    og_lease,
    order_commands,
)

log = logging.getLogger("automata.order_gateway")

MAX_IN_FLIGHT = 1000  # commands held in lanes at once; the consumer stops reading beyond


def bot_lane(venue: str) -> Callable[[Entry], str]:
    """The lane of a command: the bot whose stream it came on (so entries naming another bot
    queue, and are refused, in the sender's own lane); on the legacy stream, the bot it names."""

    def lane(entry: Entry) -> str:
        return command_stream_bot(venue, entry.stream) or str(getattr(entry.message, "bot", "") or "")

    return lane


class LeasedAdapter:
    """The venue adapter, refusing to place an order once the lease may have lapsed.

    The WAL's fencing stops every write, but a request is not a Redis write: a holder frozen
    inside its send path (SIGSTOP, a stalled VM) would otherwise send on waking, while the new
    holder may be resending the same cid."""

    def __init__(self, adapter: VenueAdapter, lease: Lease) -> None:
        self._adapter, self._lease = adapter, lease

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    @property
    def on_banned(self) -> Callable[[Banned], None]:
        return self._adapter.on_banned

    @on_banned.setter
    def on_banned(self, hook: Callable[[Banned], None]) -> None:
        self._adapter.on_banned = hook  # the adapter's own requests call it, not this wrapper

    async def place(self, *args: Any, **kwargs: Any) -> Any:
        self._lease.check()
        return await self._adapter.place(*args, **kwargs)

    async def place_list(self, *args: Any, **kwargs: Any) -> Any:
        self._lease.check()
        return await self._adapter.place_list(*args, **kwargs)


@dataclass
class _Term:
    """What serves while this gateway holds the lease; each runs once, so a new set each term."""

    consumer: Consumer
    lanes: Lanes
    user_stream: UserStream
    lists: Emulator
    lists_stop: asyncio.Event

    def stop(self) -> None:
        self.consumer.stop()
        self.lanes.stop()
        self.user_stream.stop()
        self.lists_stop.set()
        self.lists.wake()


class VenueGateway:
    """Component (run/stop) for one venue."""

    def __init__(self, ctx: ServiceContext, venue: str) -> None:
        self.ctx, self.venue = ctx, venue
        self.ready = False
        self.role = "starting"
        self.consumer_name = f"{ctx.consumer_name}-{venue}"
        og = ctx.config.order_gateway
        self.lease = Lease(
            ctx.redis,
            og_lease(venue),
            f"{self.consumer_name}/{os.getpid()}-{secrets.token_hex(4)}",
            og.lease_ms,
        )
        self.adapter = make_adapter(ctx.config, venue)
        leased = LeasedAdapter(self.adapter, self.lease)
        self.wal = Wal(ctx.redis, venue, self.lease)
        self.tracker = OrderTracker(self.wal, leased)
        self.symbols = SymbolCache(self.adapter, ctx.redis)
        self.router = CommandRouter(
            venue, self.wal, self.tracker, leased, self.symbols, self.notify, ctx.stopping
        )
        self.router.halt.changed = self._show_halt
        venue_cfg = ctx.config.venues.get(venue)
        self.lists = ListRouter(
            self.router, emulate=bool(venue_cfg and venue_cfg.emulate_lists), review_every_s=og.poll_every_s
        )
        self.term: _Term | None = None
        self._set_role("starting")

    @property
    def healthy(self) -> bool:
        """Serving, or a standby waiting its turn (both are what this process should be doing)."""
        return self.ready or self.role == "standby"

    def _show_halt(self, until: float) -> None:
        """The heartbeat says until when the venue has halted trading (`automata status`)."""
        halted = self.ctx.info.setdefault("halted", {})
        if until:
            halted[self.venue] = int(until * 1000)
        else:
            halted.pop(self.venue, None)

    async def notify(self, note: Notification) -> None:
        await publish(self.ctx.redis, NOTIFY, note, maxlen=100_000)

    # -- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        if self.term is not None:
            self.term.stop()

    async def run(self) -> None:
        first = True
        try:
            while not self.ctx.stopping.is_set():
                if not await self._acquire(first):
                    return
                first = False
                try:
                    await self._serve()
                except FencedError as exc:
                    log.error("%s: lease lost (%s); standing by", self.venue, exc)
                finally:
                    self.ready = False
                    self.term = None
                    await self._close_adapter()
        finally:
            if self.ctx.stopping.is_set():
                await self._release()

    async def _acquire(self, first: bool) -> bool:
        """Wait for the venue's lease; True once held, False when stopping. Only a process's
        first acquisition replaces an earlier run's lease (a later one waits like any standby,
        so two processes misconfigured with one name do not take it from each other in turn)."""
        earlier_runs = f"{self.consumer_name}/" if first else ""
        waiting_logged = False
        while not self.ctx.stopping.is_set():
            try:
                if await self.lease.try_acquire(earlier_runs):
                    if self.lease.replaced:
                        log.warning(
                            "%s: took over the lease of an earlier run of %s", self.venue, self.consumer_name
                        )
                    log.info("%s: lease acquired (%s)", self.venue, self.lease.owner)
                    self._set_role("active")
                    return True
                if not waiting_logged:
                    holder = await self.lease.holder()
                    log.info(
                        "%s: another order gateway holds the lease (%s); standing by", self.venue, holder
                    )
                    waiting_logged = True
            except TRANSIENT_ERRORS as exc:
                log.warning(
                    "%s: redis unavailable while waiting for the lease (%s)", self.venue, type(exc).__name__
                )
            self._set_role("standby")
            await self._sleep(self.lease.ttl_ms / 4000)
        return False

    async def _serve(self) -> None:
        """Serve until stopped or fenced: the lease kept alongside the work."""
        og, bus = self.ctx.config.order_gateway, self.ctx.config.bus
        lanes = Lanes(self.ctx.redis, self.router.handle, bot_lane(self.venue), self.consumer_name,
                      max_deliveries=bus.max_deliveries, max_in_flight=MAX_IN_FLIGHT)  # fmt: skip
        consumer = Consumer(
            self.ctx.redis, [], GROUP_ORDER_GATEWAY, self.consumer_name, lanes.submit,
            count=bus.read_count, max_deliveries=bus.max_deliveries, holds=lanes.holds, gate=self.lease.check,
            # we hold the lease: another consumer's entry idle this long is an orphan
            claim_idle_ms=min(bus.claim_idle_ms, max(og.lease_ms, 1000)),
            discover=self.command_streams, discover_every_s=og.rescan_every_s,
        )  # fmt: skip
        user_stream = UserStream(
            self.wal,
            self.tracker,
            og.poll_every_s,
            og.balance_every_s,
            halted=lambda: self.router.halt.active,
        )
        self.term = term = _Term(consumer, lanes, user_stream, self.lists.emulator, asyncio.Event())
        if self.ctx.stopping.is_set():
            return
        keeper = asyncio.create_task(self._keep_lease(), name=f"lease:{self.venue}")
        work = asyncio.create_task(self._work(term), name=f"serve:{self.venue}")
        try:
            await asyncio.wait([keeper, work], return_when=asyncio.FIRST_COMPLETED)
        finally:
            term.stop()
            if keeper.done() and not keeper.cancelled() and keeper.exception() is not None:
                work.cancel()  # fenced: whatever it still does would be refused anyway
            keeper.cancel()
            await asyncio.gather(keeper, work, return_exceptions=True)
        for task in (work, keeper):
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()

    async def _work(self, term: _Term) -> None:
        if not await self.connect():
            return
        # the dead holder's commands are ours now: replayed, in stream order, before anything new
        known = [MANUAL_BOT, *(b.id for b in venue_bots(self.venue))]
        streams = [order_commands(self.venue, bot) for bot in known] + await self.command_streams()
        await term.consumer.add_streams(streams)
        moved = 0
        for stream in term.consumer.stream_names:
            moved += await take_over_pending(self.ctx.redis, stream, GROUP_ORDER_GATEWAY, self.consumer_name)
        if moved:
            log.info("%s: took over %d pending command(s) of the previous holder", self.venue, moved)
        tasks = [
            asyncio.create_task(c)
            for c in (
                term.consumer.run(), term.lanes.run(), term.user_stream.run(),
                self.lists.emulator.run(term.lists_stop),
            )
        ]  # fmt: skip
        fenced = False
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            fenced = any(not t.cancelled() and t.exception() is not None for t in done)
        except asyncio.CancelledError:
            fenced = True
            raise
        finally:
            term.stop()  # a clean stop: each lane finishes the command in hand
            if fenced:  # what the lanes hold would be refused anyway: no point finishing it
                for task in tasks[:2]:  # the user stream's run() ends its own tasks once stopped
                    task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    async def command_streams(self) -> list[str]:
        """Every bot's command stream of this venue a SCAN finds, and the legacy shared stream
        while it exists (drained, never written any more)."""
        found = []
        async for key in self.ctx.redis.scan_iter(
            match=any_order_commands(self.venue), count=1000, _type="stream"
        ):
            name = key.decode() if isinstance(key, bytes) else key
            if command_stream_bot(self.venue, name) is not None:  # never a name no bot can have
                found.append(name)
        legacy = legacy_order_commands(self.venue)
        if await self.ctx.redis.type(legacy) in (b"stream", "stream"):
            found.append(legacy)
        return sorted(found)

    async def connect(self) -> bool:
        """Connect to the venue and reconcile before taking any new command; retry until it
        works or the service stops (a venue that is down must not crash-loop the process)."""
        if self.ctx.stopping.is_set():
            return False
        try:
            await self.router.retry.run(
                self._connect_once,
                CONNECT,
                what=f"{self.venue}: connecting and reconciling",
                also=(VenueError, OSError),
            )
        except Exception:
            if self.ctx.stopping.is_set():  # the retries end, with their last failure, on a stop
                return False
            raise
        self.ready = True
        return True

    async def _connect_once(self) -> None:
        """One try; the adapter is closed after a failure, so the next try starts afresh."""
        try:
            await self.adapter.start()
            await self.symbols.refresh()
            summary = await reconcile(self.wal, self.tracker, self.router.retry, resend=self.router.resend)
            await self.lists.reconcile(summary)  # every open list finished from its record
        except Exception:
            await self.adapter.close()
            raise
        await self.notify(summary.notification())

    async def _keep_lease(self) -> None:
        """Renew every third of the lease; FencedError once it is lost or may have lapsed."""
        while not self.ctx.stopping.is_set():
            await self._sleep(self.lease.ttl_ms / 3000)
            if self.ctx.stopping.is_set():
                return
            try:
                renewed = await self.lease.renew()
            except TRANSIENT_ERRORS:
                self.lease.check()  # Redis away: serve on while the lease surely holds
                continue
            if not renewed:
                raise FencedError(f"lease {self.lease.key} lost")

    # -- helpers -------------------------------------------------------------------------

    def _set_role(self, role: str) -> None:
        self.role = role
        self.ctx.info.setdefault("lease", {})[self.venue] = role

    async def _release(self) -> None:
        try:
            await self.lease.release()
        except TRANSIENT_ERRORS:
            pass  # it expires on its own

    async def _close_adapter(self) -> None:
        try:
            await asyncio.wait_for(self.adapter.close(), timeout=2.0)
        except (TimeoutError, Exception) as exc:  # closing is best effort
            log.warning("%s: adapter close: %s", self.venue, type(exc).__name__)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.ctx.stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass
