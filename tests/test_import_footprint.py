"""What each service process imports: modules it never uses cost memory in every process
(bench/footprint.py, docs/BENCHMARKS.md). The figures themselves are the bench's; these tests
keep the cuts made (never a measure of memory or time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.procs import ROOT

HEAVY = ("redis", "sqlalchemy", "alembic", "psycopg", "sqlalchemy.dialects.postgresql", "binance", "aiohttp")


def imported(module: str) -> set[str]:
    """Which of HEAVY `import module` brings into a fresh interpreter."""
    probe = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
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
    ],
)
def test_a_service_imports_only_what_it_uses(module: str, allowed: set[str]) -> None:
    assert imported(module) <= allowed
