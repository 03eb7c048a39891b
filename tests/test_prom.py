"""shared/prom.py, the in-house Prometheus client: values, the text format, process metrics.

prometheus_client (a dev dependency only) is the independent check: its parser must read our
text back, and the same metrics made with it must expose the same text (less `_created`)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared import prom
from shared.prom import Counter, Gauge, Histogram, Registry, float_to_go_string, generate_latest

HAS_PROC = os.path.exists("/proc/self/stat")


def text(registry: Registry) -> str:
    return generate_latest(registry).decode()


def parsed(registry: Registry) -> dict[str, tuple[str, str, list[tuple[str, dict[str, str], float]]]]:
    """name -> (type, help, samples) as prometheus_client's parser reads our exposition."""
    return {
        f.name: (f.type, f.documentation, [(s.name, s.labels, s.value) for s in f.samples])
        for f in text_string_to_metric_families(text(registry))
    }


def test_counter_with_and_without_labels_exposes_name_total() -> None:
    reg = Registry()
    plain = Counter("jobs_total", "Jobs done", registry=reg)
    Counter("runs", "Runs (no _total given)", registry=reg)
    by = Counter("hits_total", "Hits", ("venue", "status"), registry=reg)
    plain.inc()
    plain.inc(2.5)
    by.labels("sim", 200).inc()
    by.labels(venue="sim", status="200").inc(4)  # same child: values are str()ed
    by.labels("bybit", "500").inc()
    out = text(reg)
    assert "# HELP jobs_total Jobs done\n# TYPE jobs_total counter\njobs_total 3.5\n" in out
    assert "# TYPE runs_total counter\nruns_total 0.0\n" in out
    assert 'hits_total{status="200",venue="sim"} 5.0\n' in out  # labels sorted by name
    assert 'hits_total{status="500",venue="bybit"} 1.0\n' in out
    assert "_created" not in out
    assert by.labels("sim", "200") is by.labels(venue="sim", status=200)
    assert reg.get_sample_value("hits_total", {"venue": "sim", "status": "200"}) == 5.0


def test_counter_refuses_negative_and_bad_label_use() -> None:
    reg = Registry()
    c = Counter("c_total", "c", registry=reg)
    with pytest.raises(ValueError, match="non-negative"):
        c.inc(-1)
    assert reg.get_sample_value("c_total") == 0.0
    labelled = Counter("l_total", "l", ("a",), registry=reg)
    with pytest.raises(ValueError, match="has labels"):
        labelled.inc()  # the parent of a labelled metric holds no value
    with pytest.raises(ValueError, match="label count"):
        labelled.labels("x", "y")
    with pytest.raises(ValueError, match="label names"):
        labelled.labels(b="x")
    with pytest.raises(ValueError, match="No label names"):
        c.labels("x")
    with pytest.raises(ValueError, match="already has labels"):
        labelled.labels("x").labels("y")
    with pytest.raises(ValueError):
        Counter("bad name", "x", registry=reg)
    with pytest.raises(ValueError):
        Counter("ok", "x", ("__reserved",), registry=reg)
    with pytest.raises(ValueError):
        Histogram("h", "x", ("le",), registry=reg)


def test_gauge_inc_dec_set_and_function() -> None:
    reg = Registry()
    g = Gauge("temp", "Temperature", registry=reg)
    g.inc(3)
    g.dec(0.5)
    assert reg.get_sample_value("temp") == 2.5
    g.set(-7)
    assert reg.get_sample_value("temp") == -7.0
    up = Gauge("up", "Up by venue", ("venue",), registry=reg)
    up.labels("sim").set(1)
    up.labels("binance").set(0)
    live = Gauge("live", "From a function", registry=reg)
    box = [4]
    live.set_function(lambda: box[0])
    box[0] = 9
    out = text(reg)
    assert "# TYPE temp gauge\ntemp -7.0\n" in out
    assert 'up{venue="sim"} 1.0\nup{venue="binance"} 0.0\n' in out  # children in creation order
    assert "live 9.0\n" in out


def test_histogram_buckets_are_cumulative_and_inf_equals_count() -> None:
    reg = Registry()
    h = Histogram("step_seconds", "Step time", ("bot",), registry=reg)
    child = h.labels("dca_1")
    values = [0.001, 0.005, 0.02, 0.3, 0.3, 4.0, 100.0]  # 0.005 sits on a bound: le is inclusive
    for v in values:
        child.observe(v)
    samples = {s[1].get("le", s[0]): s[2] for s in parsed(reg)["step_seconds"][2] if s[1]["bot"] == "dca_1"}
    assert samples["0.005"] == 2 and samples["0.01"] == 2 and samples["0.025"] == 3
    assert samples["0.5"] == 5 and samples["5.0"] == 6 and samples["10.0"] == 6
    bounds = [b for b in samples if b[0].isdigit() or b == "+Inf"]
    assert bounds == [float_to_go_string(b) for b in prom.DEFAULT_BUCKETS]
    counts = [samples[b] for b in bounds]
    assert counts == sorted(counts), "cumulative"
    assert samples["+Inf"] == samples["step_seconds_count"] == len(values)
    assert samples["step_seconds_sum"] == pytest.approx(sum(values))

    custom = Histogram("lat", "Latency", buckets=(0.1, 1, 10), registry=reg)
    custom.observe(0.5)
    custom.observe(float("nan"))  # counted in +Inf (as the Go client does)
    out = text(reg)
    assert 'lat_bucket{le="0.1"} 0.0\nlat_bucket{le="1.0"} 1.0\nlat_bucket{le="10.0"} 1.0\n' in out
    assert 'lat_bucket{le="+Inf"} 2.0\nlat_count 2.0\nlat_sum NaN\n' in out
    with pytest.raises(ValueError):
        Histogram("unsorted", "x", buckets=(1, 0.5), registry=reg)


def test_label_values_and_help_escaped_and_parsed_back() -> None:
    reg = Registry()
    nasty = 'a\\b "quoted"\nnext line'
    c = Counter("esc_total", 'Help with \\ backslash\nand "quotes"', ("v",), registry=reg)
    c.labels(nasty).inc()
    out = text(reg)
    assert 'esc_total{v="a\\\\b \\"quoted\\"\\nnext line"} 1.0\n' in out
    assert '# HELP esc_total Help with \\\\ backslash\\nand "quotes"\n' in out
    kind, doc, samples = parsed(reg)["esc"]
    assert kind == "counter" and doc == 'Help with \\ backslash\nand "quotes"'
    assert samples == [("esc_total", {"v": nasty}, 1.0)]


def test_parser_reads_back_names_types_labels_and_values() -> None:
    reg = Registry()
    c = Counter("req_total", "Requests", ("endpoint", "protocol", "status"), registry=reg)
    c.labels("/api/v3/account", "binance", 200).inc(3)
    g = Gauge("open", "Open sockets", registry=reg)
    g.set(2)
    h = Histogram("t", "Time", registry=reg)
    h.observe(0.2)
    ours = {
        f.name.removesuffix("_total") if f.type == "counter" else f.name: (f.type, f.documentation, f.samples)
        for f in reg.collect()
    }
    assert parsed(reg) == ours
    labels = {"endpoint": "/api/v3/account", "protocol": "binance", "status": "200"}
    assert parsed(reg)["req"][2] == [("req_total", labels, 3.0)]


def test_same_text_as_prometheus_client_less_created() -> None:
    """The same metrics and updates through prometheus_client expose the same bytes."""
    theirs_reg = prometheus_client.CollectorRegistry()
    ours_reg = Registry()

    def both(ours_cls: type, theirs_cls: type, *args: object, **kw: object) -> tuple[object, object]:
        return ours_cls(*args, registry=ours_reg, **kw), theirs_cls(*args, registry=theirs_reg, **kw)

    counters = both(Counter, prometheus_client.Counter, "svc_up_total", "Up", ("service", "instance"))
    plain = both(Counter, prometheus_client.Counter, "steps", "Steps")
    gauges = both(Gauge, prometheus_client.Gauge, "lag_seconds", "Lag\\ with\nnewline", ("stream",))
    hists = both(
        Histogram,
        prometheus_client.Histogram,
        "req_seconds",
        "Latency",
        ("venue",),
        buckets=(0.001, 0.5, 1e7),
    )
    defaults = both(Histogram, prometheus_client.Histogram, "step_seconds", "Step")
    for c in counters:
        c.labels("runner", 'host "1"').inc(2)  # type: ignore[attr-defined]
        c.labels("notifier", "a\\b\nc").inc()  # type: ignore[attr-defined]
    for c in plain:
        c.inc(12345678)  # type: ignore[attr-defined]
    for g in gauges:
        g.labels("md:candles").set(-0.25)  # type: ignore[attr-defined]
        g.labels("md:book").set(float("inf"))  # type: ignore[attr-defined]
    for h in hists:
        for v in (0.0005, 0.2, 3.0, 2e7):
            h.labels("sim").observe(v)  # type: ignore[attr-defined]
    for h in defaults:
        for v in (0.004, 0.05, 1, 11):
            h.observe(v)  # type: ignore[attr-defined]

    theirs = prometheus_client.generate_latest(theirs_reg).decode()
    kept, skip = [], False
    for line in theirs.splitlines(keepends=True):  # drop the *_created families
        if line.startswith("# HELP"):
            skip = line.split()[2].endswith("_created")
        if not skip:
            kept.append(line)
    assert text(ours_reg) == "".join(kept)


def test_float_formatting_like_prometheus_client() -> None:
    from prometheus_client.utils import floatToGoString

    cases = [0, 1, -1, 0.005, 2.5, 1e7, 12345678.0, 1.5e-9, -3e20, 1e22, math.inf, -math.inf, math.nan]
    for v in cases:
        assert float_to_go_string(v) == floatToGoString(v), v
    assert float_to_go_string(1) == "1.0"
    assert float_to_go_string(math.inf) == "+Inf"


def test_duplicate_names_refused() -> None:
    reg = Registry()
    Counter("x_total", "x", registry=reg)
    for make in (
        lambda: Counter("x", "again", registry=reg),
        lambda: Gauge("x_total", "clash with the counter's sample", registry=reg),
        lambda: Gauge("x", "clash with the counter's base name", registry=reg),
    ):
        with pytest.raises(ValueError, match="Duplicated"):
            make()
    Histogram("h", "h", registry=reg)
    with pytest.raises(ValueError, match="Duplicated"):
        Gauge("h_count", "clash", registry=reg)
    with pytest.raises(ValueError, match="Duplicated"):
        Gauge("process_open_fds", "clash", registry=prom.REGISTRY)


def test_counter_safe_across_threads() -> None:
    reg = Registry()
    c = Counter("t_total", "t", registry=reg)
    h = Histogram("th", "t", registry=reg)

    def work() -> None:
        for _ in range(20_000):
            c.inc()
            h.observe(0.3)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reg.get_sample_value("t_total") == 80_000
    assert reg.get_sample_value("th_count") == 80_000


@pytest.mark.skipif(not HAS_PROC, reason="process metrics come from /proc")
def test_process_metrics_present_and_plausible() -> None:
    families = {f.name: f for f in text_string_to_metric_families(text(prom.REGISTRY))}
    value = {name: f.samples[0].value for name, f in families.items() if name.startswith("process_")}
    assert set(value) == {
        "process_virtual_memory_bytes",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_cpu_seconds",  # the parser drops _total from a counter family's name
        "process_open_fds",
        "process_max_fds",
    }
    assert families["process_cpu_seconds"].type == "counter"
    assert value["process_resident_memory_bytes"] > 1024 * 1024
    assert value["process_virtual_memory_bytes"] >= value["process_resident_memory_bytes"]
    assert 3 <= value["process_open_fds"] <= value["process_max_fds"]
    assert value["process_cpu_seconds"] > 0
    assert time.time() - 86400 * 30 < value["process_start_time_seconds"] <= time.time() + 1


def test_process_collector_without_proc_yields_nothing(tmp_path) -> None:
    reg = Registry()
    prom.ProcessCollector(proc=str(tmp_path / "none"), registry=reg)
    assert text(reg) == ""


def test_import_stays_light() -> None:
    """The point of the module: no prometheus_client or its stdlib servers in a service."""
    heavy = ["prometheus_client", "http.server", "wsgiref", "urllib.request", "gzip", "socketserver"]
    code = (
        "import sys, asyncio, redis.asyncio, msgspec; before = set(sys.modules)\n"
        "import shared.prom, shared.service\n"
        f"print([m for m in {heavy!r} if m in sys.modules and m not in before])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
