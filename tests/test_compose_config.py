"""The committed compose files and what `automata deploy compose --out` writes, checked by a real
Compose implementation: Debian's docker-compose (1.29) runs `docker-compose config` with no engine.
It validates against the Compose schema, merges the override files and resolves every relative
path against the project directory, as `docker compose up` would; the test then checks that every
host file the result names (secrets, bind mounts) exists.

The project directory is a temporary copy of the repository's compose files, standing for the
user's: it holds .env, notifier.env and web.env (the services' env_file), and `deploy compose`, run there
with its defaults, writes the Redis secrets into it and the override file elsewhere (--out)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.bots import write_bots
from tests.helpers.procs import ROOT, base_env

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="docker-compose not found: `sudo apt-get install -y docker-compose` (no engine needed) to check the compose files",
)

BASE, PAPER, AUTH = (
    Path("docker-compose.yml"),
    Path("deploy/compose.paper.yml"),
    Path("deploy/compose.redis-auth.yml"),
)


def deploy_compose(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "deploy", "compose", *args],
        cwd=cwd,
        env=base_env("redis://127.0.0.1:1/0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def compose_config(project: Path, *files: Path, profiles: tuple[str, ...] = ()) -> dict:
    """`docker-compose config` of these files merged, for the project directory `project`."""
    args = [COMPOSE, "--project-directory", str(project)]
    for file in files:
        args += ["-f", str(file)]
    for profile in profiles:
        args += ["--profile", profile]
    proc = subprocess.run([*args, "config"], cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"docker-compose config refused {[f.name for f in files]}:\n{proc.stderr}"
    return yaml.safe_load(proc.stdout)


def host_files(config: dict) -> list[Path]:
    """Every host path the resolved config reads: secret files and bind-mount sources."""
    paths = [Path(s["file"]) for s in config.get("secrets", {}).values() if "file" in s]
    for service in config["services"].values():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith("/"):
                paths.append(Path(source))
    return paths


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compose")
    project = root / "project"
    (project / "deploy").mkdir(parents=True)
    for file in (BASE, PAPER, AUTH):
        shutil.copy(ROOT / file, project / file)
    (project / ".env").touch()
    (project / "notifier.env").touch()
    (project / "web.env").write_text("AUTOMATA_WEB_TOKEN=a-token-for-the-compose-test\n")
    bots = write_bots(
        root / "bots.toml",
        {"id": "alpha", "strategy": "dca"},
        {"id": "beta", "strategy": "dca", "process": "pair"},
    )
    out = root / "elsewhere" / "docker-compose.bots.yml"
    out.parent.mkdir()
    done = deploy_compose(project, "--bots", str(bots), "--out", str(out))
    assert f"wrote {out}" in done.stdout and "note:" not in done.stderr, done.stderr
    return project


def test_the_committed_compose_file_alone_and_with_the_paper_profile(project: Path) -> None:
    config = compose_config(project, BASE)
    assert {"redis", "market_gateway", "order_gateway", "notifier"} <= set(config["services"])
    assert config["services"]["market_gateway"]["build"]["context"] == str(project)
    paper = compose_config(project, BASE, PAPER, profiles=("paper",))
    assert {"exchange_sim", "bots_demo"} <= set(paper["services"])
    for name in ("market_gateway", "exchange_sim", "bots_demo"):
        assert paper["services"][name]["environment"]["AUTOMATA_CONFIG"] == "/app/deploy/docker-paper.toml"
    assert (ROOT / "Dockerfile").is_file()


def test_redis_auth_with_the_generated_override_written_elsewhere(project: Path) -> None:
    generated = project.parent / "elsewhere" / "docker-compose.bots.yml"  # outside the project
    config = compose_config(project, BASE, AUTH, generated, profiles=("paper", "cli"))
    services = config["services"]
    assert {"bot_alpha", "bots_pair", "bots_demo", "cli"} <= set(services)
    for name in ("market_gateway", "order_gateway", "notifier", "bots_demo", "bot_alpha", "bots_pair"):
        assert services[name]["environment"]["REDIS_USER"] == name
    files = host_files(config)
    assert len(files) >= 9, files  # the ACL, admin, 4 services, 2 runners (+ their bots file)
    missing = [str(p) for p in files if not p.is_file()]
    assert missing == [], f"the compose files name host files that do not exist: {missing}"


def test_deploy_compose_away_from_docker_compose_yml_says_where_the_secrets_belong(tmp_path: Path) -> None:
    bots = write_bots(tmp_path / "bots.toml", {"id": "alpha", "strategy": "dca"})
    done = deploy_compose(tmp_path, "--bots", str(bots), "--out", str(tmp_path / "bots.yml"))
    assert "note: no docker-compose.yml here" in done.stderr and "--secrets" in done.stderr
    assert (tmp_path / "secrets" / "redis" / "bot_alpha").is_file()
