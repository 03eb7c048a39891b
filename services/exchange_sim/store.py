"""The paper venue's state on disk (SIM_STATE_DIR), so a restarted venue carries on where it stopped.

Two files: `snapshot.msgpack`, the whole state (accounts, open and recent closed orders, recent
trades, counters, the kept candle history), written atomically (temp file, fsync, rename); and
`changes.log`, every change since that snapshot, appended as it happens: an order's new state
(with its fill), an account's new balances, a closed candle. Each change is written to the file
before the request that made it is answered, so a kill -9 loses nothing the venue had done
(fsyncs are batched, at most 50 ms apart: a power cut loses at most that much). A change log is rewritten
empty after each snapshot; replaying one over the snapshot it follows is idempotent (every
record holds the new state, not a difference), so a crash between the two loses nothing either.

On start the venue loads the snapshot, replays the log and resumes its market at the minute
after the last candle it closed: market time never goes back, so the candles the bots and Redis
already hold stay older than every new one. The candle in progress at the stop is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from services.exchange_sim.feeds import Bar
from services.exchange_sim.market import STEPS_PER_CANDLE, Tick
from shared.files import write_atomic
from shared.matching.engine import (
    BalanceEvent,
    CorruptState,
    EngineState,
    Event,
    Funds,
    Order,
    OrderList,
    Trade,
)

log = logging.getLogger("exchange_sim.store")

SNAPSHOT = "snapshot.msgpack"
CHANGES = "changes.log"
FILES = (SNAPSHOT, CHANGES, SNAPSHOT + ".tmp")  # all it writes (`automata run --fresh` removes them)
VERSION = 1
KEEP_CLOSED_ORDERS = 10_000  # closed orders a snapshot keeps (open ones are all kept)
KEEP_TRADES = 20_000
KEEP_CANDLES = 10_000  # 1-minute candles a symbol (~7 days): a snapshot stays a few MB
SNAPSHOT_EVERY_S = 30.0  # a snapshot (and an empty log) at most this often, while anything changed
SYNC_EVERY_S = 0.05  # fsyncs of the change log are batched: at most a power cut's loss
_LEN = struct.Struct(">I")


class StoreError(ValueError):
    """The saved state cannot be used by this venue (other symbols, seed or data; unreadable)."""


class OrdersRec(msgspec.Struct, tag="o"):
    """The orders one operation changed (their new state) and the trades it made."""

    orders: list[Order]
    trades: list[Trade]
    lists: list[OrderList] = []  # the order lists it placed or finished


class BalanceRec(msgspec.Struct, tag="b"):
    account: str
    balances: dict[str, Funds]


class CandleRec(msgspec.Struct, tag="c"):
    candles: dict[str, Bar]
    next_trade_id: dict[str, int]
    steps: int


Record = OrdersRec | BalanceRec | CandleRec


class Snapshot(msgspec.Struct, kw_only=True):
    version: int = VERSION
    symbols: list[str]
    seed: int
    data: str
    steps: int
    history: dict[str, list[Bar]]
    dropped: dict[str, int]
    engine: EngineState


@dataclass
class Saved:
    """A snapshot with its change log replayed: what the venue resumes from."""

    snapshot: Snapshot
    trade_keys: set[tuple[str, int]] = field(default_factory=set)

    def apply(self, rec: Record) -> None:
        eng = self.snapshot.engine
        if isinstance(rec, OrdersRec):
            for order in rec.orders:
                _replace_order(eng, order)
                eng.next_order_id = max(eng.next_order_id, order.order_id + 1)
            for order_list in rec.lists:
                _replace_list(eng, order_list)
            for t in rec.trades:
                if (t.symbol, t.trade_id) not in self.trade_keys:
                    self.trade_keys.add((t.symbol, t.trade_id))
                    eng.trades.append(t)
                    eng.next_trade_id[t.symbol] = max(eng.next_trade_id.get(t.symbol, 1), t.trade_id + 1)
        elif isinstance(rec, BalanceRec):
            eng.accounts.setdefault(rec.account, {}).update(rec.balances)
        else:
            for symbol, candle in rec.candles.items():
                hist = self.snapshot.history.get(symbol)
                if hist and candle.open_time == hist[-1].close_time + 1:
                    hist.append(candle)
            for symbol, value in rec.next_trade_id.items():
                eng.next_trade_id[symbol] = max(eng.next_trade_id.get(symbol, 1), value)
            self.snapshot.steps = max(self.snapshot.steps, rec.steps)


def _replace_list(eng: EngineState, order_list: OrderList) -> None:
    eng.lists = [x for x in eng.lists if x.list_id != order_list.list_id] + [order_list]
    eng.next_list_id = max(eng.next_list_id, order_list.list_id + 1)


def _replace_order(eng: EngineState, order: Order) -> None:
    orders = eng.orders
    if orders and orders[-1].order_id == order.order_id:
        orders[-1] = order
        return
    for i in range(len(orders) - 1, -1, -1):
        if orders[i].order_id == order.order_id:
            orders[i] = order
            return
    orders.append(order)  # ids only grow: the list stays sorted


_snapshot_decoder = msgspec.msgpack.Decoder(Snapshot)
_record_decoder = msgspec.msgpack.Decoder(Record)
_encoder = msgspec.msgpack.Encoder()


def load(directory: Path, symbols: list[str], seed: int, data: str) -> Saved | None:
    """The saved state in `directory` (None: there is none), its change log replayed.

    A log record cut short by a power cut ends the replay; one that is there is applied."""
    path = directory / SNAPSHOT
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    try:
        snap = _snapshot_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise StoreError(f"{path} is not a paper venue snapshot ({exc})") from None
    mine = (sorted(symbols), seed, data)
    theirs = (sorted(snap.symbols), snap.seed, snap.data)
    if snap.version != VERSION or mine != theirs:
        raise StoreError(
            f"{directory} holds a paper venue of symbols {','.join(snap.symbols)}, seed {snap.seed}, "
            f"data {snap.data or '(random walk)'}, not this one's: remove it (or `automata run --fresh`)"
        )
    saved = Saved(snap, {(t.symbol, t.trade_id) for t in snap.engine.trades})
    for rec in _read_log(directory / CHANGES):
        saved.apply(rec)
    for symbol in snap.history:  # the tape's trade ids of the dropped candle in progress
        nxt = snap.engine.next_trade_id
        nxt[symbol] = nxt.get(symbol, 1) + STEPS_PER_CANDLE
    return saved


def _read_log(path: Path) -> list[Record]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    records, pos = [], 0
    while pos + _LEN.size <= len(raw):
        (size,) = _LEN.unpack_from(raw, pos)
        body = raw[pos + _LEN.size : pos + _LEN.size + size]
        if len(body) < size:
            log.warning("%s: the last change was cut short (a power cut?); replayed up to it", path)
            break
        try:
            records.append(_record_decoder.decode(body))
        except msgspec.DecodeError:
            log.warning("%s: an unreadable change at byte %d; replayed up to it", path, pos)
            break
        pos += _LEN.size + size
    return records


class Store:
    """Writes the venue's changes as they happen and a snapshot now and then (see the module doc)."""

    def __init__(self, directory: Path, snapshot: Callable[[], Snapshot]) -> None:
        self.directory = directory
        self._take = snapshot
        self._fd = -1
        self._dirty = False  # written since the last fsync
        self._changed = False  # written since the last snapshot
        self._sync_planned = False
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------- lifecycle
    def open(self) -> None:
        """A snapshot of the state as it is now, and an empty change log after it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.snapshot()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._every(), name="venue-snapshots")

    async def close(self) -> None:
        """A last snapshot, so a clean stop restarts from it alone."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._fd >= 0:
            try:
                self.snapshot()
            except OSError as exc:  # the change log still holds everything since the last one
                log.error("cannot write the venue's last snapshot: %s", exc)
            os.close(self._fd)
            self._fd = -1

    def snapshot(self) -> None:
        write_atomic(self.directory / SNAPSHOT, _encoder.encode(self._take()))
        # a new, empty log: what the old one held is in the snapshot just written (if this fails,
        # the old log stays in use: replayed over the new snapshot, it changes nothing)
        fd = os.open(self.directory / CHANGES, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.fsync(fd)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._dirty = self._changed = False

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_EVERY_S)
            if self._changed:
                try:
                    self.snapshot()
                except OSError as exc:  # a full disk: say so; the change log still holds everything
                    log.error("cannot write the venue's snapshot: %s", exc)

    # ------------------------------------------------------------- changes
    def on_change(self, orders: list[Order], trades: list[Trade], lists: list[OrderList]) -> None:
        self._append(OrdersRec(orders, trades, lists))

    def on_event(self, event: Event) -> None:
        if isinstance(event, BalanceEvent):  # orders and trades come through on_change
            self._append(BalanceRec(event.account, dict(event.balances)))

    def on_ticks(self, ticks: list[Tick], next_trade_id: dict[str, int], steps: int) -> None:
        closed = {t.symbol: t.candle for t in ticks if t.closed}
        if closed:
            self._append(CandleRec(closed, next_trade_id, steps))

    def _append(self, rec: Record) -> None:
        if self._fd < 0:
            return
        body = _encoder.encode(rec)
        try:
            os.write(self._fd, _LEN.pack(len(body)) + body)  # in the file now: a kill -9 keeps it
        except OSError as exc:  # a full disk: trading on unsaved would break the promise above
            raise CorruptState(f"cannot write the change log in {self.directory}: {exc}") from None
        self._dirty = self._changed = True
        if not self._sync_planned:
            try:
                asyncio.get_running_loop().call_later(SYNC_EVERY_S, self._sync)
                self._sync_planned = True
            except RuntimeError:  # no event loop (a test driving the venue directly)
                self._sync()

    def _sync(self) -> None:
        self._sync_planned = False
        if self._dirty and self._fd >= 0:
            os.fdatasync(self._fd)
            self._dirty = False
