"""What each service process imports: modules it never uses cost memory in every process
(bench/footprint.py, docs/BENCHMARKS.md). The figures themselves are the bench's; these tests
keep the cuts made (never a measure of memory or time)."""

from __future__ import annotations

import compileall
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


SYNC_ONLY = ("requests", "urllib3", "dateparser", "pytz", "regex", "tzlocal")  # python-binance's sync paths


@pytest.mark.parametrize(
    "module",
    ["services.market_gateway.binance_venue", "services.order_gateway.venues.binance", "shared.binance_lean"],
)
def test_a_gateway_has_python_binance_without_its_sync_libraries(module: str) -> None:
    assert "binance" in imported(module, ("binance",))
    assert imported(module, SYNC_ONLY) == set()


def test_python_binance_keeps_every_feature_through_the_lean_import() -> None:
    """What the deferred libraries serve still works, loading them then: a date string (dateparser,
    pytz), the sync Client (requests); every name of `binance` is there; a later `import requests`
    is the real library."""
    probe = """
import sys
import shared.binance_lean
import binance
from binance import AsyncClient, Client, DepthCacheManager, ThreadedWebsocketManager, KLINE_INTERVAL_1MINUTE
from binance.helpers import date_to_milliseconds
assert "requests" not in sys.modules and "dateparser" not in sys.modules
assert date_to_milliseconds("1 Jan 2024 00:00 UTC") == 1704067200000
client = Client("key", "secret", ping=False)
import requests
assert isinstance(client.session, requests.Session), type(client.session)
assert sys.modules["requests"] is requests and type(requests).__name__ == "module"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
