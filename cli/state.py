"""The record a running `automata run` leaves in var/run/automata.json, for `automata down` and
for every other command to find the system (cli/connect.py): its processes, its Redis port, the
config and bots files its services read and the paper venue's port.

Each process is stored with its start time, so a pid the kernel has since given to another
program is never signalled.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import psutil


@dataclass(frozen=True)
class Tracked:
    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> Tracked:
        return cls(pid, psutil.Process(pid).create_time())

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return proc.create_time() == self.create_time and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout: float) -> bool:
        """SIGTERM, wait; SIGKILL if it is still there after timeout. True if it went quietly."""
        self.signal(signal.SIGTERM)
        if self.wait_gone(timeout):
            return True
        self.signal(signal.SIGKILL)
        self.wait_gone(5)
        return False


@dataclass(frozen=True)
class RunState:
    runner: Tracked
    redis: Tracked
    redis_port: int
    supervisord: Tracked | None = None
    config: str = ""  # the config file the services read ("" in a record from an older run)
    bots: str = ""  # the bots file of the bots it runs ("" when none)
    sim_port: int = 0  # the paper venue's port (0: no paper venue)

    def processes(self) -> list[Tracked]:
        return [p for p in (self.runner, self.supervisord, self.redis) if p is not None]


def write_state(path: Path, state: RunState) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(asdict(state), option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def read_state(path: Path) -> RunState | None:
    try:
        doc = orjson.loads(path.read_bytes())
        sup = doc.get("supervisord")
        return RunState(
            runner=Tracked(**doc["runner"]),
            redis=Tracked(**doc["redis"]),
            redis_port=int(doc["redis_port"]),
            supervisord=Tracked(**sup) if sup else None,
            config=str(doc.get("config") or ""),
            bots=str(doc.get("bots") or ""),
            sim_port=int(doc.get("sim_port") or 0),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear_state(path: Path) -> None:
    path.unlink(missing_ok=True)
