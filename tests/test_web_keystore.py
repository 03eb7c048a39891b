"""The dashboard's token in the encrypted keystore: `automata keys web-token` stores it (a random
one, shown once, when none is given) and a real `python -m services.web` takes it from there
when AUTOMATA_WEB_TOKEN and the token file are unset; a locked keystore is one line and exit 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from shared.config import WEB, env_allowed, load_config
from shared.redis_server import RedisServer
from tests.helpers import procs
from tests.helpers.web import TOKEN, start_service

PASSWORD = "keystore-password-9f2c"
ROOT = Path(__file__).resolve().parent.parent


def web_token_cli(path: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    env = procs.base_env("redis://127.0.0.1:1", AUTOMATA_HOME=str(path.parent))
    return subprocess.run([sys.executable, "-m", "cli.keys", "web-token", "--stdin", "--keystore", str(path)],
                          input=stdin, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip


def stored_token(tmp_path: Path) -> tuple[Path, str]:
    """A keystore holding a generated token, and the token as the command showed it once."""
    path = tmp_path / "keystore.json"
    made = web_token_cli(path, f"\n{PASSWORD}\n{PASSWORD}\n")
    assert made.returncode == 0, made.stderr
    shown = re.findall(r"shown once, keep it\): (\S+)", made.stdout)
    assert len(shown) == 1 and len(shown[0]) >= 32 and shown[0] not in path.read_text()
    return path, shown[0]


def test_the_web_service_takes_its_token_from_the_keystore(redis_server: RedisServer, tmp_path: Path) -> None:
    path, token = stored_token(tmp_path)
    proc, base = start_service(redis_server.url, tmp_path, AUTOMATA_WEB_KEYSTORE=str(path),
                               AUTOMATA_WEB_KEYSTORE_PASSWORD=PASSWORD, LOG_LEVEL="DEBUG")  # fmt: skip
    good = httpx.get(base + "/api/bots", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert good.status_code == 200
    wrong = httpx.get(base + "/api/bots", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert wrong.status_code == 401
    assert httpx.post(base + "/api/login", json={"token": token}, timeout=5).status_code == 200
    assert proc.terminate() == 0
    assert token not in proc.output() and PASSWORD not in proc.output() and "dashboard at" in proc.output()


def test_a_locked_keystore_is_one_line_and_exit_2(redis_server: RedisServer, tmp_path: Path) -> None:
    path, token = stored_token(tmp_path)
    env = procs.base_env(
        redis_server.url, AUTOMATA_WEB_KEYSTORE=str(path), AUTOMATA_WEB_KEYSTORE_PASSWORD="not-the-password"
    )
    proc = procs.python("services.web", "--port", "0", env=env, log_path=tmp_path / "web.log").start()
    assert proc.popen is not None and proc.popen.wait(30) == 2
    lines = proc.output().strip().splitlines()
    assert lines == [f"web: {path}: wrong keystore password"]


def test_the_environment_and_the_token_file_win_over_the_keystore(tmp_path: Path) -> None:
    path, token = stored_token(tmp_path)
    env = {"AUTOMATA_WEB_KEYSTORE": str(path), "AUTOMATA_WEB_KEYSTORE_PASSWORD": PASSWORD}
    none = tmp_path / "none.toml"
    none.write_text('[web]\ntoken = "from-the-config-file-0123"\n')
    assert load_config(none, env=env, service=WEB).web.token == token
    # the exchange keys' keystore and its password are not the dashboard's: it never opens that one
    main = {"AUTOMATA_KEYSTORE": str(path), "AUTOMATA_KEYSTORE_PASSWORD": PASSWORD}
    assert load_config(none, env=main, service=WEB).web.token == "from-the-config-file-0123"
    assert not env_allowed(WEB) & {
        "AUTOMATA_KEYSTORE",
        "AUTOMATA_KEYSTORE_PASSWORD",
        "AUTOMATA_KEYSTORE_PASSWORD_FILE",
    }
    file = tmp_path / "web_token"
    file.write_text("from-the-token-file-0123\n")
    assert load_config(none, env={**env, "AUTOMATA_WEB_TOKEN_FILE": str(file)}, service=WEB).web.token == (
        "from-the-token-file-0123"
    )
    assert load_config(none, env={**env, "AUTOMATA_WEB_TOKEN": TOKEN}, service=WEB).web.token == TOKEN
    assert load_config(none, env={}, service=WEB).web.token == "from-the-config-file-0123"
    assert load_config(none, env=env, service="ledger").web.token == ""
