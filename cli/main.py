"""The `automata` app: one Typer app, commands registered from their own modules.

A new command lives in its own module and is added in `build_app` with `app.command(...)(fn)`
or, for a group of sub-commands, `app.add_typer(module.app, name=...)`. The app is built on
first use (`cli.main.app`), so `automata run` — which stays up for the demo's whole life —
loads only its own module (about 30 MB less resident memory).
"""

from __future__ import annotations

import sys
from typing import Any

import typer

_app: typer.Typer | None = None


def build_app() -> typer.Typer:
    from cli import balance, bots, doctor, health, keys, market, order, orders, reconcile, run, status, tail
    from cli.backtest import backtest_command
    from cli.chart import chart_app
    from cli.data import data_app
    from cli.dca import dca_app
    from cli.deploy import deploy_app
    from cli.new_strategy import new_strategy

    app = typer.Typer(
        name="automata",
        help="Automata: crash-safe crypto trading services over Redis Streams.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_options)
    app.command("run")(run.run)
    app.command("down")(run.down)
    app.command("health")(health.health)
    app.command("services", hidden=True)(health.health)
    app.command("status")(status.status)
    app.command("bots")(bots.bots)
    for name in ("pause", "resume", "stop", "close"):
        app.command(name)(getattr(bots, name))
    app.command("balance")(balance.balance)
    app.command("orders")(orders.orders)
    app.command("reconcile")(reconcile.reconcile)
    app.command("tail")(tail.tail)
    app.command("ticker")(market.ticker)
    app.command("book")(market.book)
    app.add_typer(order.order_app, name="order")
    app.command("doctor")(doctor.doctor)
    app.command("backtest")(backtest_command)
    app.command("new-strategy")(new_strategy)
    app.add_typer(dca_app, name="dca")
    app.add_typer(chart_app, name="chart")
    app.add_typer(keys.keys_app, name="keys")
    app.add_typer(data_app, name="data")
    app.add_typer(deploy_app, name="deploy")
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
    if sys.argv[1:2] in (["run"], ["down"]):
        from cli import run

        light = typer.Typer(name="automata", add_completion=False, pretty_exceptions_enable=False)
        light.command("run")(run.run)
        light.command("down")(run.down)
        light()
        return
    try:
        __getattr__("app")()
    except Exception as exc:  # the last guard: Redis lost mid-command is one line, not a traceback
        if type(exc).__module__.partition(".")[0] != "redis":
            raise
        print(f"Redis stopped answering: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
