"""`automata deploy supervisor|compose`: strategy runners generated from the bots file.

One strategy_runner per bot, except bots that name the same `process` in the bots file: those
share one runner (`bots_{process}`, one `--bot` each), to save memory on a small machine.
- supervisor: a complete supervisord config = deploy/supervisord.conf's services (its own bot
  programs dropped) + one `[program:bot_{id}]` (or `[program:bots_{process}]`) per runner.
- compose: a compose override file with one such service per runner, used as
  `docker compose -f docker-compose.yml -f docker-compose.bots.yml up -d`.
A runner's INSTANCE is its bot id (or process name), so its heartbeat key and consumer name
survive restarts.

Both also write the Redis ACL (shared/redis_acl.py) for the services and these runners, and one
password file per Redis user (kept when they exist): supervisor into
$AUTOMATA_HOME/var/secrets/redis (0600 files), compose into ./secrets/redis, which is beside
docker-compose.yml when run there (files 0644 in a 0700 directory: compose mounts each one into
its own container only, where a non-root user reads it).
Every runner gets REDIS_USER = its name and REDIS_PASSWORD_FILE = its password file, nothing else
secret: no .env (exchange keys, Telegram token) reaches a strategy runner.

Every path in what they write is absolute, so the file works wherever `--out` puts it: supervisord
resolves %(here)s against the conf file's own directory and compose resolves relative paths against
the project directory, neither of which is deploy/ once the file is elsewhere. The supervisord
config is made for one AUTOMATA_HOME (the one its Redis passwords were written under) and for the
Python running this command (the one with Automata's dependencies).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import typer

from cli import paths
from services.strategy_runner.bots import BotConfig, bots_path, load_bots, process_groups
from shared import redis_acl
from shared.config import ConfigError
from shared.redis_acl import Runner

ROOT = Path(__file__).resolve().parents[1]
deploy_app = typer.Typer(
    help="Generate deployment files: one strategy runner per bot (or per `process` group).",
    no_args_is_help=True,
)

# deploy/supervisord.conf's placeholders, replaced by absolute paths in what `deploy supervisor` writes
_HOME, _SECRETS = "%(ENV_AUTOMATA_HOME)s", "%(ENV_AUTOMATA_HOME)s/var/secrets/redis"
_PYTHON, _HERE = "%(here)s/../.venv/bin/python", "%(here)s"
_PROGRAM = """[program:{name}]
command=%(here)s/../.venv/bin/python -m services.strategy_runner {bot_args} --bots {bots}
environment=PYTHONPATH="%(here)s/..",PYTHONOPTIMIZE="",INSTANCE="{instance}",REDIS_USER="{name}",REDIS_PASSWORD_FILE="%(ENV_AUTOMATA_HOME)s/var/secrets/redis/{name}"
directory=%(ENV_AUTOMATA_HOME)s
priority=300
autostart=true
autorestart=true
startsecs=1
startretries=10
stopsignal=TERM
stopwaitsecs=20
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=%(ENV_AUTOMATA_HOME)s/var/log/%(program_name)s.log
stdout_logfile_maxbytes=10MB
stdout_logfile_backups=5
"""

_SERVICE = """  {name}:
    image: automata:latest
    restart: unless-stopped
    command: ["python", "-m", "services.strategy_runner", {bot_args}, "--bots", "{bots}"]
    environment:
      REDIS_URL: redis://redis:6379/0
      REDIS_USER: {name}
      REDIS_PASSWORD_FILE: /run/secrets/redis_{name}
      AUTOMATA_CONFIG: /app/deploy/docker.toml
      INSTANCE: {instance}
    secrets:
      - redis_{name}
    volumes:
      - {mount}
    depends_on:
      redis:
        condition: service_healthy
    stop_signal: SIGTERM
    stop_grace_period: 20s
    init: true
"""


def _bots(path: Path) -> list[BotConfig]:
    try:
        return [b for b in load_bots(path) if b.enabled]
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def acl_runners(bots: list[BotConfig]) -> list[Runner]:
    """Each strategy runner: program name (= its Redis user), INSTANCE, its bots and their venues."""
    return [
        Runner(name, name.split("_", 1)[1], tuple((b.id, b.venue) for b in group))
        for name, group in process_groups(bots).items()
    ]


def _runners(bots: list[BotConfig]) -> list[tuple[str, str, list[str]]]:
    """(program name, INSTANCE, bot ids) of each strategy runner."""
    return [(r.name, r.instance, [bot for bot, _ in r.bots]) for r in acl_runners(bots)]


def _conf_value(path: Path | str) -> str:
    """A path as a supervisord value: its `%` doubled (the config's interpolation)."""
    return str(path).replace("%", "%%")


def _absolute(text: str, home: Path, secrets: Path, python: str) -> str:
    """deploy/supervisord.conf's placeholders replaced by absolute paths (longest first)."""
    for placeholder, value in (
        (_SECRETS, _conf_value(secrets)),
        (_HOME, _conf_value(home)),
        (_PYTHON, _conf_value(shlex.quote(python))),
        (f"{_HERE}/..", _conf_value(ROOT)),
        (_HERE, _conf_value(ROOT / "deploy")),
    ):
        text = text.replace(placeholder, value)
    return text


def render_supervisor(
    bots: list[BotConfig],
    bots_file: Path,
    base: Path = ROOT / "deploy" / "supervisord.conf",
    *,
    home: Path | None = None,
    secrets: Path | None = None,
    python: str = sys.executable,
) -> str:
    """The base config without its bot programs, then one program per strategy runner; every path
    absolute: the home (default AUTOMATA_HOME), its Redis secrets, this checkout, this Python."""
    root = home if home is not None else paths.home().root
    where = secrets if secrets is not None else paths.Home(root).redis_secrets
    sections = re.split(r"(?m)^(?=\[)", base.read_text())
    kept = [s for s in sections[1:] if not s.startswith(("[program:bot_", "[program:bots_"))]
    programs = [
        _PROGRAM.format(
            name=name,
            instance=instance,
            bot_args=" ".join(f"--bot {i}" for i in ids),
            bots=_conf_value(shlex.quote(str(bots_file.resolve()))),
        )
        for name, instance, ids in _runners(bots)
    ]
    head = (
        f"; Generated by `automata deploy supervisor` from {bots_file.resolve()}: the services of\n"
        f"; deploy/supervisord.conf and one strategy runner per bot (or `process` group). Every path is\n"
        f"; absolute: AUTOMATA_HOME {root} (automata.toml, .env, var/), its Redis passwords in\n"
        f"; {where}, the code in {ROOT}, Python {python}. Start it with\n"
        f";   REDIS_URL=redis://127.0.0.1:6379/0 supervisord -c THIS_FILE\n\n"
    )
    body = "".join(kept).rstrip() + "\n\n; --- bots ---\n" + "\n".join(programs)
    return head + _absolute(body, root, where, python)


# Relative to the working directory: the compose project's (where docker-compose.yml is), where
# deploy/compose.redis-auth.yml reads them (./secrets/redis).
COMPOSE_SECRETS = Path("secrets/redis")


def _compose_value(text: str) -> str:
    """A string for a compose file: `$` doubled (compose interpolates), quoted for YAML."""
    return json.dumps(text.replace("$", "$$"))


def render_compose(bots: list[BotConfig], bots_file: Path, secrets: Path = COMPOSE_SECRETS) -> str:
    inside = f"/app/config/{bots_file.name}"
    body = "".join(
        _SERVICE.format(
            name=name,
            instance=instance,
            bot_args=", ".join(f'"--bot", "{i}"' for i in ids),
            bots=inside,
            mount=_compose_value(f"{bots_file.resolve()}:{inside}:ro"),
        )
        for name, instance, ids in _runners(bots)
    )
    where = secrets.resolve()
    files = "".join(
        f"  redis_{name}:\n    file: {_compose_value(str(where / name))}\n" for name, _, _ in _runners(bots)
    )
    return (
        f"# generated by `automata deploy compose` from {bots_file.resolve()}: one strategy runner per bot "
        f"(or per process group), each its own Redis user (use with deploy/compose.redis-auth.yml);\n"
        f"# every host path is absolute, so this file works wherever it is\n"
        f"services:\n{body}" + (f"secrets:\n{files}" if files else "")
    )


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    typer.echo(f"wrote {out}")


def _write_acl(secrets: Path, runners: list[Runner], file_mode: int) -> None:
    acl = redis_acl.write_acl(secrets, runners, file_mode=file_mode)
    typer.echo(f"wrote the Redis ACL {acl} and a password file per user in {secrets}", err=True)


@deploy_app.command("supervisor")
def supervisor(
    bots: Path = typer.Option(None, help="bots file (default $AUTOMATA_BOTS or bots.toml)"),
    out: Path = typer.Option(None, help="write here instead of stdout (e.g. supervisord.conf)"),
    secrets: Path = typer.Option(
        None, help="Redis ACL and passwords (default $AUTOMATA_HOME/var/secrets/redis)"
    ),
) -> None:
    """A supervisord config: every service and one strategy runner per bot (or group).

    With it the Redis ACL file (redis-server --aclfile) and a password file per service."""
    path = bots or bots_path()
    chosen = _bots(path)
    home = paths.home()
    where = secrets.resolve() if secrets else home.redis_secrets
    _write_acl(where, acl_runners(chosen), 0o600)
    redis_acl.ensure_password(home.web_token)  # the dashboard's token, kept when it exists
    typer.echo(f"the dashboard's token is in {home.web_token}", err=True)
    home.make_dirs()  # var/log and var/run, where the file points supervisord's log and socket
    _write(render_supervisor(chosen, path, home=home.root, secrets=where), out)


@deploy_app.command("compose")
def compose(
    bots: Path = typer.Option(None, help="bots file (default $AUTOMATA_BOTS or bots.toml)"),
    out: Path = typer.Option(None, help="write here instead of stdout (e.g. docker-compose.bots.yml)"),
    secrets: Path = typer.Option(
        COMPOSE_SECRETS,
        help="Redis ACL and passwords (deploy/compose.redis-auth.yml reads secrets/redis beside "
        "docker-compose.yml: run this there)",
    ),
) -> None:
    """A compose override with one strategy runner service per bot (or group).

    With it the Redis ACL and a password file per service (for deploy/compose.redis-auth.yml)."""
    path = bots or bots_path()
    chosen = _bots(path)
    # the demo's runner is in docker-compose.yml itself (profile paper): the ACL covers it too
    demo = acl_runners(load_bots(ROOT / "deploy" / "bots.demo.toml", check_params=False))
    if secrets == COMPOSE_SECRETS and not Path("docker-compose.yml").exists():
        typer.echo(
            f"note: no docker-compose.yml here: deploy/compose.redis-auth.yml reads {COMPOSE_SECRETS} in "
            "the directory of docker-compose.yml; run this there, or give --secrets",
            err=True,
        )
    _write_acl(secrets, [*demo, *acl_runners(chosen)], 0o644)
    _write(render_compose(chosen, path, secrets), out)
