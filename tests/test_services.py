"""Each service as a real process (`python -m services.<name>`) against the test Redis: heartbeat,
consumer groups, /metrics and /health, SIGTERM -> exit 0; a bad config file -> exit 2 naming it."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
import redis

from tests.helpers.procs import ROOT, python, wait_until

# service -> (extra args, config file text, streams and the consumer group it must have joined).
# The order gateway is run with no venue here: the paper venue is another process, and with a
# venue configured the gateway is rightly unhealthy until it has connected and reconciled (see
# test_order_gateway_without_its_venue_still_stops_cleanly).
SERVICES: dict[str, tuple[list[str], str, list[tuple[str, str]]]] = {
    "market_gateway": ([], "", []),
    "order_gateway": ([], "venues = {}\n", []),
    "notifier": ([], "", [("notify", "notifier:console")]),  # a group per channel: notifier:{channel}
    "strategy_runner": (
        ["--bot", "demo_dca", "--bots", str(ROOT / "deploy" / "bots.demo.toml")],
        "",
        [],  # it joins its groups once the order gateway has published the symbol's filters
    ),
}


def http_get(port: int, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def groups_of(client: redis.Redis, stream: str) -> set[str]:
    try:
        return {g["name"].decode() for g in client.xinfo_groups(stream)}
    except redis.ResponseError:  # no such stream yet
        return set()


@pytest.mark.parametrize("name", list(SERVICES))
def test_service_starts_serves_metrics_and_stops_on_sigterm(
    name: str, env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path
) -> None:
    args, config, groups = SERVICES[name]
    instance = "t1"
    env = {**env, "INSTANCE": instance}
    if config:
        env["AUTOMATA_CONFIG"] = str(tmp_path / "automata.toml")
        (tmp_path / "automata.toml").write_text(config)
    proc = python(f"services.{name}", *args, env=env, log_path=tmp_path / "svc.log").start()
    key = f"svc:{name}:{instance}"
    try:
        raw = wait_until(lambda: sync_redis.get(key), timeout=30, what=f"heartbeat {key}")
        beat = orjson.loads(raw)
        assert beat["pid"] == proc.pid
        port = beat["metrics_port"]
        assert port > 0

        for stream, group in groups:
            wait_until(
                lambda s=stream, g=group: any(n.startswith(g) for n in groups_of(sync_redis, s)),
                what=f"group {group}* on {stream}",
            )

        status, ctype, body = http_get(port, "/metrics")
        assert status == 200
        assert ctype.startswith("text/plain")
        assert f'automata_service_up{{instance="{instance}",service="{name}"}} 1.0' in body.decode()

        status, ctype, body = http_get(port, "/health")
        assert status == 200, body
        report = orjson.loads(body)
        assert report["ok"] is True and report["redis"] is True and report["service"] == name

        assert proc.terminate() == 0, proc.output()
        assert sync_redis.get(key) is None, "a clean stop removes the heartbeat"
    finally:
        proc.kill()


@pytest.mark.parametrize("name", list(SERVICES))
def test_bad_config_file_exits_2_naming_file_and_field(
    name: str, env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[services.{name}]\nmetrics_port = "ninety"\n')
    args, _, _ = SERVICES[name]
    proc = python(
        f"services.{name}", *args, env={**env, "AUTOMATA_CONFIG": str(bad)}, log_path=tmp_path / "svc.log"
    ).start()
    try:
        assert proc.popen is not None
        assert proc.popen.wait(30) == 2
        out = proc.output()
        assert str(bad) in out
        assert f"services.{name}.metrics_port" in out
        assert "Expected `int`" in out
    finally:
        proc.kill()


def test_order_gateway_without_its_venue_still_stops_cleanly(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path
) -> None:
    """The default config names the paper venue, which is not running: the gateway keeps retrying
    (no crash loop), reports the venue on /health, and still exits 0 on SIGTERM."""
    proc = python(
        "services.order_gateway", env={**env, "INSTANCE": "t2"}, log_path=tmp_path / "og.log"
    ).start()
    try:
        beat = orjson.loads(wait_until(lambda: sync_redis.get("svc:order_gateway:t2"), timeout=30))
        status, _, body = http_get(beat["metrics_port"], "/health")
        report = orjson.loads(body)
        assert status in (200, 503) and report["redis"] is True and "venue_sim" in report
        assert proc.alive()
        assert proc.terminate() == 0, proc.output()
    finally:
        proc.kill()


def test_a_task_that_will_not_be_cancelled_does_not_hang_the_stop(
    env: dict[str, str], sync_redis: redis.Redis, tmp_path: Path
) -> None:
    """The loop's cleanup waits for every cancelled task without a limit: a library task that
    swallows its cancellation would hang a stopped service for good. It exits 0, naming it."""
    proc = python(
        "tests.helpers.stubborn_service", env={**env, "INSTANCE": "s1"}, log_path=tmp_path / "s.log"
    )
    proc.start()
    wait_until(lambda: sync_redis.get("svc:stubborn:s1"), timeout=30, what="heartbeat")
    assert proc.terminate(timeout=30) == 0, proc.output()
    out = proc.output()
    assert "stopped (exit 0)" in out and "would not end when cancelled (stubborn)" in out, out
