"""The bot config file: which bots run, on what, with which strategy and params.

TOML (`[[bots]]` tables) or a JSON list layout
(`[{"bot_name": {"function": "module.fn", ...params}}]`). Every error names the file, the bot
and the field; params are validated by the strategy itself (aliases accepted), so a bad
config stops before any process starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import msgspec

from shared.config import ConfigError, convert, read_toml
from shared.ids import IdError, check_bot_id
from shared.strategy.registry import StrategyLoadError, load_strategy
from shared.streams import MANUAL_BOT

DEFAULT_BOTS_FILE = "bots.toml"


class BotConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    id: str
    strategy: str
    venue: str = "sim"
    symbol: str = "BTCUSDT"
    interval: str = "1m"
    params: dict[str, Any] = {}
    enabled: bool = True
    lease_ms: Annotated[int, msgspec.Meta(ge=100, le=600_000)] = (
        10_000  # a dead runner's lease blocks a standby this long
    )
    sync_retry_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0  # an unanswered start-up sync is asked again
    # no candle for this long: the bot shows as stalled and notifies (0: 3 intervals, at least 30 s)
    stall_after_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    # Bots with the same `process` share one strategy_runner process (`automata deploy` groups
    # them): ~35 MB of interpreter and libraries once instead of once a bot, for a small machine.
    # The price is isolation: a crash, a blocking strategy or a memory leak then stops them all.
    # Empty (the default): a process of the bot's own.
    process: str = ""


class BotsFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    bots: list[dict[str, Any]] = []


def bots_path() -> Path:
    return Path(os.environ.get("AUTOMATA_BOTS") or DEFAULT_BOTS_FILE)


def _from_list_layout(items: list[Any], source: str) -> list[dict[str, Any]]:
    """`[{"name": {"function": ..., params...}}]` -> bot tables (the JSON list layout)."""
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f'{source}: item {i}: expected {{"bot name": {{...}}}}')
        ((name, body),) = item.items()
        if body is not None and not isinstance(body, dict):
            raise ConfigError(
                f"{source}: bot {name}: expected a table of settings, got {type(body).__name__}"
            )
        body = dict(body or {})
        strategy = body.pop("function", None) or body.pop("strategy", None) or name
        table = {"id": name, "strategy": strategy}
        for key in ("venue", "symbol", "interval", "enabled"):
            if key in body:
                table[key] = body.pop(key)
        table["params"] = body
        out.append(table)
    return out


def load_bots(path: str | os.PathLike[str] | None = None, *, check_params: bool = True) -> list[BotConfig]:
    """All bots of the file, validated (strategy found, params parsed); ConfigError otherwise."""
    path = Path(path) if path is not None else bots_path()
    source = str(path)
    if not path.exists():
        raise ConfigError(f"{source}: file not found")
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not valid JSON: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
        except RecursionError:
            raise ConfigError(f"{source}: not valid JSON: nested too deep") from None
        tables = (
            _from_list_layout(raw, source) if isinstance(raw, list) else convert(raw, BotsFile, source).bots
        )
    else:
        tables = convert(read_toml(path), BotsFile, source).bots
    bots: list[BotConfig] = []
    seen: set[str] = set()
    for i, table in enumerate(tables):
        label = f"bot {table.get('id', f'#{i + 1}')!s}"
        bot = convert(table, BotConfig, source, prefix=label)
        try:
            check_bot_id(bot.id)
        except IdError as exc:
            raise ConfigError(f"{source}: {label}: id: {exc}") from None
        if bot.id == MANUAL_BOT:
            raise ConfigError(
                f"{source}: {label}: id: {MANUAL_BOT!r} is the id of `automata order`'s hand-placed orders; "
                'name the bot otherwise (a manual-trades bot: e.g. id = "manual_btc", strategy = "manual")'
            )
        if bot.process:
            try:
                check_bot_id(bot.process)
            except IdError as exc:
                raise ConfigError(f"{source}: {label}: process: {exc}") from None
        if bot.id in seen:
            raise ConfigError(f"{source}: {label}: id: defined twice")
        seen.add(bot.id)
        if check_params:
            check_strategy(bot, source)
        bots.append(bot)
    return bots


def check_strategy(bot: BotConfig, source: str) -> None:
    """The bot's strategy is found and takes its params; ConfigError naming the file, the bot
    and the field otherwise."""
    label = f"bot {bot.id}"
    try:
        strategy = load_strategy(bot.strategy)
        strategy.parse_params(bot.params, source=f"{source}: {label}: params")
    except StrategyLoadError as exc:
        raise ConfigError(f"{source}: {label}: strategy: {exc}") from None
    except ValueError as exc:
        raise ConfigError(str(exc) if source in str(exc) else f"{source}: {label}: params: {exc}") from None


def find_bot(bot_id: str, path: str | os.PathLike[str] | None = None) -> BotConfig:
    return find_bots([bot_id], path)[0]


def find_bots(bot_ids: list[str], path: str | os.PathLike[str] | None = None) -> list[BotConfig]:
    """The named bots of the file, in the order asked, their strategies and params checked;
    ConfigError for an unknown or repeated id. The other bots' entries are checked as entries
    only: a strategy of theirs that does not import, or a param of theirs that is wrong, stops
    their own runner, never this one (a bot added to the file must not keep the others from
    restarting)."""
    by_id = {bot.id: bot for bot in load_bots(path, check_params=False)}
    out = []
    for bot_id in bot_ids:
        if bot_id not in by_id:
            raise ConfigError(f"{path or bots_path()}: no bot with id {bot_id!r}")
        if any(b.id == bot_id for b in out):
            raise ConfigError(f"bot {bot_id!r} asked for twice")
        check_strategy(by_id[bot_id], str(path or bots_path()))
        out.append(by_id[bot_id])
    return out


def process_groups(bots: list[BotConfig]) -> dict[str, list[BotConfig]]:
    """Program name -> its bots: `bot_{id}` for a bot of its own, `bots_{process}` for a group."""
    groups: dict[str, list[BotConfig]] = {}
    for bot in bots:
        groups.setdefault(f"bots_{bot.process}" if bot.process else f"bot_{bot.id}", []).append(bot)
    return groups
