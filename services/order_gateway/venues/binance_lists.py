"""Binance order lists (OCO, OTO, OTOCO) for the Binance adapter (binance.py): the request of
each kind, the legs' reports from the answers, and the list client id of a leg's executionReport.

Binance's executionReport names a leg's list only by its number (`g`, orderListId), never by
the listClientOrderId the gateway chose. The adapter learns number -> client id from every
answer that carries both (the placing reply, a query, a cancel) and from the user stream's
listStatus event, and fills OrderReport.list_cid from it. A leg's report that arrives before
any of them (Binance sends listStatus after the legs' first executionReports) carries "" — the
gateway's own record of the leg, written ahead with its list's cid, stays authoritative, and a
report never clears it (shared/order_record.py apply_report keeps the record's list_cid).
REST order reports (query, openOrders, allOrders) carry the number too: a leg of a list the
adapter does not know (an order adopted after a crash, the adapter new) has its list looked up
once by number (GET orderList, weight 4) — so a leg found without a record still names its list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from services.order_gateway.venues.base import MalformedReply, OrderNotFound, parse_reply
from shared.binance_lean import AsyncClient
from shared.messages import ListKind, OrderType, PlaceOrder, PlaceOrderList, TimeInForce
from shared.money import fmt
from shared.order_report import OrderReport

T = TypeVar("T")
LegTerms = tuple[Decimal | None, Decimal | None, Decimal | None]  # (qty, price, stop) rounded
# python-binance 1.0.37's methods: POST /api/v3/orderList/oco, /oto, /otoco
_METHOD = {ListKind.OCO: "create_oco_order", ListKind.OTO: "v3_post_order_list_oto",
           ListKind.OTOCO: "v3_post_order_list_otoco"}  # fmt: skip
_PREFIXES = {
    ListKind.OCO: ("above", "below"),
    ListKind.OTO: ("working", "pending"),
    ListKind.OTOCO: ("working", "pendingAbove", "pendingBelow"),
}
_NEEDS_TIF = frozenset({OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
KEEP_LIST_IDS = 10_000  # orderListId -> listClientOrderId kept (the oldest forgotten first)
ORDER_LIST_WEIGHT = 4  # GET /api/v3/orderList (Binance spot, 2025)


def list_request(cmd: PlaceOrderList, legs: Sequence[LegTerms]) -> tuple[str, dict[str, Any]]:
    """The python-binance method and the parameters of the list. An OCO's (or an OTOCO's
    pending pair's) one side and quantity are sent once; each leg under its prefix."""
    params: dict[str, Any] = {
        "symbol": cmd.symbol,
        "listClientOrderId": cmd.list_cid,
        "newOrderRespType": "FULL",
    }
    prefixes = _PREFIXES[cmd.kind]
    for prefix, leg, (qty, price, stop) in zip(prefixes, cmd.legs, legs, strict=True):
        params |= _leg_params(prefix, leg, price, stop)
        if cmd.kind is not ListKind.OCO and prefix in ("working", "pending"):
            params[f"{prefix}Side"] = leg.side.value
            params[f"{prefix}Quantity"] = fmt(_qty(leg, qty))
    if cmd.kind is ListKind.OCO:
        params |= {"side": cmd.legs[0].side.value, "quantity": fmt(_qty(cmd.legs[0], legs[0][0]))}
    elif cmd.kind is ListKind.OTOCO:
        params |= {
            "pendingSide": cmd.legs[1].side.value,
            "pendingQuantity": fmt(_qty(cmd.legs[1], legs[1][0])),
        }
    return _METHOD[cmd.kind], params


def _qty(leg: PlaceOrder, qty: Decimal | None) -> Decimal:
    if qty is None:
        raise ValueError(f"leg {leg.cid}: a list's leg needs a quantity")
    return qty


def _leg_params(prefix: str, leg: PlaceOrder, price: Decimal | None, stop: Decimal | None) -> dict[str, Any]:
    out: dict[str, Any] = {f"{prefix}Type": leg.order_type.value, f"{prefix}ClientOrderId": leg.cid}
    if price is not None:
        out[f"{prefix}Price"] = fmt(price)
    if stop is not None:
        out[f"{prefix}StopPrice"] = fmt(stop)
    if leg.order_type in _NEEDS_TIF:
        out[f"{prefix}TimeInForce"] = str(leg.time_in_force or TimeInForce.GTC)
    return out


def leg_reports(
    res: dict[str, Any], report: Callable[[dict[str, Any]], OrderReport], cids: Sequence[str] = ()
) -> list[OrderReport]:
    """The legs' reports of a list answer (orderReports), with the list's client id, in the
    order of `cids` when given (the command's), else the venue's."""
    list_cid = res["listClientOrderId"]
    reports = {r.cid: msgspec.structs.replace(r, list_cid=list_cid) for r in map(report, res["orderReports"])}
    if not cids:
        return list(reports.values())
    missing = [c for c in cids if c not in reports]
    if missing:
        raise KeyError(f"no report of leg {missing[0]}")
    return [reports[c] for c in cids]


class ListIds:
    """orderListId -> listClientOrderId, learned from answers and listStatus events (bounded)."""

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}

    def learn(self, list_id: Any, list_cid: Any) -> None:
        if isinstance(list_id, int) and list_id >= 0 and isinstance(list_cid, str) and list_cid:
            self._remember(list_id, list_cid)

    def unknown(self, list_id: int) -> None:
        """The venue has no such list (any more): not asked again; its legs name none."""
        self._remember(list_id, "")

    def knows(self, list_id: int) -> bool:
        return list_id in self._ids

    def _remember(self, list_id: int, list_cid: str) -> None:
        self._ids[list_id] = list_cid
        if len(self._ids) > KEEP_LIST_IDS:
            del self._ids[next(iter(self._ids))]

    def of(self, list_id: Any) -> str:
        return self._ids.get(list_id, "") if isinstance(list_id, int) else ""

    def fill(self, report: OrderReport, list_id: Any) -> OrderReport:
        """The report with its list's client id, when the leg's list is known."""
        list_cid = self.of(list_id)
        return msgspec.structs.replace(report, list_cid=list_cid) if list_cid else report


class BinanceLists:
    """The list methods of VenueAdapter, mixed into BinanceAdapter (binance.py)."""

    name: str
    client: AsyncClient | None
    list_ids: ListIds
    lists = frozenset({ListKind.OCO, ListKind.OTO, ListKind.OTOCO})
    _call: Callable[[str, int, Callable[[], Awaitable[Any]]], Awaitable[Any]]
    query: Callable[[str, str], Awaitable[OrderReport]]
    _report: Callable[[dict[str, Any]], OrderReport]  # binance.py report_from_order

    async def place_list(self, cmd: PlaceOrderList, legs: list[LegTerms]) -> list[OrderReport]:
        assert self.client is not None
        client = self.client
        method, params = list_request(cmd, legs)
        res = await self._call("order", 1, lambda: getattr(client, method)(**params))
        return self._learned(f"list {cmd.list_cid}", res, [leg.cid for leg in cmd.legs])

    async def cancel_list(self, symbol: str, list_cid: str) -> list[OrderReport]:
        assert self.client is not None
        client = self.client
        res = await self._call(
            "cancel", 1, lambda: client.v3_delete_order_list(symbol=symbol, listClientOrderId=list_cid)
        )
        return self._learned(f"cancel list {list_cid}", res)

    async def query_list(self, symbol: str, list_cid: str) -> list[OrderReport]:
        """GET orderList names the legs; each is then queried for its state (OrderNotFound when
        the venue has no such list)."""
        assert self.client is not None
        client = self.client
        res = await self._call(
            "get_order", ORDER_LIST_WEIGHT, lambda: client.v3_get_order_list(origClientOrderId=list_cid)
        )
        legs = parse_reply(f"query list {list_cid}", _leg_cids, res)
        if res.get("symbol") != symbol:
            raise OrderNotFound(f"order list {list_cid} is not on {symbol}")
        self.list_ids.learn(res.get("orderListId"), list_cid)
        return [msgspec.structs.replace(await self.query(symbol, cid), list_cid=list_cid) for cid in legs]

    async def with_lists(self, rows: Any, reports: list[OrderReport]) -> list[OrderReport]:
        """REST reports with their list's client id where their row names a list (orderListId
        not -1): from the numbers learned, else GET orderList by number, once per list."""
        numbers = _list_numbers(rows if isinstance(rows, list) else [rows])
        for list_id in sorted(set(numbers.values())):
            if not self.list_ids.knows(list_id):
                await self._look_up(list_id)
        return [r if r.list_cid else self.list_ids.fill(r, numbers.get(r.cid)) for r in reports]

    async def _look_up(self, list_id: int) -> None:
        assert self.client is not None
        client = self.client
        try:
            res = await self._call(
                "get_order", ORDER_LIST_WEIGHT, lambda: client.v3_get_order_list(orderListId=list_id)
            )
        except OrderNotFound:
            self.list_ids.unknown(list_id)
            return
        if isinstance(res, dict) and res.get("orderListId") == list_id:
            self.list_ids.learn(list_id, res.get("listClientOrderId"))

    def _learned(self, what: str, res: Any, cids: Sequence[str] = ()) -> list[OrderReport]:
        reports = parse_reply(what, lambda r: leg_reports(r, self._report, cids), res)
        self.list_ids.learn(res.get("orderListId"), res.get("listClientOrderId"))
        return reports


def _list_numbers(rows: list[Any]) -> dict[str, int]:
    """cid -> orderListId of the rows that are legs of a list (REST orders: -1 when none)."""
    numbers: dict[str, int] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        list_id, cid = row.get("orderListId"), row.get("origClientOrderId") or row.get("clientOrderId")
        if (
            isinstance(list_id, int)
            and not isinstance(list_id, bool)
            and list_id >= 0
            and isinstance(cid, str)
        ):
            numbers[cid] = list_id
    return numbers


def _leg_cids(res: dict[str, Any]) -> list[str]:
    cids = [str(o["clientOrderId"]) for o in res["orders"]]
    if not cids:
        raise MalformedReply("an order list without orders")
    return cids
