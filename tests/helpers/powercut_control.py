"""Power-cut cycles with a person's controls in flight (tests/helpers/powercut.py): `automata stop`
one bot and `automata close` another, then the power is cut while the closed bot acts on it
("control": every write kept; "control+truncate": Redis back to a moment after the close was
written, so it may forget that the bot applied it, in part or all, while the venue keeps the
cancels and the sale). After the restart each must have happened exactly once: the bot in its mode, none of its
orders open at the venue, the closed bot's position sold (dust below a lot left), never twice
(rule 6, oversold, says so). The bots are then resumed for the cycles after."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import TYPE_CHECKING

from shared import control
from shared.messages import ControlAction
from tests.helpers.cli import cli
from tests.helpers.powercut_rules import OPEN, Violation, venue_position
from tests.helpers.procs import base_env

if TYPE_CHECKING:
    from tests.helpers.powercut import Moment, Stack

RULE = 7  # not one of the six: a control applied exactly once
ACTIONS = {"demo_dca": "stop", "demo_grid": "close"}
LOT = Decimal("0.00001")  # the test venue's BTCUSDT step: a close leaves less than this


def _env(stack: Stack) -> dict[str, str]:
    return base_env(stack.server.url, AUTOMATA_CONFIG=str(stack.config), AUTOMATA_BOTS=str(stack.bots_file))


def send_controls(stack: Stack) -> Moment:
    """`automata stop` through the CLI; then the close as `automata close` writes it (its own
    function, without the CLI's start-up second, so the cut can land while the bot acts on it)
    while the AOF's size is sampled, until the venue shows the closed bot's sale. Returns a
    moment drawn from the close's write on: Redis is cut back to one where the bot had applied
    the close in part, all or none of it (a truncated cycle)."""
    from tests.helpers.powercut import Sampler  # powercut imports this module

    res = cli(_env(stack), "stop", "demo_dca")
    assert res.returncode == 0, res.stdout + res.stderr
    before = len(stack.refresh())
    control.send_control(stack.r, "demo_grid", ControlAction.CLOSE, source="cli")
    moment = stack.mark()  # the AOF holds the close from here on
    sampler = Sampler(stack.server, stack.sim, moment.journal, lambda: stack.live)
    sampler.start()

    def sold() -> bool:
        return any(e["kind"] == "trade" and (e.get("trade") or {}).get("side") == "SELL"
                   and (e.get("client_order_id") or "").startswith("demo_grid-") for e in stack.refresh()[before:])  # fmt: skip

    try:
        stack.until(sold, "the close's sale at the venue", 20)
    finally:
        moments = sampler.stop()
    return random.Random(before).choice([moment, *moments])


def control_violations(stack: Stack) -> list[Violation]:
    """Each control applied once: mode stopped, nothing open at the venue, the close's position
    sold. Then both bots are resumed (the next cycles need their orders)."""
    snap = stack.snapshot()
    out = []
    for bot, action in ACTIONS.items():
        mode = stack.state(bot).get("mode")
        if mode != "stopped":
            out.append(Violation(RULE, bot, "-", f"mode {mode} after `automata {action}` and a cut"))
        for cid, o in snap.venue.items():
            if snap.bot_of(cid) == bot and o["status"] in OPEN:
                out.append(
                    Violation(RULE, bot, cid, f"open at the venue after `automata {action}` and a cut")
                )
    base = venue_position(snap, "demo_grid")["base"]
    if base >= LOT:
        out.append(
            Violation(RULE, "demo_grid", "-", f"holds {base} at the venue after `automata close` and a cut")
        )
    env = _env(stack)
    for bot in ACTIONS:
        res = cli(env, "resume", bot, "--wait", "30")
        assert res.returncode == 0, res.stdout + res.stderr
    return out
