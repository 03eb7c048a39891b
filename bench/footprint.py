"""Resident memory of the whole demo stack (`automata run`), Redis included. Target: < 350 MB RSS
(issue 15, the ledger included; < 300 MB before it).

Starts the demo as tests/test_demo.py does (a temporary AUTOMATA_HOME, free ports, the paper
venue at demo speed, the four demo bots: demo_manual given one smart trade), waits until every
bot has had an order accepted, lets it run DURATION seconds (argv[1], default 45) sampling every
process's RSS, then stops it with SIGINT. Reported per process: RSS at the end (and its peak), plus PSS (shared pages divided
among the processes sharing them; what the machine really spends). The baseline, measured in the
same run: the frame every service pays before doing anything (a Python process that imported
shared/service.py, with the services' PYTHONOPTIMIZE); each process's ratio to it, and the
stack's. The last line is one JSON object: `total_rss_mb`, one entry per process (its RSS in
MB), then the other figures.
"""

from __future__ import annotations

import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.demo import DEMO_BOTS  # noqa: E402
from cli.lean import lean_env  # noqa: E402
from services.strategy_runner.bots import load_bots  # noqa: E402
from tests.helpers.cli import cli  # noqa: E402
from tests.helpers.demo import (  # noqa: E402
    accepted_by_bot,
    demo_env,
    run_state,
    stack_processes,
    start_demo,
    wait_running,
)
from tests.helpers.procs import wait_until  # noqa: E402

TARGET_MB = 350.0
SAMPLE_EVERY_S = 5.0
MB = 1024 * 1024


def _memory(proc: psutil.Process) -> tuple[float, float]:
    """(RSS, PSS) in MB; PSS falls back to RSS where smaps cannot be read."""
    try:
        info = proc.memory_full_info()
        return info.rss / MB, getattr(info, "pss", info.rss) / MB
    except psutil.AccessDenied:
        rss = proc.memory_info().rss / MB
        return rss, rss


def frame_rss(env: dict[str, str]) -> float:
    """RSS in MB of an idle Python process that imported what every service imports first."""
    probe = "import sys, shared.service; print('up', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-c", probe], env={**env, **lean_env(env)}, cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "up"
        return _memory(psutil.Process(child.pid))[0]
    finally:
        child.kill()
        child.wait(10)


def main() -> int:
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 45.0
    demo_bots = load_bots(DEMO_BOTS)
    bots = [b.id for b in demo_bots]
    with tempfile.TemporaryDirectory(prefix="automata-footprint-") as tmp:
        env = demo_env(Path(tmp) / "home")
        demo = start_demo(env, Path(tmp) / "run.log")
        started = time.monotonic()
        try:
            wait_running(demo)
            up_s = time.monotonic() - started
            for bot in demo_bots:  # a manual bot trades when told: one smart trade (entry + exit OCO)
                if bot.strategy == "manual":
                    done = cli(env, "trade", "buy", bot.symbol, "--quote", "100", "--tp", "2%", "--sl", "1%",
                               "--bot", bot.id, "--no-wait")  # fmt: skip
                    assert done.returncode == 0, done.stdout + done.stderr
            wait_until(
                lambda: all(accepted_by_bot(env, bots).values()),
                timeout=90,
                interval=0.5,
                what="an accepted order from every demo bot",
            )
            baseline = frame_rss(env)
            procs = stack_processes(env)
            procs["automata_run"] = psutil.Process(run_state(env)["runner"]["pid"])
            peak: dict[str, float] = {}
            last: dict[str, tuple[float, float]] = {}
            deadline = time.monotonic() + duration
            while True:
                for name, proc in procs.items():
                    try:
                        last[name] = _memory(proc)
                    except psutil.NoSuchProcess:  # restarted by supervisord: measure the new one
                        procs = {**stack_processes(env), "automata_run": procs["automata_run"]}
                        print(f"note: {name} was restarted during the run", file=sys.stderr)
                        break
                    peak[name] = max(peak.get(name, 0.0), last[name][0])
                if time.monotonic() >= deadline:
                    break
                time.sleep(min(SAMPLE_EVERY_S, max(0.0, deadline - time.monotonic())))
        finally:
            if demo.alive():
                demo.popen.send_signal(signal.SIGINT)  # type: ignore[union-attr]
                code = demo.popen.wait(120)  # type: ignore[union-attr]
            else:
                code = demo.popen.returncode if demo.popen else -1
            demo.kill()

    names = sorted(last, key=lambda n: -last[n][0])
    total_rss = sum(rss for rss, _ in last.values())
    total_pss = sum(pss for _, pss in last.values())
    print(f"demo stack after {duration:.0f} s of trading (up in {up_s:.1f} s), {platform.machine()}:")
    print(f"  {'process':<18} {'RSS MB':>8} {'peak':>8} {'PSS MB':>8} {'/frame':>7}")
    for name in names:
        rss, pss = last[name]
        print(f"  {name:<18} {rss:8.1f} {peak[name]:8.1f} {pss:8.1f} {rss / baseline:7.2f}")
    print(
        f"  {'total':<18} {total_rss:8.1f} {sum(peak.values()):8.1f} {total_pss:8.1f} {total_rss / baseline:7.2f}"
    )
    print(f"baseline: a service's frame (shared/service.py imported, idle) {baseline:.1f} MB RSS")
    met = total_rss < TARGET_MB
    print(f"target < {TARGET_MB:.0f} MB RSS: {'met' if met else 'MISSED'}; `automata run` exit code {code}")
    figures: dict[str, object] = {"total_rss_mb": round(total_rss, 1)}
    figures.update({name: round(last[name][0], 1) for name in names})
    figures.update(
        {
            "total_pss_mb": round(total_pss, 1),
            "baseline_frame_rss_mb": round(baseline, 1),
            "ratio_total_to_frame": round(total_rss / baseline, 2),
            "peak_total_rss_mb": round(sum(peak.values()), 1),
            "target_mb": TARGET_MB,
            "target_met": met,
            "processes": len(names),
            "run_seconds": duration,
            "startup_s": round(up_s, 1),
            "exit_code": code,
            "machine": platform.machine(),
            "python": platform.python_version(),
        }
    )
    print(json.dumps(figures))
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
