"""Bybit V5 spot batch endpoints: order/create-batch, amend-batch and cancel-batch.

Each item of `request` goes through the single endpoint's own code (so it is checked, refused
and journaled exactly as one order/create would be); the items are independent, one refusal
does not stop the others. The answer pairs `result.list` (one row an item, orderId "" when it
was refused) with `retExtInfo.list` (its code and message), as Bybit documents. Spot takes at
most 10 items a request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from services.exchange_sim.bybit_errors import BybitError, params_error
from services.exchange_sim.bybit_format import CATEGORY
from services.exchange_sim.bybit_params import Params

MAX_SPOT_BATCH = 10
OK = {"code": 0, "msg": "OK"}


class Batch(NamedTuple):
    """A batch answer: the envelope's result, and its retExtInfo (per-item codes)."""

    result: dict[str, Any]
    ext: dict[str, Any]


def run_batch(p: Params, one: Callable[[Params], dict[str, Any]], *, created_at: int | None = None) -> Batch:
    """Each request item through `one`; `created_at` (create-batch) fills each row's createAt."""
    p.category()
    items = p.get("request")
    if not isinstance(items, list) or not items:
        raise params_error("params error: request must be a non-empty list of orders")
    if len(items) > MAX_SPOT_BATCH:
        raise params_error(f"params error: request: at most {MAX_SPOT_BATCH} orders a batch on spot")
    rows, codes = [], []
    for item in items:
        fields = item if isinstance(item, dict) else {}
        params = Params({**fields, "category": CATEGORY})
        try:
            if not isinstance(item, dict):
                raise params_error("params error: request: each item must be an object")
            answer, code = one(params), OK
        except BybitError as exc:
            answer = {"orderId": "", "orderLinkId": _text(params, "orderLinkId")}
            code = {"code": exc.ret_code, "msg": exc.ret_msg}
        row = {"category": CATEGORY, "symbol": _text(params, "symbol"), **answer}
        if created_at is not None:
            row["createAt"] = str(created_at) if code is OK else ""
        rows.append(row)
        codes.append(code)
    return Batch({"list": rows}, {"list": codes})


def _text(p: Params, name: str) -> str:
    try:
        return p.text(name) or ""
    except BybitError:  # not text: the item's own refusal already says so
        return ""
