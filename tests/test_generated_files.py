"""What the commands write goes under $AUTOMATA_HOME/var (or where a path says), never loose in the
working directory, which is often the clone: `git status` stays clean after a user tries the keys,
the DCA menu's save and a chart. A keystore at its old place (./keystore.json) is still used, with
a one-line hint whose command moves it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backtest.series import synthetic
from cli.paths import Home
from shared import keystore
from tests.helpers.procs import ROOT, base_env
from tests.test_backtest_cli import write_csv

API_KEY, API_SECRET, PASSWORD = "AbCdEfGhIjKlMnOp1234", "sEcReT-0987654321-xyz", "correct horse battery"


def user_env(**extra: str) -> dict[str, str]:
    """A user's environment: no AUTOMATA_CONFIG (the default ./automata.toml, absent here)."""
    env = base_env("redis://127.0.0.1:1/0", **extra)
    del env["AUTOMATA_CONFIG"]
    return env


def automata(cwd: Path, env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        input=stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def save_from_menu(cwd: Path, env: dict[str, str], name: str) -> str:
    """`automata dca menu`, driven by its prompts: every value its default, "yes" only to saving
    (the file prompt answered with `name`), "no" to every other question, so it says bye."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "dca", "menu"],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    shown = b""
    try:
        while True:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            shown += chunk
            prompt = shown.decode(errors="replace").rsplit("\n", 1)[-1]
            if not prompt.endswith("]: "):
                continue
            if re.search(r"\((s/n|y/n|n/s|n/y)[^)]*\)", prompt):
                answer = "y" if re.search(r"save|salvar", prompt, re.I) else "n"
            elif re.search(r"file", prompt, re.I):
                answer = name
            else:
                answer = ""
            proc.stdin.write((answer + "\n").encode())
            proc.stdin.flush()
            shown += b"\n"
    finally:
        proc.stdin.close()
        code = proc.wait(60)
    text = shown.decode(errors="replace")
    assert code == 0, text
    return text


def try_the_commands(cwd: Path, env: dict[str, str], data: Path) -> dict[str, str]:
    """keys add, the DCA menu's save, a plan read back by its bare name, a chart: what each said."""
    said = {}
    said["keys"] = automata(
        cwd, env, "keys", "add", "sim", "--stdin", stdin=f"{API_KEY}\n{API_SECRET}\n{PASSWORD}\n"
    ).stdout
    said["menu"] = save_from_menu(cwd, env, "my_plan.json")
    said["plan"] = automata(cwd, env, "dca", "plan", "my_plan.json", "--price", "100").stdout
    said["chart"] = automata(cwd, env, "chart", "fractals", "BTCUSDT", "1h", "--data", str(data)).stdout
    return said


@pytest.fixture(scope="module")
def candles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(synthetic(3000, seed=5, vol=0.003), tmp_path_factory.mktemp("data") / "c.csv")


def assert_written_under(home: Path, said: dict[str, str]) -> None:
    where = Home(home.resolve())
    written = {
        "keys": where.keystore,
        "menu": where.plans_dir / "my_plan.json",
        "chart": where.charts_dir / "fractals_BTCUSDT_1h.png",
    }
    assert written["keys"] == home.resolve() / "var" / "secrets" / "keystore.json"
    for command, path in written.items():
        assert path.is_file(), f"{command}: {path} not written"
        assert str(path) in said[command], f"{command} did not say where it wrote: {said[command]}"
    assert keystore.Keystore.open(written["keys"], PASSWORD).venues() == ["sim"]
    assert "DCA plan at" in said["plan"], "dca plan found the saved plan by its bare name"


def test_files_go_under_automata_home_not_the_working_directory(tmp_path: Path, candles: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    said = try_the_commands(cwd, user_env(AUTOMATA_HOME=str(home)), candles)
    assert sorted(cwd.iterdir()) == [], "nothing lands in the working directory"
    assert_written_under(home, said)


def test_in_a_clone_only_ignored_var_is_written(tmp_path: Path, candles: Path) -> None:
    """AUTOMATA_HOME unset, the working directory a git clone with the project's .gitignore: its
    `git status` is as clean after the commands as before."""
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(ROOT / ".gitignore", clone / ".gitignore")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(clone)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], check=True)
    said = try_the_commands(clone, user_env(), candles)
    status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=all"], capture_output=True, text=True, check=True
    )
    assert status.stdout == "", f"files in git status:\n{status.stdout}"
    assert_written_under(clone, said)


def test_a_keystore_at_the_old_place_is_used_and_the_hint_moves_it(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    env = user_env(AUTOMATA_HOME=str(home))
    old = cwd / "keystore.json"
    automata(
        cwd,
        env,
        "keys",
        "add",
        "sim",
        "--stdin",
        "--keystore",
        str(old),
        stdin=f"{API_KEY}\n{API_SECRET}\n{PASSWORD}\n",
    )
    before = old.read_bytes()

    listed = automata(cwd, env, "keys", "list", "--stdin", stdin=f"{PASSWORD}\n")
    assert "sim" in listed.stdout and "AbCd…" in listed.stdout, "the old keystore is the one opened"
    hint = listed.stderr.strip()
    assert len(hint.splitlines()) == 1 and "old place" in hint, hint
    assert old.read_bytes() == before and not (home / "var" / "secrets" / "keystore.json").exists(), (
        "nothing moved or rewritten on its own"
    )
    # the services open it too (the order gateway's credential chain), with the hint in their log
    pairs = keystore.load_for_config(
        "", cwd / "automata.toml", {**env, "AUTOMATA_KEYSTORE_PASSWORD": PASSWORD}
    )
    assert pairs["sim"] == keystore.KeyPair(API_KEY, API_SECRET)

    move = re.search(r"`([^`]+)`", hint)
    assert move is not None, hint
    subprocess.run(move.group(1), shell=True, cwd=cwd, check=True)
    moved = automata(cwd, env, "keys", "list", "--stdin", stdin=f"{PASSWORD}\n")
    assert "AbCd…" in moved.stdout and moved.stderr == "", moved.stderr
    assert f"{home.resolve()}/var/secrets/keystore.json" in moved.stdout
    assert sorted(p.name for p in cwd.iterdir()) == [".keystore.json.lock"]  # ignored by .gitignore
