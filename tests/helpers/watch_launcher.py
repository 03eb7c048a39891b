"""Stands in for `automata run` once it is up, without the services: a real redis-server and a
small sleeper in supervisord's place, each in a session of its own as cli/run.py starts them,
a state file, then the same exec into cli/watch.py (cli.run.exec_watcher) as run.py makes.

argv: HOME MODE STOP_TIMEOUT [--term-before-exec]. MODE is how the stand-in takes SIGTERM:
`quick` exits at once, `slow` exits once HOME/release exists, `stubborn` ignores it. On SIGTERM
it first appends `SIGTERM redis_up=True|False` to HOME/stand_in.log: whether Redis was still up.
--term-before-exec: SIGTERM is sent (blocked, so pending) before the exec, for the watcher to take.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli.run import exec_watcher
from cli.state import RunState, Tracked, write_state
from shared.redis_server import RedisServer

STAND_IN = r"""
import os, signal, socket, sys, time
port, log, mode, release = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def note(line):
    with open(log, "a") as f:
        f.write(line + "\n")

def redis_up():
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False

def on_term(*_):
    note(f"SIGTERM redis_up={redis_up()}")
    while mode == "slow" and not os.path.exists(release):
        time.sleep(0.05)
    sys.exit(0)

signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else on_term)
note("ready")
while True:
    time.sleep(60)
"""


def main() -> None:
    home, mode, stop_timeout = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    server = RedisServer(home / "redis").start(new_session=True)
    assert server.proc is not None
    log = home / "stand_in.log"
    stand_in = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, str(server.port), str(log), mode, str(home / "release")],
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not (log.exists() and "ready" in log.read_text()):  # its SIGTERM handler is in place
        assert time.monotonic() < deadline and stand_in.poll() is None, "the stand-in did not start"
        time.sleep(0.02)
    state = home / "automata.json"
    write_state(
        state,
        RunState(Tracked.of(os.getpid()), Tracked.of(server.proc.pid), server.port, Tracked.of(stand_in.pid)),
    )
    print(f"supervisord={stand_in.pid} redis={server.proc.pid} port={server.port}", flush=True)
    if "--term-before-exec" in sys.argv:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        os.kill(os.getpid(), signal.SIGTERM)
    exec_watcher(state, stand_in.pid, server.proc.pid, stop_timeout=stop_timeout)
    raise SystemExit("exec_watcher returned")


if __name__ == "__main__":
    main()
