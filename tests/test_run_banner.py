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


def test_the_banner_names_the_bots_of_the_users_bots_file_and_how_to_start_them(
    tmp_path: Path, monkeypatch
) -> None:
    """A bots.toml in AUTOMATA_HOME is not run by `automata run` (README, "Paper trading"): the
    banner said nothing of it, so the user's bot silently never started."""
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.delenv("AUTOMATA_BOTS", raising=False)
    home = Home(tmp_path / "home")
    home.root.mkdir()
    (home.root / "bots.toml").write_text(
        '[[bots]]\nid = "my_dip"\nstrategy = "strategies_user.my_dip:MyDip"\nvenue = "sim"\n'
        'symbol = "BTCUSDT"\ninterval = "1m"\n'
    )
    ready = [
        (Program(name="ledger", state="RUNNING", pid=100, log=""), Heartbeat("ledger", "vm", 100, 9100, 0, 0))
    ]
    for setup in (
        demo.Setup(demo=False, config=home.root / "automata.toml"),
        demo.Setup(demo=True, config=tmp_path / "demo.toml", env={"SIM_SPEED": "120"}, bots=("demo_dca",)),
    ):
        console = run._console()
        console.file = io.StringIO()
        run._print_summary(console, home, 6481, ready, setup)
        text = console.file.getvalue()
        assert "my_dip) are not started by `automata run`" in text, text
        assert "REDIS_URL=redis://127.0.0.1:6481/0 REDIS_USER=admin" in text and "--bot my_dip" in text
        assert (f"AUTOMATA_CONFIG={tmp_path / 'demo.toml'}" in text) == setup.demo
