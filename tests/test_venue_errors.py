"""Each documented error body, answered over HTTP to the real python-binance / pybit client
inside the adapter, becomes the VenueError the gateway acts on (retry, refuse, resolve by query).

The bodies are the exchanges' (tests/fixtures/venues/*/errors.json); the loopback server only
replays them, so what is tested is the clients' parsing and the adapters' `classify`.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from services.order_gateway.venues.base import (
    AuthError,
    Banned,
    ClockSkew,
    DuplicateOrder,
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    VenueError,
)
from services.order_gateway.venues.binance import BinanceAdapter
from services.order_gateway.venues.bybit import BybitAdapter
from shared.messages import OrderType, PlaceOrder, Side
from tests.helpers.venue_docs import documented, documented_answers, server_time

BINANCE = {
    -1121: Rejected, -2010: Rejected, -1013: Rejected, -2011: Rejected, -1145: Rejected, -1102: Rejected,
    -2013: OrderNotFound, -1021: ClockSkew, -1022: AuthError, -2015: AuthError, -1015: RateLimited,
    -1000: OutcomeUnknown, -1001: OutcomeUnknown, -1006: OutcomeUnknown, -1007: OutcomeUnknown,
    -1008: OutcomeUnknown,
}  # fmt: skip
BYBIT = {
    10001: Rejected, 110007: Rejected, 170121: Rejected, 170131: Rejected, 170136: Rejected,
    170140: Rejected, 170218: Rejected, 10002: ClockSkew, 10003: AuthError, 10004: AuthError,
    10006: RateLimited, 170005: RateLimited, 170222: RateLimited, 110001: OrderNotFound,
    170213: OrderNotFound, 110072: DuplicateOrder, 170141: DuplicateOrder, 10000: OutcomeUnknown,
    10016: OutcomeUnknown, 170001: OutcomeUnknown, 170007: OutcomeUnknown, 170146: OutcomeUnknown,
    170147: OutcomeUnknown,
}  # fmt: skip


def binance_expected(entry: dict[str, Any]) -> type[VenueError]:
    code, msg, status = entry["body"]["code"], entry["body"]["msg"], entry["http_status"]
    if code == -1003:
        return Banned if status == 418 else RateLimited
    return DuplicateOrder if msg == "Duplicate order sent." else BINANCE[code]


def cmd() -> PlaceOrder:
    return PlaceOrder(cid="b1-000001", bot="b1", venue="x", symbol="BTCUSDT", side=Side.BUY,
                      order_type=OrderType.LIMIT, quantity=D("0.001"), price=D("30000"))  # fmt: skip


def entry_id(entry: dict[str, Any]) -> str:
    body = entry["body"]
    return f"{body.get('code', body.get('retCode'))}-{entry.get('http_status', 200)}-{len(str(body))}"


@pytest.mark.parametrize("entry", documented("binance", "errors"), ids=entry_id)
async def test_binance_documented_errors(entry: dict[str, Any]) -> None:
    answers = {"/api/v3/time": (200, server_time), "/api/v3/order": (entry["http_status"], entry["body"])}
    with documented_answers(answers) as (url, _):
        adapter = BinanceAdapter("binance", "key", "secret", base_url=url, timeout_s=5)
        await adapter.start()
        try:
            with pytest.raises(VenueError) as info:
                await adapter.place(cmd(), D("0.001"), D("30000"), None)
        finally:
            await adapter.close()
    assert type(info.value) is binance_expected(entry)
    assert info.value.code == entry["body"]["code"]


@pytest.mark.parametrize("entry", documented("bybit", "errors"), ids=entry_id)
async def test_bybit_documented_errors(entry: dict[str, Any]) -> None:
    answers = {
        "/v5/market/instruments-info": (200, documented("bybit", "instruments_info_spot")),
        "/v5/order/create": (200, entry["body"]),  # Bybit answers its errors with HTTP 200
    }
    with documented_answers(answers) as (url, _):
        adapter = BybitAdapter("bybit", "key", "secret", base_url=url, timeout_s=5)
        await adapter.start()
        with pytest.raises(VenueError) as info:
            await adapter.place(cmd(), D("0.001"), D("30000"), None)
    assert type(info.value) is BYBIT[entry["body"]["retCode"]]
    assert info.value.code == entry["body"]["retCode"]
