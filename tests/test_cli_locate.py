"""Every command finds the system it should talk to (cli/connect.py), says so, and fails cleanly.

One real demo (`automata run`) on moved ports (AUTOMATA_REDIS_PORT, SIM_PORT, METRICS_PORT=0)
serves the whole module; the commands run as a user runs them, in AUTOMATA_HOME with no REDIS_URL
and no AUTOMATA_CONFIG. Its paper venue lists BNBUSDT (SIM_SYMBOLS) and starts its market in 2021
(SIM_START), two things a paper venue on the default port does not show: a command that answers
with them reached this demo.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

import pytest

from cli.state import RunState, Tracked, write_state
from shared.redis_server import free_port
from tests.helpers.cli import PLAIN
from tests.helpers.demo import admin, demo_env, running_demo
from tests.helpers.procs import ROOT, wait_until

BOTS = ("demo_dca", "demo_fractal", "demo_grid", "demo_manual")


def automata(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`automata ARGS` run in AUTOMATA_HOME, as a user there runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**env, **PLAIN, "PYTHONPATH": str(ROOT)},
        cwd=env["AUTOMATA_HOME"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(env: dict[str, str], *args: str) -> str:
    res = automata(env, *args)
    assert res.returncode == 0, f"automata {' '.join(args)}: {res.stdout}{res.stderr}"
    assert "Traceback" not in res.stderr
    return res.stdout


def last_number(line: str) -> Decimal:
    return Decimal(line.split()[-1].replace(",", ""))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("locate")
    env = demo_env(root / "home")
    env["SIM_START"] = "2021-06-01"
    env["SIM_SYMBOLS"] = "BTCUSDT,ETHUSDT,BTCUSDC,BNBUSDT"
    with running_demo(env, root / "run.log"):
        yield env


@pytest.mark.slow
def test_reading_commands_answer_from_the_demo_on_its_moved_ports(demo, tmp_path: Path) -> None:
    home, port, sim_port = demo["AUTOMATA_HOME"], demo["AUTOMATA_REDIS_PORT"], demo["SIM_PORT"]
    config = f"{home}/var/run/demo.toml"  # the copy pointing at the moved paper venue
    system = f"system: automata run in {home} (pid "
    status = ok(demo, "status")
    assert (
        system in status and f"  redis 127.0.0.1:{port}, paper venue :{sim_port}\n  config {config}" in status
    )

    doctor = ok(demo, "doctor")
    assert system in doctor and f"paper venue :{sim_port}" in doctor
    assert f"✓ config        {config}: valid; venues: sim" in doctor
    assert "✓ sim clock" in doctor and "✓ sim keys" in doctor
    assert f"127.0.0.1:{port}/0 answers" in doctor

    assert "strategy_runner" in ok(demo, "health")
    wait_until(lambda: all(b in ok(demo, "bots") for b in BOTS), timeout=60, interval=0.5, what="every bot")
    wait_until(lambda: "demo_" in ok(demo, "orders", "--all"), timeout=60, interval=0.5, what="orders")
    wait_until(lambda: automata(demo, "balance").returncode == 0, timeout=60, interval=0.5, what="balances")
    assert "ETH" in ok(demo, "balance", "sim", "--live")

    ticker = ok(demo, "ticker", "BNBUSDT")  # a symbol only this demo's paper venue lists
    last = next(line for line in ticker.splitlines() if line.strip().startswith("last price"))
    assert last_number(last) > 0 and "BNBUSDT on sim" in ticker
    book = ok(demo, "book", "BNBUSDT")
    mid = next(line for line in book.splitlines() if line.startswith("spread"))
    assert last_number(mid) > 0

    assert "reconciled sim: checked" in ok(demo, "reconcile", "sim")
    wait_until(lambda: automata(demo, "tail", "notify", "-n", "3").returncode == 0, timeout=60, what="notify")
    assert "notification" in ok(demo, "tail", "notify", "-n", "3")

    out = tmp_path / "candles.csv"  # 2021: only this demo's market has candles then
    ok(demo, "data", "download", "sim", "BTCUSDT", "1m", "--start", "2021-06-01", "--end", "2021-06-01T01:00",
       "--out", str(out))  # fmt: skip
    assert len(out.read_text().splitlines()) == 60


@pytest.mark.slow
def test_typos_are_refused_with_the_known_names_and_leave_no_trace(demo) -> None:
    r = admin(demo)
    try:
        wait_until(lambda: all(r.exists(f"bot:{b}:state") for b in BOTS), timeout=60, what="bot state")
        res = automata(demo, "pause", "nosuchbot")
        assert res.returncode == 2, res.stdout + res.stderr
        assert "unknown bot 'nosuchbot' (bots: demo_dca, demo_fractal, demo_grid, demo_manual)" in res.stdout
        assert not r.keys("*nosuchbot*")  # no control stream, no key of any kind

        res = automata(demo, "orders", "--bot", "nosuchbot")
        assert res.returncode == 2 and "unknown bot 'nosuchbot'" in res.stdout and "manual" in res.stdout
        res = automata(demo, "ticker", "NOPEUSDT")
        assert res.returncode == 2, res.stdout + res.stderr
        assert "unknown symbol 'NOPEUSDT' on sim (symbols: BNBUSDT, BTCUSDC, BTCUSDT, ETHUSDT)" in res.stdout
        sent = r.xlen("orders:cmd:sim:manual")
        res = automata(demo, "order", "buy", "NOPEUSDT", "0.001", "--wait", "0")
        assert res.returncode == 2 and "unknown symbol 'NOPEUSDT' on sim" in res.stdout
        assert r.xlen("orders:cmd:sim:manual") == sent  # nothing sent
        res = automata(demo, "order", "buy", "BTCUSDT")
        assert res.returncode == 2 and "give QTY (base asset) or --quote AMOUNT" in res.stdout
        assert "not both" not in res.stdout
        assert not r.keys("*nosuchbot*")
    finally:
        r.close()


def nothing_env(home: Path) -> dict[str, str]:
    env = demo_env(home)  # the demo's environment, nothing started
    env.pop("AUTOMATA_REDIS_PORT")
    return env


COMMANDS = [
    ["status"], ["health"], ["bots"], ["orders"], ["balance"], ["balance", "sim", "--live"],
    ["ticker", "BTCUSDT"], ["book", "BTCUSDT"], ["doctor"], ["reconcile", "sim"], ["tail", "notify"],
    ["pause", "demo_dca"], ["resume", "demo_dca"], ["stop", "demo_dca"], ["close", "demo_dca"],
    ["order", "buy", "BTCUSDT", "0.001"],
    ["data", "download", "sim", "BTCUSDT", "1m", "--start", "2024-01-01", "--out", "x.csv"],
]  # fmt: skip


def test_with_nothing_running_every_command_says_so_and_fails(tmp_path: Path) -> None:
    env = nothing_env(tmp_path / "home")
    for args in COMMANDS:
        res = automata(env, *args)
        said = res.stdout + res.stderr
        assert res.returncode != 0, f"{args}: {said}"
        assert "Traceback" not in said, f"{args}: {said}"
        lines = [line for line in said.splitlines() if f"nothing running under {tmp_path / 'home'}" in line]
        assert lines and "`automata run`" in lines[-1], f"{args}: {said}"
        assert "set AUTOMATA_HOME to its directory" in lines[-1], f"{args}: {said}"  # a run elsewhere
    assert not (tmp_path / "home" / "x.csv").exists()


def test_redis_down_is_one_line_for_bots_and_pause(tmp_path: Path) -> None:
    # REDIS_URL naming a port nothing listens on
    env = {**nothing_env(tmp_path / "a"), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    for args in (["bots"], ["pause", "demo_dca"], ["stop", "demo_dca"]):
        res = automata(env, *args)
        assert res.returncode == 1, res.stdout + res.stderr
        assert res.stdout.strip().startswith("cannot reach Redis at redis://127.0.0.1:"), res.stdout
        assert len(res.stdout.strip().splitlines()) == 1 and not res.stderr.strip(), res.stdout + res.stderr

    # the record of a run whose Redis is gone: the runner alive (this process), or gone too
    home = tmp_path / "b"
    env = nothing_env(home)
    (home / "var/run").mkdir(parents=True)
    dead = Tracked(os.getpid(), 0.0)  # a pid with another start time: not that process
    for runner, said in ((Tracked.of(os.getpid()), "has lost its Redis"), (dead, "is gone")):
        write_state(
            home / "var/run/automata.json", RunState(runner=runner, redis=dead, redis_port=free_port())
        )
        for args in (["bots"], ["pause", "demo_dca"]):
            res = automata(env, *args)
            assert res.returncode == 1, res.stdout + res.stderr
            assert f"the automata run under {home}" in res.stdout and said in res.stdout, res.stdout
            assert "`automata down`" in res.stdout and len(res.stdout.strip().splitlines()) == 1
            assert "Traceback" not in res.stderr


def test_version() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and res.stdout.strip() == f"automata {version('automata')}"
