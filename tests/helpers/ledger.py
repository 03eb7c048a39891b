"""The ledger service in tests: scripted order updates, a running ledger process, its rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import redis
import sqlalchemy as sa

from shared.codec import encode
from shared.ledger import schema as t
from shared.messages import OrderStatus, OrderUpdate, Side
from tests.helpers.procs import Proc, python, wait_until

BOT = "b1"
PRICE = Decimal("100")


def order_updates(n_orders: int, bot: str = BOT) -> Iterator[OrderUpdate]:
    """Each order: NEW, half filled, filled (two fills), then the same FILLED again (a duplicate
    the gateway may send); buys and sells alternate, each sell at a higher price."""
    for i in range(n_orders):
        side = Side.BUY if i % 2 == 0 else Side.SELL
        price = PRICE + (i % 2)
        qty = Decimal("0.002")
        common = {"cid": f"{bot}-{i:06d}", "bot": bot, "venue": "sim", "symbol": "BTCUSDT", "side": side,
                  "order_type": "LIMIT", "price": price, "orig_qty": qty, "fee_asset": "USDT", "ts": 1_000 + i}  # fmt: skip
        yield OrderUpdate(status=OrderStatus.NEW, **common)
        for part, status in ((qty / 2, OrderStatus.PARTIALLY_FILLED), (qty, OrderStatus.FILLED)):
            yield OrderUpdate(
                status=status,
                cum_filled_qty=part,
                cum_quote_qty=part * price,
                fee=part * price / 1000,
                **common,
            )
        yield OrderUpdate(status=OrderStatus.FILLED, cum_filled_qty=qty, cum_quote_qty=qty * price,
                          fee=qty * price / 1000, **common)  # fmt: skip


def expected_fills(n_orders: int) -> set[tuple[str, Decimal]]:
    return {(f"{BOT}-{i:06d}", q) for i in range(n_orders) for q in (Decimal("0.001"), Decimal("0.002"))}


def xadd(r: redis.Redis, stream: str, msg: OrderUpdate) -> str:
    return r.xadd(stream, encode(msg)).decode()


def start_ledger(
    env: dict[str, str], log: Path, db_url: str, preexec_fn: Callable[[], None] | None = None
) -> Proc:
    proc = python("services.ledger", env={**env, "DATABASE_URL": db_url, "INSTANCE": "t1"}, log_path=log)
    proc.preexec_fn = preexec_fn
    return proc.start()


def stop_ledger(proc: Proc) -> int:
    """SIGTERM once it is up (before, SIGTERM would find no handler yet); its exit code."""
    wait_until(lambda: "ledger ready" in proc.output(), timeout=60, what="the ledger ready")
    return proc.terminate()


def fills_of(engine: sa.Engine) -> list[tuple[str, Decimal]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(t.fills.c.cid, t.fills.c.cum_filled_qty))]


def ingested(engine: sa.Engine, stream: str) -> set[str]:
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(t.ingested.c.entry_id).where(t.ingested.c.stream == stream))
            return {r[0] for r in rows}
    except sa.exc.DBAPIError:
        return set()  # the schema is not there yet, or the server is down


def wait_all_written(engine: sa.Engine, stream: str, ids: set[str], proc: Proc) -> None:
    def done() -> bool:
        assert proc.alive(), proc.output()[-3000:]
        return ids <= ingested(engine, stream)

    wait_until(done, timeout=60, what=f"the ledger writing {len(ids)} entries of {stream}")
