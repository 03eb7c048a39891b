"""The paper venue's control API (services/exchange_sim/control.py, control_auth.py): who may call
it, and what it accepts.

Without a token it answers loopback clients only, even with the venue on 0.0.0.0 as in compose,
and not a web page's requests; with SIM_CONTROL_TOKEN every call needs the token. Bodies are
checked before anything changes: a bad one is a 400 naming the field, never a 500, never an
infinite speed or a billion steps; money is read as Decimal, digit for digit.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.exchange_sim.config import load_sim_config
from shared.config import ConfigError
from tests.helpers.raw_http import request
from tests.helpers.sim import SimVenue, running_sim, sim_fixture

TOKEN = "control-token-for-tests-0123456789"

# Bound to 0.0.0.0 as in docker-compose.yml: the exchange API is open to the network.
sim = sim_fixture(extra_env={"SIM_HOST": "0.0.0.0"})


@pytest.fixture(scope="module")
def sim_with_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimVenue]:
    token_file = tmp_path_factory.mktemp("token") / "control.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    env = {"SIM_CONTROL_TOKEN_FILE": str(token_file)}
    with running_sim(tmp_path_factory.mktemp("sim-token"), extra_env=env) as venue:
        yield venue


def lan_address() -> str | None:
    """This machine's address on its network (not loopback), or None; sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # routing decides the source address; no packet leaves
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def control(sim: SimVenue, path: str, body: Any = None, *, raw: bytes | None = None, **headers: str) -> Any:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    hdrs = {"Content-Type": "application/json", **headers} if data is not None else dict(headers)
    method = "GET" if data is None and path in ("state", "journal", "balances", "orders") else "POST"
    return request(f"{sim.base_url}/control/{path}", method, data, hdrs)


def test_no_token_answers_loopback_only_while_the_exchange_api_stays_open(sim: SimVenue) -> None:
    address = lan_address()
    if address is None:
        pytest.skip("no non-loopback address on this machine")
    status, reply = request(f"http://{address}:{sim.port}/control/state")
    assert status == 403 and "loopback clients only" in reply["error"]
    status, _ = request(f"http://{address}:{sim.port}/control/reset", "POST", b"{}")
    assert status == 403
    assert request(f"http://{address}:{sim.port}/api/v3/time")[0] == 200  # the exchange API is not gated
    assert control(sim, "state")[0] == 200  # loopback still works, with no extra step


def test_no_token_refuses_what_a_web_page_could_send(sim: SimVenue) -> None:
    """A page on a browser of this machine can reach 127.0.0.1: cross-site requests carry an
    Origin, a DNS-rebound one a foreign Host."""
    status, reply = control(sim, "reset", {}, Origin="http://evil.example")
    assert status == 403 and "web pages" in reply["error"]
    status, reply = control(sim, "state", Host=f"evil.example:{sim.port}")
    assert status == 403 and "Host" in reply["error"]
    assert control(sim, "state", Host=f"localhost:{sim.port}")[0] == 200


def test_a_configured_token_is_required_from_everyone(sim_with_token: SimVenue) -> None:
    url = f"{sim_with_token.base_url}/control/state"
    status, reply = request(url)
    assert status == 401 and "X-Automata-Control" in reply["error"]
    assert request(url, headers={"X-Automata-Control": "wrong"})[0] == 401
    assert request(url, headers={"X-Automata-Control": TOKEN[:-1]})[0] == 401
    status, reply = request(url, headers={"X-Automata-Control": TOKEN})
    assert status == 200 and "market_time" in reply
    assert request(url, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert TOKEN not in json.dumps(request(url)[1])
    assert request(f"{sim_with_token.base_url}/api/v3/time")[0] == 200
    assert sim_with_token.control.advance(steps=1)["steps"] >= 1  # tests/helpers/sim.py sends it
    assert TOKEN not in sim_with_token.proc.output()


BAD_BODIES = [
    ("speed", b'{"speed": Infinity}', "speed"),
    ("speed", b'{"speed": "inf"}', "speed"),
    ("speed", b'{"speed": NaN}', "speed"),
    ("speed", b'{"speed": -1}', "speed"),
    ("speed", b'{"speed": 1e300}', "speed"),
    ("speed", b'{"speed": true}', "speed"),
    ("speed", b"{}", "speed"),
    ("advance", b'{"steps": 1000000000}', "steps"),
    ("advance", b'{"candles": 1.5}', "candles"),
    ("price", b'{"symbol": "BTCUSDT", "price": "-1"}', "price"),
    ("price", b'{"symbol": "BTCUSDT", "price": "1e400"}', "price"),
    ("price", b'{"symbol": ["BTCUSDT"], "price": "1"}', "symbol"),
    ("market", b'{"symbol": ["BTCUSDT"]}', "symbol"),
    ("market", b'{"participation": "NaN"}', "participation"),
    ("balance", b'{"balances": ["USDT"]}', "balances"),
    ("balance", b'{"asset": "USDT", "free": "1e30"}', "free"),
    ("balance", b'{"account": "mallory", "asset": "USDT", "free": "1"}', "account"),
    ("clock", b'{"skew_ms": 1e300}', "skew_ms"),
    ("limits", b'{"weight_limit": []}', "weight_limit"),
    ("faults", b'{"kind": "error", "http_status": 99}', "http_status"),
    ("faults", b'{"kind": "drop_reply", "hold_s": 1e9}', "hold_s"),
    ("faults", b'{"kind": "error", "count": -5}', "count"),
    ("close_ws", b'{"protocol": {"x": 1}}', "protocol"),
    ("balance", b'{"asset": [1], "free": "1"}', "asset"),
    ("reset", b"[1, 2]", "JSON object"),
    ("advance", b'"steps"', "JSON object"),
    ("speed", b"speed=0", "not JSON"),
    ("advance", b"[" * 60_000, "not JSON"),
]


@pytest.mark.parametrize(
    ("path", "raw", "named"), BAD_BODIES, ids=[f"{p}:{r[:30]!r}" for p, r, _ in BAD_BODIES]
)
def test_a_bad_body_is_a_400_naming_what_is_wrong_and_changes_nothing(
    sim: SimVenue, path: str, raw: bytes, named: str
) -> None:
    before = sim.control.state()
    status, reply = control(sim, path, raw=raw)
    assert status == 400, reply
    assert named in reply["error"], reply
    after = sim.control.state()
    for key in ("speed", "steps", "prices", "skew_ms", "faults", "limits", "knobs"):
        assert after[key] == before[key], key
    assert sim.control.balances() == sim.control.balances("binance")


def test_bad_queries_are_400s(sim: SimVenue) -> None:
    for query in ("journal?since=-1", "journal?since=x", "balances?account=mallory", "orders?account=x"):
        status, reply = request(f"{sim.base_url}/control/{query}")
        assert status == 400, (query, reply)
    status, reply = request(f"{sim.base_url}/control/faults?id=abc", "DELETE")
    assert status == 400, reply


def test_money_is_read_as_decimal_digit_for_digit(sim: SimVenue) -> None:
    """A JSON number with more digits than a float holds keeps them all."""
    status, reply = control(sim, "balance", raw=b'{"asset": "USDT", "free": 12345.123456789012345678}')
    assert status == 200, reply
    assert reply["balances"]["USDT"]["free"] == "12345.123456789012345678"
    status, reply = control(sim, "price", raw=b'{"symbol": "BTCUSDT", "price": 30000.000000000000001}')
    assert status == 200, reply
    assert reply["prices"]["BTCUSDT"] == "30000.000000000000001"


def test_good_bodies_still_work(sim: SimVenue, tmp_path: Path) -> None:
    assert sim.control.speed(0)["speed"] == 0
    assert sim.control.advance(candles=1)["steps"] > 0
    assert sim.control.market("BTCUSDT", max_fill="0.001")["knobs"]["BTCUSDT"]["max_fill"] == "0.001"
    assert sim.control.market(max_fill=None)["knobs"]["BTCUSDT"]["max_fill"] is None
    fault = sim.control.fault("reject", count=2, http_status=503, match={"path": "/api/v3/order"})
    assert fault["count"] == 2
    assert sim.control.limits(reset=True, weight_limit=100)["limits"]["weight_limit"] == 100
    assert sim.control.skew(-4000)["skew_ms"] == -4000
    assert sim.control.set_balance("btc", "0.5", account="bybit")["balances"]["BTC"]["free"] == "0.5"
    assert sim.control.close_ws(protocol="bybit") == 0


@pytest.mark.parametrize("speed", ["inf", "nan", "-1", "100001"])
def test_sim_speed_from_the_environment_is_bounded_too(speed: str) -> None:
    with pytest.raises(ConfigError, match=f"SIM_SPEED={speed!r}"):
        load_sim_config({"SIM_SPEED": speed})


def test_the_control_token_settings_are_checked(tmp_path: Path) -> None:
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=f"SIM_CONTROL_TOKEN_FILE=.*{empty.name} is empty"):
        load_sim_config({"SIM_CONTROL_TOKEN_FILE": str(empty)})
    with pytest.raises(ConfigError, match="SIM_CONTROL_TOKEN_FILE=.*cannot read"):
        load_sim_config({"SIM_CONTROL_TOKEN_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="not both"):
        load_sim_config({"SIM_CONTROL_TOKEN": TOKEN, "SIM_CONTROL_TOKEN_FILE": str(empty)})
    config = load_sim_config({"SIM_CONTROL_TOKEN": TOKEN})
    assert config.control_token == TOKEN and TOKEN not in repr(config)
