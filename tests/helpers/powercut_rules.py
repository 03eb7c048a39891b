"""The six rules of issue 12, checked once a power-cut run has settled.

The sources: the paper venue's journal and orders (it never lost power: the truth for orders
and fills), the order gateway's write-ahead log (`og:order:{cid}` hashes) and each bot's
persisted state (`bot:{bot}:state`). Every violation names its rule, bot and client order id,
with short excerpts of what the venue, the log and the bot hold, so a failure in an unattended
CI run says what went wrong without a rerun.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis

from shared.streams import bot_state, og_order

ZERO = Decimal(0)
DUST = Decimal("1e-8")
LOT_STEP = Decimal("0.00001")  # BTCUSDT's step size on the paper venue
OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
TERMINAL = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED"})
REFUSALS_IN_A_ROW = 3  # the same refused terms this many times in a row is still "a few"
PRICE_SLACK = Decimal("0.01")  # the average cost (fees included) may sit 1 % outside the traded prices
BASE, QUOTE = "BTC", "USDT"

RULES = {
    1: "no client order id accepted twice by the venue",
    2: "every venue order of a bot is in the log (final status, fills) and, open, in the bot's state",
    3: "position = net of the bot's venue fills; its open orders = its open orders at the venue",
    4: "no order open at the venue that neither the log nor a bot knows",
    5: "every service running, no dead letters, the bots trade on",
    6: "no overselling / second order for one purpose, sane average cost, no endless refusals",
    7: "a person's control (`automata stop` / `close`) applied exactly once",
    8: "a smart trade (`automata trade`) across a cut: one entry, one list per exit, none left open",
}


@dataclass
class Violation:
    rule: int
    bot: str
    cid: str
    what: str
    excerpts: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The fault without its ids and amounts, to group alike findings."""
        return re.sub(r"\w+-\d{6}|[-\d.]+", "#", self.what)[:60]

    def key(self) -> tuple[int, str, str, str]:
        """Same rule, bot, cid and kind of fault (the text before any number) = the same finding."""
        return self.rule, self.bot, self.cid, self.what.split(":")[0][:40]

    def __str__(self) -> str:
        lines = [f"RULE {self.rule} ({RULES[self.rule]}) bot={self.bot} cid={self.cid}: {self.what}"]
        for name, value in self.excerpts.items():
            if isinstance(value, list) and all(isinstance(x, str) for x in value):  # a timeline: a line each
                lines += [f"    {name}:"] + [f"        {x}" for x in value]
            else:
                lines.append(f"    {name}: {_short(value)}")
        return "\n".join(lines)


def _short(value: Any, limit: int = 900) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + " ..."


def dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else ZERO


def seq_of(cid: str) -> int:
    tail = cid.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


@dataclass
class Snapshot:
    """Everything the rules read, taken at one (settled) moment."""

    journal: list[dict[str, Any]]
    orders: list[dict[str, Any]]  # the venue's /control/orders
    wal: dict[str, dict[str, str]]  # cid -> og:order hash
    docs: dict[str, dict[str, Any]]  # bot -> runner document (state inside)
    strategies: dict[str, str]  # bot -> strategy name

    def __post_init__(self) -> None:
        self.venue = {o["client_order_id"]: o for o in self.orders}
        self.fills: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in self.journal:
            cid = e.get("client_order_id") or ""
            self.events[cid].append(e)
            if e["kind"] == "trade" and e.get("trade"):
                self.fills[cid].append(e["trade"])

    def bot_of(self, cid: str) -> str | None:
        bot = cid.rsplit("-", 1)[0]
        return bot if bot in self.docs else None

    def state(self, bot: str) -> dict[str, Any]:
        return self.docs.get(bot, {}).get("state") or {}

    def list_of(self, cid: str) -> str:
        """The order list a leg belongs to: the log's list cid (native or emulated), else the
        venue's list id; "" for a single order. An OCO's legs sell once between them."""
        if lcid := (self.wal.get(cid) or {}).get("list_cid"):
            return lcid
        list_id = int((self.venue.get(cid) or {}).get("list_id", -1))
        return f"venue-list-{list_id}" if list_id >= 0 else ""

    def known(self, bot: str) -> dict[str, dict[str, Any]]:
        """The orders the bot holds: its own and the adopted ones it holds back (issue 12)."""
        st = self.state(bot)
        return {**(st.get("adopted") or {}), **(st.get("orders") or {})}

    def initial_base(self, bot: str) -> Decimal:
        """Base the bot holds without having bought it at the venue (the fractal bot's protected quantity)."""
        return dec(self.state(bot).get("quantity")) if self.strategies[bot] == "fractal_trailing" else ZERO

    # -- excerpts ---------------------------------------------------------------------------
    def venue_x(self, cid: str) -> Any:
        o = self.venue.get(cid)
        if o is None:
            return "none (never accepted)"
        keys = ("side", "type", "quantity", "quote_quantity", "price", "stop_price", "status",
                "executed_qty", "cum_quote", "time", "update_time")  # fmt: skip
        return {k: o[k] for k in keys if o.get(k) not in (None, "0", 0)}

    def journal_x(self, cid: str) -> list[str]:
        out = []
        for e in self.events.get(cid, [])[:12]:
            t = e.get("trade") or {}
            fill = f" {t.get('side')} {t.get('qty')}@{t.get('price')} fee {t.get('commission')}" if t else ""
            out.append(f"#{e['seq']} {e['kind']} {e.get('status') or ''}{fill} t={e['time']}"
                       + (f" ({e['reason']})" if e.get("reason") else ""))  # fmt: skip
        return out

    def wal_x(self, cid: str) -> Any:
        rec = self.wal.get(cid)
        if rec is None:
            return "none"
        keys = ("status", "side", "order_type", "orig_qty", "price", "stop_price", "cum_filled_qty",
                "cum_quote_qty", "fee", "adopted", "reason", "request")  # fmt: skip
        return {k: rec[k] for k in keys if rec.get(k) not in (None, "", "0")}

    def bot_x(self, bot: str, cid: str) -> Any:
        rec = self.known(bot).get(cid)
        where = "adopted" if cid in (self.state(bot).get("adopted") or {}) else "orders"
        if rec is None:
            return "recent (finished)" if cid in (self.state(bot).get("recent") or []) else "unknown"
        return {"in": where, **rec}

    def timeline(self, bot: str, n: int = 24) -> list[str]:
        """The bot's last n events at the venue, oldest first: what it placed, filled and cancelled."""
        out = []
        for e in self.journal:
            cid = e.get("client_order_id") or ""
            if self.bot_of(cid) != bot or not e.get("order"):
                continue
            o, t = e["order"], e.get("trade") or {}
            what = f"{t.get('qty')}@{t.get('price')}" if t else f"{o['quantity']}@{o.get('price')}"
            out.append(f"#{e['seq']} {cid.rsplit('-', 1)[1]} {e['kind']} {o['side']} {o['type']} {what}")
        return out[-n:]

    def about(self, bot: str, cid: str) -> dict[str, Any]:
        return {"venue": self.venue_x(cid), "journal": self.journal_x(cid), "log": self.wal_x(cid),
                "bot": self.bot_x(bot, cid)}  # fmt: skip


def collect(r: redis.Redis, orders: list[dict[str, Any]], journal: list[dict[str, Any]],
            strategies: dict[str, str]) -> Snapshot:  # fmt: skip
    """The log and the bots' states now, with the venue's orders and journal given."""
    keys = list(r.scan_iter(match=og_order("*"), count=1000))
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    wal = {}
    for key, data in zip(keys, pipe.execute(), strict=True):
        if data:
            wal[key.decode().split(":", 2)[2]] = {k.decode(): v.decode() for k, v in data.items()}
    docs = {bot: json.loads(r.get(bot_state(bot)) or b"{}") for bot in strategies}
    return Snapshot(journal=journal, orders=orders, wal=wal, docs=docs, strategies=strategies)


# -- the rules --------------------------------------------------------------------------------


def rule1(s: Snapshot) -> list[Violation]:
    counts = Counter(e.get("client_order_id") for e in s.journal if e["kind"] == "accepted")
    out = []
    for cid, n in counts.items():
        if n > 1:
            accepted = [{k: e["order"].get(k) for k in ("side", "type", "quantity", "price", "stop_price")}
                        | {"seq": e["seq"], "time": e["time"]} for e in s.events[cid] if e["kind"] == "accepted"]  # fmt: skip
            bot = s.bot_of(cid) or "?"
            out.append(
                Violation(1, bot, cid, f"accepted {n} times", {"accepted": accepted, **s.about(bot, cid)})
            )
    return out


def _same_terms(a_side: Any, a_type: Any, a_price: Any, a_stop: Any, o: dict[str, Any]) -> bool:
    return (str(a_side), str(a_type), dec(a_price), dec(a_stop)) == (
        o["side"], o["type"], dec(o.get("price")), dec(o.get("stop_price")))  # fmt: skip


def _held(rec: dict[str, str] | None) -> bool:
    """An emulated list's leg the order gateway holds, open: not at the venue until it triggers."""
    return bool(rec) and rec.get("held") == "1" and rec.get("status") not in TERMINAL


def rule2(s: Snapshot) -> list[Violation]:
    out = []
    for cid, o in s.venue.items():
        bot = s.bot_of(cid)
        if bot is None:
            continue
        rec = s.wal.get(cid)
        if rec is None:
            out.append(Violation(2, bot, cid, "the venue holds it, the log has no record", s.about(bot, cid)))
        else:
            if not _same_terms(
                rec.get("side"), rec.get("order_type"), rec.get("price"), rec.get("stop_price"), o
            ):
                out.append(Violation(2, bot, cid, "the log's record has other terms than the venue's order",
                                     s.about(bot, cid)))  # fmt: skip
            if rec.get("status") != o["status"]:
                out.append(Violation(2, bot, cid, f"log status {rec.get('status')}, venue {o['status']}",
                                     s.about(bot, cid)))  # fmt: skip
            fees = sum((dec(t["commission"]) for t in s.fills.get(cid, [])), ZERO)
            got = (dec(rec.get("cum_filled_qty")), dec(rec.get("cum_quote_qty")), dec(rec.get("fee")))
            want = (dec(o["executed_qty"]), dec(o["cum_quote"]), fees)
            if got != want:
                out.append(Violation(2, bot, cid, f"log fills (qty, quote, fee) {tuple(map(str, got))}, "
                                     f"venue {tuple(map(str, want))}", s.about(bot, cid)))  # fmt: skip
        held = s.known(bot).get(cid)
        if o["status"] in OPEN and held is None:
            out.append(Violation(2, bot, cid, "open at the venue, not in the bot's state", s.about(bot, cid)))
        if held is not None and not _same_terms(held.get("side"), held.get("order_type"), held.get("price"),
                                                held.get("stop_price"), o):  # fmt: skip
            out.append(Violation(2, bot, cid, "the bot's record has other terms than the venue's order",
                                 s.about(bot, cid)))  # fmt: skip
    for cid, rec in s.wal.items():
        bot = s.bot_of(cid)
        if bot is None or cid in s.venue:
            continue
        status = rec.get("status", "")
        if _held(rec):
            continue  # an emulated list's held leg: the gateway keeps it until it triggers
        if status not in TERMINAL or dec(rec.get("cum_filled_qty")) > 0:
            out.append(Violation(2, bot, cid, f"the log says {status} (filled {rec.get('cum_filled_qty')}) "
                                 "for an order the venue never accepted", s.about(bot, cid)))  # fmt: skip
    return out


def venue_position(s: Snapshot, bot: str) -> dict[str, Decimal]:
    pos = {"bought": ZERO, "sold": ZERO, "fees_base": ZERO, "fees_quote": ZERO}
    for cid, trades in s.fills.items():
        if s.bot_of(cid) != bot:
            continue
        for t in trades:
            pos["bought" if t["side"] == "BUY" else "sold"] += dec(t["qty"])
            fee_key = "fees_base" if t["commission_asset"] == BASE else "fees_quote"
            pos[fee_key] += dec(t["commission"])
    pos["base"] = s.initial_base(bot) + pos["bought"] - pos["fees_base"] - pos["sold"]
    return pos


def rule3(s: Snapshot) -> list[Violation]:
    out = []
    for bot in s.docs:
        st = s.state(bot)
        pos = st.get("position") or {}
        want = venue_position(s, bot)
        wrong = {k: (str(dec(pos.get(k))), str(v)) for k, v in want.items() if dec(pos.get(k)) != v}
        if wrong:
            known = set(s.known(bot)) | set(st.get("recent") or [])
            unknown = [c for c in s.fills if s.bot_of(c) == bot and c not in known and c in s.venue][-8:]
            out.append(Violation(3, bot, "-", "position (bot, venue) " + ", ".join(
                f"{k} {a} != {b}" for k, (a, b) in wrong.items()), {
                    "position": pos, "venue_net": {k: str(v) for k, v in want.items()},
                    "filled_orders_the_bot_does_not_hold (newest 8)": {c: s.venue_x(c) for c in unknown},
                    "timeline": s.timeline(bot)}))  # fmt: skip
        for cid, held in s.known(bot).items():
            o = s.venue.get(cid)
            if held.get("status", "PENDING_SUBMIT") in TERMINAL or _held(s.wal.get(cid)):
                continue  # done; or an emulated list's leg the gateway holds (not at the venue yet)
            if o is None or o["status"] not in OPEN:
                out.append(Violation(3, bot, cid, f"the bot holds it open ({held.get('status')}); the venue: "
                                     f"{o['status'] if o else 'never accepted'}", s.about(bot, cid)))  # fmt: skip
            elif dec(held.get("cum_filled_qty")) != dec(o["executed_qty"]):
                out.append(Violation(3, bot, cid, f"the bot has {held.get('cum_filled_qty', '0')} filled, "
                                     f"the venue {o['executed_qty']}", s.about(bot, cid)))  # fmt: skip
    return out


def rule4(s: Snapshot) -> list[Violation]:
    out = []
    for cid, o in s.venue.items():
        if o["status"] not in OPEN or cid in s.wal:
            continue
        bot = s.bot_of(cid)
        if bot is None or cid not in s.known(bot):
            out.append(Violation(4, bot or "?", cid, "open at the venue, unknown to the log and the bot",
                                 {"venue": s.venue_x(cid), "journal": s.journal_x(cid)}))  # fmt: skip
    return out


def _oversold(s: Snapshot, bot: str) -> list[Violation]:
    """Replay the bot's venue fills in order: the base it holds never goes below zero (each fill
    that takes it below is reported)."""
    base, out = s.initial_base(bot), []
    for e in s.journal:
        cid = e.get("client_order_id") or ""
        t = e.get("trade")
        if e["kind"] != "trade" or not t or s.bot_of(cid) != bot:
            continue
        before = base
        if t["side"] == "BUY":
            base += dec(t["qty"]) - (dec(t["commission"]) if t["commission_asset"] == BASE else ZERO)
        else:
            base -= dec(t["qty"])
        if base < -DUST and base < before:
            out.append(Violation(6, bot, cid, f"sold more than it held: base {base} after fill #{e['seq']}",
                                 {**s.about(bot, cid), "timeline": s.timeline(bot)}))  # fmt: skip
    return out


def _two_sells(s: Snapshot, bot: str) -> list[Violation]:
    """DCA take profit, fractal stop: never two sells of the bot open at the venue at once (each sell
    accepted while another was open is reported, with how long both were)."""
    open_sells: dict[str, int] = {}
    overlaps: dict[str, tuple[str, int, int]] = {}  # second -> (first, from seq, until seq)
    for e in s.journal:
        cid = e.get("client_order_id") or ""
        if s.bot_of(cid) != bot or not e.get("order") or e["order"]["side"] != "SELL":
            continue
        if e.get("status") in OPEN:
            if cid not in open_sells and open_sells:
                first = min(open_sells, key=open_sells.get)
                overlaps[cid] = (first, e["seq"], 0)
            open_sells[cid] = e["seq"]
        else:
            open_sells.pop(cid, None)
            for second, (first, since, until) in overlaps.items():
                if not until and cid in (first, second):
                    overlaps[second] = (first, since, e["seq"])
    out = []
    for second, (first, since, until) in overlaps.items():
        span = f"journal #{since} to #{until}" if until else f"journal #{since} on: both still open"
        out.append(Violation(6, bot, second, f"a second sell open at the venue while {first} was ({span})",
                             {"first": s.about(bot, first), "second": s.about(bot, second)}))  # fmt: skip
    return out


def _purpose(s: Snapshot, bot: str) -> list[Violation]:
    """Now, at the venue: one order per purpose (DCA: one take profit, one safety order; fractal:
    one stop; grid: one order per level)."""
    mine = [o for c, o in s.venue.items() if s.bot_of(c) == bot and o["status"] in OPEN]
    strategy, out = s.strategies[bot], []
    groups: dict[Any, list[str]] = defaultdict(list)
    for o in mine:
        if strategy == "dca":
            groups[o["side"]].append(o["client_order_id"])
        elif strategy == "fractal_trailing":
            groups["stop"].append(o["client_order_id"])
        elif strategy == "manual":  # a smart trade: its entry, and each list's legs one of each type
            groups[(s.list_of(o["client_order_id"]) or o["side"], o["type"])].append(o["client_order_id"])
        else:
            groups[(o["side"], dec(o["price"]))].append(o["client_order_id"])
    for purpose, cids in groups.items():
        if len(cids) > 1:
            out.append(Violation(6, bot, cids[-1], f"{len(cids)} orders open for one purpose {purpose}: {cids}",
                                 {c: s.venue_x(c) for c in cids}))  # fmt: skip
    return out


def _selling(orders: dict[str, dict[str, Any]], s: Snapshot) -> Decimal:
    """What the open sells among `orders` can sell: a list's legs (an OCO) once, the most of them."""
    most: dict[str, Decimal] = defaultdict(Decimal)
    for cid, o in orders.items():
        if o["side"] == "SELL":
            key = s.list_of(cid) or cid
            most[key] = max(most[key], dec(o["quantity"]) - dec(o["executed_qty"]))
    return sum(most.values(), ZERO)


def _lists_oversell(s: Snapshot, bot: str) -> list[Violation]:
    """Replay the bot's venue journal: the open sells (a list once: one leg of an OCO sells) never
    sell more than the base held then. Two lists for one exit (a smart trade's list placed again
    after a cut, a stop moved without the old list gone) break it."""
    base, live, out = s.initial_base(bot), {}, []
    for e in s.journal:
        cid, o, t = e.get("client_order_id") or "", e.get("order"), e.get("trade")
        if s.bot_of(cid) != bot or not o:
            continue
        if t:
            fee = dec(t["commission"]) if t["commission_asset"] == BASE else ZERO
            base += dec(t["qty"]) - fee if t["side"] == "BUY" else -dec(t["qty"])
        if e.get("status") in OPEN:
            live[cid] = o
        else:
            live.pop(cid, None)
        if e["kind"] == "accepted" and o["side"] == "SELL" and _selling(live, s) > base + DUST:
            lists = {c: f"{s.list_of(c) or 'single'} {x['type']} {x['quantity']}" for c, x in live.items()}
            out.append(Violation(6, bot, cid, f"open sells {_selling(live, s)} above the base {base} held "
                                 f"when it was accepted (#{e['seq']})", {"open": lists, "timeline": s.timeline(bot)}))  # fmt: skip
    return out


def _refusals(s: Snapshot, bot: str) -> list[Violation]:
    """The same terms refused more than a few times in a row (the log's REJECTED records)."""
    records = sorted(((seq_of(c), c, r) for c, r in s.wal.items() if s.bot_of(c) == bot), key=lambda x: x[0])
    out: list[Violation] = []
    run: list[str] = []
    last: Any = None
    for _, cid, rec in records + [(0, "", {"status": ""})]:
        terms = _terms(rec) if rec.get("status") == "REJECTED" else None
        if terms is not None and terms == last:
            run.append(cid)
            continue
        if len(run) > REFUSALS_IN_A_ROW:
            first = s.wal[run[0]]
            out.append(Violation(6, bot, run[0], f"the same terms refused {len(run)} times in a row "
                                 f"({run[0]} .. {run[-1]}): {first.get('reason')}", {"log": s.wal_x(run[0])}))  # fmt: skip
        run, last = ([cid], terms) if terms is not None else ([], None)
    return out


def _terms(rec: dict[str, str]) -> tuple[str, ...]:
    try:
        req = json.loads(rec.get("request") or "{}")
    except ValueError:
        req = {}
    return tuple(str(req.get(k, rec.get(k, ""))) for k in
                 ("side", "order_type", "quantity", "quote_quantity", "price", "stop_price"))  # fmt: skip


def rule6(s: Snapshot) -> list[Violation]:
    out: list[Violation] = []
    for bot, strategy in s.strategies.items():
        st = s.state(bot)
        pos = st.get("position") or {}
        base = dec(pos.get("base"))
        out += _oversold(s, bot)
        if strategy in ("dca", "fractal_trailing"):
            out += _two_sells(s, bot)
        if strategy == "manual":
            out += _lists_oversell(s, bot)
        out += _purpose(s, bot)
        selling = _selling(
            {c: o for c, o in s.venue.items() if s.bot_of(c) == bot and o["status"] in OPEN}, s
        )
        if selling > base + DUST:
            sells = {c: s.about(bot, c) for c, o in s.venue.items()
                     if s.bot_of(c) == bot and o["status"] in OPEN and o["side"] == "SELL"}  # fmt: skip
            out.append(Violation(6, bot, max(sells, default="-"), f"open sells {selling} above the bot's base {base}",
                                 {"position": pos, **sells, "timeline": s.timeline(bot)}))  # fmt: skip
        prices = [dec(t["price"]) for c, ts in s.fills.items() if s.bot_of(c) == bot for t in ts]
        if strategy == "fractal_trailing" and st.get("entry"):
            prices.append(dec(st["entry"]))
        if base > Decimal("1e-6") and prices:
            avg = dec(pos.get("cost")) / base
            lo, hi = min(prices) * (1 - PRICE_SLACK), max(prices) * (1 + PRICE_SLACK)
            if not lo <= avg <= hi:
                out.append(Violation(6, bot, "-", f"average cost {avg:.2f} outside the traded prices "
                                     f"{min(prices)} .. {max(prices)}", {"position": pos}))  # fmt: skip
        out += _refusals(s, bot)
        if strategy == "grid":
            out += _phantom_lots(s, bot, base)
    return out


def _phantom_lots(s: Snapshot, bot: str, base: Decimal) -> list[Violation]:
    """The grid's lots on sale (intervals on their sell side, each [side, cid, qty, cost]) must be
    base it holds: more would be sold twice, or never (a lot without base cannot go out)."""
    intervals = s.state(bot).get("intervals") or []
    lots = sum((dec(iv[2]) for iv in intervals if iv and iv[0] == "S"), ZERO)
    # less than a step over: the grid sells such a lot a step smaller when it places it (_fit)
    if lots < base + LOT_STEP:
        return []
    idle = {f"interval {i}": iv for i, iv in enumerate(intervals) if iv and iv[0] == "S" and not iv[1]}
    return [Violation(6, bot, "-", f"lots to sell {lots} above the bot's base {base}",
                      {"lots on sale without an order": idle, "timeline": s.timeline(bot)})]  # fmt: skip


def check(s: Snapshot) -> list[Violation]:
    """Rules 1-4 and 6 (rule 5 needs the processes: `running`)."""
    return rule1(s) + rule2(s) + rule3(s) + rule4(s) + rule6(s)


def running(r: redis.Redis, s: Snapshot, dead: dict[str, str]) -> list[Violation]:
    """Rule 5 without "trade on" (the harness sees that at the next window): `dead` maps a
    process that exited to its log's tail."""
    out = [Violation(5, "-", name, "the process exited", {"log": tail}) for name, tail in dead.items()]
    for key in r.scan_iter(match="dlq:*", count=1000):
        n = r.xlen(key)
        if n:
            first = r.xrange(key, count=1)
            fields = (
                {k.decode(): v.decode(errors="replace")[:300] for k, v in first[0][1].items()}
                if first
                else {}
            )
            out.append(Violation(5, "-", key.decode(), f"{n} dead letter(s)", {"first": fields}))
    for bot, doc in s.docs.items():
        st = s.state(bot)
        if doc.get("failed"):
            out.append(Violation(5, bot, "-", "the strategy failed on an entry", {"failed": doc["failed"]}))
        if st.get("mode", "running") != "running":
            out.append(Violation(5, bot, "-", f"bot is {st.get('mode')}", {}))
        if st.get("sync"):
            out.append(Violation(5, bot, "-", "bot still waits for its sync answer", {"sync": st["sync"]}))
    return out
