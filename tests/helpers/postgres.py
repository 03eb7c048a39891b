"""A real PostgreSQL for the tests: a cluster of its own (initdb + pg_ctl) on a free port in a
temporary directory, or the server TEST_DATABASE_URL names. Each test gets a fresh database.

PostgreSQL refuses to run as root: under root the cluster's files and processes belong to
`nobody` (subprocess `user=`), as a normal user they are the user's own. The cluster trades
durability for speed where a process crash cannot tell (fsync off: a SIGKILLed server still
finds its committed data in the OS cache), never synchronous_commit.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg
from sqlalchemy.engine import make_url

from shared.redis_server import free_port

TEST_URL_ENV = "TEST_DATABASE_URL"
REQUIRE_ENV = "AUTOMATA_REQUIRE_POSTGRES"  # .ci/run sets it: no PostgreSQL is then a failure
SKIP_REASON = (
    "PostgreSQL tests need PostgreSQL's server binaries (Debian/Ubuntu: sudo apt-get install postgresql) "
    f"or {TEST_URL_ENV}=postgresql://USER:PASSWORD@HOST:PORT/DB of a server where USER may create databases"
)
UNPRIVILEGED = "nobody"


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb, else the directory of initdb on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name or 0)
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresCluster:
    """initdb + pg_ctl in a temporary directory; `kill()` SIGKILLs it, `start()` brings it back."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="automata-pg-"))
        self.data = self.root / "data"
        self.user: dict[str, Any] = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam(UNPRIVILEGED)
            self.user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: object) -> None:
        cmd = [str(self.bin_dir / tool), *map(str, args)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, **self.user)
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
            )

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresCluster:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=50 -c shared_buffers=16MB"
        )
        self._run(
            "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.root / "server.log",
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        return self

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """SIGKILL the server (postmaster and backends), as a crash would."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        try:
            procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            with_suppressed(proc.send_signal, signal.SIGKILL)
        psutil.wait_procs(procs, timeout=30)

    def stop(self) -> None:
        if self.postmaster_pid() is not None and (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
            except RuntimeError:
                self.kill()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def with_suppressed(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except psutil.NoSuchProcess:
        pass


class PostgresServer:
    """Where the tests' databases are made: a cluster of their own or TEST_DATABASE_URL's server."""

    def __init__(self, admin_url: str, cluster: PostgresCluster | None = None) -> None:
        self.admin_url = admin_url
        self.cluster = cluster

    @classmethod
    def locate(cls) -> PostgresServer | None:
        """TEST_DATABASE_URL's server, else a new cluster, else None (no PostgreSQL here)."""
        if os.environ.get(TEST_URL_ENV):
            return cls(os.environ[TEST_URL_ENV])
        bin_dir = find_bin_dir()
        if bin_dir is None:
            return None
        cluster = PostgresCluster(bin_dir)
        try:
            cluster.start()
        except BaseException:
            cluster.remove()
            raise
        return cls(cluster.admin_url, cluster)

    def _admin(self) -> psycopg.Connection:
        url = make_url(self.admin_url).set(drivername="postgresql")
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL (postgresql+psycopg://)."""
        name = f"automata_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(self.admin_url).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.remove()
