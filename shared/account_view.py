"""Each asset's newest balance from `account:{venue}` entries, read newest first.

The order gateway writes a full snapshot now and then and deltas (an asset's full free/locked)
in between, so walking back from the newest entry to the last snapshot, the first balance seen
for an asset is its current one. The runner, the notifier's /balance and `automata balance` all
read balances this way."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared.codec import DecodeError, decode
from shared.messages import Balance, BalanceUpdate


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
