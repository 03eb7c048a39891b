"""What each service process imports: modules it never uses cost memory in every process
(bench/footprint.py, docs/BENCHMARKS.md). The figures themselves are the bench's; these tests
keep the cuts made (never a measure of memory or time)."""

from __future__ import annotations

import compileall
import os
import subprocess
import sys

import pytest

from cli.lean import lean_env, optimized_bytecode
from tests.helpers.procs import ROOT

HEAVY = ("redis", "sqlalchemy", "alembic", "psycopg", "sqlalchemy.dialects.postgresql", "binance", "aiohttp")


def imported(module: str, among: tuple[str, ...] = HEAVY) -> set[str]:
    """Which of `among` `import module` brings into a fresh interpreter."""
    probe = f"import sys, {module}; print(' '.join(m for m in {among!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("services.exchange_sim.__main__", {"aiohttp"}),  # the paper venue has no Redis client
        ("services.ledger.__main__", {"redis", "sqlalchemy"}),  # migrations and PostgreSQL: on demand
        ("services.notifier.__main__", {"redis"}),  # the ledger's readers: on a /profit command
        ("services.strategy_runner.__main__", {"redis"}),
        ("services.market_gateway.__main__", {"redis"}),  # python-binance: for a Binance venue
        ("services.order_gateway.__main__", {"redis"}),
        ("services.web.__main__", {"redis"}),  # the ledger's readers: when a page asks for history
    ],
)
def test_a_service_imports_only_what_it_uses(module: str, allowed: set[str]) -> None:
    assert imported(module) <= allowed


SERVICES = [
    "services.exchange_sim.__main__", "services.ledger.__main__", "services.notifier.__main__",
    "services.strategy_runner.__main__", "services.market_gateway.binance_venue",
    "services.order_gateway.venues.binance", "services.order_gateway.venues.bybit", "services.web.__main__",
    "supervisor.supervisord",
]  # fmt: skip


def test_every_service_imports_without_docstrings_or_asserts() -> None:
    """`automata run` runs them with PYTHONOPTIMIZE=2 (cli/lean.py)."""
    probe = f"import importlib; [importlib.import_module(m) for m in {SERVICES!r}]; print(__debug__)"
    done = subprocess.run(
        [sys.executable, "-OO", "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stdout + done.stderr


def test_no_docstrings_only_where_their_bytecode_is_compiled(tmp_path, monkeypatch) -> None:
    module = tmp_path / "lean_probe.py"
    module.write_text('"""A docstring."""\nVALUE = 1\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not optimized_bytecode(["lean_probe"]) and lean_env({}, ["lean_probe"]) == {}
    assert compileall.compile_file(str(module), quiet=1, optimize=2)
    assert optimized_bytecode(["lean_probe"])
    assert lean_env({}, ["lean_probe"]) == {"PYTHONOPTIMIZE": "2"}
    assert lean_env({"PYTHONOPTIMIZE": ""}, ["lean_probe"]) == {}  # the user's own choice stays
    assert not optimized_bytecode(["no_such_module_here"])


def test_strategy_runners_run_a_strategys_asserts(tmp_path) -> None:
    """Every strategy runner program, the demo's and each `deploy supervisor` writes, empties
    PYTHONOPTIMIZE, which Python reads as unset: user code runs as written."""
    from cli.deploy import _PROGRAM

    demo = (ROOT / "deploy" / "supervisord.conf").read_text()
    for conf in (demo, _PROGRAM):
        runners = [
            line for line in conf.splitlines() if line.startswith("environment=") and "INSTANCE=" in line
        ]
        assert runners and all('PYTHONOPTIMIZE=""' in line for line in runners), runners
    done = subprocess.run(
        [sys.executable, "-c", "assert False, 'ran'"],
        env={"PYTHONOPTIMIZE": ""},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "ran" in done.stderr


SYNC_ONLY = (
    "requests",
    "urllib3",
    "dateparser",
    "pytz",
    "regex",
    "tzlocal",
    "Crypto.PublicKey.RSA",
    "Crypto.PublicKey.ECC",
)
METADATA = ("importlib.metadata",)  # redis-py's and websockets' version lookups (shared/redis_lean.py)


@pytest.mark.parametrize(
    "module",
    ["services.market_gateway.binance_venue", "services.order_gateway.venues.binance", "shared.binance_lean"],
)
def test_a_gateway_has_python_binance_without_its_sync_libraries(module: str) -> None:
    assert "binance" in imported(module, ("binance",))
    assert imported(module, SYNC_ONLY) == set()


@pytest.mark.parametrize(
    "module",
    [
        "services.notifier.__main__", "services.web.__main__", "services.strategy_runner.__main__",
        "services.market_gateway.__main__", "services.market_gateway.binance_venue",
        "services.order_gateway.__main__", "services.order_gateway.venues.binance", "services.ledger.__main__",
    ],
)  # fmt: skip
def test_a_service_talks_to_redis_without_importlib_metadata(module: str) -> None:
    assert "redis" in imported(module, ("redis",))
    assert imported(module, METADATA) == set()


def test_a_connection_names_redis_py_without_importlib_metadata(redis_server) -> None:
    """Both clients the services make (asyncio through shared/redis_conn.py, and the web's sync
    one) connect and name redis-py's version (CLIENT SETINFO, Redis >= 7.2) without importlib.metadata;
    a client made without DRIVER_INFO still works (it loads importlib.metadata then)."""
    probe = f"""
import asyncio, sys
import services.web
import redis
from shared.redis_conn import connect
from shared.redis_lean import DRIVER_INFO

async def main():
    client = connect({redis_server.url!r}, client_name="probe")
    assert await client.ping()
    connection = await client.connection_pool.get_connection()
    await client.connection_pool.release(connection)
    await client.aclose()
    return connection.driver_info

sync = redis.Redis.from_url({redis_server.url!r}, driver_info=DRIVER_INFO)
assert sync.ping()
for info in (asyncio.run(main()), sync.connection_pool.get_connection().driver_info):
    assert (info.formatted_name, info.lib_version) == ("redis-py", redis.__version__), info
assert "importlib.metadata" not in sys.modules
plain = redis.Redis.from_url({redis_server.url!r})
assert plain.ping() and plain.connection_pool.get_connection().driver_info.lib_version == redis.__version__
assert "importlib.metadata" in sys.modules
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


def test_deferred_loads_a_module_on_its_first_attribute(tmp_path) -> None:
    """shared/lean_import.py: the library's global is a stand-in until the library uses it, then
    the real module; an annotation read at import gets its text; after the block, `import` is
    the real module."""
    (tmp_path / "lean_heavy.py").write_text("class Thing:\n    pass\n\ndef make():\n    return Thing()\n")
    (tmp_path / "lean_user.py").write_text(
        "import lean_heavy\n\ndef build() -> lean_heavy.Thing:\n    return lean_heavy.make()\n"
    )
    probe = """
import sys
from shared.lean_import import deferred
with deferred(("lean_heavy",), annotations={"lean_heavy": ("Thing",)}):
    import lean_user
assert "lean_heavy" not in sys.modules
assert lean_user.build.__annotations__ == {"return": "lean_heavy.Thing"}
thing = lean_user.build()
import lean_heavy
assert type(thing) is lean_heavy.Thing and lean_user.lean_heavy.Thing is lean_heavy.Thing
assert type(sys.modules["lean_heavy"]).__name__ == "module"
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


def test_the_dashboard_has_uvicorn_without_its_command_line() -> None:
    """shared/uvicorn_lean.py: no click, no multiprocessing, no WebSocket protocol; every other
    name of `uvicorn` still there, its __init__ run on first use."""
    assert imported("services.web.__main__", ("uvicorn", "click", "multiprocessing", "websockets")) == {
        "uvicorn"
    }
    probe = """
import sys
from shared.uvicorn_lean import Config, Server
from uvicorn import Config as PackageConfig
assert PackageConfig is Config and "click" not in sys.modules
import uvicorn
assert uvicorn.Server is Server and callable(uvicorn.run) and "click" in sys.modules
assert uvicorn.Config is Config and uvicorn.__version__
try:
    uvicorn.no_such_name
except AttributeError:
    print("ok")
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
