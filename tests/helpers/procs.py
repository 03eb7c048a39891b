"""Real subprocesses for tests: start, SIGKILL, SIGTERM, and poll for a condition."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.helpers import acl

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll predicate until it returns something truthy; fail the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


LIVE: list[Proc] = []  # every started Proc; the conftest kills leftovers after each test


class Proc:
    """A child process whose output goes to a log file the test can read."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT) -> None:
        self.args, self.env, self.log_path, self.cwd = args, env, log_path, cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self.preexec_fn: Callable[[], None] | None = None  # run in the child before exec (limits)
        self.shared = False  # True: outlives the test that started it (a module-scoped fixture's)

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.env = acl.service_env(self.args, self.env)  # a service runs as its own Redis user
        self.popen = subprocess.Popen(
            self.args, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=self.preexec_fn,
        )  # fmt: skip
        log.close()
        LIVE.append(self)  # killed after the test unless marked shared
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, no chance to clean up."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.popen is not None
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def frozen(proc: Proc) -> bool:
    """The process is stopped (SIGSTOP, a `:stop` failpoint), per /proc."""
    with open(f"/proc/{proc.pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def base_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BYBIT_", "AUTOMATA_"))}
    env.update(
        {
            "REDIS_URL": redis_url,
            "METRICS_PORT": "0",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "AUTOMATA_CONFIG": str(ROOT / "tests" / "data" / "none.toml"),
        }
    )
    env.update(extra)
    return env


def python(module_or_script: str, *args: str, env: dict[str, str], log_path: Path) -> Proc:
    """`python -m module args` (or `python script.py args` when it ends in .py)."""
    head = (
        [sys.executable, module_or_script]
        if module_or_script.endswith(".py")
        else [sys.executable, "-m", module_or_script]
    )
    return Proc([*head, *args], env, log_path)
