"""The keystore: API keys encrypted at rest with a key derived from the user's password.

Why: keys in a `.env` or TOML file are readable by anything that can read the disk (a backup,
a stolen SD card of a Raspberry Pi). Here they are sealed with AES-256-GCM under a key that
scrypt derives from a password the services get at start, from AUTOMATA_KEYSTORE_PASSWORD or,
better, a docker secret file named by AUTOMATA_KEYSTORE_PASSWORD_FILE (/run/secrets/...).

One JSON file (readable layout, nothing secret in clear):

    {"format": "automata-keystore", "version": 1,
     "kdf": {"name": "scrypt", "salt": <b64>, "n": 32768, "r": 8, "p": 1},
     "cipher": "AES-256-GCM",
     "check": {"nonce": <b64>, "ct": <b64>},            # proves the password, even with no entries
     "entries": {"binance": {"nonce": <b64>, "ct": <b64>, "updated": "2025-01-01T00:00:00Z"}}}

Each entry is sealed with the venue name as associated data, so entries cannot be swapped
between venues unnoticed. A wrong password fails the `check` tag: KeystoreError
"wrong password", never a traceback with ciphertext. Writes go to a temporary file in the same
directory (mode 0600, fsync) renamed over the old one, then the directory is fsynced: a crash
leaves the old file or the new one, never half of one.

Where it is: AUTOMATA_KEYSTORE, else the config's `keystore` field (relative to the config file's
directory), else `keystore.json` beside the config file (./keystore.json with the default config).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shared.logs import register_secret

PATH_ENV = "AUTOMATA_KEYSTORE"
PASSWORD_ENV = "AUTOMATA_KEYSTORE_PASSWORD"
PASSWORD_FILE_ENV = "AUTOMATA_KEYSTORE_PASSWORD_FILE"
DEFAULT_FILENAME = "keystore.json"
FORMAT = "automata-keystore"
VERSION = 1
CIPHER = "AES-256-GCM"
# scrypt cost: 2**15 x 8 = 32 MiB and ~0.1 s on a PC, well within a Raspberry Pi's means.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_CHECK_PLAINTEXT = b"automata-keystore-check"
MIN_PASSWORD = 8
VENUE_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class KeystoreError(Exception):
    """A keystore problem the user can fix; the message names the file, never a secret."""


class WrongPassword(KeystoreError):
    pass


@dataclass(frozen=True)
class KeyPair:
    """An API key pair. Its repr never shows the values."""

    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return f"KeyPair(api_key='{mask(self.api_key)}', api_secret='***')"

    __str__ = __repr__


def mask(api_key: str) -> str:
    """The key's first 4 characters and an ellipsis (nothing at all for a short key)."""
    return f"{api_key[:4]}…" if len(api_key) >= 12 else "…"


def check_venue(venue: str) -> str:
    if not VENUE_RE.match(venue):
        raise KeystoreError(f"invalid venue name {venue!r}: use 1 to 40 of A-Z, a-z, 0-9, _, -")
    return venue


# -- where, and with what password -------------------------------------------------------------


def resolve_path(configured: str, config_file: Path, env: Mapping[str, str]) -> tuple[Path, bool]:
    """(path, explicit): explicit when the user named it (a missing file is then an error)."""
    if env.get(PATH_ENV):
        return Path(env[PATH_ENV]).expanduser(), True
    base = config_file.parent
    if configured:
        path = Path(configured).expanduser()
        return (path if path.is_absolute() else base / path), True
    return base / DEFAULT_FILENAME, False


def password_from_env(env: Mapping[str, str]) -> str | None:
    """AUTOMATA_KEYSTORE_PASSWORD, else the file AUTOMATA_KEYSTORE_PASSWORD_FILE names (one
    trailing newline dropped, as `echo pw > file` leaves one), else None."""
    password = env.get(PASSWORD_ENV)
    if not password and env.get(PASSWORD_FILE_ENV):
        name = env[PASSWORD_FILE_ENV]
        try:
            password = Path(name).read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except OSError as exc:
            raise KeystoreError(f"{PASSWORD_FILE_ENV}={name}: cannot read: {exc.strerror}") from None
    if password:
        register_secret(password)
    return password or None


def load_for_config(configured: str, config_file: Path, env: Mapping[str, str]) -> dict[str, KeyPair]:
    """The keystore's entries for the config's credential chain; {} when there is no password to
    unlock it with, or no file at the default place."""
    path, explicit = resolve_path(configured, config_file, env)
    password = password_from_env(env)
    if password is None:
        return {}
    if not path.exists():
        if explicit:
            raise KeystoreError(f"{path}: keystore file not found")
        return {}
    store = Keystore.open(path, password)
    return {venue: store.get(venue) for venue in store.venues()}


# -- the file ------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(text, validate=True)


# `cryptography` costs ~6 MB per process; every service loads the config, few unlock a keystore,
# so it is imported only when a keystore is really opened or written.
def _crypto() -> tuple[Any, Any, Any]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return InvalidTag, AESGCM, Scrypt


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    Scrypt = _crypto()[2]  # noqa: N806
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode("utf-8"))


class Keystore:
    """An unlocked keystore in memory. `open` or `create`, then `get`/`put`/`remove`, then `save`."""

    def __init__(self, path: Path, key: bytes, kdf: dict[str, Any], check: dict[str, str]) -> None:
        self.path = path
        self._aead = _crypto()[1](key)
        self._kdf = kdf
        self._check = check
        self._entries: dict[str, dict[str, str]] = {}

    @classmethod
    def create(
        cls, path: Path, password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P
    ) -> Keystore:
        """A new, empty keystore (written by `save`)."""
        if len(password) < MIN_PASSWORD:
            raise KeystoreError(f"choose a keystore password of at least {MIN_PASSWORD} characters")
        register_secret(password)
        salt = os.urandom(16)
        key = _derive(password, salt, n, r, p)
        nonce = os.urandom(12)
        sealed = _crypto()[1](key).encrypt(nonce, _CHECK_PLAINTEXT, b"check")
        check = {"nonce": _b64(nonce), "ct": _b64(sealed)}
        kdf = {"name": "scrypt", "salt": _b64(salt), "n": n, "r": r, "p": p}
        return cls(path, key, kdf, check)

    @classmethod
    def open(cls, path: Path, password: str) -> Keystore:
        """Read and unlock; WrongPassword when the password does not open it."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise KeystoreError(f"{path}: keystore file not found") from None
        except OSError as exc:
            raise KeystoreError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            doc = orjson.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError("not an automata keystore")
            if doc.get("version") != VERSION or doc.get("cipher") != CIPHER:
                raise ValueError(f"unsupported version {doc.get('version')!r} / cipher {doc.get('cipher')!r}")
            kdf, check, entries = doc["kdf"], doc["check"], doc.get("entries", {})
            n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
            if (
                kdf.get("name") != "scrypt"
                or not (2 <= n <= 2**20 and n & (n - 1) == 0)
                or not (1 <= r <= 32 and 1 <= p <= 16)
            ):
                raise ValueError("unsupported key derivation parameters")
            salt, nonce, sealed = _unb64(kdf["salt"]), _unb64(check["nonce"]), _unb64(check["ct"])
            if not isinstance(entries, dict):
                raise ValueError("entries is not a table")
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise KeystoreError(f"{path}: not a valid keystore file ({exc})") from None
        if not password:
            raise WrongPassword(f"{path}: no keystore password given")
        register_secret(password)
        key = _derive(password, salt, n, r, p)
        invalid_tag, aesgcm, _ = _crypto()
        try:
            aesgcm(key).decrypt(nonce, sealed, b"check")
        except invalid_tag:
            raise WrongPassword(f"{path}: wrong keystore password") from None
        store = cls(path, key, {"name": "scrypt", "salt": kdf["salt"], "n": n, "r": r, "p": p}, check)
        store._entries = entries
        return store

    def venues(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, venue: str) -> bool:
        return venue in self._entries

    def get(self, venue: str) -> KeyPair:
        sealed = self._entries.get(venue)
        if sealed is None:
            raise KeystoreError(f"{self.path}: no keys for venue {venue!r}")
        try:
            plain = self._aead.decrypt(_unb64(sealed["nonce"]), _unb64(sealed["ct"]), _aad(venue))
            doc = orjson.loads(plain)
            pair = KeyPair(api_key=str(doc["api_key"]), api_secret=str(doc["api_secret"]))
        except (_crypto()[0], ValueError, KeyError, TypeError, binascii.Error):
            raise KeystoreError(f"{self.path}: the entry for {venue!r} is damaged") from None
        register_secret(pair.api_key)
        register_secret(pair.api_secret)
        return pair

    def updated(self, venue: str) -> str:
        return str(self._entries.get(venue, {}).get("updated", ""))

    def put(self, venue: str, pair: KeyPair) -> None:
        check_venue(venue)
        if not pair.api_key or not pair.api_secret:
            raise KeystoreError("the API key and the API secret cannot be empty")
        register_secret(pair.api_key)
        register_secret(pair.api_secret)
        nonce = os.urandom(12)
        plain = orjson.dumps({"api_key": pair.api_key, "api_secret": pair.api_secret})
        self._entries[venue] = {
            "nonce": _b64(nonce),
            "ct": _b64(self._aead.encrypt(nonce, plain, _aad(venue))),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def remove(self, venue: str) -> bool:
        return self._entries.pop(venue, None) is not None

    def save(self) -> None:
        """Write atomically: temp file (0600) + fsync + rename + directory fsync."""
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": self._kdf,
            "cipher": CIPHER,
            "check": self._check,
            "entries": dict(sorted(self._entries.items())),
        }
        write_atomic(self.path, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


def _aad(venue: str) -> bytes:
    return f"entry:{venue}".encode()


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so a crash leaves either the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask cannot widen it, nor an older temp file
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of one keystore between processes (two `keys add` at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
