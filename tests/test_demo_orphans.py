"""A supervisord killed with SIGKILL does not leave the demo's programs running behind it.

supervisord stops its programs only when it is asked to; SIGKILLed (an operator's kill -9, the
OOM killer) it leaves them orphaned: the order gateway, the bots and the paper venue would go
on beside the next run, holding its ports (`automata run` then refuses), and `automata down`
found "nothing running". The programs stay in supervisord's session, so the watcher, and
`automata down` when the watcher is gone too, find and stop them (cli/watch.py
`stop_leftovers`), before Redis.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.helpers.demo import demo_env, stack_processes, start_demo, wait_running
from tests.helpers.procs import Proc, wait_until

pytestmark = pytest.mark.slow


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.Error:
            pass
    return out


def programs(env: dict[str, str]) -> tuple[int, int, int, list[int]]:
    """The run's watcher, supervisord and Redis pids, and its programs' pids (all of them up)."""
    procs = stack_processes(env)
    kids = [p.pid for name, p in procs.items() if name not in ("redis", "supervisord")]
    assert len(kids) >= 6, sorted(procs)
    watcher = psutil.Process(procs["supervisord"].pid).ppid()
    return watcher, procs["supervisord"].pid, procs["redis"].pid, kids


def sigkill(pids: list[int]) -> None:
    for pid in pids:
        psutil.Process(pid).send_signal(signal.SIGKILL)


def test_a_killed_supervisord_leaves_no_program_running(tmp_path: Path) -> None:
    env = demo_env(tmp_path / "home")
    started: list[Proc] = []
    orphans: list[int] = []
    try:
        # -- supervisord alone SIGKILLed: the watcher stops its programs, then Redis, and exits 1
        demo = start_demo(env, tmp_path / "run1.log")
        started.append(demo)
        wait_running(demo)
        _watcher, supervisord, _redis, orphans = programs(env)
        sigkill([supervisord])
        assert demo.popen is not None and demo.popen.wait(90) == 1, demo.output()[-2000:]
        assert "supervisord exited unexpectedly" in demo.output()
        assert alive(orphans) == [], f"programs left running: {alive(orphans)}\n{demo.output()[-1500:]}"

        # -- so the next run starts: no port held, nothing left behind
        demo = start_demo(env, tmp_path / "run2.log")
        started.append(demo)
        wait_running(demo)

        # -- the watcher and supervisord SIGKILLed together: `automata down` stops the orphans
        watcher, supervisord, redis_pid, orphans = programs(env)
        assert watcher == demo.pid
        sigkill([watcher, supervisord])
        wait_until(lambda: not alive([watcher, supervisord]), timeout=10, what="both gone")
        down = subprocess.run([sys.executable, "-m", "cli", "down"], env=env, cwd=env["AUTOMATA_HOME"],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert down.returncode == 0, down.stdout + down.stderr
        assert alive(orphans) == [], f"programs left running: {alive(orphans)}\n{down.stdout}"
        assert alive([redis_pid]) == []
    finally:
        for proc in started:
            proc.kill()
        # what a killed `automata run` left (supervisord, its programs, Redis): never past the test
        subprocess.run([sys.executable, "-m", "cli", "down"], env=env, cwd=env["AUTOMATA_HOME"],
                       capture_output=True, timeout=120, check=False)  # fmt: skip
        for pid in alive(orphans):
            psutil.Process(pid).send_signal(signal.SIGKILL)
