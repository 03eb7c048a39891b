"""`automata run`'s banner prints each service's heartbeat key as it is: `svc:ledger:vm` showed as
`svc📒vm` (rich read `:ledger:` as an emoji code)."""

from __future__ import annotations

import io
from pathlib import Path

from cli import run
from cli.demo import Setup
from cli.heartbeats import Heartbeat
from cli.paths import Home
from cli.supervisor import Program


def test_the_banner_prints_heartbeat_keys_verbatim(tmp_path: Path) -> None:
    console = run.run_console()
    console.file = io.StringIO()
    ready = [
        (Program("ledger", "RUNNING", 11, ""), Heartbeat("ledger", "vm", 11, 9105, 0, 0)),
        (Program("notifier", "RUNNING", 12, ""), Heartbeat("notifier", "smile", 12, 9104, 0, 0)),
    ]
    run._print_summary(console, Home(tmp_path), 6390, ready, Setup(demo=False, config=tmp_path / "a.toml"))
    text = console.file.getvalue()
    assert "svc:ledger:vm" in text and "svc:notifier:smile" in text and "📒" not in text
