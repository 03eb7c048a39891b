"""How the reading commands print: `--json` documents for scripts, symbol precision for people.

Every `--json` goes through `emit`: one JSON document per line (orjson), amounts as exact decimal
strings without exponent ("0.00000059", never 5.9E-7 or a float), so a script reads back exactly
what Redis or the venue holds. Tables round to the symbol's tick and step (shared/display.py),
which the order gateway publishes to `venue:{venue}:symbols` (services/order_gateway/symbols.py).
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import redis
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from shared.display import Precision, filters_from_hash, plain
from shared.filters import SymbolFilters
from shared.streams import venue_symbols

JSON_HELP = "print JSON instead of tables, for scripts (amounts as exact decimal strings)"


def json_option(help_text: str = JSON_HELP) -> Any:
    """The `--json` flag every reading command takes."""
    return typer.Option(False, "--json", help=help_text)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value, builtin_types=(Decimal,))
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(doc: Any) -> str:
    """doc as one line of JSON; Decimals as exact strings, msgspec structs as objects."""
    return orjson.dumps(doc, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def emit(doc: Any) -> None:
    """Print doc as one line of JSON on stdout (flushed: `tail --follow --json` feeds pipes)."""
    sys.stdout.write(dumps(doc) + "\n")
    sys.stdout.flush()


def venue_filters(r: redis.Redis, venue: str) -> dict[str, SymbolFilters]:
    """The symbol filters the venue's order gateway last published (empty when none yet)."""
    try:
        return filters_from_hash(r.hgetall(venue_symbols(venue)))
    except redis.RedisError:
        return {}


class Precisions:
    """Display precision per (venue, symbol), read from Redis once per venue and kept."""

    def __init__(self, r: redis.Redis | None) -> None:
        self.r = r
        self._venues: dict[str, dict[str, SymbolFilters]] = {}

    def filters(self, venue: str) -> dict[str, SymbolFilters]:
        if venue not in self._venues:
            self._venues[venue] = venue_filters(self.r, venue) if self.r is not None else {}
        return self._venues[venue]

    def of(self, venue: str, symbol: str) -> Precision:
        return Precision.of(self.filters(venue).get(symbol))


def table(*columns: str, numeric: tuple[str, ...] = (), wrap: tuple[str, ...] = ()) -> Table:
    """A borderless table: `numeric` columns right-aligned, `wrap` columns (free text) wrap
    instead of being cut, every other column kept whole (never an ellipsis)."""
    t = Table(show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(
            col,
            justify="right" if col in numeric else "left",
            no_wrap=col not in wrap,
            overflow="fold",
        )
    return t


def fits(out: Console, renderable: Table) -> bool:
    """Whether the table prints at its natural width on this console (no column squeezed)."""
    natural = Measurement.get(out, out.options.update_width(100_000), renderable)
    return natural.maximum <= out.width
