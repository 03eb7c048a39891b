"""The foreground of `automata run` once the system is up: a stdlib-only watcher (~10 MB RSS).

cli/run.py brings everything up, prints the summary, then replaces itself with this script
(os.execv, same pid) run as `python -S -I cli/watch.py ...`: no site-packages and none of
typer, rich, redis-py or psutil, which would otherwise sit in memory for hours doing nothing
but wait. Because the pid stays, the state file, `automata down` (SIGTERM to that pid) and
the parenthood of Redis and supervisord all carry over: both are still children of this
process, so it sees them exit, and reaps them, with waitpid.

It waits for SIGINT, SIGTERM or SIGHUP (a requested stop or a closed terminal: exit 0) or for supervisord or Redis to exit
by itself (exit 1), then stops supervisord (which stops the programs with SIGTERM), then any
program a dead or killed supervisord left running (`stop_leftovers`), and only then Redis,
removes the state file and says "stopped" — what cli/run.py does in-process.

SIGINT, SIGTERM, SIGHUP and SIGCHLD stay blocked the whole time and are taken with sigtimedwait: run.py
blocks them before the exec, so one sent during the hand-over is pending here rather than lost
(the block is repeated first thing for a start without run.py), and none can interrupt the
stop sequence. Only stdlib imports: the point is what this process does not load.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})  # SIGHUP: terminal closed
WATCHED = STOP_SIGNALS | {signal.SIGCHLD}
POLL_S = 1.0  # SIGCHLD wakes the wait at once; the poll only covers a SIGCHLD lost before the block
KILL_WAIT_S = 5.0
LEFTOVER_STOP_S = 20.0  # a program's own stopwaitsecs: it finishes and acks the entry in hand
WAKE_EVERY_S = 0.05
USAGE = (
    "usage: watch.py --supervisord PID --redis PID --state FILE [--stop-timeout S] [--redis-timeout S] "
    "[--supervisor-socket PATH]\n"
)


def waker(socket_path: str | None) -> Callable[[], None] | None:
    """What wakes supervisord's event loop while it stops: a connection to its control socket.

    supervisord stops its programs one priority after the other, and sees that one has exited
    only when its loop wakes up: its poll has a 1 s timeout and a program's SIGCHLD does not end
    it, and the end of the program's output often comes just before it can be reaped. Unwoken,
    each program cost up to a second more after it had exited (most of `automata down`)."""
    if not socket_path:
        return None

    def wake() -> None:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(WAKE_EVERY_S)
                sock.connect(socket_path)
        except OSError:
            pass  # not there (yet, or any more): nothing to wake

    return wake


class Child:
    """supervisord or Redis, a child of this process: waited for with waitpid, so it is reaped,
    and never signalled once reaped (its pid may then belong to someone else)."""

    def __init__(self, name: str, pid: int) -> None:
        self.name, self.pid = name, pid
        self.gone = False
        self.status: int | None = None  # its wait status, once reaped

    def exited(self) -> bool:
        if self.gone:
            return True
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not our child (not started through cli/run.py): is it there?
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.gone = True
            except PermissionError:
                pass
            return self.gone
        if pid == self.pid:
            self.gone, self.status = True, status
        return self.gone

    def how(self) -> str:
        """How it ended, for the user: an exit status or the signal that killed it."""
        if self.status is None:
            return "status unknown"
        if os.WIFSIGNALED(self.status):
            return f"killed by {signal.Signals(os.WTERMSIG(self.status)).name}"
        return f"exit status {os.waitstatus_to_exitcode(self.status)}"

    def send(self, sig: int) -> None:
        if not self.exited():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float, wake: Callable[[], None] | None = None) -> bool:
        """True once it exited within timeout; SIGCHLD wakes the wait as soon as it does.
        `wake`, when given, is called every WAKE_EVERY_S meanwhile."""
        deadline = time.monotonic() + timeout
        while not self.exited():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if wake is not None:
                wake()
            signal.sigtimedwait([signal.SIGCHLD], min(left, WAKE_EVERY_S if wake else 0.2))
        return True

    def stop(self, timeout: float, wake: Callable[[], None] | None = None) -> bool:
        """SIGTERM, wait up to timeout, then SIGKILL. True when it exited by itself in time."""
        if self.exited():
            return True
        self.send(signal.SIGTERM)
        if self.wait(timeout, wake):
            return True
        self.send(signal.SIGKILL)
        self.wait(KILL_WAIT_S)
        return False


def session_members(sid: int) -> list[int]:
    """Pids of the live (not zombie) processes of session `sid` but its leader, from /proc.

    supervisord runs in a session of its own and its programs stay in it (each in a process
    group of its own), so after supervisord is gone this finds what it left running. The kernel
    does not give a pid to a new process while a session still bears it as its id, so nothing
    of another session is ever found."""
    out = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit() or int(name) == sid:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue  # gone meanwhile
        fields = text[text.rfind(b")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session
        if len(fields) > 3 and fields[0] != b"Z" and int(fields[3]) == sid:
            out.append(int(name))
    return sorted(out)


def _leader_alive(sid: int) -> bool:
    try:
        with open(f"/proc/{sid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return False
    return text[text.rfind(b")") + 2 :][:1] != b"Z"


def leftovers(sid: int) -> list[int]:
    """The programs a dead supervisord (session `sid`) left running; none while it is alive
    (then it stops its own programs), nor when its pid now leads another session (then the
    kernel had no process of the old one left)."""
    return [] if _leader_alive(sid) else session_members(sid)


def stop_leftovers(sid: int, timeout: float = LEFTOVER_STOP_S) -> list[int]:
    """Stop the programs supervisord (session `sid`) left running when it died or was killed:
    SIGKILLed, it does not stop its children, which would go on trading beside the next run,
    holding its ports, with nothing able to stop them. SIGTERM first (each finishes and acks the
    entry in hand while Redis is still up), SIGKILL after timeout. Returns the pids found; none
    while supervisord itself is alive (it stops its own programs)."""
    found = leftovers(sid)
    if not found:
        return found
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, KILL_WAIT_S)):
        left = session_members(sid)
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = session_members(sid)
        if not left:
            break
    return found


class Options:
    def __init__(self, argv: list[str]) -> None:
        if len(argv) % 2:
            raise ValueError("options come in pairs")
        given = dict(zip(argv[::2], argv[1::2], strict=True))
        known = {
            "--supervisord",
            "--redis",
            "--state",
            "--stop-timeout",
            "--redis-timeout",
            "--supervisor-socket",
        }
        unknown = set(given) - known
        if unknown:
            raise ValueError(f"unknown option {sorted(unknown)[0]}")
        self.supervisord = int(given["--supervisord"])
        self.redis = int(given["--redis"])
        self.state = given["--state"]
        self.stop_timeout = float(given.get("--stop-timeout", 60.0))
        self.redis_timeout = float(given.get("--redis-timeout", 10.0))
        self.supervisor_socket = given.get("--supervisor-socket")


def say(text: str, color: str = "") -> None:
    """One line on stdout, unbuffered; a terminal that went away must not stop the stop sequence."""
    if color and os.isatty(1) and not os.environ.get("NO_COLOR"):
        text = f"\033[{color}m{text}\033[0m"
    try:
        os.write(1, f"{text}\n".encode(errors="replace"))
    except OSError:
        pass


def wait_for_stop(children: list[Child]) -> Child | None:
    """Block until a stop signal (None) or until one of the children exits (that child)."""
    timeout = 0.0  # first drain what is already pending: a stop sent during the hand-over
    while True:
        info = signal.sigtimedwait(WATCHED, timeout)
        if info is not None and info.si_signo in STOP_SIGNALS:
            return None
        for child in children:
            if child.exited():
                return child
        timeout = POLL_S


def main(argv: list[str]) -> int:
    # First of all: from here on a SIGINT/SIGTERM waits for sigtimedwait instead of killing us.
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an inherited SIG_IGN would auto-reap them
    try:
        opts = Options(argv)
    except (KeyError, ValueError) as exc:
        sys.stderr.write(f"{USAGE}watch.py: {exc}\n")
        return 2
    supervisord, redis = Child("supervisord", opts.supervisord), Child("Redis", opts.redis)
    code = 0
    died = wait_for_stop([supervisord, redis])
    if died is None:
        say("")  # after the terminal's ^C
    else:
        say(f"{died.name} exited unexpectedly ({died.how()})", "31")
        code = 1
    say("stopping the services...")
    if not supervisord.stop(opts.stop_timeout, waker(opts.supervisor_socket)):
        say("supervisord did not stop in time and was killed", "33")
        code = code or 1
    left = stop_leftovers(supervisord.pid)
    if left:
        say(f"stopped the programs supervisord left running (pids {', '.join(map(str, left))})", "33")
        code = code or 1
    say("stopping Redis...")
    if not redis.stop(opts.redis_timeout):
        say("Redis did not stop in time and was killed", "33")
    try:
        os.unlink(opts.state)
    except FileNotFoundError:
        pass
    say("stopped" if code == 0 else f"stopped (exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
