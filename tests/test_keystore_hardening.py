"""The keystore against a hostile or aged file (issue 13, finding 6): today's scrypt cost for new
files and a re-seal of old ones, KDF parameters bounded, a warning for a file open to others, the
entry list authenticated as a whole, a temporary file never written through a planted symlink,
and junk in the file refused with the keystore's own error naming the field."""

from __future__ import annotations

import base64
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from shared import files, keystore
from shared.keystore import KeyPair, Keystore, KeystoreError, WrongPassword
from tests.helpers.procs import ROOT, base_env

PASSWORD = "correct horse battery staple"
PAIR = KeyPair("HardenApiKey0123456789", "HardenApiSecret987654321")
OTHER = KeyPair("OtherApiKey000000000", "OtherApiSecret0000000")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def legacy_file(path: Path, pairs: dict[str, KeyPair], *, n: int = 2**15, **kdf: Any) -> Path:
    """A version 1 keystore as the code before issue 13 wrote it (written here independently)."""
    salt = os.urandom(16)
    aead = AESGCM(Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(PASSWORD.encode()))

    def sealed(plain: bytes, aad: bytes) -> dict[str, str]:
        nonce = os.urandom(12)
        return {"nonce": b64(nonce), "ct": b64(aead.encrypt(nonce, plain, aad))}

    doc = {
        "format": "automata-keystore",
        "version": 1,
        "kdf": {"name": "scrypt", "salt": b64(salt), "n": n, "r": 8, "p": 1, **kdf},
        "cipher": "AES-256-GCM",
        "check": sealed(b"automata-keystore-check", b"check"),
        "entries": {
            venue: {
                **sealed(
                    orjson.dumps({"api_key": p.api_key, "api_secret": p.api_secret}),
                    f"entry:{venue}".encode(),
                ),
                "updated": "2025-01-01T00:00:00Z",
            }
            for venue, p in pairs.items()
        },
    }
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    path.chmod(0o600)
    return path


def edit(path: Path, change: Any) -> None:
    doc = orjson.loads(path.read_bytes())
    change(doc)
    path.write_bytes(orjson.dumps(doc))


def test_new_files_cost_scrypt_2_17_and_old_files_are_resealed_on_the_next_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = tmp_path / "fresh.json"
    Keystore.create(fresh, PASSWORD).save()
    assert orjson.loads(fresh.read_bytes())["kdf"]["n"] == 2**17

    old = legacy_file(tmp_path / "old.json", {"binance": PAIR, "bybit": OTHER})
    before = orjson.loads(old.read_bytes())
    with caplog.at_level(logging.WARNING, logger="automata.keystore"):
        store = Keystore.open(old, PASSWORD)  # the old parameters still open
    assert "version 1 keystore" in caplog.text and "automata keys upgrade" in caplog.text
    assert store.get("binance") == PAIR and store.reseal_due
    store.save()
    after = orjson.loads(old.read_bytes())
    assert after["version"] == 2 and after["kdf"]["n"] == 2**17 and "seal" in after
    assert after["kdf"]["salt"] != before["kdf"]["salt"], "a fresh salt: nothing of the old file stays valid"
    assert after["entries"]["bybit"]["updated"] == "2025-01-01T00:00:00Z"
    again = Keystore.open(old, PASSWORD)
    assert not again.reseal_due
    assert again.get("binance") == PAIR and again.get("bybit") == OTHER

    # the same through the CLI, for a user who only reads the file otherwise
    cli_old = legacy_file(tmp_path / "cli.json", {"binance": PAIR}, n=2**10)
    env = base_env("redis://127.0.0.1:1/0", AUTOMATA_CONFIG=str(tmp_path / "automata.toml"))
    upgraded = subprocess.run(
        [sys.executable, "-m", "cli.keys", "upgrade", "--stdin", "--keystore", str(cli_old)],
        input=f"{PASSWORD}\n", env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    assert "re-sealed (version 2, scrypt n=131072)" in upgraded.stdout
    assert orjson.loads(cli_old.read_bytes())["kdf"]["n"] == 2**17
    assert PASSWORD not in upgraded.stdout + upgraded.stderr


@pytest.mark.parametrize(
    ("kdf", "field", "problem"),
    [
        ({"n": 2**21}, "kdf.n", "not a power of two from 2 to 1048576"),
        ({"n": 3000}, "kdf.n", "not a power of two"),
        ({"n": "1024"}, "kdf.n", "expected an integer, got str"),
        ({"n": 2**10, "r": 17}, "kdf.r", "17 is not from 1 to 16"),
        ({"n": 2**10, "p": 5}, "kdf.p", "5 is not from 1 to 4"),
        ({"n": 2**20, "r": 9}, "kdf.n", "needs 1152 MiB, over 1024 MiB"),
        ({"n": 2**10, "salt": "AAAA"}, "kdf.salt", "3 bytes, expected 8 to 64"),
    ],
)
def test_kdf_parameters_read_from_the_file_are_bounded(
    tmp_path: Path, kdf: dict[str, Any], field: str, problem: str
) -> None:
    path = legacy_file(tmp_path / "ks.json", {"binance": PAIR}, n=2**10)
    edit(path, lambda doc: doc["kdf"].update(kdf))
    with pytest.raises(KeystoreError) as info:
        Keystore.open(path, PASSWORD)
    assert f"{path}: {field}: " in str(info.value) and problem in str(info.value)
    assert not isinstance(info.value, WrongPassword), "refused before any key is derived"


def test_a_file_open_to_others_warns_with_the_chmod_to_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keystore.json"
    store = Keystore.create(path, PASSWORD, n=2**10)
    store.put("binance", PAIR)
    store.save()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="automata.keystore"):
        store = Keystore.open(path, PASSWORD)
    assert f"{path}: keystore file is open to other users (mode 0o644)" in caplog.text
    assert f"chmod 600 {path}" in caplog.text
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "a write closes it again"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="automata.keystore"):
        Keystore.open(path, PASSWORD)
    assert caplog.text == ""


def test_the_entry_list_is_authenticated_as_a_whole(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    store = Keystore.create(path, PASSWORD, n=2**10)
    store.put("binance", PAIR)
    store.put("bybit", OTHER)
    store.save()
    original = path.read_bytes()
    old_binance = orjson.loads(original)["entries"]["binance"]
    store.put("binance", KeyPair("RotatedKey0000000000", "RotatedSecret000000"))
    store.save()
    current = path.read_bytes()

    def refused(change: Any, match: str = "does not match its seal") -> None:
        path.write_bytes(current)
        edit(path, change)
        with pytest.raises(KeystoreError, match=match):
            Keystore.open(path, PASSWORD)

    refused(lambda doc: doc["entries"].pop("bybit"))  # an entry removed
    refused(lambda doc: doc["entries"].update(binance=old_binance))  # an entry rolled back
    refused(lambda doc: doc["entries"]["bybit"].update(updated="2020-01-01T00:00:00Z"))
    refused(lambda doc: doc.update(note="hello"))
    # relabelled as an unsealed version 1 file, to drop an entry without a seal to break
    refused(
        lambda doc: (doc.update(version=1), doc.pop("seal"), doc["entries"].pop("bybit")),
        match="edited to look unsealed",
    )
    path.write_bytes(current)
    assert Keystore.open(path, PASSWORD).venues() == ["binance", "bybit"]
    # what no file can tell: the whole file replaced by an older copy of itself (see the docstring)
    path.write_bytes(original)
    assert Keystore.open(path, PASSWORD).get("binance") == PAIR

    # a version 1 file has no seal, but each entry is still bound to its venue
    legacy = legacy_file(tmp_path / "v1.json", {"a": PAIR, "b": OTHER}, n=2**10)
    edit(legacy, lambda doc: doc.update(entries={"a": doc["entries"]["b"], "b": doc["entries"]["a"]}))
    with pytest.raises(KeystoreError, match="entry for 'a' is damaged"):
        Keystore.open(legacy, PASSWORD).get("a")


def test_the_temporary_file_is_never_written_through_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keystore.json"
    victim = tmp_path / "victim"
    victim.write_text("not yours")
    # the name the old code used (pid-based, predictable), with a symlink waiting at it
    (tmp_path / f".keystore.json.{os.getpid()}.tmp").symlink_to(victim)
    store = Keystore.create(path, PASSWORD, n=2**10)
    store.put("binance", PAIR)
    store.save()
    assert victim.read_text() == "not yours"
    assert path.is_file() and not path.is_symlink()

    # even a name guessed right is not written through: created new (O_EXCL), never via a link
    guessed = tmp_path / ".keystore.json.guessed.tmp"
    guessed.symlink_to(victim)
    names = iter([guessed])
    real = files._temp_path
    monkeypatch.setattr(files, "_temp_path", lambda p: next(names, None) or real(p))
    store.put("bybit", OTHER)
    store.save()
    assert victim.read_text() == "not yours"
    assert guessed.is_symlink(), "left alone"
    assert Keystore.open(path, PASSWORD).venues() == ["binance", "bybit"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # nor the lock file `automata keys` takes around a read-modify-write
    (tmp_path / ".keystore.json.lock").symlink_to(victim)
    with pytest.raises(KeystoreError, match="cannot open the lock file"), keystore.locked(path):
        pass
    assert victim.read_text() == "not yours"


@pytest.mark.parametrize(
    ("entries", "field"),
    [
        ({"binance": "junk"}, "entries.binance: expected a table, got str"),
        ({"binance": {}}, "entries.binance.nonce: missing"),
        ({"binance": {"nonce": 5, "ct": "AAAA"}}, "entries.binance.nonce: expected text, got int"),
        ({"binance": {"nonce": "not base64!", "ct": "AAAA"}}, "entries.binance.nonce: not base64"),
        ({"bin ance": {}}, "entries: invalid venue name 'bin ance'"),
        ({"binance\n": {}}, "entries: invalid venue name"),
        (["binance"], "entries: expected a table, got list"),
    ],
)
def test_a_junk_entry_is_the_keystores_own_error(tmp_path: Path, entries: Any, field: str) -> None:
    path = legacy_file(tmp_path / "ks.json", {}, n=2**10)  # version 1: no seal to break first
    edit(path, lambda doc: doc.update(entries=entries))
    with pytest.raises(KeystoreError) as info:
        store = Keystore.open(path, PASSWORD)
        [(store.get(v), store.updated(v)) for v in store.venues()]  # what `keys list` does
    assert f"{path}: {field}" in str(info.value)


def test_keys_list_on_a_junk_entry_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    path = legacy_file(tmp_path / "ks.json", {"binance": PAIR}, n=2**10)
    edit(path, lambda doc: doc["entries"].update(bybit=["junk"]))
    env = base_env("redis://127.0.0.1:1/0", AUTOMATA_CONFIG=str(tmp_path / "automata.toml"))
    listed = subprocess.run(
        [sys.executable, "-m", "cli.keys", "list", "--stdin", "--keystore", str(path)],
        input=f"{PASSWORD}\n", env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 1
    assert f"error: {path}: entries.bybit: expected a table, got list" in listed.stderr
    assert "Traceback" not in listed.stderr
