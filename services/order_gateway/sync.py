"""SyncBot: tell a (re)starting bot where it stands at the venue, adopting what the log lost.

Redis may have lost its last second (a power cut) while the venue kept every order sent in it:
the bot's state and sequence rolled back, and the gateway's log may lack orders the venue has.
Before the bot places anything new, its runner sends SyncBot and waits for BotSynced. Handled
in the bot's order (after its earlier commands), the gateway looks for every order of the
bot's prefix at the venue:

- the open orders (every symbol);
- the latest orders of the command's symbol, closed ones included, with NO lower time bound:
  the venue's clock (the paper venue's market time) can be anywhere, so the local clock must
  never bound a venue query;
- by client order id from `seq + 1` upward, until PROBE_MISSES ids in a row are neither in
  the log nor at the venue: this finds what the lists miss (an older order of another symbol,
  or one past the latest-orders window).

Each order with no record is adopted (the venue's terms kept; its update carries
`adopted`); a record that exists and is not finished gets the venue's report, forward only.
Then BotSynced(max_seq) is published and the command acked in one MULTI/EXEC, after those
updates on the same stream. max_seq is the highest sequence of the prefix seen at the venue or
in the log, and never below the bot's own.
"""

from __future__ import annotations

import logging
import time

from services.order_gateway.reconcile_rules import latest_reports
from services.order_gateway.retry import SYNC, Retry
from services.order_gateway.tracker import OrderTracker
from services.order_gateway.venues.base import OrderNotFound, Rejected, VenueAdapter
from services.order_gateway.wal import Wal
from shared import metrics
from shared.bus import Commit, DeadLetter, Entry
from shared.ids import IdError, check_bot_id, format_cid, parse_cid, seq_of
from shared.messages import BotSynced, SyncBot
from shared.order_record import CorruptRecord
from shared.order_report import OrderReport
from shared.streams import EVENTS_MAXLEN, og_list, og_order, order_events

log = logging.getLogger("automata.order_gateway.sync")

PROBE_MISSES = 5  # ids in a row found nowhere before probing stops
MAX_PROBES = 10_000  # a bound on one probe walk, whatever the venue answers


class BotSyncer:
    def __init__(self, wal: Wal, tracker: OrderTracker, adapter: VenueAdapter, retry: Retry) -> None:
        self.wal, self.tracker, self.adapter, self.retry = wal, tracker, adapter, retry
        self._m_adopted = metrics.counter(
            "automata_sync_adopted_total", "Orders adopted while syncing a bot", ("venue",)
        )

    async def sync(self, cmd: SyncBot, entry: Entry | None) -> None:
        try:
            check_bot_id(cmd.bot)
        except IdError as exc:
            raise DeadLetter("SyncBot with an invalid bot id") from exc
        if cmd.venue != self.wal.venue:
            raise DeadLetter(f"SyncBot for venue {cmd.venue!r} on the stream of {self.wal.venue!r}")
        # a venue failure still there after the retries fails the command: the lane tries it later
        found, max_seq, adopted = await self.retry.run(
            lambda: self._survey_and_settle(cmd), SYNC, what=f"{self.wal.venue}: sync of {cmd.bot}"
        )
        answer = BotSynced(
            bot=cmd.bot,
            venue=cmd.venue,
            token=cmd.token,
            max_seq=max_seq,
            adopted=tuple(adopted),
            ts=int(time.time() * 1000),
        )
        commit = Commit().publish(order_events(cmd.bot), answer, maxlen=EVENTS_MAXLEN)
        if entry is not None and not entry.acked:
            commit.ack(entry.stream, entry.group, entry.id, entry)
        await self.wal.execute(commit)  # fenced like the log's own writes
        self._m_adopted.labels(self.wal.venue).inc(len(adopted))
        log.info(
            "%s: synced %s: %d order(s) of its prefix at the venue, %d adopted, max_seq %d",
            self.wal.venue, cmd.bot, len(found), len(adopted), max_seq,
        )  # fmt: skip

    async def _survey_and_settle(self, cmd: SyncBot) -> tuple[dict[str, OrderReport], int, list[str]]:
        found, max_seq = await self.survey(cmd)
        return found, max_seq, await self._settle(found)

    async def survey(self, cmd: SyncBot) -> tuple[dict[str, OrderReport], int]:
        """Every order of the bot's prefix the venue shows, and the highest sequence seen."""
        bot = cmd.bot
        listed = await self.adapter.open_orders()
        try:
            listed += await self.adapter.recent_orders(cmd.symbol)
        except Rejected as exc:  # a symbol the venue does not list: nothing of it to find
            log.warning(
                "%s: sync of %s: recent orders of %s refused: %s", self.wal.venue, bot, cmd.symbol, exc
            )
        found = {cid: r for cid, r in latest_reports(listed).items() if seq_of(cid, bot) is not None}
        max_seq = cmd.seq
        for cid in await self.wal.open_cids():
            max_seq = max(max_seq, seq_of(cid, bot) or 0)
        symbols = {cmd.symbol}
        seq, misses = cmd.seq + 1, 0
        while misses < PROBE_MISSES and seq <= cmd.seq + MAX_PROBES:
            try:
                cid = format_cid(bot, seq)
            except IdError:  # past the venues' 36 characters: no such order can exist
                break
            hit = cid in found
            if not hit:
                symbol = await self.wal.redis.hget(og_order(cid), "symbol")
                if symbol is not None:  # in the log: seen, no need to ask the venue
                    symbols.add(symbol.decode(errors="replace"))
                    hit = True
                elif await self.wal.redis.exists(og_list(cid)):  # an order list's own id
                    hit = True
                else:
                    report = await self._probe(cid, symbols)
                    if report is not None:
                        found[cid] = report
                        hit = True
            if hit:
                max_seq, misses = max(max_seq, seq), 0
            else:
                misses += 1
            seq += 1
        max_seq = max([max_seq, *(seq_of(cid, bot) or 0 for cid in found)])
        return found, max_seq

    async def _probe(self, cid: str, symbols: set[str]) -> OrderReport | None:
        """The order by client order id on any of the symbols, or None."""
        for symbol in sorted(symbols):
            try:
                return await self.adapter.query(symbol, cid)
            except OrderNotFound:
                continue
            except Rejected as exc:  # e.g. a symbol the venue no longer lists
                log.warning("%s: probe of %s on %s refused: %s", self.wal.venue, cid, symbol, exc)
        return None

    async def _settle(self, found: dict[str, OrderReport]) -> list[str]:
        """Adopt what has no record, move forward what has an unfinished one; the adopted cids."""
        adopted = []
        for cid in sorted(found, key=lambda c: parse_cid(c).seq):
            report = found[cid]
            try:
                record = await self.wal.get(cid)
            except CorruptRecord as exc:
                log.error("%s: sync: %s skipped: %s", self.wal.venue, cid, exc)
                continue
            if record is None and await self.tracker.adopt(report) is not None:
                adopted.append(cid)
            elif record is None or not record.terminal:
                # recorded (maybe by the user stream adopting it this very moment): its state
                # must still reach the bot before the answer, so apply the report, forward only
                await self.tracker.apply(report, reconciled=True)
        return adopted
