"""What `automata backtest CONFIG` reads: a strategy file or a bot config.

Accepted, TOML or JSON:
- a strategy file: `strategy = "dca"` (default dca), `[params]` (or the params at top level,
  as `automata dca menu` saves them), optional `symbol`, `interval`, `[filters]`, `[backtest]`
  (capital, base, fee; the paper venue's settings market_fill, participation, max_fill and
  spread_ticks, each defaulting to the venue's own: backtest/engine.py Setup);
- a bot config: a `bots` list (or a JSON list of {name: {...}} tables); the bot
  named by --bot, else the first one, gives strategy, symbol, interval and params.
Errors name the file and the field.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from backtest.engine import Setup
from shared.filters import SymbolFilters
from shared.matching.candles import DEFAULT_PARTICIPATION
from shared.matching.engine import DEFAULT_MARKET_FILL, MARKET_FILLS, MarketFill
from shared.strategy import ParamsError, load_strategy
from shared.strategy.base import Strategy
from shared.strategy.registry import StrategyLoadError

QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "EUR", "BRL", "TRY", "BTC", "ETH", "BNB")
# Binance BTCUSDT's filters: what a config without [filters] trades with.
DEFAULT_FILTERS = {"tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
STRATEGY_FILE_KEYS = {"strategy", "params", "symbol", "interval", "filters", "backtest", "venue", "bot", "id"}
BACKTEST_KEYS = {"capital", "base", "fee", "market_fill", "participation", "max_fill", "spread_ticks"}
# A bot table's keys (services/strategy_runner/bots.py BotConfig, which the runner holds the file to)
# plus the backtest's own: any other key is a typo the run would otherwise silently ignore.
BOT_KEYS = {"id", "strategy", "venue", "symbol", "interval", "params", "enabled", "lease_ms", "sync_retry_s"}
BOT_KEYS |= {"stall_after_s", "process", "filters", "backtest"}
# Settings of the backtester's own fill model, before it ran the paper venue's engine.
GONE_KEYS = {"fee_asset", "fee_quantum"}


class BacktestConfigError(ValueError):
    pass


@dataclass(frozen=True)
class BacktestConfig:
    strategy: Strategy[Any, Any]
    params: Any
    filters: SymbolFilters
    bot: str = "backtest"
    venue: str = "sim"
    interval: str = "1m"
    capital: Decimal = Decimal("10000")
    base: Decimal = Decimal(0)
    fee: Decimal | None = None  # None: the strategy's `fee` param, else 0.001
    market_fill: MarketFill = DEFAULT_MARKET_FILL  # the paper venue's settings (backtest/engine.py Setup)
    participation: Decimal = DEFAULT_PARTICIPATION
    max_fill: Decimal | None = None
    spread_ticks: int | None = None


def split_symbol(symbol: str) -> tuple[str, str]:
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise BacktestConfigError(
        f"cannot tell base and quote of {symbol!r}: give [filters] base_asset and quote_asset"
    )


def make_filters(symbol: str, table: Mapping[str, Any] | None, source: str) -> SymbolFilters:
    data: dict[str, Any] = dict(DEFAULT_FILTERS)
    data.update({k: str(v) if isinstance(v, float) else v for k, v in (table or {}).items()})
    data.setdefault("symbol", symbol)
    if "base_asset" not in data or "quote_asset" not in data:
        base, quote = split_symbol(data["symbol"])
        data.setdefault("base_asset", base)
        data.setdefault("quote_asset", quote)
    try:
        return msgspec.convert(data, SymbolFilters, strict=False)
    except msgspec.ValidationError as exc:
        raise BacktestConfigError(f"{source}: filters: {exc}") from None


def read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BacktestConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return json.loads(text, parse_float=Decimal)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise BacktestConfigError(
            f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}"
        ) from None


def _bots(data: Any) -> list[dict[str, Any]] | None:
    """The bot entries of a bot config (None when data is a strategy file)."""
    if isinstance(data, list):  # the JSON list layout: [{"name": {...}}, ...]
        out = []
        for item in data:
            for name, body in dict(item).items():
                out.append({"id": name, **dict(body)})
        return out
    if isinstance(data, Mapping) and "bots" in data:
        bots = data["bots"]
        if isinstance(bots, Mapping):
            return [{"id": name, **dict(body)} for name, body in bots.items()]
        return [dict(b) for b in bots]
    return None


def _entry(data: Any, bot: str | None, source: str) -> dict[str, Any]:
    bots = _bots(data)
    if bots is None:
        if not isinstance(data, Mapping):
            raise BacktestConfigError(f"{source}: expected a table of settings")
        return dict(data)
    if not bots:
        raise BacktestConfigError(f"{source}: no bots")
    if bot is None:
        return bots[0]
    for entry in bots:
        if entry.get("id") == bot or entry.get("name") == bot:
            return entry
    raise BacktestConfigError(f"{source}: no bot {bot!r} (bots: {', '.join(str(b.get('id')) for b in bots)})")


def load_backtest_config(path: str | Path, *, bot: str | None = None) -> BacktestConfig:
    path = Path(path)
    source = str(path)
    data = read_file(path)
    entry = _entry(data, bot, source)
    is_bot = _bots(data) is not None
    if is_bot:
        source = f"{source}: bot {entry.get('id') or entry.get('name')}"  # errors name the bot too
    if "params" in entry:  # the other keys are settings: a misspelt one must not pass unnoticed
        unknown = sorted(set(entry) - (BOT_KEYS if is_bot else STRATEGY_FILE_KEYS))
        if unknown:
            known = ", ".join(sorted(BOT_KEYS if is_bot else STRATEGY_FILE_KEYS))
            raise BacktestConfigError(f"{source}: unknown key(s) {', '.join(unknown)} (known: {known})")
    name = str(entry.get("strategy") or entry.get("function") or "dca")
    try:
        strategy = load_strategy(name)
    except StrategyLoadError as exc:
        raise BacktestConfigError(f"{source}: strategy: {exc}") from None
    if "params" in entry:
        raw_params = entry["params"]
    elif is_bot:
        raw_params = {
            k: v for k, v in entry.items() if k not in STRATEGY_FILE_KEYS | {"function", "symbols", "name"}
        }
    else:
        raw_params = {k: v for k, v in entry.items() if k not in STRATEGY_FILE_KEYS}
    try:
        params = strategy.parse_params(raw_params, source=f"{source}: params")
    except ParamsError as exc:
        raise BacktestConfigError(str(exc)) from None
    symbol = str(entry.get("symbol") or (entry.get("symbols") or ["BTCUSDT"])[0])
    filters = make_filters(symbol, entry.get("filters"), source)
    bt = dict(entry.get("backtest") or {})
    gone = set(bt) & GONE_KEYS
    if gone:
        raise BacktestConfigError(
            f"{source}: backtest: {', '.join(sorted(gone))} no longer apply: fees are the paper venue's, "
            "in the asset received, rounded up to 1e-8"
        )
    unknown = set(bt) - BACKTEST_KEYS
    if unknown:
        raise BacktestConfigError(f"{source}: backtest: unknown key(s) {', '.join(sorted(unknown))}")
    bot_id = str(entry.get("id") or entry.get("bot") or "backtest")
    venue_settings = _venue_settings(bt, source)
    return BacktestConfig(
        strategy=strategy,
        params=params,
        filters=filters,
        bot=bot_id if bot_id.replace("_", "").isalnum() else "backtest",
        venue=str(entry.get("venue") or "sim"),
        interval=str(entry.get("interval") or "1m"),
        capital=Decimal(str(bt.get("capital", "10000"))),
        base=Decimal(str(bt.get("base", "0"))),
        fee=Decimal(str(bt["fee"])) if "fee" in bt else None,
        **venue_settings,
    )


def _venue_settings(bt: Mapping[str, Any], source: str) -> dict[str, Any]:
    """[backtest] market_fill, participation, max_fill and spread_ticks (the paper venue's
    SIM_MARKET_FILL, SIM_PARTICIPATION, SIM_MAX_FILL and its book's spread), checked."""
    out: dict[str, Any] = {}
    fill = bt.get("market_fill", DEFAULT_MARKET_FILL)
    if fill not in MARKET_FILLS:
        raise BacktestConfigError(f"{source}: backtest: market_fill must be one of {', '.join(MARKET_FILLS)}")
    out["market_fill"] = fill
    try:
        if "participation" in bt:
            out["participation"] = Decimal(str(bt["participation"]))
        if "max_fill" in bt:
            out["max_fill"] = Decimal(str(bt["max_fill"]))
        if "spread_ticks" in bt:
            out["spread_ticks"] = int(bt["spread_ticks"])
    except (ValueError, ArithmeticError):
        raise BacktestConfigError(
            f"{source}: backtest: participation, max_fill and spread_ticks must be numbers"
        ) from None
    if (
        not (0 < out.get("participation", 1) <= 1)
        or out.get("max_fill", 1) < 0
        or out.get("spread_ticks", 0) < 0
    ):
        raise BacktestConfigError(
            f"{source}: backtest: participation must be in (0, 1], max_fill and spread_ticks >= 0"
        )
    return out


def with_params(cfg: BacktestConfig, overrides: Mapping[str, Any]) -> BacktestConfig:
    """cfg with some params replaced (a sweep point); names may be aliases."""
    if not overrides:
        return cfg
    raw = msgspec.to_builtins(cfg.params) if isinstance(cfg.params, msgspec.Struct) else dict(cfg.params)
    names = dict(getattr(cfg.strategy, "param_aliases", {}) or {})
    for key, value in overrides.items():
        raw[names.get(key, key)] = value
    try:
        params = cfg.strategy.parse_params(raw, source="sweep")
    except ParamsError as exc:
        raise BacktestConfigError(str(exc)) from None
    return BacktestConfig(**{**cfg.__dict__, "params": params})


def to_setup(cfg: BacktestConfig) -> Setup:
    fee = cfg.fee if cfg.fee is not None else getattr(cfg.params, "fee", None)
    return Setup(
        strategy=cfg.strategy,
        params=cfg.params,
        filters=cfg.filters,
        bot=cfg.bot,
        venue=cfg.venue,
        symbol=cfg.filters.symbol,
        interval=cfg.interval,
        capital=cfg.capital,
        base=cfg.base,
        fee_rate=fee if isinstance(fee, Decimal) else Decimal("0.001"),
        market_fill=cfg.market_fill,
        participation=cfg.participation,
        max_fill=cfg.max_fill,
        spread_ticks=cfg.spread_ticks,
    )
