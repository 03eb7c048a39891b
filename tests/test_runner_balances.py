"""The free balances a runner hands its strategy come from the account stream: the newest
snapshot, overridden by later deltas."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.strategy_runner.balances import latest_free
from shared.bus import publish
from shared.messages import Balance, BalanceUpdate

# no order gateway here: the test answers each runner's start-up sync (tests/helpers/syncs.py)
pytestmark = pytest.mark.usefixtures("answer_syncs")


async def test_latest_free_is_snapshot_plus_later_deltas(redis_client):
    assert await latest_free(redis_client, "sim") is None
    old = BalanceUpdate(venue="sim", balances=(Balance("BTC", Decimal("9"), Decimal(0)),), snapshot=True)
    snap = BalanceUpdate(venue="sim", snapshot=True, balances=(
        Balance("BTC", Decimal("1"), Decimal(0)), Balance("USDT", Decimal("1000"), Decimal("50"))))  # fmt: skip
    delta = BalanceUpdate(venue="sim", balances=(Balance("USDT", Decimal("900"), Decimal("150")),))
    for msg in (old, snap, delta):
        await publish(redis_client, "account:sim", msg)
    assert await latest_free(redis_client, "sim") == {"USDT": Decimal("900"), "BTC": Decimal("1")}
