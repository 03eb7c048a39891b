"""`automata keys add|list|remove VENUE`, `automata keys upgrade`: API keys in the encrypted keystore
(shared/keystore.py); `automata keys web-token`: the dashboard's token, in a keystore of its own.

Secrets are typed at prompts that do not echo (getpass), or given on stdin for scripts
(`--stdin`: API key, API secret and, unless AUTOMATA_KEYSTORE_PASSWORD(_FILE) is set, the
password, one a line). Nothing here ever prints a secret: `list` shows a 4-character key prefix.
The services read the keystore themselves, with the password from the same environment variables.
"""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from shared import keystore
from shared.config import WEB_ENTRY, ConfigError, config_path, read_toml
from shared.logs import register_secret

WEB_KEYSTORE_FILE = "web_keystore.json"  # the dashboard's own keystore, beside the main one

keys_app = typer.Typer(
    name="keys",
    help="API keys, encrypted at rest with your password (the keystore).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

KeystoreOption = typer.Option(
    None,
    "--keystore",
    help="keystore file (default: AUTOMATA_KEYSTORE, the config's keystore, $AUTOMATA_HOME/var/secrets/keystore.json)",
)
WebKeystoreOption = typer.Option(
    None,
    "--keystore",
    help="the dashboard's keystore file (default: AUTOMATA_WEB_KEYSTORE, $AUTOMATA_HOME/var/secrets/web_keystore.json)",
)
StdinOption = typer.Option(False, "--stdin", help="read the secrets from stdin, one a line (for scripts)")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def keystore_path(option: Path | None) -> Path:
    """--keystore, else AUTOMATA_KEYSTORE, else the config's `keystore` field, else a keystore at
    the old place (beside the config; with a hint how to move it), else under AUTOMATA_HOME/var.

    Reads the raw TOML field only: a full load_config would try to unlock the keystore itself."""
    if option is not None:
        return option
    cfg_file = config_path()
    configured = ""
    if cfg_file.exists():
        try:
            configured = str(read_toml(cfg_file).get("keystore", "") or "")
        except ConfigError as exc:
            raise _fail(f"configuration error: {exc}", 2) from None
    place = keystore.resolve_path(configured, cfg_file, os.environ)
    if place.hint:
        err.print(place.hint, highlight=False, markup=False)
    return place.path


class _Input:
    """Secrets from stdin lines (--stdin) or no-echo prompts."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin

    def read(self, prompt: str, *, confirm: bool = False) -> str:
        if self.from_stdin:
            line = sys.stdin.readline()
            if not line:
                raise _fail(f"--stdin: end of input before: {prompt.rstrip(': ')}", 2)
            return line.rstrip("\r\n")
        value = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat the password: ") != value:
            raise _fail("the two passwords differ", 2)
        return value

    def password(self, *, new: bool) -> str:
        try:
            env_password = keystore.password_from_env(os.environ)
        except keystore.KeystoreError as exc:
            raise _fail(str(exc), 2) from None
        if env_password:
            return env_password
        prompt = "New keystore password: " if new else "Keystore password: "
        return self.read(prompt, confirm=new)


def _open(path: Path, given: _Input) -> keystore.Keystore:
    if not path.exists():
        raise _fail(f"{path}: no keystore yet (add keys with `automata keys add VENUE`)")
    try:
        return keystore.Keystore.open(path, given.password(new=False))
    except keystore.KeystoreError as exc:
        raise _fail(str(exc)) from None


@keys_app.command("add")
def add(
    venue: str = typer.Argument(..., help="venue name as in the config, e.g. binance"),
    stdin: bool = StdinOption,
    path: Path | None = KeystoreOption,
    force: bool = typer.Option(False, "--force", help="replace keys already stored for this venue"),
) -> None:
    """Store a venue's API key and secret (creates the keystore on first use)."""
    try:
        keystore.check_venue(venue)
    except keystore.KeystoreError as exc:
        raise _fail(str(exc), 2) from None
    if venue == WEB_ENTRY:
        raise _fail(f"{WEB_ENTRY!r} holds the dashboard's token: use `automata keys web-token`", 2)
    file = keystore_path(path)
    given = _Input(stdin)
    api_key = given.read(f"API key for {venue}: ").strip()
    api_secret = given.read(f"API secret for {venue}: ").strip()
    if not api_key or not api_secret:
        raise _fail("the API key and the API secret cannot be empty", 2)
    _store(file, given, venue, keystore.KeyPair(api_key=api_key, api_secret=api_secret), force)
    out.print(f"stored keys for {venue} (api key {keystore.mask(api_key)}) in {file}", highlight=False)


def _store(file: Path, given: _Input, name: str, pair: keystore.KeyPair, force: bool) -> None:
    """Put one entry, creating the keystore on first use; an existing entry only with --force."""
    register_secret(pair.api_key)
    register_secret(pair.api_secret)
    try:
        with keystore.locked(file):
            if file.exists():
                store = _open(file, given)
            else:
                store = keystore.Keystore.create(file, given.password(new=True))
            if name in store and not force:
                raise _fail(f"{name} already has an entry in {file} (use --force to replace it)")
            store.put(name, pair)
            store.save()
    except keystore.KeystoreError as exc:
        raise _fail(str(exc)) from None


@keys_app.command("web-token")
def web_token(
    stdin: bool = StdinOption,
    path: Path | None = WebKeystoreOption,
    force: bool = typer.Option(False, "--force", help="replace the token already stored"),
) -> None:
    """Store the dashboard's token (empty: a random one, shown once) in a keystore of its own.

    That keystore is --keystore, else AUTOMATA_WEB_KEYSTORE, else var/secrets/web_keystore.json:
    the web service opens that one only, with AUTOMATA_WEB_KEYSTORE_PASSWORD, never the exchange
    keys'."""
    from services.web.settings import MIN_TOKEN_LENGTH

    home = Path(os.environ.get("AUTOMATA_HOME") or os.getcwd())
    file = path or Path(
        os.environ.get("AUTOMATA_WEB_KEYSTORE") or home / "var" / "secrets" / WEB_KEYSTORE_FILE
    )
    given = _Input(stdin)
    token = given.read("Dashboard token (empty: generate one): ").strip()
    generated = not token
    token = token or secrets.token_urlsafe(32)
    if len(token) < MIN_TOKEN_LENGTH:
        raise _fail(f"the web token must have at least {MIN_TOKEN_LENGTH} characters", 2)
    _store(file, given, WEB_ENTRY, keystore.KeyPair(api_key=WEB_ENTRY, api_secret=token), force)
    out.print(f"stored the dashboard's token in {file}", highlight=False)
    if generated:  # the one place it is ever shown: this terminal, never a log
        out.print(f"the dashboard's token (shown once, keep it): {token}", highlight=False, markup=False)
    out.print(
        f"the web service takes it with AUTOMATA_WEB_KEYSTORE={file} and AUTOMATA_WEB_KEYSTORE_PASSWORD "
        "(or _FILE) in its environment or .env (web.env with Docker)",
        highlight=False,
        markup=False,
    )


@keys_app.command("list")
def list_(
    stdin: bool = StdinOption,
    path: Path | None = KeystoreOption,
) -> None:
    """List the venues in the keystore with a masked key prefix (needs the password)."""
    file = keystore_path(path)
    store = _open(file, _Input(stdin))
    table = Table("venue", "api key", "updated", show_edge=False, header_style="bold")
    for venue in store.venues():
        try:
            shown = "(dashboard token)" if venue == WEB_ENTRY else keystore.mask(store.get(venue).api_key)
        except keystore.KeystoreError:
            shown = "[red]damaged[/]"
        table.add_row(venue, shown, store.updated(venue))
    out.print(f"{file}: {len(store.venues())} venue(s)", highlight=False)
    out.print(table)


@contextmanager
def _changing(file: Path, stdin: bool) -> Iterator[keystore.Keystore]:
    """The keystore opened under its lock, for a change the caller saves; its errors are ours."""
    try:
        with keystore.locked(file):
            yield _open(file, _Input(stdin))
    except keystore.KeystoreError as exc:
        raise _fail(str(exc)) from None


@keys_app.command("remove")
def remove(
    venue: str = typer.Argument(..., help="venue whose keys to delete"),
    stdin: bool = StdinOption,
    path: Path | None = KeystoreOption,
) -> None:
    """Delete a venue's keys from the keystore (needs the password)."""
    file = keystore_path(path)
    with _changing(file, stdin) as store:
        if not store.remove(venue):
            raise _fail(f"{venue}: no keys in {file}")
        store.save()
    out.print(f"removed the keys of {venue} from {file}", highlight=False)


@keys_app.command("upgrade")
def upgrade(
    stdin: bool = StdinOption,
    path: Path | None = KeystoreOption,
) -> None:
    """Re-seal the keystore in today's format and scrypt cost (a fresh salt, every entry again)."""
    file = keystore_path(path)
    with _changing(file, stdin) as store:
        if not store.reseal_due:
            out.print(f"{file}: already in today's format", highlight=False)
            return
        store.save()
    out.print(
        f"{file}: re-sealed (version {keystore.VERSION}, scrypt n={keystore.SCRYPT_N})", highlight=False
    )


if __name__ == "__main__":
    keys_app()
