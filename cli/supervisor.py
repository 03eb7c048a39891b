"""supervisord driven from Python: start it with deploy/supervisord.conf, ask it over its
XML-RPC socket which programs run, stop it (it stops the programs with SIGTERM first)."""

from __future__ import annotations

import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from cli.paths import SUPERVISORD_CONF, Home
from cli.watch import WAKE_EVERY_S, stop_leftovers, waker

# Long enough for every program's stopwaitsecs (20 s) plus supervisord's own bookkeeping.
STOP_TIMEOUT_S = 60.0


class SupervisorError(RuntimeError):
    pass


@dataclass(frozen=True)
class Program:
    name: str
    state: str  # RUNNING, STARTING, BACKOFF, STOPPED, FATAL, EXITED, ...
    pid: int
    log: str


def rpc(socket_path: Path) -> Any:
    """An XML-RPC proxy over supervisord's unix socket (supervisorctl's own transport)."""
    transport = SupervisorTransport(None, None, f"unix://{socket_path}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


class Supervisord:
    def __init__(self, home: Home, env: dict[str, str], conf: Path = SUPERVISORD_CONF) -> None:
        self.home, self.env, self.conf = home, env, conf
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = home.log_dir / "supervisord.out"

    def start(self) -> Supervisord:
        """Start supervisord in a session of its own (a terminal's Ctrl-C reaches only `automata run`)."""
        self.home.supervisor_socket.unlink(missing_ok=True)
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
                env=self.env,
                cwd=self.home.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                tail = self.output.read_text(errors="replace")[-1500:]
                raise SupervisorError(f"supervisord exited at start:\n{tail}")
            try:
                if rpc(self.home.supervisor_socket).supervisor.getState()["statename"] == "RUNNING":
                    return
            except (OSError, xmlrpc.client.Error):
                pass
            if time.monotonic() > deadline:
                raise SupervisorError(f"supervisord did not answer on {self.home.supervisor_socket}")
            time.sleep(0.05)

    def programs(self) -> list[Program]:
        try:
            infos = rpc(self.home.supervisor_socket).supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error) as exc:
            raise SupervisorError(f"supervisord did not answer: {exc}") from None
        return [Program(i["name"], i["statename"], int(i["pid"]), i["stdout_logfile"]) for i in infos]

    def start_program(self, name: str) -> None:
        try:
            rpc(self.home.supervisor_socket).supervisor.startProcess(name, False)
        except (OSError, xmlrpc.client.Error) as exc:
            raise SupervisorError(f"supervisord could not start {name}: {exc}") from None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """SIGTERM supervisord: it stops every program (SIGTERM, then SIGKILL after stopwaitsecs)
        and exits. True when it exited by itself within timeout. Then any program it left running
        (dead or killed, supervisord does not stop its children) is stopped too (`stop_leftovers`)."""
        if not self.alive():
            if self.proc is not None:
                stop_leftovers(self.proc.pid)
            return True
        assert self.proc is not None
        self.proc.terminate()
        wake = waker(str(self.home.supervisor_socket))
        assert wake is not None
        deadline = time.monotonic() + timeout
        while True:  # woken while it stops its programs in turn (cli/watch.py: waker)
            wake()
            try:
                self.proc.wait(min(WAKE_EVERY_S, max(deadline - time.monotonic(), 0.0)))
                stop_leftovers(self.proc.pid)
                return True
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    break
        self.proc.kill()
        self.proc.wait(5)
        stop_leftovers(self.proc.pid)
        return False
