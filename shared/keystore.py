"""The keystore: API keys encrypted at rest with a key derived from the user's password.

Why: keys in a `.env` or TOML file are readable by anything that can read the disk (a backup,
a stolen SD card of a Raspberry Pi). Here they are sealed with AES-256-GCM under a key that
scrypt derives from a password the services get at start, from AUTOMATA_KEYSTORE_PASSWORD or,
better, a docker secret file named by AUTOMATA_KEYSTORE_PASSWORD_FILE (/run/secrets/...).

One JSON file (readable layout, nothing secret in clear):

    {"format": "automata-keystore", "version": 2,
     "kdf": {"name": "scrypt", "salt": <b64>, "n": 131072, "r": 8, "p": 1},
     "cipher": "AES-256-GCM",
     "check": {"nonce": <b64>, "ct": <b64>},            # proves the password, even with no entries
     "entries": {"binance": {"nonce": <b64>, "ct": <b64>, "updated": "2025-01-01T00:00:00Z"}},
     "seal": {"nonce": <b64>, "tag": <b64>}}            # authenticates everything above, as a whole

Each entry is sealed with the venue name as associated data, so entries cannot be swapped
between venues unnoticed; the `seal` is an AES-GCM tag (empty plaintext) under the same key over
the canonical JSON of the rest of the document, so an entry cannot be removed, added or rolled
back to an older value by editing the file either (only the whole file can be replaced by an
older copy of itself: no file can tell it is not the newest). A wrong password fails the `check`
tag: WrongPassword, never a traceback with ciphertext. The `check` of version 2 uses its own
associated data, so a version 2 file cannot be passed off as an unsealed version 1 file.

Version 1 files (no seal, scrypt N = 2**15) still open, with a warning; the next write (`automata
keys add|remove|upgrade`) re-seals them: a fresh salt, today's scrypt cost, every entry encrypted
again, version 2. KDF parameters read from a file are bounded (N <= 2**20, r <= 16, p <= 4, at most
1 GiB of memory): a file cannot make the services allocate gigabytes. A file readable or writable
by the group or others opens with a warning naming the chmod to run (not a refusal: the content
is sealed, the risk is offline password guessing, and a container whose uid differs from the
file's owner may need a wider mode); every write leaves it 0600.

Writes go to a temporary file with an unpredictable name in the same directory (created with
O_EXCL|O_NOFOLLOW, mode 0600: a planted file or symlink is never written through), fsynced,
renamed over the old one, then the directory is fsynced: a crash leaves the old file or the new
one, never half of one.

Where it is: AUTOMATA_KEYSTORE, else the config's `keystore` field (relative to the config file's
directory), else $AUTOMATA_HOME/var/secrets/keystore.json (AUTOMATA_HOME defaults to the working
directory, as for `automata run`: never a file in a clone's `git status`). A keystore at the old
default place, `keystore.json` beside the config file, is still used, with a one-line hint on how
to move it: it holds the user's keys, so nothing moves or deletes it on its own.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import logging
import os
import re
import shlex
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from shared.files import write_atomic
from shared.logs import register_secret

log = logging.getLogger("automata.keystore")

PATH_ENV = "AUTOMATA_KEYSTORE"
PASSWORD_ENV = "AUTOMATA_KEYSTORE_PASSWORD"
PASSWORD_FILE_ENV = "AUTOMATA_KEYSTORE_PASSWORD_FILE"
HOME_ENV = "AUTOMATA_HOME"
DEFAULT_FILENAME = "keystore.json"
FORMAT = "automata-keystore"
VERSION = 2
CIPHER = "AES-256-GCM"
# scrypt cost of new files: 2**17 x 8 = 128 MiB and ~0.4 s on a PC (current guidance; 2**15 before).
# Read when a store is created or re-sealed, so a test may lower it with monkeypatch.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
# What a file may ask for: scrypt needs 128 * r * n bytes, whatever the file says.
MAX_N, MAX_R, MAX_P, MAX_KDF_MEMORY = 2**20, 16, 4, 1 << 30
_CHECK_PLAINTEXT = b"automata-keystore-check"
_CHECK_AAD = {1: b"check", 2: b"check:2"}
NONCE_BYTES, TAG_BYTES = 12, 16
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
    if not VENUE_RE.fullmatch(venue):
        raise KeystoreError(f"invalid venue name {venue!r}: use 1 to 40 of A-Z, a-z, 0-9, _, -")
    return venue


# -- where, and with what password -------------------------------------------------------------


def home_keystore(root: Path) -> Path:
    """The default place under an AUTOMATA_HOME (cli/paths.py Home.keystore)."""
    return root / "var" / "secrets" / DEFAULT_FILENAME


class Place(NamedTuple):
    path: Path
    explicit: bool  # the user named it: a missing file is then an error
    hint: str | None = None  # when it is the old default place: how to move it


def resolve_path(configured: str, config_file: Path, env: Mapping[str, str]) -> Place:
    """AUTOMATA_KEYSTORE, the config's field, a file at the old default place, else the new one."""
    if env.get(PATH_ENV):
        return Place(Path(env[PATH_ENV]).expanduser(), True)
    base = config_file.parent
    if configured:
        path = Path(configured).expanduser()
        return Place(path if path.is_absolute() else base / path, True)
    new = home_keystore(Path(env.get(HOME_ENV) or os.getcwd()))
    old = base / DEFAULT_FILENAME
    if old.exists() and old.resolve() != new.resolve():
        return Place(old, False, _move_hint(old, new))
    return Place(new, False)


def _move_hint(old: Path, new: Path) -> str:
    if new.exists():
        return f"note: using the keystore at {old} (its old place); {new} exists too and is not used"
    move = f"mkdir -p -m 700 {shlex.quote(str(new.parent))} && mv {shlex.quote(str(old))} {shlex.quote(str(new))}"
    return (
        f"note: using the keystore at {old}, its old place; move it under AUTOMATA_HOME with `{move}`, "
        f"or keep it there with keystore = {str(old)!r} in the config"
    )


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
    path, explicit, hint = resolve_path(configured, config_file, env)
    password = password_from_env(env)
    if password is None:
        return {}
    if hint:
        log.warning("%s", hint)
    if not path.exists():
        if explicit:
            raise KeystoreError(f"{path}: keystore file not found")
        return {}
    store = Keystore.open(path, password)
    return {venue: store.get(venue) for venue in store.venues()}


# -- the file ------------------------------------------------------------------------------------

MAX_FILE_BYTES = 4 << 20  # a keystore of a thousand venues is ~200 KB
_CHECK_CT_BYTES = len(_CHECK_PLAINTEXT) + TAG_BYTES
_MAX_ENTRY_BYTES = 64 << 10


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _show(value: Any) -> str:
    """A value from the file, short enough for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _bad(path: Path, field: str, problem: str) -> KeystoreError:
    return KeystoreError(f"{path}: {field}: {problem}")


def _canonical(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


# `cryptography` costs ~6 MB per process; every service loads the config, few unlock a keystore,
# so it is imported only when a keystore is really opened or written.
def _crypto() -> tuple[Any, Any, Any]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return InvalidTag, AESGCM, Scrypt


def kdf_problem(n: int, r: int, p: int) -> tuple[str, str] | None:
    """(field, problem) when scrypt parameters are outside what a keystore may ask for."""
    if not (2 <= n <= MAX_N and n & (n - 1) == 0):
        return "kdf.n", f"{n} is not a power of two from 2 to {MAX_N} (2**20)"
    if not 1 <= r <= MAX_R:
        return "kdf.r", f"{r} is not from 1 to {MAX_R}"
    if not 1 <= p <= MAX_P:
        return "kdf.p", f"{p} is not from 1 to {MAX_P}"
    if 128 * n * r > MAX_KDF_MEMORY:
        return "kdf.n", f"n={n} with r={r} needs {128 * n * r >> 20} MiB, over {MAX_KDF_MEMORY >> 20} MiB"
    return None


@dataclass(frozen=True)
class Kdf:
    salt: bytes
    n: int
    r: int
    p: int

    def doc(self) -> dict[str, Any]:
        return {"name": "scrypt", "salt": _b64(self.salt), "n": self.n, "r": self.r, "p": self.p}

    def derive(self, password: str) -> bytes:
        scrypt = _crypto()[2]
        return scrypt(salt=self.salt, length=32, n=self.n, r=self.r, p=self.p).derive(password.encode())

    def below_today(self) -> bool:
        return self.n < SCRYPT_N or self.r < SCRYPT_R or self.p < SCRYPT_P


@dataclass(frozen=True)
class Sealed:
    """A keystore file checked for shape and bounds; nothing decrypted yet (no password needed)."""

    version: int
    kdf: Kdf
    check: tuple[bytes, bytes]  # nonce, ciphertext
    entries: dict[str, dict[str, str]]
    seal: tuple[bytes, bytes] | None  # nonce, tag (version 2)
    signed: bytes  # what the seal covers


class _Reader:
    """Typed reads of one file's fields, each error naming the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def value(self, table: dict[str, Any], key: str, kind: type, where: str) -> Any:
        if key not in table:
            raise _bad(self.path, where, "missing")
        value = table[key]
        if (type(value) is not int) if kind is int else not isinstance(value, kind):
            names = {int: "an integer", str: "text", dict: "a table"}
            raise _bad(self.path, where, f"expected {names[kind]}, got {type(value).__name__}")
        return value

    def raw(self, table: dict[str, Any], key: str, where: str, low: int, high: int) -> bytes:
        text = self.value(table, key, str, where)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _bad(self.path, where, "not base64") from None
        if not low <= len(data) <= high:
            size = f"{low}" if low == high else f"{low} to {high}"
            raise _bad(self.path, where, f"{len(data)} bytes, expected {size}")
        return data


def parse(path: Path, raw: bytes) -> Sealed:
    """Check a keystore file's shape and bounds; KeystoreError naming the field otherwise."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise KeystoreError(f"{path}: not a valid keystore file (not JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeystoreError(f'{path}: not a valid keystore file (no "format": "{FORMAT}")')
    read = _Reader(path)
    version = doc.get("version")
    if type(version) is not int or version not in _CHECK_AAD:
        raise _bad(path, "version", f"unsupported {_show(version)} (this automata reads 1 and 2)")
    if doc.get("cipher") != CIPHER:
        raise _bad(path, "cipher", f"unsupported {_show(doc.get('cipher'))} (expected {CIPHER})")
    kdf = read.value(doc, "kdf", dict, "kdf")
    if kdf.get("name") != "scrypt":
        raise _bad(path, "kdf.name", f"unsupported {_show(kdf.get('name'))} (expected scrypt)")
    n, r, p = (read.value(kdf, k, int, f"kdf.{k}") for k in "nrp")
    problem = kdf_problem(n, r, p)
    if problem:
        raise _bad(path, *problem)
    salt = read.raw(kdf, "salt", "kdf.salt", 8, 64)
    check = read.value(doc, "check", dict, "check")
    check_nonce = read.raw(check, "nonce", "check.nonce", NONCE_BYTES, NONCE_BYTES)
    check_ct = read.raw(check, "ct", "check.ct", _CHECK_CT_BYTES, _CHECK_CT_BYTES)
    entries: dict[str, dict[str, str]] = {}
    table = read.value(doc, "entries", dict, "entries") if "entries" in doc else {}
    for venue, entry in table.items():
        if not VENUE_RE.fullmatch(venue):
            raise _bad(path, "entries", f"invalid venue name {_show(venue)}")
        where = f"entries.{venue}"
        if not isinstance(entry, dict):
            raise _bad(path, where, f"expected a table, got {type(entry).__name__}")
        read.raw(entry, "nonce", f"{where}.nonce", NONCE_BYTES, NONCE_BYTES)
        read.raw(entry, "ct", f"{where}.ct", TAG_BYTES + 1, _MAX_ENTRY_BYTES)
        updated = read.value(entry, "updated", str, f"{where}.updated") if "updated" in entry else ""
        entries[venue] = {"nonce": entry["nonce"], "ct": entry["ct"], "updated": updated}
    seal, signed = None, b""
    if version >= 2:
        seal_table = read.value(doc, "seal", dict, "seal")
        seal = (
            read.raw(seal_table, "nonce", "seal.nonce", NONCE_BYTES, NONCE_BYTES),
            read.raw(seal_table, "tag", "seal.tag", TAG_BYTES, TAG_BYTES),
        )
        try:
            signed = _canonical({k: v for k, v in doc.items() if k != "seal"})
        except orjson.JSONEncodeError:
            raise KeystoreError(f"{path}: not a valid keystore file (nested too deeply)") from None
    return Sealed(version, Kdf(salt, n, r, p), (check_nonce, check_ct), entries, seal, signed)


def read_file(path: Path) -> bytes:
    """The file's bytes (at most MAX_FILE_BYTES); warns when other users may read or write it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeystoreError(f"{path}: keystore file not found") from None
    except OSError as exc:
        raise KeystoreError(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise KeystoreError(f"{path}: not a regular file")
        try:
            raw = file.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise KeystoreError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise KeystoreError(f"{path}: not a valid keystore file (over {MAX_FILE_BYTES >> 20} MiB)")
    if mode & 0o077:
        log.warning(
            "%s: keystore file is open to other users (mode %s): whoever reads it can try passwords "
            "offline, whoever writes it can replace it; run: chmod 600 %s",
            path,
            oct(stat.S_IMODE(mode)),
            shlex.quote(str(path)),
        )
    return raw


def _new_check(aead: Any) -> tuple[bytes, bytes]:
    nonce = os.urandom(NONCE_BYTES)
    return nonce, aead.encrypt(nonce, _CHECK_PLAINTEXT, _CHECK_AAD[VERSION])


def _opens(aead: Any, sealed: tuple[bytes, bytes], aad: bytes, invalid_tag: type[Exception]) -> bool:
    try:
        aead.decrypt(*sealed, aad)
    except invalid_tag:
        return False
    return True


def _seal_aad(signed: bytes) -> bytes:
    return b"seal:" + signed


class Keystore:
    """An unlocked keystore in memory. `open` or `create`, then `get`/`put`/`remove`, then `save`."""

    def __init__(self, path: Path, key: bytes, kdf: Kdf, check: tuple[bytes, bytes]) -> None:
        self.path = path
        self._aead = _crypto()[1](key)
        self._kdf = kdf
        self._check = check
        self._entries: dict[str, dict[str, str]] = {}
        self._password: str | None = None  # kept only while a re-seal is due (see _reseal)

    @classmethod
    def create(
        cls, path: Path, password: str, *, n: int | None = None, r: int | None = None, p: int | None = None
    ) -> Keystore:
        """A new, empty keystore (written by `save`); scrypt at today's cost unless told."""
        if len(password) < MIN_PASSWORD:
            raise KeystoreError(f"choose a keystore password of at least {MIN_PASSWORD} characters")
        register_secret(password)
        kdf = Kdf(os.urandom(16), n or SCRYPT_N, r or SCRYPT_R, p or SCRYPT_P)
        problem = kdf_problem(kdf.n, kdf.r, kdf.p)
        if problem:
            raise KeystoreError(f"{path}: {problem[0]}: {problem[1]}")
        key = kdf.derive(password)
        return cls(path, key, kdf, _new_check(_crypto()[1](key)))

    @classmethod
    def open(cls, path: Path, password: str) -> Keystore:
        """Read, check and unlock; WrongPassword when the password does not open it, KeystoreError
        naming the field when the file is not a keystore, asks too much, or was edited."""
        sealed = parse(path, read_file(path))
        if not password:
            raise WrongPassword(f"{path}: no keystore password given")
        register_secret(password)
        key = sealed.kdf.derive(password)
        invalid_tag, aesgcm, _ = _crypto()
        try:
            aesgcm(key).decrypt(*sealed.check, _CHECK_AAD[sealed.version])
        except invalid_tag:
            if sealed.version == 1 and _opens(aesgcm(key), sealed.check, _CHECK_AAD[VERSION], invalid_tag):
                raise KeystoreError(f"{path}: a sealed keystore edited to look unsealed (version)") from None
            raise WrongPassword(f"{path}: wrong keystore password") from None
        if sealed.seal is not None:
            try:
                aesgcm(key).decrypt(*sealed.seal, _seal_aad(sealed.signed))
            except invalid_tag:
                raise KeystoreError(
                    f"{path}: the file does not match its seal: it was edited or damaged since it was "
                    "written (an entry removed, added or rolled back?); restore it from a backup or "
                    "add the keys again"
                ) from None
        else:
            log.warning(
                "%s: version 1 keystore, its entry list is not authenticated; `automata keys upgrade` "
                "re-seals it (so does any `automata keys add|remove`)",
                path,
            )
        store = cls(path, key, sealed.kdf, sealed.check)
        store._entries = sealed.entries
        if sealed.version < VERSION or sealed.kdf.below_today():
            store._password = password
        return store

    @property
    def reseal_due(self) -> bool:
        """An old format or a cheaper scrypt than today's: the next save re-seals everything."""
        return self._password is not None

    def venues(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, venue: str) -> bool:
        return venue in self._entries

    def get(self, venue: str) -> KeyPair:
        sealed = self._entries.get(venue)
        if sealed is None:
            raise KeystoreError(f"{self.path}: no keys for venue {venue!r}")
        try:
            nonce, ct = base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ct"])
            doc = orjson.loads(self._aead.decrypt(nonce, ct, _aad(venue)))
            api_key, api_secret = doc["api_key"], doc["api_secret"]
            if not (isinstance(api_key, str) and isinstance(api_secret, str)):
                raise TypeError("not text")
        except (_crypto()[0], ValueError, KeyError, TypeError, binascii.Error):
            raise KeystoreError(f"{self.path}: the entry for {venue!r} is damaged") from None
        pair = KeyPair(api_key=api_key, api_secret=api_secret)
        register_secret(pair.api_key)
        register_secret(pair.api_secret)
        return pair

    def updated(self, venue: str) -> str:
        return self._entries[venue]["updated"] if venue in self._entries else ""

    def put(self, venue: str, pair: KeyPair, updated: str | None = None) -> None:
        check_venue(venue)
        if not pair.api_key or not pair.api_secret:
            raise KeystoreError("the API key and the API secret cannot be empty")
        register_secret(pair.api_key)
        register_secret(pair.api_secret)
        nonce = os.urandom(NONCE_BYTES)
        plain = orjson.dumps({"api_key": pair.api_key, "api_secret": pair.api_secret})
        self._entries[venue] = {
            "nonce": _b64(nonce),
            "ct": _b64(self._aead.encrypt(nonce, plain, _aad(venue))),
            "updated": updated or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def remove(self, venue: str) -> bool:
        return self._entries.pop(venue, None) is not None

    def save(self) -> None:
        """Seal the whole document and write it atomically (re-sealing an old file first)."""
        if self._password is not None:
            self._reseal(self._password)
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": self._kdf.doc(),
            "cipher": CIPHER,
            "check": {"nonce": _b64(self._check[0]), "ct": _b64(self._check[1])},
            "entries": dict(sorted(self._entries.items())),
        }
        nonce = os.urandom(NONCE_BYTES)
        tag = self._aead.encrypt(nonce, b"", _seal_aad(_canonical(doc)))
        doc["seal"] = {"nonce": _b64(nonce), "tag": _b64(tag)}
        write_atomic(self.path, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")

    def _reseal(self, password: str) -> None:
        """A fresh salt, at least today's scrypt cost, every entry encrypted again under the new
        key: nothing of the old file (its check, its entries) is valid alongside the new one."""
        pairs = {}
        for venue in self._entries:
            try:
                pairs[venue] = (self.get(venue), self.updated(venue))
            except KeystoreError:
                raise KeystoreError(
                    f"{self.path}: cannot re-seal: the entry for {venue!r} is damaged; remove it "
                    f"(`automata keys remove {venue}`) and add it again"
                ) from None
        old = self._kdf
        kdf = Kdf(os.urandom(16), max(old.n, SCRYPT_N), max(old.r, SCRYPT_R), max(old.p, SCRYPT_P))
        key = kdf.derive(password)
        self._aead, self._kdf = _crypto()[1](key), kdf
        self._check = _new_check(self._aead)
        for venue, (pair, updated) in pairs.items():
            self.put(venue, pair, updated)
        self._password = None


def _aad(venue: str) -> bytes:
    return f"entry:{venue}".encode()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of one keystore between processes (two `keys add` at once)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:  # a symlink planted at the lock's name: ELOOP
        raise KeystoreError(f"{lock}: cannot open the lock file: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
