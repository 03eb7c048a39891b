"""Secrets per service (issue 13, finding 2): from a `.env` holding exchange keys, a Telegram token
and a keystore password, each service takes only what it needs. A strategy runner (user code)
and the market gateway get none of them, in their environment or their config; the order
gateway gets the keys, the notifier the token, the ledger the database URL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.bots import write_bots
from tests.helpers.procs import ROOT, python, wait_until

DOTENV = {
    "BINANCE_API_KEY": "fake-binance-key-7f3a",
    "BINANCE_API_SECRET": "fake-binance-secret-91c2",
    "BYBIT_API_KEY": "fake-bybit-key-02aa",
    "BYBIT_API_SECRET": "fake-bybit-secret-5d1e",
    "TELEGRAM_BOT_TOKEN": "123456:fake-telegram-token",
    "TELEGRAM_CHAT_IDS": "424242424242",
    "NOTIFIER_WEBHOOK_SECRET": "fake-webhook-secret-c0de",
    "AUTOMATA_KEYSTORE_PASSWORD": "fake-keystore-password",
    "DATABASE_URL": "postgresql+psycopg://automata:fake-db-password@127.0.0.1:1/automata",
}
KEYS = {k: v for k, v in DOTENV.items() if k.startswith(("BINANCE_", "BYBIT_", "AUTOMATA_KEYSTORE"))}
# the notifier reads the ledger for /profit, /daily and /trades
NOTIFIER = {k: v for k, v in DOTENV.items() if k.startswith(("TELEGRAM_", "NOTIFIER_", "DATABASE_"))}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".env").write_text("".join(f"{k}={v}\n" for k, v in DOTENV.items()))
    (home / "automata.toml").write_text("")  # AUTOMATA_CONFIG names it: a named file must exist
    return home


def clean_env(env: dict[str, str], home: Path) -> dict[str, str]:
    out = {k: v for k, v in env.items() if k not in DOTENV and not k.startswith(("TELEGRAM_", "NOTIFIER_"))}
    return {**out, "AUTOMATA_HOME": str(home), "AUTOMATA_CONFIG": str(home / "automata.toml")}


def loaded(service: str, env: dict[str, str], home: Path) -> dict[str, object]:
    """What `service`'s config loader leaves in os.environ and the config, in a fresh process."""
    code = (
        "import json, os, sys\n"
        "from shared.config import load_config\n"
        f"cfg = load_config(service={service!r})\n"
        f"secrets = {list(DOTENV.values())!r}\n"
        "print(json.dumps({'environ': sorted(k for k, v in os.environ.items() if v in secrets),\n"
        "  'keys': sorted(cfg.keys), 'token': cfg.notifier.telegram.token,\n"
        "  'webhook': cfg.notifier.webhook.secret, 'repr': [s for s in secrets if s in repr(cfg)]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=home, env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_strategy_runner_and_the_market_gateway_get_no_secret(env, home, tmp_path) -> None:
    env = clean_env(env, home)
    probe = tmp_path / "probe.jsonl"
    bots = write_bots(home / "bots.toml", {"id": "probe", "strategy": "tests.helpers.env_probe:EnvProbe"})
    listed = tmp_path / "secrets.txt"
    listed.write_text("\n".join(DOTENV.values()))
    runner_env = {**env, "ENV_PROBE_OUT": str(probe), "ENV_PROBE_SECRETS": str(listed)}
    runner = python("services.strategy_runner", "--bot", "probe", "--bots", str(bots), env=runner_env,
                    log_path=tmp_path / "runner.log")  # fmt: skip
    runner.cwd = home
    gateway = python("services.market_gateway", env=env, log_path=tmp_path / "mg.log")
    gateway.cwd = home
    try:
        runner.start()
        gateway.start()
        lines = wait_until(
            lambda: probe.is_file() and len(probe.read_text().splitlines()) >= 2 and probe.read_text(),
            timeout=60,
            what="the runner making its bot's strategy",
        )
        assert json.loads(lines.splitlines()[-1]) == [], "a secret of .env in the runner's os.environ"
        for proc in (runner, gateway):
            assert proc.alive(), proc.output()[-2000:]
            environ = Path(f"/proc/{proc.pid}/environ").read_text()
            assert not [v for v in DOTENV.values() if v in environ]
        output = runner.output() + gateway.output()
    finally:
        runner.terminate()
        gateway.terminate()
    for service in ("strategy_runner", "market_gateway"):
        assert loaded(service, env, home) == {
            "environ": [],
            "keys": [],
            "token": "",
            "webhook": "",
            "repr": [],
        }
    assert not [v for v in DOTENV.values() if v in output]


def test_the_order_gateway_gets_the_keys_and_the_notifier_the_token(env, home) -> None:
    env = clean_env(env, home)
    og = loaded("order_gateway", env, home)
    assert og["environ"] == sorted(KEYS) and og["keys"] == ["binance", "bybit"]
    assert og["token"] == og["webhook"] == ""
    notifier = loaded("notifier", env, home)
    assert notifier["environ"] == sorted(NOTIFIER)
    assert notifier["keys"] == [] and notifier["token"] == DOTENV["TELEGRAM_BOT_TOKEN"]
    assert notifier["webhook"] == DOTENV["NOTIFIER_WEBHOOK_SECRET"]


def test_only_the_ledger_and_the_notifier_get_the_database_url(env, home) -> None:
    env = clean_env(env, home)
    assert loaded("ledger", env, home) == {
        "environ": ["DATABASE_URL"],
        "keys": [],
        "token": "",
        "webhook": "",
        "repr": [],
    }
    assert "DATABASE_URL" not in loaded("order_gateway", env, home)["environ"]
    assert "DATABASE_URL" in loaded("notifier", env, home)["environ"]
