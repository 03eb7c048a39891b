"""Orders per second the paper venue sustains through python-binance on loopback.

Starts `python -m services.exchange_sim` (step mode, rate limits off) on a free port, then
keeps CONCURRENCY AsyncClient requests in flight for DURATION seconds: market orders that
alternate buy and sell, so balances never run out. Prints the figures, then one JSON line.
`--saved` runs the venue with SIM_STATE_DIR set, as `automata run` does (every change written
to its change log before the answer, store.py), to see what keeping its state costs.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.sim import binance_client, running_sim  # noqa: E402

DURATION_S = 5.0
CONCURRENCY = 8


async def _worker(client, worker: int, deadline: float, latencies: list[float]) -> None:
    n = 0
    while time.perf_counter() < deadline:
        side = "BUY" if n % 2 == 0 else "SELL"
        started = time.perf_counter()
        await client.create_order(
            symbol="BTCUSDT",
            side=side,
            type="MARKET",
            quantity="0.001",
            newClientOrderId=f"bench{worker}-{n:06d}",
            newOrderRespType="RESULT",
        )
        latencies.append(time.perf_counter() - started)
        n += 1


async def _run(sim) -> dict[str, float]:
    client = binance_client(sim)
    try:
        await client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")  # warm up
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + DURATION_S
        await asyncio.gather(*(_worker(client, w, deadline, latencies) for w in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    finally:
        await client.close_connection()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "orders": len(latencies),
        "seconds": round(elapsed, 3),
        "concurrency": CONCURRENCY,
        "orders_per_s": round(len(latencies) / elapsed, 1),
        "latency_p50_ms": round(cuts[49] * 1000, 2),
        "latency_p99_ms": round(cuts[98] * 1000, 2),
    }


def main() -> None:
    saved = "--saved" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        env = {"SIM_WEIGHT_LIMIT": "0", "SIM_ORDER_LIMIT_10S": "0", "SIM_BALANCES": "USDT=1000000,BTC=100"}
        if saved:
            env["SIM_STATE_DIR"] = str(Path(tmp) / "state")
        with running_sim(Path(tmp), extra_env=env) as sim:
            figures = asyncio.run(_run(sim))
            accepted = sum(1 for e in sim.control.journal() if e["kind"] == "accepted")
    figures["journal_accepted"] = accepted
    figures["saved_state"] = saved
    what = " (state saved to disk)" if saved else ""
    print(
        f"paper venue via python-binance{what}: {figures['orders']} market orders in {figures['seconds']} s"
    )
    print(f"  {figures['orders_per_s']} orders/s with {CONCURRENCY} requests in flight")
    print(f"  latency p50 {figures['latency_p50_ms']} ms, p99 {figures['latency_p99_ms']} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
