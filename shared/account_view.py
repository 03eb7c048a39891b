"""Each asset's newest balance from `account:{venue}` entries, read newest first.

The order gateway writes a full snapshot now and then and deltas (an asset's full free/locked)
in between, so walking back from the newest entry to the last snapshot, the first balance seen
for an asset is its current one. The runner, the notifier's /balance and `automata balance` all
read balances this way; `automata balance` and the web dashboard value them with `value` (a
synchronous client: each asset at the mid of its newest book ticker, else its newest close)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import redis

from shared.codec import DecodeError, decode
from shared.messages import Balance, BalanceUpdate, BookTicker, Candle
from shared.streams import ANY, account, book


@dataclass
class AccountView:
    balances: dict[str, Balance] = field(default_factory=dict)
    snapshot: bool = False  # False: only deltas were found, the list may be incomplete
    ts_ms: int = 0  # time of the newest update (its ts, else its entry id's)


def fold_account(rows: Iterable[tuple[Any, Any]]) -> AccountView:
    """XREVRANGE rows (newest first) folded back to the last snapshot; undecodable entries skipped."""
    view = AccountView()
    for entry_id, fields in rows:
        try:
            msg = decode(fields)
        except DecodeError:
            continue
        if not isinstance(msg, BalanceUpdate):
            continue
        if not view.ts_ms:
            raw_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            view.ts_ms = msg.ts or int(raw_id.split("-")[0])
        for bal in msg.balances:
            view.balances.setdefault(bal.asset, bal)
        if msg.snapshot:
            view.snapshot = True
            break
    return view


def valuation(
    balances: Mapping[str, Balance], quote: str, price_of: Callable[[str], Decimal | None]
) -> tuple[list[dict[str, Any]], Decimal, list[str]]:
    """Each asset's total valued in `quote` at `price_of(asset + quote)` (the quote asset at 1):
    (rows, equity, assets without a price). Locked amounts count: they are still the account's.
    `automata balance` and the ledger's equity value an account this way."""
    rows, equity, unvalued = [], Decimal(0), []
    for asset in sorted(balances):
        bal = balances[asset]
        if not bal.total:
            continue
        price = Decimal(1) if asset == quote else price_of(f"{asset}{quote}")
        worth = bal.total * price if price is not None else None
        if worth is None:
            unvalued.append(asset)
        else:
            equity += worth
        rows.append({"asset": asset, "free": bal.free, "locked": bal.locked, "total": bal.total,
                     "price": price, "value": worth})  # fmt: skip
    return rows, equity, unvalued


SCAN_BACK = 500  # account entries read back looking for the newest snapshot


@dataclass
class Account:
    venue: str
    balances: dict[str, Balance]
    snapshot: bool  # False: only deltas were found, the list may be incomplete
    ts_ms: int


def account_venues(r: redis.Redis) -> list[str]:
    """The venues with an `account:{venue}` stream in Redis, sorted."""
    return sorted(k.decode().split(":", 1)[1] for k in r.scan_iter(match=account(ANY), count=1000))


def read_account(r: redis.Redis, venue: str) -> Account | None:
    """Newest snapshot with the newer deltas applied on top (a delta carries an asset's full free/locked)."""
    view = fold_account(r.xrevrange(account(venue), count=SCAN_BACK))
    return Account(venue, view.balances, view.snapshot, view.ts_ms) if view.balances else None


def redis_price(r: redis.Redis, venue: str, symbol: str) -> Decimal | None:
    for _id, fields in r.xrevrange(book(venue, symbol), count=1):
        try:
            msg = decode(fields)
        except DecodeError:
            break
        if isinstance(msg, BookTicker) and msg.bid > 0 and msg.ask > 0:
            return (msg.bid + msg.ask) / 2
    newest: Candle | None = None
    for key in r.scan_iter(match=f"md:candles:{venue}:{symbol}:*", count=1000):
        for _id, fields in r.xrevrange(key, count=1):
            try:
                msg = decode(fields)
            except DecodeError:
                continue
            if isinstance(msg, Candle) and (newest is None or msg.close_time > newest.close_time):
                newest = msg
    return newest.close if newest is not None else None


@dataclass
class Valued:
    """An account with each asset's price and value in the quote asset (None: no price found)."""

    acct: Account
    quote: str
    rows: list[dict[str, Any]]
    equity: Decimal
    unvalued: list[str]


def value(r: redis.Redis, acct: Account, quote: str, live: dict[str, Decimal] | None) -> Valued:
    rows, equity, unvalued = valuation(
        acct.balances, quote, lambda symbol: (live or {}).get(symbol) or redis_price(r, acct.venue, symbol)
    )
    return Valued(acct, quote, rows, equity, unvalued)


def account_doc(v: Valued) -> dict[str, Any]:
    """The valued account for `--json` (amounts as exact decimal strings)."""
    return {"venue": v.acct.venue, "quote": v.quote, "ts": v.acct.ts_ms, "complete": v.acct.snapshot,
            "balances": v.rows, "equity": v.equity, "unvalued": v.unvalued}  # fmt: skip
