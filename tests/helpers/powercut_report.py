"""What each power-cut cycle saw, and the report a run prints (and leaves in its directory)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cli.demo import DEMO_BOTS
from services.strategy_runner.bots import load_bots
from tests.helpers.powercut_rules import Violation

BOTS = {  # the demo's three trading bots (demo_manual trades only when a person asks it)
    bot.id: bot.strategy for bot in load_bots(DEMO_BOTS, check_params=False) if bot.strategy != "manual"
}
MANUAL = next(
    b.id for b in load_bots(DEMO_BOTS, check_params=False) if b.strategy == "manual"
)  # smart trades
ACTIVE = ("accepted", "trade")  # journal kinds that are orders or fills
KINDS = ("accepted", "trade", "canceled", "expired", "rejected")


@dataclass
class Cycle:
    """One cut and what its lost window held."""

    n: int
    kind: str  # truncate | plain | plain (AOF rewritten) | full | full+cut | control[+truncate] | trade[+truncate]
    window_s: float = 0.0  # from the moment the AOF is cut back to, to the kill
    dropped: int = 0  # AOF bytes the cut took away
    candles: int = 0  # candles played inside the window
    activity: dict[str, Counter[str]] = field(default_factory=dict)  # bot -> journal kind -> count
    up_s: float = 0.0  # restart until every bot was back in step
    settle: str = ""
    violations: list[Violation] = field(default_factory=list)  # new ones: not seen after an earlier cut
    slow: list[str] = field(default_factory=list)  # candles the bots were over 3 s late to apply
    conflicts: list[str] = field(default_factory=list)  # ids reused for other terms (gateway refused)
    adopted: Counter[str] = field(default_factory=Counter)  # bot -> orders the cut made Redis forget

    @property
    def full(self) -> bool:
        """Orders or fills of every bot inside the window."""
        return all(sum(self.activity.get(b, Counter())[k] for k in ACTIVE) for b in BOTS)

    def line(self) -> str:
        """Its window (length, candles, AOF bytes cut off), per bot the journal's accepted / trades /
        cancels inside it and the orders the gateway then adopted (Redis had forgotten them), the
        restart and settle times, and the new violations."""
        acts = " | ".join(f"{b.removeprefix('demo_')} " + "/".join(
            f"{k[0]}{self.activity.get(b, Counter())[k]}" for k in KINDS[:3]) + f" lost {self.adopted[b]}"
            for b in BOTS)  # fmt: skip
        return (f"#{self.n:<3} {self.kind:<8} {self.window_s:5.2f}s {self.candles:2} candles {self.dropped:7} B cut"
                f" | {acts} | up {self.up_s:4.1f}s, {self.settle} | {len(self.violations)} new violation(s)"
                + "".join(f"\n      slow {x}" for x in self.slow[:3])
                + "".join(f"\n      conflict: {x}" for x in self.conflicts[:3]))  # fmt: skip


def findings(cycles: list[Cycle]) -> list[tuple[int, Violation]]:
    """Each distinct violation once, with the first cycle it showed after."""
    seen: dict[Any, tuple[int, Violation]] = {}
    for c in cycles:
        for v in c.violations:
            seen.setdefault(v.key(), (c.n, v))
    return sorted(seen.values(), key=lambda x: (x[1].rule, x[0]))


def report(cycles: list[Cycle], tail: list[str] = ()) -> str:
    """The per-cycle table, the windows' fill, and every distinct violation with its excerpts."""
    found = findings(cycles)
    by_rule = Counter(v.rule for _, v in found)
    cuts = [c for c in cycles if c.kind not in ("warm-up", "no cut")]
    full = sum(1 for c in cuts if c.full)
    lines = [c.line() for c in cycles]
    truncated = [c for c in cuts if c.kind.endswith("truncate")]
    lost = sum((c.adopted for c in truncated), Counter())
    every = sum(1 for c in truncated if all(c.adopted[b] for b in BOTS))
    lines.append(f"{len(cuts)} cuts ({len(truncated)} with lost writes), {full} with orders or fills of "
                 f"every bot in the window; the lost writes made Redis forget {dict(lost)} orders the venue "
                 f"kept (adopted), of every bot at once in {every} cuts; "
                 f"{sum(len(c.conflicts) for c in cycles)} conflict(s) refused by the gateway; "
                 f"violations by rule: {dict(sorted(by_rule.items())) or 'none'}")  # fmt: skip
    groups: dict[Any, list[tuple[int, Violation]]] = {}
    for n, v in found:  # the same fault of the same bot: two in full, the others a line each
        groups.setdefault((v.rule, v.bot, v.kind), []).append((n, v))
    for group in groups.values():
        lines += [f"[after cycle #{n}] {v}" for n, v in group[:2]]
        lines += [f"    also after cycle #{n}: {v.cid}: {v.what}" for n, v in group[2:40]]
        if len(group) > 40:
            lines.append(f"    ... {len(group) - 40} more like it")
    return "\n".join(lines + list(tail))
