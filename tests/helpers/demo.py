"""The one-command demo (`automata run` with no config of the user's) started as a real process.

Shared by tests/test_demo.py and bench/footprint.py: a temporary AUTOMATA_HOME without
automata.toml (so the demo config and bots are chosen), free ports for Redis, the paper venue
and every metrics endpoint, and the pids of everything the run started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil
import redis

from shared.redis_server import free_port
from tests.helpers.procs import Proc, base_env, wait_until

RUNNING = "Automata is running"


def demo_env(home: Path) -> dict[str, str]:
    """Environment of a demo under `home`: no AUTOMATA_CONFIG / REDIS_URL (the run picks them)."""
    home.mkdir(parents=True, exist_ok=True)
    env = base_env("", AUTOMATA_HOME=str(home))
    for name in ("REDIS_URL", "AUTOMATA_CONFIG", "AUTOMATA_BOTS", "SIM_DATA", "SIM_SPEED"):
        env.pop(name, None)
    env["AUTOMATA_REDIS_PORT"] = str(free_port())
    env["SIM_PORT"] = str(free_port())
    env["WEB_PORT"] = str(free_port())  # the dashboard: never the fixed 8780 another run may hold
    env["METRICS_PORT"] = "0"  # never the fixed 91xx ports another run may hold
    return env


def start_demo(env: dict[str, str], log: Path) -> Proc:
    home = Path(env["AUTOMATA_HOME"])
    return Proc([sys.executable, "-m", "cli", "run"], env, log, cwd=home).start()


def wait_running(demo: Proc, timeout: float = 90.0) -> None:
    def up() -> bool:
        if not demo.alive():
            raise AssertionError(f"`automata run` exited:\n{demo.output()[-3000:]}")
        return RUNNING in demo.output()

    wait_until(up, timeout=timeout, interval=0.2, what="`automata run` up")


def admin(env: dict[str, str]) -> redis.Redis:
    """A Redis client of the demo's `admin` user (its password file under var/secrets/redis)."""
    password = (Path(env["AUTOMATA_HOME"]) / "var/secrets/redis/admin").read_text().strip()
    return redis.Redis(port=int(env["AUTOMATA_REDIS_PORT"]), username="admin", password=password)


@contextlib.contextmanager
def running_demo(env: dict[str, str], log: Path) -> Iterator[Proc]:
    """The demo started and up for the `with` block (a module's fixture shares it); then stopped
    with Ctrl-C, and whatever of it is left SIGKILLed."""
    run = start_demo(env, log)
    run.shared = True
    pids: list[int] = []
    try:
        wait_running(run)
        pids = [p.pid for p in stack_processes(env).values()]
        yield run
    finally:
        if run.alive():
            assert run.popen is not None
            run.popen.send_signal(signal.SIGINT)
            try:
                run.popen.wait(90)
            except subprocess.TimeoutExpired:
                run.kill()
        for pid in pids:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)


def run_state(env: dict[str, str]) -> dict[str, Any]:
    return orjson.loads((Path(env["AUTOMATA_HOME"]) / "var/run/automata.json").read_bytes())


def stack_processes(env: dict[str, str]) -> dict[str, psutil.Process]:
    """Every process of the running demo by name: redis, supervisord and each program."""
    state = run_state(env)
    out = {
        "redis": psutil.Process(state["redis"]["pid"]),
        "supervisord": psutil.Process(state["supervisord"]["pid"]),
    }
    for child in out["supervisord"].children():
        out[_program_name(child)] = child
    return out


def _program_name(proc: psutil.Process) -> str:
    """A strategy runner's supervisord program (`bot_<id>`, or `bots_<INSTANCE>` for a runner of
    several bots), else the service module (`services.X` -> X)."""
    cmd = proc.cmdline()
    bots = [cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg == "--bot"]
    if len(bots) > 1:
        return f"bots_{proc.environ().get('INSTANCE', '+'.join(bots))}"
    if bots:
        return f"bot_{bots[0]}"
    module = next((c for c in cmd if c.startswith("services.")), proc.name())
    return module.removeprefix("services.")


def sim_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['SIM_PORT']}"


def journal(env: dict[str, str]) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{sim_url(env)}/control/journal", timeout=10) as reply:
        return json.loads(reply.read())


def accepted_by_bot(env: dict[str, str], bots: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The paper venue's accepted orders, by the bot whose cid prefix they carry."""
    out: dict[str, list[dict[str, Any]]] = {bot: [] for bot in bots}
    for entry in journal(env):
        cid = entry.get("client_order_id") or ""
        bot = cid.rsplit("-", 1)[0]
        if entry.get("kind") == "accepted" and bot in out:
            out[bot].append(entry)
    return out
