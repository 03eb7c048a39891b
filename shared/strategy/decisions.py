"""Decisions: a bot says what it did, or chose not to do, and why, in words a trader reads.

    return state, [place, decide(ctx, f"safety order 3 at {price(ctx, p)}: ...", level=3)]

A Decision is a command like a notification, so it is as pure as the rest of the step: the
live runner publishes it to `bot:{bot}:decisions` (and logs it), the backtester collects it,
the test driver hands it back, all from the same code path. A decision not to act gives a
`topic` ("below_range"); `Strategy.step` drops a repeat of the topic it last let through (the
state keeps it, so a restart does not repeat it either), until another decision comes: a bot
waiting for a price says so once, not once a candle. Candles a backtest skips (Strategy.wake)
are then no-ops, as the fast path needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from shared.display import ratio_pct
from shared.messages import Decision
from shared.strategy.context import StrategyContext
from shared.strategy.state import StrategyState

S = TypeVar("S", bound=StrategyState)


def decide(ctx: StrategyContext, text: str, *, topic: str = "", **fields: Any) -> Decision:
    """The decision `text` of this bot at the event's time; `fields` (stringified) are for
    scripts and the JSON log; `topic` marks a decision not to act (see the module's doc)."""
    for name, value in fields.items():  # the call's own dict, stringified in place (no second dict)
        fields[name] = str(value)
    return Decision(bot=ctx.bot, text=text, topic=topic, fields=fields, ts=ctx.now)


# price(ctx, value): a quote price at the symbol's precision, '41,200.00'. StrategyContext.price
# itself, called as a function: a wrapper would add a call to every price a decision shows.
price = StrategyContext.price


def qty(ctx: StrategyContext, value: Decimal) -> str:
    """A base quantity at the symbol's step, with its asset: '0.0012 BTC'."""
    return f"{ctx.qty(value)} {ctx.base_asset}"


def quote(ctx: StrategyContext, value: Decimal) -> str:
    """A quote amount, with its asset: '24.00 USDT'."""
    return f"{ctx.quote(value)} {ctx.quote_asset}"


# percent(fraction): a fraction as a percentage with 2 decimals, Decimal('0.011') -> '1.10%'.
# display.ratio_pct itself, for the same reason as price.
percent = ratio_pct


def quiet_repeats(state: S, commands: Sequence[Any]) -> tuple[S, list[Any]]:
    """Drop each decision whose topic is the one last let through; remember the last topic
    (cleared by a decision that has none: the bot acted, so the next wait is news again)."""
    if not commands:
        return state, []
    quiet = last = state.quiet
    kept = []
    for cmd in commands:
        if isinstance(cmd, Decision):
            topic = cmd.topic
            if topic and topic == last:
                continue
            last = topic
        kept.append(cmd)
    if last != quiet:
        state = msgspec.structs.replace(state, quiet=last)
    return state, kept
