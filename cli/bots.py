"""`automata pause|resume|stop|close BOT` and `automata bots`: control and list bots.

A control is a BotControl entry on `bot:{bot}:control`; the bot's runner applies it exactly
once (pause: no new orders, open ones stay; resume; stop: cancel open orders, keep the
position; close: cancel and sell the position at market). `--wait` polls the bot's state
until its mode shows the change.
"""

from __future__ import annotations

import json
import time

import typer
from rich.console import Console

from cli import common, output, status
from cli.connect import System
from cli.heartbeats import bot_inputs, heartbeat_bots, read_heartbeats
from shared import control
from shared.control import MODE_AFTER
from shared.messages import ControlAction
from shared.streams import bot_control, bot_state

console = Console(emoji=False)  # a bot named boom: `bot:boom:control` is no emoji code


def _state(r, bot: str) -> dict | None:
    raw = r.get(bot_state(bot))
    return json.loads(raw) if raw else None


def known_bots(r, system: System) -> set[str]:
    """The bots there are (shared/control.py), with those a strategy runner's heartbeat names."""
    return control.known_bots(r, system.bots, runners=heartbeat_bots(read_heartbeats(r)))


def check_known(r, system: System, bot: str, *, also: frozenset[str] = frozenset()) -> None:
    """Exit 2 listing the known bots when `bot` is none of them (a typo must not create keys)."""
    try:
        control.check_known(bot, known_bots(r, system) | also)
    except control.ControlError as exc:
        common.fail(console, str(exc), 2)


def send_control(bot: str, action: ControlAction, reason: str = "", wait: float = 0.0) -> None:
    try:
        control.check_bot(bot)
    except control.ControlError as exc:
        raise typer.BadParameter(str(exc)) from None
    system = common.located(console)
    r, _url = common.redis_client(console, system)
    check_known(r, system, bot)
    entry = control.send_control(r, bot, action, source="cli", reason=reason)
    console.print(f"{action.value} sent to {bot} ({bot_control(bot)} {entry})")
    if wait <= 0:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        doc = _state(r, bot)
        applied = bool(doc) and entry <= doc.get("last_applied", {}).get(bot_control(bot), "")
        mode = (doc or {}).get("state", {}).get("mode", "running")
        if applied and mode == MODE_AFTER[action]:
            console.print(f"{bot} is {MODE_AFTER[action]}")
            return
        if applied and (failed := (doc or {}).get("failed")):  # the kept entry failed again
            common.fail(
                console,
                f"{bot} is {mode}: its strategy failed again on the entry it kept "
                f"({failed.get('stream')} {failed.get('id')}: {failed.get('error')}); fix the strategy, "
                "restart its runner, then resume it",
            )
        time.sleep(0.1)
    console.print(f"[yellow]{bot} has not applied it yet (is its runner running?)[/yellow]")
    raise typer.Exit(1)


def _command(action: ControlAction):
    def command(
        bot: str = typer.Argument(..., help="bot id"),
        reason: str = typer.Option("", help="why (shown in the notification)"),
        wait: float = typer.Option(0.0, help="seconds to wait until the bot applied it"),
    ) -> None:
        send_control(bot, action, reason, wait)

    command.__doc__ = {
        ControlAction.PAUSE: "Pause a bot: no new orders, open ones stay.",
        ControlAction.RESUME: "Resume a paused or stopped bot.",
        ControlAction.STOP: "Stop a bot: cancel its open orders, keep its position.",
        ControlAction.CLOSE: "Close a bot: cancel its open orders and sell its position at market.",
    }[action]
    return command


pause, resume, stop, close = (
    _command(a) for a in (ControlAction.PAUSE, ControlAction.RESUME, ControlAction.STOP, ControlAction.CLOSE)
)


def bots(as_json: bool = output.json_option()) -> None:
    """List bots with persisted state: mode, position, average price, realised profit, open orders."""
    out = common.console()
    r, _url = common.redis_client(out)
    rows = status.bots(r, bot_inputs(read_heartbeats(r)))
    if as_json:
        output.emit(rows)
    elif rows:
        out.print(status.bots_table(rows, output.Precisions(r)))
    else:
        out.print("no bots with state in Redis")
