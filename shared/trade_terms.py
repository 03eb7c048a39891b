"""The words of a manual smart trade, one grammar for `automata trade`, Telegram's `/trade` and
the dashboard's form: each front end hands its fields over by the same names and gets back a
checked TradeTerms (the TradeRequest without its id, bot and source), or a TermsError naming the
field, so a bad `--tp` is refused before anything is written.

Fields (all text, as a person typed them):
- `quote` (quote asset to spend) or `qty` (base asset to buy); `price`: a limit entry (none: market);
- `tp`: take-profit targets, comma-separated, each `2%` (a gain above the entry) or `44000` (a
  price); `:50%,50%` after them gives each target's share of the position, adding up to 100% (else equal parts);
- `sl`: the stop loss below the entry, `1%`; or `stop`: a stop price;
- `trailing`: a trailing stop, `0.5%` below the highest price since the entry;
- `trailing_tp`: a trailing take profit, `0.5%` below the peak once the last target is reached;
- `break_even`: yes/no (the stop moves to the entry once the first target filled);
- `time_limit`: `4h`, `30m`, `90s`, `1d` or seconds: what is held then is sold at market.

Percent needs its `%` sign: `2%` is 0.02, a bare `0.02` is not a percent anywhere (in `tp` it is
a price, elsewhere it is refused), so a forgotten sign never turns 2 % into 200 % or a 2-dollar
target into a 2 % one. Amounts are Decimal from the text, never float.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation

import msgspec

from shared.exits import Exits, Target
from shared.messages import MAX_AMOUNT, Side, TradeRequest

FIELDS = ("quote", "qty", "price", "tp", "sl", "stop", "trailing", "trailing_tp", "break_even", "time_limit")
_HUNDRED = Decimal(100)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d{1,12})([smhd]?)$")
_MAX_DURATION_S = 365 * 86400
_YES = {"", "1", "true", "yes", "on", "y"}
_NO = {"0", "false", "no", "off", "n"}
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")


class TermsError(ValueError):
    """A field of a trade that cannot be: `field` is its name in FIELDS (or "side"/"symbol")."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class TradeTerms(msgspec.Struct, frozen=True):
    """A checked trade, ready to become a TradeRequest (`request`)."""

    side: Side
    symbol: str
    quote: Decimal | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    exits: Exits = Exits()

    def request(self, *, id: str, bot: str, source: str, ts: int) -> TradeRequest:
        return TradeRequest(id=id, bot=bot, symbol=self.symbol, side=self.side, quote=self.quote,
                            quantity=self.qty, price=self.price, exits=self.exits, source=source, ts=ts)  # fmt: skip


def _number(field: str, text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        raise TermsError(field, f"not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise TermsError(field, f"must be above 0, got {text!r}")
    if value >= MAX_AMOUNT:
        raise TermsError(field, f"must be below 1e20, got {text!r}")
    return value


def percent(field: str, text: str, *, whole: bool = False) -> Decimal:
    """`1.5%` -> Decimal('0.015'); anything without the sign is refused (see the module doc);
    below 100% (up to it with `whole`)."""
    text = text.strip()
    if not text.endswith("%"):
        raise TermsError(field, f"write it as a percent, e.g. 1% (got {text!r})")
    value = _number(field, text[:-1]) / _HUNDRED
    if value > 1 or (value == 1 and not whole):
        raise TermsError(field, f"must be below {'or at ' if whole else ''}100%, got {text!r}")
    return value


def _targets(text: str) -> tuple[Target, ...]:
    """`2%,4%` / `43000,44000` / `2%,4%:50%,50%`."""
    levels, _, shares = text.strip().partition(":")
    items = [t.strip() for t in levels.split(",")]
    if not all(items):
        raise TermsError("tp", f"an empty target in {text!r} (e.g. 2%,4% or 43000)")
    parts = [t.strip() for t in shares.split(",")] if shares else []
    if parts and len(parts) != len(items):
        raise TermsError("tp", f"{len(items)} targets but {len(parts)} shares in {text!r}")
    out = []
    for i, item in enumerate(items):
        share = percent("tp", parts[i], whole=True) if parts else None
        if item.endswith("%"):
            out.append(Target(gain=_number("tp", item[:-1]) / _HUNDRED, share=share))
        else:
            out.append(Target(price=_number("tp", item), share=share))
    total = sum((t.share or Decimal(0) for t in out), Decimal(0))
    if parts and total != 1:
        told = f"{(total * _HUNDRED).normalize():f}%, {'more' if total > 1 else 'less'} than 100%"
        raise TermsError("tp", f"the shares add up to {told} in {text!r}")
    return tuple(out)


def duration(field: str, text: str) -> int:
    """`4h` -> 14400 seconds; a bare number is seconds."""
    match = _DURATION.match(text.strip().lower())
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"] if match else 0
    if not 0 < seconds <= _MAX_DURATION_S:
        raise TermsError(field, f"a duration such as 90s, 30m, 4h or 1d (at most 365d), got {text!r}")
    return seconds


def _flag(field: str, text: str) -> bool:
    word = text.strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise TermsError(field, f"yes or no, got {text!r}")


def _exits_field(reason: str) -> str:
    """Which field an Exits refusal is about (its message names the concept)."""
    for words, field in (("break_even", "break_even"), ("trailing take profit", "trailing_tp"), ("stop_loss or stop_price", "stop"),
                         ("share", "tp"), ("target", "tp"), ("stop_price", "stop"), ("stop_loss", "sl"),
                         ("trailing_stop", "trailing"), ("time_limit", "time_limit")):  # fmt: skip
        if words in reason:
            return field
    return "tp"


def parse_terms(side: str | Side, symbol: str, fields: Mapping[str, str | None]) -> TradeTerms:
    """The checked trade from a person's fields (names of FIELDS; None or "" = not given)."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise TermsError(unknown[0], f"not a trade term (terms: {', '.join(FIELDS)})")
    given = {k: v.strip() for k, v in fields.items() if v is not None and v.strip() != ""}
    try:
        side = Side(str(side).upper())
    except ValueError:
        raise TermsError("side", f"buy or sell, got {side!r}") from None
    symbol = symbol.strip().upper()
    if not _SYMBOL.match(symbol):
        raise TermsError("symbol", f"a symbol such as BTCUSDT, got {symbol!r}")
    if side == Side.SELL:
        if given:
            raise TermsError(sorted(given)[0], "a sell closes the trades at market and takes no terms")
        return TradeTerms(Side.SELL, symbol)
    if ("quote" in given) == ("qty" in given):
        raise TermsError("quote", "give the quote amount to spend or the quantity to buy (one of them)")
    quote = _number("quote", given["quote"]) if "quote" in given else None
    qty = _number("qty", given["qty"]) if "qty" in given else None
    price = _number("price", given["price"]) if "price" in given else None
    if "sl" in given and "stop" in given:
        raise TermsError("stop", "give sl (a percent below the entry) or stop (a price), not both")
    targets = _targets(given["tp"]) if "tp" in given else ()
    stop = _number("stop", given["stop"]) if "stop" in given else None
    if price is not None:
        if stop is not None and stop >= price:
            raise TermsError("stop", f"the stop {stop} must be below the entry price {price}")
        for t in targets:
            if t.price is not None and t.price <= price:
                raise TermsError("tp", f"the target {t.price} must be above the entry price {price}")
    try:
        exits = Exits(
            take_profits=targets,
            stop_loss=percent("sl", given["sl"]) if "sl" in given else None,
            stop_price=stop,
            trailing_stop=percent("trailing", given["trailing"]) if "trailing" in given else None,
            trailing_take_profit=percent("trailing_tp", given["trailing_tp"])
            if "trailing_tp" in given
            else None,
            break_even=_flag("break_even", given["break_even"]) if "break_even" in given else False,
            time_limit_s=duration("time_limit", given["time_limit"]) if "time_limit" in given else None,
        )
    except TermsError:
        raise
    except ValueError as exc:
        raise TermsError(_exits_field(str(exc)), str(exc)) from None
    return TradeTerms(side, symbol, quote=quote, qty=qty, price=price, exits=exits)


_WORD_FIELDS = {"trailing-tp": "trailing_tp", "break-even": "break_even", "time-limit": "time_limit",
                "time": "time_limit", **{f: f for f in FIELDS}}  # fmt: skip


_WORDS = ", ".join(f.replace("_", "-") for f in FIELDS)


def parse_words(words: Sequence[str]) -> tuple[TradeTerms, str | None]:
    """The words of a chat command, `buy BTCUSDT 100 tp 2%,4% sl 1% trailing 0.5% [bot ID]` (a
    bare amount after the symbol is the quote to spend; `break-even` takes no value): the
    checked trade and the bot named, if any."""
    if len(words) < 2:
        raise TermsError("side", "buy|sell SYMBOL [QUOTE] [tp 2%,4%] [sl 1%] [trailing 0.5%] ...")
    side, symbol, rest = words[0], words[1], list(words[2:])
    fields: dict[str, str | None] = {}
    bot = None
    if rest and rest[0].lower() not in {*_WORD_FIELDS, "bot"}:
        fields["quote"] = rest.pop(0)
    while rest:
        word = rest.pop(0).lower()
        if word in ("break-even", "break_even"):
            fields["break_even"] = "yes"
            continue
        field = "bot" if word == "bot" else _WORD_FIELDS.get(word)
        if field is None:
            raise TermsError(word[:30], f"not a trade term (terms: {_WORDS}, bot)")
        if not rest:
            raise TermsError(field, "a value is missing after it")
        if field == "bot":
            bot = rest.pop(0)
        else:
            fields[field] = rest.pop(0)
    return parse_terms(side, symbol, fields), bot


def describe(terms: TradeTerms | TradeRequest) -> str:
    """The trade in one line, in the grammar's own words: `buy BTCUSDT quote 100 tp 2%,4% sl 1%`."""
    side = terms.side.value.lower()
    if terms.side == Side.SELL:
        return f"sell {terms.symbol} (close at market)"
    qty = terms.qty if isinstance(terms, TradeTerms) else terms.quantity
    words = [side, terms.symbol, f"quote {terms.quote}" if terms.quote is not None else f"qty {qty}"]
    words.append(f"limit {terms.price}" if terms.price is not None else "at market")
    x = terms.exits
    if x.take_profits:
        levels = ",".join(_pct(t.gain) if t.gain is not None else str(t.price) for t in x.take_profits)
        shares = ",".join(_pct(t.share) if t.share is not None else "rest" for t in x.take_profits)
        words.append(f"tp {levels}" + (f":{shares}" if any(t.share for t in x.take_profits) else ""))
    if x.stop_loss is not None:
        words.append(f"sl {_pct(x.stop_loss)}")
    if x.stop_price is not None:
        words.append(f"stop {x.stop_price}")
    if x.trailing_stop is not None:
        words.append(f"trailing {_pct(x.trailing_stop)}")
    if x.trailing_take_profit is not None:
        words.append(f"trailing-tp {_pct(x.trailing_take_profit)}")
    if x.break_even:
        words.append("break-even")
    if x.time_limit_s is not None:
        words.append(f"time-limit {x.time_limit_s}s")
    return " ".join(words)


def _pct(fraction: Decimal | None) -> str:
    return f"{(fraction or Decimal(0)) * _HUNDRED:f}".rstrip("0").rstrip(".") + "%"
