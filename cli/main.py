"""The `automata` app: one Typer app, commands registered from their own modules.

A new command lives in its own module and gets a line in `COMMANDS` (its function, or its Typer
group of sub-commands). A run of one command builds an app holding only that command, so it
imports only its own module; `--help` and `cli.main.app` build the whole app.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

_app: typer.Typer | None = None

# Each command (or group) and where it lives: (module, attribute, is a group, hidden). A run of
# one command imports only its own module (`automata status` does not load numpy for the
# backtester): about half a second less a call, which scripts and the tests feel.
COMMANDS: dict[str, tuple[str, str, bool, bool]] = {
    "run": ("cli.run", "run", False, False),
    "down": ("cli.run", "down", False, False),
    "health": ("cli.health", "health", False, False),
    "services": ("cli.health", "health", False, True),
    "status": ("cli.status", "status", False, False),
    "bots": ("cli.bots", "bots", False, False),
    "pause": ("cli.bots", "pause", False, False),
    "resume": ("cli.bots", "resume", False, False),
    "stop": ("cli.bots", "stop", False, False),
    "close": ("cli.bots", "close", False, False),
    "balance": ("cli.balance", "balance", False, False),
    "orders": ("cli.orders", "orders", False, False),
    "reconcile": ("cli.reconcile", "reconcile", False, False),
    "trades": ("cli.history", "trades", False, False),
    "profit": ("cli.profit", "profit", False, False),
    "equity": ("cli.profit", "equity", False, False),
    "export": ("cli.history", "export_app", True, False),
    "ledger": ("cli.ledger", "ledger_app", True, False),
    "tail": ("cli.tail", "tail", False, False),
    "ticker": ("cli.market", "ticker", False, False),
    "book": ("cli.market", "book", False, False),
    "order": ("cli.order", "order_app", True, False),
    "trade": ("cli.trade", "trade_app", True, False),
    "doctor": ("cli.doctor", "doctor", False, False),
    "backtest": ("cli.backtest", "backtest_command", False, False),
    "new-strategy": ("cli.new_strategy", "new_strategy", False, False),
    "dca": ("cli.dca", "dca_app", True, False),
    "chart": ("cli.chart", "chart_app", True, False),
    "keys": ("cli.keys", "keys_app", True, False),
    "data": ("cli.data", "data_app", True, False),
    "deploy": ("cli.deploy", "deploy_app", True, False),
}


def build_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with `only` that one (for a run of it)."""
    app = typer.Typer(
        name="automata",
        help="Automata: crash-safe crypto trading services over Redis Streams.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_options)
    for name, (module, attr, group, hidden) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(module), attr)
        if group:
            app.add_typer(target, name=name, hidden=hidden)
        else:
            app.command(name, hidden=hidden)(target)
    return app


def version() -> str:
    """The installed package's version; in a checkout that is not pip-installed, pyproject.toml's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("automata")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


def _print_version(value: bool) -> None:
    if value:
        print(f"automata {version()}")
        raise typer.Exit()


def _options(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    pass


def __getattr__(name: str) -> Any:
    """`cli.main.app`, built on first use."""
    global _app
    if name == "app":
        if _app is None:
            _app = build_app()
        return _app
    raise AttributeError(name)


def command_names() -> set[str]:
    """Names of the registered commands."""
    app = __getattr__("app")
    return {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}


def main() -> None:
    first = sys.argv[1] if len(sys.argv) > 1 else ""
    # a known command: only its module (`automata run`, up for the demo's whole life, keeps about
    # 30 MB less resident); anything else (--help, --version, a typo) gets the whole app
    app = build_app(first) if first in COMMANDS else __getattr__("app")
    try:
        app()
    except Exception as exc:  # the last guard: Redis lost mid-command is one line, not a traceback
        from shared.redis_conn import RedisWritesRefused, unavailable  # loaded already if it came

        if isinstance(exc, RedisWritesRefused):  # MISCONF: Redis answers but cannot persist
            print(f"{unavailable(exc)} Free space and try again.", file=sys.stderr)
            raise SystemExit(1) from None
        if type(exc).__module__.partition(".")[0] != "redis":
            raise
        print(f"Redis stopped answering: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
