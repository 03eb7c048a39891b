"""Venue libraries log request headers and signed bodies at DEBUG (pybit with log_requests,
python-binance with verbose): through the services' logging, no API key, secret or signature
reaches the log, even one never registered for masking. Real libraries, real paper venue."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers.procs import ROOT
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
# a signature in each shape the libraries log it: a header, a query string, a list of pairs
SIGNATURES = re.compile(r"""(?:'X-BAPI-SIGN': '|signature=|'signature', ')([0-9A-Za-z+/=]{16,})""")


def test_library_debug_logs_show_no_key_secret_or_signature(sim: SimVenue, tmp_path: Path) -> None:
    raw = tmp_path / "raw.log"
    script = ROOT / "tests" / "helpers" / "verbose_clients.py"
    run = subprocess.run(
        [sys.executable, str(script), sim.base_url, sim.api_key, sim.api_secret, str(raw)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    code, logged = run.returncode, run.stderr
    assert code == 0, logged[-2000:]
    unmasked = raw.read_text()
    sent = set(SIGNATURES.findall(unmasked))
    # what the libraries logged: both headers dicts, signed bodies and query strings
    assert "X-BAPI-API-KEY" in unmasked and "X-MBX-APIKEY" in unmasked and len(sent) >= 5
    assert "X-BAPI-API-KEY" in logged and "RequestHeaders" in logged, "the lines are there, masked"
    shown = [name for name, value in (("key", sim.api_key), ("secret", sim.api_secret)) if value in logged]
    assert not shown, "the API key or secret reached the log"
    assert sum(s in logged for s in sent) == 0, "a request signature reached the log"
