"""The encrypted keystore: round trip, wrong password, file mode and atomic writes, the credential
chain (env > TOML [keys] > keystore), the `keys` CLI (stdin and no-echo prompts), and services
that trade with keystore keys without the key, the secret or the password showing up in any
log, CLI output or Redis key."""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis

from shared.config import ConfigError, load_config
from shared.keystore import KeyPair, Keystore, KeystoreError, WrongPassword
from tests.helpers.procs import ROOT, base_env, python, wait_until
from tests.helpers.sim import running_sim

PASSWORD = "correct horse battery staple"
API_KEY = "KsApiKeyAbCdEf0123456789"
API_SECRET = "KsApiSecretZyXw9876543210"
FAST = {"n": 2**10}  # cheap scrypt for the unit tests; the CLI and services use the default cost (2**17)


def make_store(path: Path, **pairs: KeyPair) -> Keystore:
    store = Keystore.create(path, PASSWORD, **FAST)
    for venue, pair in pairs.items():
        store.put(venue, pair)
    store.save()
    return store


def test_round_trip_file_mode_and_nothing_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "ks" / "keystore.json"
    make_store(path, binance=KeyPair(API_KEY, API_SECRET), bybit=KeyPair("bybitkey0000000", "bybitsecret000"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["keystore.json"], "no temp file left behind"
    raw = path.read_bytes()
    for secret in (API_KEY, API_SECRET, PASSWORD, "bybitsecret000"):
        assert secret.encode() not in raw
    doc = orjson.loads(raw)
    assert doc["format"] == "automata-keystore" and doc["kdf"]["name"] == "scrypt"

    store = Keystore.open(path, PASSWORD)
    assert store.venues() == ["binance", "bybit"]
    assert store.get("binance") == KeyPair(API_KEY, API_SECRET)
    assert API_SECRET not in repr(store.get("binance")) and API_KEY not in str(store.get("binance"))
    assert store.remove("bybit") and not store.remove("bybit")
    store.save()
    assert Keystore.open(path, PASSWORD).venues() == ["binance"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_wrong_password_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    make_store(path, binance=KeyPair(API_KEY, API_SECRET))
    with pytest.raises(WrongPassword) as info:
        Keystore.open(path, "not the password")
    assert str(info.value) == f"{path}: wrong keystore password"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_damaged_or_swapped_entries_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    make_store(path, a=KeyPair(API_KEY, API_SECRET), b=KeyPair("otherkey00000000", "othersecret0000"))
    doc = orjson.loads(path.read_bytes())
    doc["entries"]["a"], doc["entries"]["b"] = doc["entries"]["b"], doc["entries"]["a"]
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(KeystoreError, match="does not match its seal"):
        Keystore.open(path, PASSWORD)
    path.write_text("{not json")
    with pytest.raises(KeystoreError, match="not a valid keystore file"):
        Keystore.open(path, PASSWORD)


def test_credential_chain_env_then_toml_then_keystore(tmp_path: Path) -> None:
    ks = tmp_path / "secret" / "keys.json"
    make_store(
        ks,
        binance=KeyPair("ksbinancekey0000", "ksbinancesecret0"),
        bybit=KeyPair("ksbybitkey000000", "ksbybitsecret000"),
        sim=KeyPair("kssimkey00000000", "kssimsecret00000"),
    )
    cfg_file = tmp_path / "automata.toml"
    cfg_file.write_text(
        'keystore = "secret/keys.json"\n[keys.bybit]\napi_key = "tomlbybitkey00"\napi_secret = "tomlbybitsec00"\n'
    )
    password_file = tmp_path / "password"  # as a docker secret: /run/secrets/...
    password_file.write_text(PASSWORD + "\n")
    env = {
        "AUTOMATA_KEYSTORE_PASSWORD_FILE": str(password_file),
        "BINANCE_API_KEY": "envbinancekey00",
        "BINANCE_API_SECRET": "envbinancesec00",
    }
    cfg = load_config(cfg_file, env=env)
    assert cfg.keys["binance"].api_key == "envbinancekey00"  # env wins
    assert cfg.keys["bybit"].api_key == "tomlbybitkey00"  # then the TOML
    assert cfg.keys["sim"].api_secret == "kssimsecret00000"  # then the keystore

    assert set(load_config(cfg_file, env={}).keys) == {"bybit"}, "no password: the keystore stays shut"
    with pytest.raises(ConfigError, match=r"keys\.json: wrong keystore password"):
        load_config(cfg_file, env={"AUTOMATA_KEYSTORE_PASSWORD": "wrong password"})
    with pytest.raises(ConfigError, match="keystore file not found"):
        load_config(
            cfg_file,
            env={"AUTOMATA_KEYSTORE_PASSWORD": PASSWORD, "AUTOMATA_KEYSTORE": str(tmp_path / "nope")},
        )


def test_keys_left_locked_in_the_keystore_are_named_with_the_password_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`automata keys add binance`, then `automata doctor` (or the order gateway) in a shell
    without the keystore's password said "no API keys (set BINANCE_API_KEY...)", as if the keys
    had never been stored: it names the keystore that holds them and the variable to set."""
    from services.order_gateway.venues import credentials

    make_store(
        tmp_path / "var/secrets/keystore.json", binance=KeyPair("ksbinancekey0000", "ksbinancesecret0")
    )
    cfg_file = tmp_path / "automata.toml"
    cfg_file.write_text('[venues.binance]\nkind = "binance"\n[venues.bybit]\nkind = "bybit"\n')
    for name in ("AUTOMATA_KEYSTORE", "AUTOMATA_KEYSTORE_PASSWORD", "AUTOMATA_KEYSTORE_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTOMATA_CONFIG", str(cfg_file))
    monkeypatch.setenv("AUTOMATA_HOME", str(tmp_path))
    cfg = load_config(cfg_file, env={"AUTOMATA_HOME": str(tmp_path)})
    with pytest.raises(ConfigError) as locked:
        credentials(cfg, "binance")
    assert str(locked.value) == (
        f"venue 'binance': no API keys: its keys are in the keystore {tmp_path}/var/secrets/keystore.json, "
        "which is locked: set AUTOMATA_KEYSTORE_PASSWORD (or AUTOMATA_KEYSTORE_PASSWORD_FILE) in the "
        "environment or .env to unlock it"
    )
    with pytest.raises(ConfigError, match=r"no API keys \(set BYBIT_API_KEY/_API_SECRET"):
        credentials(cfg, "bybit")  # not in the keystore: the usual advice
    monkeypatch.setenv("AUTOMATA_KEYSTORE_PASSWORD", PASSWORD)
    unlocked = load_config(cfg_file, env=dict(os.environ))
    assert credentials(unlocked, "binance").api_key == "ksbinancekey0000"


# -- the CLI ---------------------------------------------------------------------------------


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return base_env(
        "redis://127.0.0.1:1/0",
        AUTOMATA_CONFIG=str(tmp_path / "automata.toml"),
        AUTOMATA_HOME=str(tmp_path),
        **extra,
    )


def default_keystore(home: Path) -> Path:
    return home / "var" / "secrets" / "keystore.json"


def keys_cli(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.keys", *args],
        input=stdin,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_add_list_remove_never_prints_a_secret(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    path = default_keystore(tmp_path)  # default: under AUTOMATA_HOME/var
    outputs = []

    added = keys_cli(["add", "binance", "--stdin"], env, f"{API_KEY}\n{API_SECRET}\n{PASSWORD}\n")
    outputs.append(added)
    assert added.returncode == 0, added.stderr
    assert f"stored keys for binance (api key {API_KEY[:4]}…) in {path}" in added.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, "var/secrets: the owner's only"

    again = keys_cli(["add", "binance", "--stdin"], env, f"{API_KEY}x\n{API_SECRET}x\n{PASSWORD}\n")
    outputs.append(again)
    assert again.returncode == 1 and "--force" in again.stderr

    env_pw = {**env, "AUTOMATA_KEYSTORE_PASSWORD": PASSWORD}
    outputs.append(keys_cli(["add", "bybit", "--stdin"], env_pw, "bybitkey123456789\nbybitsecret123456\n"))
    assert outputs[-1].returncode == 0, outputs[-1].stderr

    listed = keys_cli(["list", "--stdin"], env, f"{PASSWORD}\n")
    outputs.append(listed)
    assert listed.returncode == 0, listed.stderr
    assert "binance" in listed.stdout and f"{API_KEY[:4]}…" in listed.stdout and "bybi…" in listed.stdout

    wrong = keys_cli(["list", "--stdin"], env, "not my password\n")
    outputs.append(wrong)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == f"error: {path}: wrong keystore password"
    assert "Traceback" not in wrong.stderr + wrong.stdout

    removed = keys_cli(["remove", "bybit"], env_pw)
    outputs.append(removed)
    assert removed.returncode == 0, removed.stderr
    assert Keystore.open(path, PASSWORD).venues() == ["binance"]

    for out in outputs:
        for secret in (API_KEY, API_SECRET, PASSWORD, "bybitsecret123456"):
            assert secret not in out.stdout + out.stderr


def run_in_pty(
    args: list[str], env: dict[str, str], answers: dict[str, str], timeout: float = 30
) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its controlling terminal, answering prompts;
    returns (exit code, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, *args], env)
    shown, pending = b"", dict(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break  # the child closed the terminal
                if not chunk:
                    break
                shown += chunk
                for prompt in list(pending):
                    if shown.rstrip().endswith(prompt.rstrip().encode()):
                        os.write(fd, (pending.pop(prompt) + "\n").encode())
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_cli_prompts_do_not_echo_the_secrets(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    code, shown = run_in_pty(
        ["-m", "cli.keys", "add", "binance"],
        env,
        {
            "API key for binance:": API_KEY,
            "API secret for binance:": API_SECRET,
            "New keystore password:": PASSWORD,
            "Repeat the password:": PASSWORD,
        },
    )
    assert code == 0, shown
    assert "stored keys for binance" in shown
    for secret in (API_KEY, API_SECRET, PASSWORD):
        assert secret not in shown, "a prompt echoed what was typed"
    assert Keystore.open(default_keystore(tmp_path), PASSWORD).get("binance") == KeyPair(API_KEY, API_SECRET)


# -- services -----------------------------------------------------------------------------


def everything_in_redis(client: redis.Redis) -> bytes:
    """Every key name and value, whatever its type, as one blob to grep."""
    parts: list[bytes] = []
    for key in client.scan_iter(count=1000):
        parts.append(key)
        kind = client.type(key).decode()
        if kind == "stream":
            for _id, fields in client.xrange(key):
                parts.extend(b"%s=%s" % kv for kv in fields.items())
        elif kind == "string":
            parts.append(client.get(key) or b"")
        elif kind == "hash":
            parts.extend(b"%s=%s" % kv for kv in client.hgetall(key).items())
        elif kind == "set":
            parts.extend(client.smembers(key))
        elif kind == "zset":
            parts.extend(m for m, _ in client.zrange(key, 0, -1, withscores=True))
        elif kind == "list":
            parts.extend(client.lrange(key, 0, -1))
    return b"\n".join(parts)


def test_services_trade_with_keystore_keys_and_never_leak_them(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path
) -> None:
    # the keys exist only in the keystore (and in the paper venue, which must accept them)
    path = tmp_path / "keystore.json"
    added = keys_cli(
        ["add", "sim", "--stdin", "--keystore", str(path)],
        cli_env(tmp_path),
        f"{API_KEY}\n{API_SECRET}\n{PASSWORD}\n",
    )
    assert added.returncode == 0, added.stderr
    password_file = tmp_path / "keystore_password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    with running_sim(
        tmp_path / "sim", extra_env={"SIM_API_KEY": API_KEY, "SIM_API_SECRET": API_SECRET}
    ) as sim:
        config = tmp_path / "automata.toml"
        config.write_text(
            f'keystore = "{path}"\n[venues.sim]\nkind = "sim"\nbase_url = "{sim.base_url}"\n'
            "[order_gateway]\npoll_every_s = 0.3\n"
        )
        og_env = {
            **env,
            "AUTOMATA_CONFIG": str(config),
            "AUTOMATA_KEYSTORE_PASSWORD_FILE": str(password_file),
            "LOG_LEVEL": "DEBUG",
            "INSTANCE": "ks",
        }
        og = python("services.order_gateway", env=og_env, log_path=tmp_path / "og.log").start()
        try:

            def balances() -> int:
                assert og.alive(), og.output()[-3000:]
                return sync_redis.xlen("account:sim")

            wait_until(balances, timeout=30, what="a balance read from the venue with the keystore's keys")
        finally:
            og.kill()  # its clean stop is tested elsewhere; here only what it wrote matters
        logs = og.output() + sim.proc.output()
    assert '"level":"debug"' in logs, "the gateway logged at DEBUG: the grep below had material"
    blob = everything_in_redis(sync_redis)
    assert b"account:sim" in blob
    for secret in (API_KEY, API_SECRET, PASSWORD):
        assert secret not in logs, f"{secret[:4]}… in a log"
        assert secret.encode() not in blob, f"{secret[:4]}… in Redis"
        assert secret not in added.stdout + added.stderr
