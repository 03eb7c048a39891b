"""The paper venue as a process: clean stop, health and metrics, speed mode, config, determinism."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import websockets

from tests.helpers.procs import wait_until
from tests.helpers.sim import SimVenue, binance_client, running_sim, start_sim, wait_for_sockets

CSV = """open_time,open,high,low,close,volume
2023-03-01 00:00:00+00:00,23000.00,23010.00,22990.00,23005.00,2
2023-03-01 00:01:00+00:00,23005.00,23020.00,23000.00,23015.50,3
2023-03-01 00:02:00+00:00,23015.50,23016.00,22950.00,22960.00,5
"""


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read().decode()


def get_json(url: str) -> Any:
    return json.loads(get_text(url))


async def test_sigterm_stops_cleanly_with_clients_connected(tmp_path: Path) -> None:
    sim = start_sim(tmp_path, extra_env={"LOG_LEVEL": "DEBUG"})
    client = binance_client(sim)
    try:
        await client.get_account()
        async with websockets.connect(sim.ws_url("/ws/btcusdt@kline_1m")) as ws:
            wait_for_sockets(sim, 1)
            health = get_json(f"{sim.base_url}/health")
            assert health["ok"] is True and health["websockets"] == 1
            metrics = get_text(f"{sim.base_url}/metrics")
            assert 'sim_requests_total{endpoint="/api/v3/account",protocol="binance",status="200"}' in metrics
            assert await asyncio.to_thread(sim.stop) == 0
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1001
    finally:
        await client.close_connection()
        sim.proc.kill()
    log = sim.proc.output()
    assert "stopping" in log and "sim-secret" not in log and "signature=" not in log


def test_speed_mode_runs_the_market_by_itself(tmp_path: Path) -> None:
    with running_sim(tmp_path, speed="6000") as sim:
        wait_until(lambda: sim.control.state()["steps"] >= 40, what="the market to move on its own")
        state = sim.control.speed(0)
        frozen = state["steps"]
        assert sim.control.state()["steps"] == frozen and sim.control.advance(steps=1)["steps"] == frozen + 1


def test_bad_settings_refuse_to_start(tmp_path: Path) -> None:
    from tests.helpers.procs import base_env, python

    env = base_env("redis://127.0.0.1:1/0", SIM_SYMBOLS="DOGEUSDT", SIM_API_SECRET="do-not-print-me")
    proc = python("services.exchange_sim", env=env, log_path=tmp_path / "bad.log").start()
    assert proc.popen is not None and proc.popen.wait(20) == 2
    assert "SIM_SYMBOLS" in proc.output() and "do-not-print-me" not in proc.output()


def test_csv_replay_serves_the_file(tmp_path: Path) -> None:
    data = tmp_path / "binanceus_BTCUSDT_1m.csv"
    data.write_text(CSV)
    with running_sim(tmp_path / "run", data=str(data), extra_env={"SIM_WARMUP": "1"}) as sim:
        sim.control.advance(candles=2)
        rows = get_json(f"{sim.base_url}/api/v3/klines?symbol=BTCUSDT&interval=1m")
        assert [r[0] for r in rows] == [1677628800000, 1677628860000, 1677628920000]
        assert [(r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
            ("23000.00000000", "23010.00000000", "22990.00000000", "23005.00000000", "2.00000000"),
            ("23005.00000000", "23020.00000000", "23000.00000000", "23015.50000000", "3.00000000"),
            ("23015.50000000", "23016.00000000", "22950.00000000", "22960.00000000", "5.00000000"),
        ]
        assert get_json(f"{sim.base_url}/api/v3/ticker/price?symbol=BTCUSDT")["price"] == "22960.00000000"


async def _session(sim: SimVenue) -> list[Any]:
    """The same requests against a venue; what it answered."""
    client = binance_client(sim)
    out: list[Any] = []
    try:
        sim.control.advance(candles=3, steps=1)
        out.append(await client.get_klines(symbol="ETHUSDT", interval="1m", limit=5))
        last = (await client.get_symbol_ticker(symbol="ETHUSDT"))["price"]
        out.append(await client.create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="3"))
        out.append(
            await client.create_order(
                symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="1.5",
                price=f"{float(last) * 1.0005:.2f}", newClientOrderId="d-000001",
            )
        )  # fmt: skip
        sim.control.advance(candles=10)
        out.append(await client.get_order(symbol="ETHUSDT", origClientOrderId="d-000001"))
        out.append(await client.get_my_trades(symbol="ETHUSDT"))
    finally:
        await client.close_connection()
    for item in out[1:3]:
        item.pop("clientOrderId", None)  # python-binance makes up a random one when none is given
    return out


async def test_same_seed_same_answers(tmp_path: Path) -> None:
    with running_sim(tmp_path / "a", seed=11) as a, running_sim(tmp_path / "b", seed=11) as b:
        first, second = await _session(a), await _session(b)
    assert first == second
    assert first[4], "the session should have traded"
    with running_sim(tmp_path / "c", seed=12) as c:
        assert await _session(c) != first
