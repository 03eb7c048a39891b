"""Power-cut cycles with a person's smart trade in flight (tests/helpers/powercut.py): `automata
trade buy BTCUSDT --quote 100 --tp 0.3%,0.6% --sl 1% --trailing 0.5%` through the real CLI, run by
demo_manual (deploy/bots.demo.toml), right before the cut. Its exits are order lists: an OCO
[LIMIT_MAKER at the target, STOP_LOSS at the stop] per target, native on the paper venue's Binance
face, emulated by the order gateway (its held stop leg and phases in the write-ahead log) when
the venue's config says `emulate_lists`; the trailing stop moves them by cancel-then-replace.

"trade" keeps every write; "trade+truncate" cuts Redis back to the moment the CLI returned or to
the end of any of its writes about the trade from the request on (the AOF read command by
command: the entry, its fill, each list's command, the gateway's records, the bot's state);
"trade+fired+truncate" first plays candles until a stop fired (a sell at market: an emulated
stop leg sent by the gateway) and cuts back to a write before it: the venue sold, Redis forgot.
Then, settled after the restart, the trade's state must match the venue (each slot's legs open
there or held, its stop the stop leg's, its sales and `hit` its legs' fills, no open sell of the
bot outside its slots: no second leg set for one exit);
the market moves on (the swings reach a target or the trailing stop) until the trade is over,
and then: exactly one entry order, no leg open at the venue or in the log, the bot flat. Two
lists for one exit show as sells above the base held (powercut_rules.py `_lists_oversell`).
The targets are small so the swings (powercut_market.py) reach them: where in a swing the trade
opens decides whether a target fills or the stop triggers first.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.order_lifecycle import UNCONFIRMED
from shared.streams import og_order
from tests.helpers.cli import cli
from tests.helpers.powercut_report import MANUAL
from tests.helpers.powercut_rules import OPEN, TERMINAL, Snapshot, Violation, dec, venue_position
from tests.helpers.procs import base_env

if TYPE_CHECKING:
    from tests.helpers.powercut import Moment, Stack

RULE = 8
TERMS = ("--quote", "100", "--tp", "0.3%,0.6%", "--sl", "1%", "--trailing", "0.5%")
LOT = Decimal("0.00001")  # the venue's BTCUSDT step: what is left below it cannot be sold
CLOSE_CANDLES = 60  # two swings: a target or the trailing stop is reached well before
FIRE_CANDLES = 28  # "+fired": candles played for a stop to fire before the cut
ANSWER_WAIT_S = 30.0  # the most the play to the end waits, in all, for the trade's orders to be answered


def _env(stack: Stack) -> dict[str, str]:
    return base_env(stack.server.url, AUTOMATA_CONFIG=str(stack.config), AUTOMATA_BOTS=str(stack.bots_file))


def _mine(e: dict[str, Any]) -> bool:
    return (e.get("client_order_id") or "").rsplit("-", 1)[0] == MANUAL


def open_trade(stack: Stack, kind: str) -> Moment:
    """The trade through the CLI (it returns once the market entry filled) until the venue shows
    the exits' legs accepted, and maybe a candle or two more (a stop moved, a target filled).
    Returns the moment the CLI returned or, as often, the end of one of the Redis writes about
    demo_manual (its request, the bot's commands and state, the gateway's records of the entry
    and the lists' legs, their events...) from the request on, read from the AOF itself: every
    step of the trade's progress, however close together (a sampler every 20 ms sees the entry's
    fill and the legs go out in one sample)."""
    stack.trade_from = before = len(stack.refresh())
    rng = random.Random(before)
    start = stack.mark()
    res = cli(_env(stack), "trade", "buy", "BTCUSDT", *TERMS, "--wait", "30")
    assert res.returncode == 0, res.stdout + res.stderr
    returned = stack.mark()

    def legs() -> bool:
        return any(_mine(e) and e["kind"] == "accepted" and e["order"]["side"] == "SELL"
                   for e in stack.refresh()[before:])  # fmt: skip

    stack.until(legs, "the smart trade's exit legs at the venue", 20)
    for _ in range(rng.choice([0, 0, 1, 2])):
        stack.advance(pace=rng.random() < 0.5)
    fired = _until_a_stop_fired(stack, before) if "+fired" in kind else None
    time.sleep(rng.uniform(0.0, 0.3))
    request = res.stdout.split(":", 1)[0].removeprefix("trade ").strip().encode()
    from tests.helpers.powercut import incr_file  # powercut imports this module

    same = incr_file(stack.server) == start.file  # else an AOF rewrite since: cut back to the return
    steps = _trade_writes(stack.server.aof_dir / start.file, start.size, request) if same else []
    if fired is not None:  # the cut takes the stop's firing: back to a write before it
        steps = [step for step in steps if fired.file == start.file and step[0] <= fired.size]
    if not kind.endswith("truncate") or not steps or rng.random() < 0.25:
        stack.trade_story = "; cut back to the CLI's return" if kind.endswith("truncate") else ""
        return returned
    (size, what), n = rng.choice(steps), len(steps)
    stack.trade_story = f"; cut back to write {steps.index((size, what)) + 1}/{n} about the trade: {what}"
    stack.trade_story += "; a stop had fired" if fired is not None else ""
    return replace(start, size=size, at=returned.at)


def _until_a_stop_fired(stack: Stack, before: int) -> Moment | None:
    """Candles until a stop of the trade fired (a sell at market at the venue: an emulated stop
    leg sent, or the bot's own watch), at most a swing and a half: a moment before the candle
    that fired it (the one before the last two candles: a stop fires on the book a little after
    its candle), or None (the targets filled first)."""

    def fired() -> bool:
        return any(_mine(e) and e["kind"] == "accepted" and e["order"]["side"] == "SELL"
                   and e["order"]["type"] == "MARKET" for e in stack.refresh()[before:])  # fmt: skip

    marks = [stack.mark()]
    for _ in range(FIRE_CANDLES):
        stack.advance()
        if fired():
            return marks[-2] if len(marks) > 1 else marks[-1]
        marks.append(stack.mark())
    return None


def _trade_writes(path: Path, start: int, request: bytes) -> list[tuple[int, str]]:
    """The AOF's writes (a command, or a MULTI ... EXEC whole) that name demo_manual, from the one
    holding the trade request on: (the size of the file at its end, its commands' first words)."""
    data = path.read_bytes()
    pos, unit, out, seen = start, [], [], False
    while pos < len(data) and data[pos : pos + 1] == b"*":
        argv, pos = _command(data, pos)
        unit.append(argv)
        if argv[0].upper() == b"MULTI" or (unit[0][0].upper() == b"MULTI" and argv[0].upper() != b"EXEC"):
            continue
        text = b" ".join(a for c in unit for a in c)
        seen = seen or request in text
        if seen and MANUAL.encode() in text:
            words = [
                b" ".join(c[:2]).decode(errors="replace")
                for c in unit
                if c[0].upper() not in (b"MULTI", b"EXEC")
            ]
            out.append((pos, ", ".join(words)[:120]))
        unit = []
    return out


def _command(data: bytes, pos: int) -> tuple[list[bytes], int]:
    """One RESP array of bulk strings at `pos` (as Redis appends commands): its words, its end."""
    eol = data.index(b"\r\n", pos)
    count, pos, argv = int(data[pos + 1 : eol]), eol + 2, []
    for _ in range(count):
        eol = data.index(b"\r\n", pos)
        size = int(data[pos + 1 : eol])
        argv.append(data[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2
    return argv, pos


def _entries(snap: Snapshot, since: int) -> list[str]:
    return [e["client_order_id"] for e in snap.journal[since:]
            if _mine(e) and e["kind"] == "accepted" and e["order"]["side"] == "BUY"]  # fmt: skip


def _slot_faults(snap: Snapshot, trade: dict[str, Any]) -> list[str]:
    """Where the trade's slots disagree with the venue and the log (a slot being moved or sold
    is left alone: it is between two lists)."""
    out = []
    for n, slot in enumerate(trade.get("slots") or []):
        if slot.get("moving") or slot.get("selling"):
            continue
        cids = slot.get("cids") or []
        fills = [t for c in cids for t in snap.fills.get(c, [])]
        sold = sum((dec(t["qty"]) for t in fills if t["side"] == "SELL"), Decimal(0))
        if (
            cids
            and sold != dec(slot.get("sold"))
            and not any(snap.venue.get(c, {}).get("status") in OPEN for c in cids)
        ):
            out.append(f"slot {n}: sold {slot.get('sold', '0')}, its legs {cids} sold {sold} at the venue")
        limit = [c for c in cids if (snap.venue.get(c) or {}).get("type") == "LIMIT_MAKER"]
        if bool(slot.get("hit")) != any(snap.fills.get(c) for c in limit) and limit:
            out.append(
                f"slot {n}: hit {slot.get('hit', False)}, its target leg {limit} fills {snap.fills.get(limit[0])}"
            )
        for c in cids:
            o, rec = snap.venue.get(c), snap.wal.get(c) or {}
            where = o["status"] if o else ("held" if rec.get("held") == "1" else "nowhere")
            if where not in (*OPEN, "held") and dec(slot.get("qty")) - sold > LOT:
                out.append(f"slot {n}: leg {c} {where} with {dec(slot.get('qty')) - sold} of the slot unsold")
            kind = (o or {}).get("type") or rec.get("order_type")
            stop = (o or {}).get("stop_price") if o else rec.get("stop_price")
            if kind == "STOP_LOSS" and where in (*OPEN, "held") and dec(stop) != dec(slot.get("stop")):
                out.append(f"slot {n}: the bot's stop {slot.get('stop')}, its stop leg {c}'s {stop}")
    return out


def _left_open(snap: Snapshot) -> list[str]:
    """The bot's orders and lists still open anywhere: at the venue, in the log (a held leg)."""
    out = [f"{c} {o['type']} {o['status']} at the venue" for c, o in snap.venue.items()
           if snap.bot_of(c) == MANUAL and o["status"] in OPEN]  # fmt: skip
    out += [f"{c} {r.get('order_type')} {r.get('status')} in the log" + (" (held)" if r.get("held") == "1" else "")
            for c, r in snap.wal.items() if snap.bot_of(c) == MANUAL and r.get("status") not in TERMINAL]  # fmt: skip
    return out


def trade_violations(stack: Stack) -> list[Violation]:
    """The trade after the restart, then moved on to its end, checked against the venue."""
    snap = stack.snapshot()
    out: list[Violation] = []

    def fault(what: str, cid: str = "-", **x: Any) -> None:
        out.append(Violation(RULE, MANUAL, cid, what, {**x, "timeline": snap.timeline(MANUAL)}))

    trade = snap.state(MANUAL).get("trade")
    if trade is not None:
        for text in _slot_faults(snap, trade):
            fault(f"after the restart: {text}", trade=trade)
        legs = {c for slot in trade.get("slots") or [] for c in slot.get("cids") or []}
        stray = [c for c, o in snap.venue.items() if snap.bot_of(c) == MANUAL and o["status"] in OPEN
                 and o["side"] == "SELL" and c not in legs]  # fmt: skip
        if stray:
            fault(f"after the restart: sells open at the venue that no exit of the trade holds: {stray}",
                  stray[0], trade=trade)  # fmt: skip
    _play_to_end(stack)
    snap = stack.snapshot()
    entries = _entries(snap, stack.trade_from)
    if len(entries) != 1:
        fault(
            f"{len(entries)} entry orders for one `automata trade`: {entries}",
            entries[-1] if entries else "-",
        )
    left = _left_open(snap)
    if snap.state(MANUAL).get("trade") is not None or left:
        fault(f"trade not over after {CLOSE_CANDLES} candles, or a leg left open: {left}",
              trade=snap.state(MANUAL).get("trade"))  # fmt: skip
    stack.trade_story += story(snap, stack.trade_from, trade is not None)
    base = venue_position(snap, MANUAL)["base"]
    if base >= LOT:
        fault(f"holds {base} at the venue once the trade is over")
    return out


def story(snap: Snapshot, since: int, held: bool) -> str:
    """What the trade did at the venue, for the cycle's line: its orders by type (accepted,
    filled, cancelled: a moved stop cancels its list), and whether the bot held it after the cut."""
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for e in snap.journal[since:]:
        if _mine(e) and e["kind"] in ("accepted", "trade", "canceled", "expired"):
            seen[e["order"]["type"]][e["kind"][0]] += 1
    kinds = ", ".join(
        f"{t} " + "/".join(f"{k}{n}" for k, n in sorted(c.items())) for t, c in sorted(seen.items())
    )
    return f"; trade ({'held' if held else 'over'} after the cut): {kinds}"


def _play_to_end(stack: Stack) -> None:
    """Candles until the trade is over (its state gone, nothing of it open) or CLOSE_CANDLES were
    played, then settled (its last fills booked). Each candle waits for the trade's orders to be
    answered: a send the venue rate-limited is retried seconds later, and candles played
    meanwhile would pass the trade by (its exits out only after the market left them)."""
    # one wait for the whole play: an order never answered is the rules' to find, not a hang
    deadline = time.monotonic() + ANSWER_WAIT_S
    for _ in range(CLOSE_CANDLES):
        while (stack.busy() or _unanswered(stack)) and time.monotonic() < deadline:
            time.sleep(0.02)
        snap = stack.snapshot()
        if snap.state(MANUAL).get("trade") is None and not _left_open(snap):
            break
        stack.advance()
    stack.settle()


def _unanswered(stack: Stack) -> list[str]:
    """The trade's orders in the log that the venue has not answered yet (sent or to be sent)."""
    keys = list(stack.r.scan_iter(match=og_order(f"{MANUAL}-*"), count=1000))
    pipe = stack.r.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "status")
    waiting = {status.value.encode() for status in UNCONFIRMED}
    return [k.decode() for k, status in zip(keys, pipe.execute(), strict=True) if status in waiting]
