"""Secrets in the config never show (repr, str, exception text), and a config file named by
AUTOMATA_CONFIG that does not exist stops a service and the CLI instead of running on defaults."""

from __future__ import annotations

import socket
import traceback
from pathlib import Path

import pytest

from shared.config import ConfigError, load_config
from shared.logs import redact
from tests.helpers.cli import cli
from tests.helpers.procs import python, wait_until

TOKEN = "123456:TelegramTokenValue"
HOOK_SECRET = "WebhookSecretValue"
HOOK_URL = "https://hooks.example.com/services/T0/B0/HookPathSecret"
API_KEY, API_SECRET = "BinanceKeyValue42", "BinanceSecretValue42"
REDIS_PASSWORD = "RedisPasswordValue"
SECRETS = (TOKEN, HOOK_SECRET, "HookPathSecret", API_KEY, API_SECRET, REDIS_PASSWORD)


def test_config_secrets_never_show(tmp_path: Path) -> None:
    path = tmp_path / "automata.toml"
    path.write_text(
        f'[notifier.telegram]\ntoken = "{TOKEN}"\nchat_ids = [1]\n'
        f'[notifier.webhook]\nurl = "{HOOK_URL}"\nsecret = "{HOOK_SECRET}"\n'
        f'[keys.binance]\napi_key = "{API_KEY}"\napi_secret = "{API_SECRET}"\n'
    )
    cfg = load_config(path, env={"REDIS_URL": f"redis://bot:{REDIS_PASSWORD}@127.0.0.1:6379/0"})
    # the values are there for the code that uses them
    assert (cfg.notifier.telegram.token, cfg.keys["binance"].api_secret) == (TOKEN, API_SECRET)
    try:
        raise RuntimeError(f"cannot start with {cfg}")
    except RuntimeError as exc:
        error = "".join(traceback.format_exception(exc))
    with pytest.raises(AssertionError) as failed:
        assert cfg is None  # pytest's failure text shows the config's repr
    shown = {
        "repr": repr(cfg),
        "str": str(cfg),
        "section": repr(cfg.notifier) + str(cfg.notifier.telegram) + repr(cfg.keys),
        "exception": error,
        "assertion": str(failed.value),
    }
    for what, text in shown.items():
        leaked = [i for i, secret in enumerate(SECRETS) if secret in text]
        assert not leaked, f"{what} shows secret(s) #{leaked}"
    assert "token='***'" in shown["repr"] and "redis://bot:***@127.0.0.1" in shown["repr"]
    assert "chat_ids=[1]" in shown["repr"], "what is not secret still shows"
    assert "HookPathSecret" not in redact(f"POST {HOOK_URL} failed"), "registered for the logs"


def test_a_missing_named_config_stops_services_and_the_cli(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "automata.tmol"  # a typo
    bad = {**env, "AUTOMATA_CONFIG": str(missing), "AUTOMATA_HOME": str(tmp_path / "home")}
    proc = python("services.order_gateway", env=bad, log_path=tmp_path / "og.log").start()
    try:
        assert proc.popen is not None and proc.popen.wait(30) == 2
        assert f"{missing}: file not found" in proc.output()
    finally:
        proc.kill()
    for args in (("reconcile", "sim"), ("doctor",), ("run",)):
        result = cli(bad, *args)
        assert result.returncode != 0 and str(missing) in result.stdout + result.stderr, args
    # `automata run` names the config first even when its Redis port is taken (another run)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = cli({**bad, "AUTOMATA_REDIS_PORT": str(taken.getsockname()[1])}, "run")
    assert result.returncode == 2 and str(missing) in result.stdout, result.stdout + result.stderr


def test_no_config_at_all_still_runs_on_defaults(env: dict[str, str], tmp_path: Path, sync_redis) -> None:
    plain = {k: v for k, v in env.items() if k != "AUTOMATA_CONFIG"}
    proc = python("services.notifier", env={**plain, "INSTANCE": "defaults"}, log_path=tmp_path / "n.log")
    proc.cwd = tmp_path  # no automata.toml here
    proc.start()
    try:
        wait_until(lambda: sync_redis.get("svc:notifier:defaults"), timeout=30, what="notifier heartbeat")
        assert proc.terminate() == 0, proc.output()[-2000:]
    finally:
        proc.kill()
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", env={})  # a path given in code: an error, as before
