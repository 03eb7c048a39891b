"""cli/watch.py, what `automata run` execs into once the system is up: a stdlib-only process of
about 10 MB with the same pid, which stops supervisord, then Redis, on SIGINT/SIGTERM (exit 0),
or when one of them dies by itself (exit 1), and removes the state file.

Driven for real through tests/helpers/watch_launcher.py: a real redis-server and a sleeper in
supervisord's place, then the very exec cli/run.py makes (the full demo is in test_deploy.py)."""

from __future__ import annotations

import ast
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from cli import run, watch
from tests.helpers.procs import Proc, base_env, python, wait_until

STDLIB_ONLY = {"__future__", "collections.abc", "os", "signal", "socket", "sys", "time"}


class Launched:
    """The launcher-become-watcher and the two children it watches."""

    def __init__(self, proc: Proc, home: Path) -> None:
        self.proc, self.home = proc, home
        line = wait_until(lambda: self._line() or self._check_alive(), timeout=30, what="the children")
        fields = dict(f.split("=") for f in line.split())
        self.supervisord, self.redis = int(fields["supervisord"]), int(fields["redis"])

    def _line(self) -> str:
        return next((x for x in self.proc.output().splitlines() if x.startswith("supervisord=")), "")

    def _check_alive(self) -> str:
        """Fail at once, with its output, when the launcher (or watcher) exited."""
        if not self.proc.alive():
            raise AssertionError(f"the launcher exited:\n{self.proc.output()}")
        return ""

    def watcher(self) -> psutil.Process:
        """The launcher's pid once it runs cli/watch.py."""
        me = psutil.Process(self.proc.pid)
        wait_until(
            lambda: self._check_alive() or str(run.WATCHER) in me.cmdline(),
            timeout=30,
            what="the exec into cli/watch.py",
        )
        return me

    def stand_in_log(self) -> str:
        return (self.home / "stand_in.log").read_text()

    def redis_shut_down_cleanly(self) -> bool:
        return "ready to exit" in (self.home / "redis" / "redis.log").read_text()

    def cleanup(self) -> None:
        self.proc.kill()
        for pid in (self.supervisord, self.redis):
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


Launch = Callable[..., Launched]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start the launcher: launch(mode="quick", stop_timeout=30.0, *extra args)."""
    started: list[Launched] = []

    def start(mode: str = "quick", stop_timeout: float = 30.0, *extra: str) -> Launched:
        home = tmp_path / f"home{len(started)}"
        home.mkdir()
        proc = python(
            "tests.helpers.watch_launcher",
            str(home),
            mode,
            str(stop_timeout),
            *extra,
            env=base_env(""),
            log_path=home / "launcher.log",
        ).start()
        started.append(Launched(proc, home))
        return started[-1]

    yield start
    for launched in started:
        launched.cleanup()


def lines(out: str) -> list[str]:
    return [x for x in out.splitlines() if x.strip()]


def test_the_watcher_imports_the_stdlib_only() -> None:
    tree = ast.parse(run.WATCHER.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= STDLIB_ONLY, imported
    cmd = run.watcher_command(Path("/x/automata.json"), 11, 12)
    assert cmd[:4] == [sys.executable, "-S", "-I", str(run.WATCHER)]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])  # SIGHUP: the terminal closed
def test_a_stop_signal_stops_supervisord_then_redis_and_exits_0(launch: Launch, stop: signal.Signals) -> None:
    it = launch()
    watcher = it.watcher()
    assert watcher.memory_info().rss < 15 * 2**20, "the watcher is meant to be small"
    assert {c.pid for c in watcher.children()} == {it.supervisord, it.redis}
    assert (it.home / "automata.json").exists()

    os.kill(it.proc.pid, stop)
    assert it.proc.popen is not None and it.proc.popen.wait(30) == 0, it.proc.output()
    assert "SIGTERM redis_up=True" in it.stand_in_log(), "supervisord is stopped while Redis is up"
    assert it.redis_shut_down_cleanly()
    assert gone(it.supervisord) and gone(it.redis)
    assert not (it.home / "automata.json").exists()
    assert lines(it.proc.output())[-3:] == ["stopping the services...", "stopping Redis...", "stopped"]


@pytest.mark.parametrize("dies", ["supervisord", "redis"])
def test_a_child_dying_stops_the_other_and_exits_1(launch: Launch, dies: str) -> None:
    it = launch()
    it.watcher()
    os.kill(getattr(it, dies), signal.SIGKILL)
    assert it.proc.popen is not None and it.proc.popen.wait(30) == 1, it.proc.output()
    out = it.proc.output()
    name = "supervisord" if dies == "supervisord" else "Redis"
    assert f"{name} exited unexpectedly (killed by SIGKILL)" in out, out
    if dies == "supervisord":
        assert it.redis_shut_down_cleanly()
    else:
        assert "SIGTERM redis_up=False" in it.stand_in_log()
    assert gone(it.supervisord) and gone(it.redis)
    assert not (it.home / "automata.json").exists()
    assert lines(out)[-1] == "stopped (exit 1)"


def test_supervisord_that_does_not_stop_is_killed_and_noted_in_the_exit_code(launch: Launch) -> None:
    it = launch("stubborn", 1.0)
    it.watcher()
    os.kill(it.proc.pid, signal.SIGINT)
    assert it.proc.popen is not None and it.proc.popen.wait(30) == 1, it.proc.output()
    out = it.proc.output()
    assert "supervisord did not stop in time and was killed" in out
    assert gone(it.supervisord) and gone(it.redis)
    assert it.redis_shut_down_cleanly()
    assert lines(out)[-1] == "stopped (exit 1)"


def test_signals_during_the_stop_do_not_abort_it(launch: Launch) -> None:
    it = launch("slow")
    it.watcher()
    os.kill(it.proc.pid, signal.SIGTERM)
    wait_until(lambda: "SIGTERM" in it.stand_in_log(), timeout=30, what="supervisord stopping")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        os.kill(it.proc.pid, sig)
    assert it.proc.alive() and not gone(it.redis), "still waiting for supervisord"
    (it.home / "release").touch()
    assert it.proc.popen is not None and it.proc.popen.wait(30) == 0, it.proc.output()
    assert it.redis_shut_down_cleanly()
    assert gone(it.supervisord) and gone(it.redis)
    assert lines(it.proc.output())[-1] == "stopped"


def test_a_sigterm_sent_before_the_exec_is_not_lost(launch: Launch) -> None:
    it = launch("quick", 30.0, "--term-before-exec")
    assert it.proc.popen is not None and it.proc.popen.wait(30) == 0, it.proc.output()
    assert "SIGTERM redis_up=True" in it.stand_in_log()
    assert it.redis_shut_down_cleanly()
    assert lines(it.proc.output())[-1] == "stopped"


def test_no_exec_when_a_stop_came_first() -> None:
    """A Ctrl-C during the summary: run.py stops in-process, signals unblocked as they were."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    stop = threading.Event()
    stop.set()
    run.exec_watcher(Path("/nonexistent/automata.json"), 1, 2, stop=stop)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before


def test_the_watcher_wakes_supervisord_through_its_control_socket(tmp_path: Path) -> None:
    """While supervisord stops its programs, the watcher connects to its control socket (that
    wakes supervisord's loop, which otherwise notices an exited program up to a second late)."""
    path = tmp_path / "supervisor.sock"
    cmd = run.watcher_command(Path("/x/automata.json"), 11, 12, supervisor_socket=path)
    opts = watch.Options(cmd[4:])
    assert opts.supervisor_socket == str(path)
    wake = watch.waker(opts.supervisor_socket)
    assert wake is not None and watch.waker(None) is None
    wake()  # nothing listens there yet: no error, nothing to wake
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen(1)
        listener.settimeout(5)
        wake()
        conn, _ = listener.accept()
        conn.close()
