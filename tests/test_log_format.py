"""Log lines: a readable `HH:MM:SS LEVEL service: message key=value` on a terminal, JSON in a
file or a pipe, LOG_FORMAT forcing either; secrets masked in both. The terminal is a real pty
around a real child process."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

import pytest

from tests.helpers.procs import ROOT

SECRET = "Sup3rSecretApiValue42"
# A child that sets up logging as a service does, registers a secret and logs it three ways.
CHILD = f"""
import logging
from shared.logs import register_secret, setup_logging
setup_logging("demo_svc")
register_secret({SECRET!r})
log = logging.getLogger("automata.t")
log.info("bot b1: safety order 3 at 41,200.00", extra={{"fields": {{"bot": "b1", "level": 3}}}})
log.warning("signed api_key={SECRET} and %s", {SECRET!r})
try:
    raise RuntimeError("boom {SECRET}")
except RuntimeError:
    log.exception("failed")
"""
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d (?:\x1b\[[0-9;]*m)?(INFO|WARNING|ERROR)(?:\x1b\[0m)? demo_svc: ")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "NO_COLOR")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def run_on_pty(**extra: str) -> str:
    """The child's stderr as a terminal shows it (stderr is the pty)."""
    main, side = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=side, env=child_env(**extra), cwd=ROOT,
        )  # fmt: skip
        os.close(side)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(main)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def run_piped(**extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=child_env(**extra),
        cwd=ROOT,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_terminal_gets_readable_lines_with_the_secret_masked() -> None:
    out = run_on_pty()
    lines = out.splitlines()
    assert TEXT_LINE.match(lines[0]) and lines[0].endswith(
        "demo_svc: bot b1: safety order 3 at 41,200.00 bot=b1 level=3"
    ), lines[0]
    assert "\x1b[33mWARNING" in out  # coloured on a terminal
    assert "api_key=*** and ***" in out and "RuntimeError: boom ***" in out  # the traceback follows
    assert SECRET not in out
    assert not any(line.startswith("{") for line in lines)


def test_no_color_and_log_format_json_on_a_terminal() -> None:
    plain = run_on_pty(NO_COLOR="1")
    assert "\x1b[" not in plain and TEXT_LINE.match(plain.splitlines()[0])
    forced = run_on_pty(LOG_FORMAT="json")
    docs = [json.loads(line) for line in forced.splitlines()]
    assert [d["level"] for d in docs] == ["info", "warning", "error"] and SECRET not in forced


@pytest.mark.parametrize("forced", ["", "json"])
def test_a_pipe_gets_json(forced: str) -> None:
    out = run_piped(**({"LOG_FORMAT": forced} if forced else {}))
    docs = [json.loads(line) for line in out.splitlines()]
    assert docs[0]["msg"] == "bot b1: safety order 3 at 41,200.00"
    assert docs[0]["level"] == "info" and docs[0]["level_"] == 3  # a field never hides the envelope
    assert docs[0]["service"] == "demo_svc" and docs[0]["bot"] == "b1"
    assert SECRET not in out and docs[1]["msg"] == "signed api_key=*** and ***"
    assert "boom ***" in docs[2]["exc"]


@pytest.mark.parametrize("name", ["text", "plain"])
def test_log_format_text_forces_text_in_a_pipe_masked_too(name: str) -> None:
    out = run_piped(LOG_FORMAT=name)
    lines = out.splitlines()
    assert all(TEXT_LINE.match(line) for line in lines[:2]), lines
    assert "\x1b[" not in out  # no colour outside a terminal
    assert "api_key=*** and ***" in lines[1] and SECRET not in out
