"""What `automata run` prints once everything is up: the programs with their heartbeat keys and
where to look, as plain text (rich's emoji codes and markup never rewrite the data)."""

from __future__ import annotations

import io
from pathlib import Path

from cli import demo, run
from cli.heartbeats import Heartbeat
from cli.paths import Home
from cli.supervisor import Program


def test_the_banner_shows_heartbeat_keys_and_commands_as_they_are(tmp_path: Path, monkeypatch) -> None:
    """`svc:ledger:vm` was printed `svc📒vm` (":ledger:" is an emoji code), so the key a user
    then looks for in Redis was not the one shown."""
    monkeypatch.setenv("COLUMNS", "200")
    ready = [
        (
            Program(name=name, state="RUNNING", pid=100 + i, log=""),
            Heartbeat(name, "vm", 100 + i, 9100 + i, 0, 0),
        )
        for i, name in enumerate(("ledger", "market_gateway", "notifier", "order_gateway", "web"))
    ]
    setup = demo.Setup(demo=True, config=tmp_path / "demo.toml", env={"SIM_SPEED": "120"}, bots=("demo_dca",))
    console = run._console()
    console.file = io.StringIO()
    run._print_summary(console, Home(tmp_path / "home[1]"), 6481, ready, setup)
    text = console.file.getvalue()
    for name in ("ledger", "market_gateway", "notifier", "order_gateway", "web"):
        assert f"svc:{name}:vm" in text, text
    assert "📒" not in text and f"Automata is running under {tmp_path}/home[1]" in text
    assert "redis-cli -p 6481 --user admin --scan --pattern 'dlq:*'" in text
