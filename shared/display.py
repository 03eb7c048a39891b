"""Amounts as a person reads them: at the symbol's precision, grouped, never in exponent notation.

Decimal in, text out, no float anywhere. Four kinds of amount, one function each:
- `price(v, tick)`: at most the tick's decimals, at least 2 (quote to the cent), trailing zeros
  beyond that dropped ("42,016.04", "0.00001234"); without a tick, six significant digits.
- `qty(v, step)`: a base quantity at most to the step's decimals (rounded toward zero, as the
  exchange rounds a quantity), trailing zeros dropped; without a step, at most 8 decimals.
- `quote(v)`: a quote-currency total (value, profit, fee): 2 decimals unless it needs more to show
  its first two significant digits ("0.42", "0.00000059").
- `pct(v)`: a percentage with 2 decimals ("1.10%").
A nonzero amount never shows as 0: when the precision would round it away, its significant
digits are shown instead. `plain(v)` is the exact value without exponent (for JSON and logs).
None, an unparsable string or a non-finite number shows as "-".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

import msgspec

from shared.filters import SymbolFilters
from shared.money import fmt

MISSING = "-"
QUOTE_PLACES = 2  # quote amounts to the cent unless they need more
QTY_PLACES = 8  # base quantities without a known step
PRICE_DIGITS = 6  # significant digits of a price without a known tick
QUOTE_DIGITS = 2  # significant digits a small quote amount keeps
FALLBACK_DIGITS = 4  # significant digits of a nonzero amount the precision would show as 0

Amount = Decimal | str | int | None

CACHED = 64  # bound of each cache below (precisions, decimal places, increments)
_CONTEXTS: dict[int, Context] = {}
_QUANTA: dict[int, Decimal] = {}
_PLACES: dict[Decimal, int] = {}
_CONTEXT_28 = Context(prec=28)  # enough for any amount shown to its tick, step or cent


def to_dec(value: Amount) -> Decimal | None:
    """A finite Decimal from a Decimal, int or decimal string (as state documents hold them); None if not."""
    if type(value) is Decimal:  # the usual case, first
        return value if value.is_finite() else None
    if value is None or isinstance(value, bool | float):
        return None
    try:
        result = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None
    return result if result.is_finite() else None


def _places(increment: Decimal | None) -> int | None:
    """Decimals of a tick or step (0.01 -> 2, 1 -> 0, 10 -> 0); None when unknown or not positive."""
    if increment is None or not increment.is_finite() or increment <= 0:
        return None
    places = _PLACES.get(increment)  # a symbol's few ticks and steps, shown on every text
    if places is None:
        places = max(0, -increment.normalize().as_tuple().exponent)  # type: ignore[operator]
        if len(_PLACES) >= CACHED:
            _PLACES.clear()
        _PLACES[increment] = places
    return places


def _context(prec: int) -> Context:
    """A context of `prec` digits (the usual few kept: building one costs more than the quantize)."""
    ctx = _CONTEXTS.get(prec)
    if ctx is None:
        ctx = Context(prec=prec)
        if prec <= CACHED:
            _CONTEXTS[prec] = ctx
    return ctx


def _quantum(places: int) -> Decimal:
    quantum = _QUANTA.get(places)
    if quantum is None:
        quantum = Decimal(1).scaleb(-places)
        if 0 <= places <= CACHED:
            _QUANTA[places] = quantum
    return quantum


def _quantize(value: Decimal, places: int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    prec = value.adjusted() + places + 3
    ctx = _CONTEXT_28 if prec <= 28 else _context(prec)
    return value.quantize(_QUANTA.get(places) or _quantum(places), rounding=rounding, context=ctx)


def _significant(value: Decimal, digits: int) -> int:
    """Decimals that show `digits` significant digits of value (0 for large values)."""
    return max(0, digits - 1 - value.adjusted())


def _text(
    value: Decimal, places: int, keep: int, *, group: bool = True, rounding: str = ROUND_HALF_EVEN
) -> str:
    """value rounded to `places` decimals, trailing zeros dropped down to `keep` decimals.

    Memoized: a strategy's decision texts show the same few prices every step of a backtest.
    Keyed by the value's str, which names it exactly: hashing a Decimal (a fresh one, as most
    are) costs several times as much as writing it."""
    key = (str(value), places, keep, group, rounding)
    text = _TEXTS.get(key)
    if text is None:
        if len(_TEXTS) >= TEXTS_CACHED:
            _TEXTS.clear()
        text = _TEXTS[key] = _text_of(value, places, keep, group, rounding)
    return text


TEXTS_CACHED = 4096  # bound of the texts cache
_TEXTS: dict[tuple[str, int, int, bool, str], str] = {}
# Whole answers of price(), qty(), quote() and ratio_pct() for Decimals, keyed by str as in _TEXTS: a
# hit skips the parsing, the tick's (step's) places and the _text key.
_PRICES: dict[tuple[str, Decimal, bool], str] = {}
_QTYS: dict[tuple[str, Decimal, bool], str] = {}
_QUOTES: dict[tuple[str, None, bool], str] = {}
_RATIOS: dict[tuple[str, bool, int], str] = {}


ANSWERS_CACHED = 512  # bound of each whole-answer cache: ~300 bytes an entry in every process


def _remember(cache: dict[Any, str], key: Any, text: str) -> str:
    if len(cache) >= ANSWERS_CACHED:
        cache.clear()
    cache[key] = text
    return text


def _text_of(value: Decimal, places: int, keep: int, group: bool, rounding: str) -> str:
    shown = _quantize(value, places, rounding)
    if shown == 0 and value != 0:  # never show a nonzero amount as 0
        places = max(places, _significant(value, FALLBACK_DIGITS))
        shown = _quantize(value, places, rounding)
    if shown == 0:
        shown = shown.copy_abs()  # no "-0.00"
    text = format(shown, ",f" if group else "f")  # exactly `places` decimals
    drop = min(len(text) - len(text.rstrip("0")), places - keep)  # trailing zeros beyond `keep` go
    if drop <= 0:
        return text
    return text[: -drop - 1] if drop == places else text[:-drop]  # no decimals left: no point either


def plain(value: Amount) -> str:
    """The exact value without exponent or trailing zeros ('0.00000059', '42016.04', '0')."""
    d = to_dec(value)
    return MISSING if d is None else fmt(d)


def _remembered(
    cache: dict[Any, str], show: Callable[[Any, Any, bool], str], value: Amount, increment: Any, group: bool
) -> str:
    """show(value, increment, group), remembered whole for a Decimal at a finite Decimal
    increment or none (the usual call, from a strategy's texts; a signalling NaN cannot be hashed)."""
    if type(value) is Decimal and (increment is None or type(increment) is Decimal and increment.is_finite()):
        key = (str(value), increment, group)
        text = cache.get(key)
        return _remember(cache, key, show(value, increment, group)) if text is None else text
    return show(value, increment, group)


def price(value: Amount, tick: Decimal | None = None, *, group: bool = True) -> str:
    """A price: to the tick (at least 2 decimals kept), else six significant digits (at least 2 decimals)."""
    return _remembered(_PRICES, _price, value, tick, group)


def _price(value: Amount, tick: Decimal | None, group: bool) -> str:
    d = to_dec(value)
    if d is None:
        return MISSING
    tick_places = _places(tick)
    if tick_places is not None:
        return _text(d, tick_places, min(QUOTE_PLACES, tick_places), group=group)
    return _text(d, max(QUOTE_PLACES, _significant(d, PRICE_DIGITS)), QUOTE_PLACES, group=group)


def qty(value: Amount, step: Decimal | None = None, *, group: bool = True) -> str:
    """A base quantity to the step (toward zero), trailing zeros dropped; at most 8 decimals without a step."""
    return _remembered(_QTYS, _qty, value, step, group)


def _qty(value: Amount, step: Decimal | None, group: bool) -> str:
    d = to_dec(value)
    if d is None:
        return MISSING
    places = _places(step)
    return _text(d, QTY_PLACES if places is None else places, 0, group=group, rounding=ROUND_DOWN)


def quote(value: Amount, *, group: bool = True) -> str:
    """A quote-currency amount: 2 decimals, more only to show a small amount's first two digits."""
    return _remembered(_QUOTES, _quote, value, None, group)


def _quote(value: Amount, _: None, group: bool) -> str:
    d = to_dec(value)
    if d is None:
        return MISSING
    places = max(QUOTE_PLACES, _significant(d, QUOTE_DIGITS)) if d else QUOTE_PLACES
    return _text(d, places, QUOTE_PLACES, group=group)


def pct(value: Amount, *, sign: bool = False, places: int = 2) -> str:
    """A percentage already in percent (1.1 -> '1.10%'); sign=True writes '+' on gains."""
    d = to_dec(value)
    if d is None:
        return MISSING
    text = _text(d, places, places)
    return f"+{text}%" if sign and d > 0 else f"{text}%"


def ratio_pct(value: Amount, *, sign: bool = False, places: int = 2) -> str:
    """A fraction as a percentage (0.011 -> '1.10%')."""
    if type(value) is Decimal:
        key = (str(value), sign, places)  # the usual call, from a strategy's texts: remembered whole
        text = _RATIOS.get(key)
        return _remember(_RATIOS, key, _ratio_pct(value, sign, places)) if text is None else text
    return _ratio_pct(value, sign, places)


def _ratio_pct(value: Amount, sign: bool, places: int) -> str:
    d = to_dec(value)
    return MISSING if d is None else pct(d * 100, sign=sign, places=places)


@dataclass(frozen=True)
class Precision:
    """A symbol's display precision: its tick (prices) and step (base quantities), when known."""

    tick: Decimal | None = None
    step: Decimal | None = None

    @classmethod
    def of(cls, filters: SymbolFilters | None) -> Precision:
        return cls() if filters is None else cls(filters.tick_size, filters.step_size)

    def price(self, value: Amount, *, group: bool = True) -> str:
        return price(value, self.tick, group=group)

    def qty(self, value: Amount, *, group: bool = True) -> str:
        return qty(value, self.step, group=group)


UNKNOWN = Precision()


def filters_from_hash(raw: dict[bytes, bytes]) -> dict[str, SymbolFilters]:
    """The `venue:{venue}:symbols` hash the order gateway publishes, decoded (bad entries skipped)."""
    out = {}
    for key, value in raw.items():
        try:
            out[key.decode()] = msgspec.json.decode(value, type=SymbolFilters)
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError, ValueError):
            continue
    return out


def bot_market(doc: dict[str, Any]) -> tuple[str, str] | None:
    """(venue, symbol) of a bot, from the candle stream its state document has applied."""
    for stream in doc.get("last_applied") or {}:
        parts = stream.split(":")
        if len(parts) == 5 and parts[:2] == ["md", "candles"]:
            return parts[2], parts[3]
    return None


def asset_amounts(filters: dict[str, SymbolFilters]) -> Callable[[str, Amount], str]:
    """How to show an amount of each asset of a venue: a base asset to its step, a quote asset
    to the cent, any other asset with at most 8 decimals."""
    steps = asset_steps(filters)
    quotes = {f.quote_asset for f in filters.values()}

    def show(asset: str, value: Amount) -> str:
        if asset in steps:
            return qty(value, steps[asset])
        return quote(value) if asset in quotes else qty(value)

    return show


def asset_steps(filters: dict[str, SymbolFilters]) -> dict[str, Decimal]:
    """Each base asset's quantity step, from the symbols that trade it (the finest if several)."""
    steps: dict[str, Decimal] = {}
    for f in filters.values():
        if f.step_size > 0 and (f.base_asset not in steps or f.step_size < steps[f.base_asset]):
            steps[f.base_asset] = f.step_size
    return steps


def listing(names: Iterable[str], limit: int = 20) -> str:
    """Known names for an error message: sorted, the first `limit`, and how many more."""
    ordered = sorted(set(names))
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more
