"""Running the `automata` command as a user would: a real subprocess (`python -m cli`), with
NO_COLOR and a wide COLUMNS so rich prints stable, plain tables the tests can read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.procs import ROOT, Proc

PLAIN = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


def cli(
    env: dict[str, str], *args: str, timeout: float = 60.0, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    """Run `automata ARGS` to the end (on a console `columns` wide); stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**env, **PLAIN, "COLUMNS": str(columns)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_proc(env: dict[str, str], log: Path, *args: str) -> Proc:
    """`automata ARGS` running in the background (follow modes, concurrent runs); output in log."""
    return Proc([sys.executable, "-m", "cli", *args], {**env, **PLAIN}, log).start()


def rows(output: str) -> dict[str, list[str]]:
    """A rich table's body rows by their first cell: {'BTC': ['1', '0', ...]}."""
    out = {}
    for line in output.splitlines():
        if "│" in line:
            cells = [c.strip() for c in line.split("│")]
            out[cells[0]] = cells[1:]
    return out


def assert_fits(output: str, columns: int = 80) -> None:
    """Nothing cut: no ellipsis, no line wider than the console."""
    assert "…" not in output, output
    assert max((len(line) for line in output.splitlines()), default=0) <= columns, output
