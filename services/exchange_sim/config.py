"""The paper venue's settings, all from SIM_* environment variables (it needs no config file).

Every value is checked here; a bad one is a ConfigError naming the variable, so the venue
refuses to start rather than run with a setting it misread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from services.exchange_sim.market import DEFAULT_HISTORY_MAX, MIN_HISTORY
from shared.config import ConfigError
from shared.matching.engine import DEFAULT_MARKET_FILL, MARKET_FILLS, MarketFill
from shared.matching.symbols import CATALOG, DEFAULT_BALANCES, DEFAULT_SYMBOLS
from shared.messages import MAX_AMOUNT

T = TypeVar("T")

DEFAULT_API_KEY = "sim-key"
DEFAULT_API_SECRET = "sim-secret"
LAST_START_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


class SimConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8800  # 0: any free port (written to port_file)
    port_file: str = ""
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    data: str = ""  # CSV file, directory or SYMBOL=path list; empty: random walk
    seed: int = 1
    speed: float = 60.0  # market minutes per wall minute; 0: step mode (the control API advances)
    start_ms: int | None = None  # first minute of history; None: the data's, else 2024-01-01
    warmup: int = 500  # closed candles of history before the first live step
    history_max: int = DEFAULT_HISTORY_MAX  # closed 1m candles kept per symbol; 0: all (grows forever)
    balances: dict[str, Decimal] = msgspec.field(default_factory=lambda: dict(DEFAULT_BALANCES))
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    participation: Decimal = Decimal(1)  # share of a step's volume resting orders may fill
    max_fill: Decimal | None = None  # fixed base quantity per step instead (forces partial fills)
    market_fill: MarketFill = DEFAULT_MARKET_FILL  # "now": market orders fill at the last price (engine.py)
    weight_limit: int = 6000  # Binance REQUEST_WEIGHT per minute
    order_limit_10s: int = 100  # Binance ORDERS per 10 seconds
    ban_after: int = 3  # 429s answered in a minute before a 418 ban
    ban_seconds: int = 120
    state_dir: str = ""  # where the venue keeps its state across restarts (store.py); empty: memory only
    control_token: str = ""  # empty: the control API answers loopback clients only (control_auth.py)

    def __repr__(self) -> str:  # never show the key pair (logs, tracebacks)
        return f"SimConfig(host={self.host!r}, port={self.port}, symbols={self.symbols}, speed={self.speed})"


def _parse_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not (value.is_finite() and 0 <= value < MAX_AMOUNT):
        raise ValueError(f"not a number in [0, 1e20): {text!r}")
    return value


def _parse_fraction(text: str) -> Decimal:
    """A fee or a share: 0.001 is 0.1 %; 1 or more is a typo (a percentage) that would empty accounts."""
    value = _parse_decimal(text)
    if value > 1:
        raise ValueError("must be a fraction between 0 and 1 (0.001 = 0.1 %)")
    return value


def _parse_start(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if text.lower() == "now":
        ms = int(datetime.now(UTC).timestamp() * 1000)
    elif text.isdigit():
        ms = int(text)
    else:
        ms = int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    if not 0 <= ms <= LAST_START_MS:
        raise ValueError("must be a time between 1970 and 9999")
    return ms - ms % 60_000


def _parse_balances(text: str) -> dict[str, Decimal]:
    out = {}
    for part in text.split(","):
        if part.strip():
            asset, _, amount = part.partition("=")
            if not asset.strip():
                raise ValueError(f"no asset name in {part.strip()!r} (expected ASSET=amount)")
            out[asset.strip().upper()] = _parse_decimal(amount.strip())
    return out


def _parse_symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    unknown = [s for s in symbols if s not in CATALOG]
    if unknown or not symbols:
        raise ValueError(f"unknown symbol(s) {unknown}; the venue lists {', '.join(CATALOG)}")
    return symbols


MAX_SPEED = 100_000.0  # a candle every 0.6 ms: beyond what the venue can step, so a higher one means nothing


def _parse_speed(text: str) -> float:
    if text.strip().lower() == "step":
        return 0.0
    return check_speed(float(text))


def check_speed(value: float) -> float:
    """Market minutes per wall minute: 0 (step mode) up to MAX_SPEED; NaN and infinity refused."""
    if not 0 <= value <= MAX_SPEED:  # NaN fails every comparison
        raise ValueError(f"speed must be from 0 (step mode) to {MAX_SPEED:g}, not {value}")
    return value


def _read_token_file(text: str) -> str:
    """The control token from a file (a compose secret, or one `chmod 600`); empty: refused."""
    path = Path(text)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not token:
        raise ValueError(f"{path} is empty")
    return token


def _parse_market_fill(text: str) -> MarketFill:
    value = text.strip().lower().replace("-", "_")
    if value not in MARKET_FILLS:
        raise ValueError(f"expected one of {', '.join(MARKET_FILLS)}")
    return value  # type: ignore[return-value]  # checked against MARKET_FILLS just above


def _nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _port(text: str) -> int:
    value = _nonneg_int(text)
    if value > 65535:
        raise ValueError("must be a port number, 0 to 65535")
    return value


def _history_max(text: str) -> int:
    """0 keeps everything; else at least a day and a margin: the 24h ticker reads the last 1440."""
    value = _nonneg_int(text)
    if 0 < value < MIN_HISTORY:
        raise ValueError(
            f"must be 0 (keep every candle) or at least {MIN_HISTORY} "
            "(24 h of 1-minute candles for the 24h ticker, plus a margin)"
        )
    return value


_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "SIM_HOST": ("host", str),
    "SIM_PORT": ("port", _port),
    "SIM_PORT_FILE": ("port_file", str),
    "SIM_API_KEY": ("api_key", str),
    "SIM_API_SECRET": ("api_secret", str),
    "SIM_SYMBOLS": ("symbols", _parse_symbols),
    "SIM_DATA": ("data", str),
    "SIM_SEED": ("seed", int),
    "SIM_SPEED": ("speed", _parse_speed),
    "SIM_START": ("start_ms", _parse_start),
    "SIM_WARMUP": ("warmup", _nonneg_int),
    "SIM_HISTORY_MAX": ("history_max", _history_max),
    "SIM_BALANCES": ("balances", _parse_balances),
    "SIM_MAKER_FEE": ("maker_fee", _parse_fraction),
    "SIM_TAKER_FEE": ("taker_fee", _parse_fraction),
    "SIM_PARTICIPATION": ("participation", _parse_fraction),
    "SIM_MAX_FILL": ("max_fill", lambda t: _parse_decimal(t) if t.strip() else None),
    "SIM_MARKET_FILL": ("market_fill", _parse_market_fill),
    "SIM_WEIGHT_LIMIT": ("weight_limit", _nonneg_int),
    "SIM_ORDER_LIMIT_10S": ("order_limit_10s", _nonneg_int),
    "SIM_BAN_AFTER": ("ban_after", _nonneg_int),
    "SIM_BAN_SECONDS": ("ban_seconds", _nonneg_int),
    "SIM_STATE_DIR": ("state_dir", str),
    "SIM_CONTROL_TOKEN": ("control_token", str),
    "SIM_CONTROL_TOKEN_FILE": ("control_token", _read_token_file),
}


def load_sim_config(environ: Mapping[str, str] | None = None) -> SimConfig:
    """SimConfig from SIM_* variables; a bad value raises ConfigError naming the variable."""
    environ = os.environ if environ is None else environ
    if environ.get("SIM_CONTROL_TOKEN") and environ.get("SIM_CONTROL_TOKEN_FILE"):
        raise ConfigError("set SIM_CONTROL_TOKEN or SIM_CONTROL_TOKEN_FILE, not both")
    values: dict[str, Any] = {}
    for var, (field, parse) in _FIELDS.items():
        raw = environ.get(var)
        if raw is None or (raw == "" and field not in ("data", "port_file", "state_dir")):
            continue
        try:
            values[field] = parse(raw)
        except (ValueError, TypeError, ArithmeticError) as exc:  # OverflowError: a date out of range
            raise ConfigError(f"environment variable {var}={raw!r}: {exc}") from None
    if not values.get("api_key", DEFAULT_API_KEY) or not values.get("api_secret", DEFAULT_API_SECRET):
        raise ConfigError("SIM_API_KEY and SIM_API_SECRET must not be empty")
    values["warmup"] = max(1, values.get("warmup", 500))
    return SimConfig(**values)
