"""The paper venue for tests: a real subprocess on a free port, in step mode, and its control API.

    from tests.helpers.sim import sim_fixture, binance_client
    sim = sim_fixture()                     # a module-scoped `sim` fixture (SimVenue), reset per use

    async def test_x(sim):
        client = binance_client(sim)        # python-binance AsyncClient aimed at the venue
        sim.control.set_price("BTCUSDT", "30000")
        ...

Step mode means the market only moves when a test says so (`advance`, `set_price`), so no
test depends on timing. URLs for the Bybit face: `sim.base_url` (pybit `session.endpoint`),
`sim.ws_url("/v5/public/spot")`, `sim.ws_url("/v5/private")`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.procs import Proc, base_env, python, wait_until

SIM_API_KEY = "sim-key"
SIM_API_SECRET = "sim-secret"


class SimControlError(RuntimeError):
    pass


class SimControl:
    """Blocking client of /control/* (urllib only; call it from sync code or briefly from async tests)."""

    def __init__(self, base_url: str, token: str = "") -> None:
        self.base_url, self.token = base_url, token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **query: Any) -> Any:
        url = f"{self.base_url}/control/{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("X-Automata-Control", self.token)
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise SimControlError(
                f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}"
            ) from None

    def state(self) -> dict[str, Any]:
        return self.call("GET", "state")

    def reset(self) -> dict[str, Any]:
        return self.call("POST", "reset", {})

    def advance(self, steps: int = 0, candles: int = 0) -> dict[str, Any]:
        return self.call("POST", "advance", {"steps": steps, "candles": candles})

    def set_price(self, symbol: str, price: str) -> dict[str, Any]:
        """A trade at this price now: resting orders it touches fill (up to max_fill)."""
        return self.call("POST", "price", {"symbol": symbol, "price": str(price)})

    def market(self, symbol: str | None = None, **knobs: Any) -> dict[str, Any]:
        """max_fill="0.001" (base qty per step; None to clear) and/or participation="0.5"."""
        body = {k: (None if v is None else str(v)) for k, v in knobs.items()}
        if symbol:
            body["symbol"] = symbol
        return self.call("POST", "market", body)

    def speed(self, speed: float) -> dict[str, Any]:
        return self.call("POST", "speed", {"speed": speed})

    def set_balance(self, asset: str, free: str, account: str = "binance") -> dict[str, Any]:
        return self.call("POST", "balance", {"account": account, "asset": asset, "free": str(free)})

    def balances(self, account: str = "binance") -> dict[str, dict[str, str]]:
        return self.call("GET", "balances", account=account)["balances"]

    def journal(self, since: int = 0, account: str | None = None) -> list[dict[str, Any]]:
        return self.call("GET", "journal", since=since, account=account)

    def orders(self, account: str = "binance") -> list[dict[str, Any]]:
        return self.call("GET", "orders", account=account)

    def fault(
        self,
        kind: str,
        *,
        count: int | None = None,
        seconds: float | None = None,
        match: dict[str, str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Inject a fault (see services/exchange_sim/faults.py); without count/seconds it acts once."""
        body: dict[str, Any] = {"kind": kind, **options}
        if count is not None:
            body["count"] = count
        if seconds is not None:
            body["seconds"] = seconds
        if match:
            body["match"] = match
        return self.call("POST", "faults", body)

    def faults(self) -> list[dict[str, Any]]:
        return self.call("GET", "faults")

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def skew(self, ms: int) -> dict[str, Any]:
        return self.call("POST", "clock", {"skew_ms": ms})

    def limits(self, **limits: Any) -> dict[str, Any]:
        return self.call("POST", "limits", limits)

    def close_ws(self, protocol: str | None = None, kind: str | None = None) -> int:
        return self.call("POST", "close_ws", {"protocol": protocol, "kind": kind})["closed"]


@dataclass
class SimVenue:
    proc: Proc
    port: int
    api_key: str = SIM_API_KEY
    api_secret: str = SIM_API_SECRET
    control_token: str = ""
    control: SimControl = field(init=False)

    def __post_init__(self) -> None:
        self.control = SimControl(self.base_url, self.control_token)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """python-binance API_URL."""
        return f"{self.base_url}/api"

    @property
    def ws_api_url(self) -> str:
        """python-binance WS_API_URL."""
        return f"ws://127.0.0.1:{self.port}/ws-api/v3"

    @property
    def stream_url(self) -> str:
        """BinanceSocketManager.STREAM_URL."""
        return f"ws://127.0.0.1:{self.port}/"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM; returns the exit code (0 when it stopped cleanly)."""
        return self.proc.terminate(timeout)


def start_sim(
    log_dir: Path,
    *,
    speed: str = "0",
    symbols: str | None = None,
    data: str | None = None,
    seed: int = 1,
    extra_env: dict[str, str] | None = None,
    timeout: float = 30.0,
    market_fill: str | None = "now",
) -> SimVenue:
    """Start `python -m services.exchange_sim` on a free port (step mode unless speed says otherwise).

    `market_fill`: in step mode no price comes unless a test steps the market, so the order-path
    tests take market orders at once (SIM_MARKET_FILL=now); None keeps the venue's default."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port_file = log_dir / "sim.port"
    port_file.unlink(missing_ok=True)
    env = base_env("redis://127.0.0.1:1/0")  # the venue never uses Redis
    env.update(
        {
            "SIM_HOST": "127.0.0.1",
            "SIM_PORT": "0",
            "SIM_PORT_FILE": str(port_file),
            "SIM_SPEED": speed,
            "SIM_SEED": str(seed),
            "SIM_API_KEY": SIM_API_KEY,
            "SIM_API_SECRET": SIM_API_SECRET,
            "LOG_LEVEL": "WARNING",
        }
    )
    if market_fill is not None:
        env["SIM_MARKET_FILL"] = market_fill
    if symbols:
        env["SIM_SYMBOLS"] = symbols
    if data:
        env["SIM_DATA"] = data
    env.update(extra_env or {})
    proc = python("services.exchange_sim", env=env, log_path=log_dir / "sim.log").start()

    def ready() -> bool:
        if not proc.alive():
            raise AssertionError(f"paper venue exited early:\n{proc.output()[-3000:]}")
        return port_file.exists()

    try:
        wait_until(ready, timeout=timeout, what="the paper venue to bind its port")
    except BaseException:
        proc.kill()
        raise
    token_file = env.get("SIM_CONTROL_TOKEN_FILE")
    token = Path(token_file).read_text().strip() if token_file else env.get("SIM_CONTROL_TOKEN", "")
    return SimVenue(proc=proc, port=int(port_file.read_text()), control_token=token)


@contextlib.contextmanager
def running_sim(log_dir: Path, **kwargs: Any) -> Iterator[SimVenue]:
    sim = start_sim(log_dir, **kwargs)
    try:
        yield sim
    finally:
        _stop_quietly(sim)


def sim_fixture(**kwargs: Any) -> Callable[..., Any]:
    """A pytest fixture (name it by assignment) giving one venue per test module, reset before each test."""

    @pytest.fixture
    def sim(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SimVenue:
        module = request.node.getparent(pytest.Module)
        venue: SimVenue | None = getattr(module, "_sim_venue", None)
        if venue is None or not venue.proc.alive():
            venue = start_sim(tmp_path_factory.mktemp("sim"), **kwargs)
            venue.proc.shared = True
            module._sim_venue = venue  # type: ignore[union-attr]
            module.addfinalizer(lambda v=venue: _stop_quietly(v))  # type: ignore[union-attr]
        venue.control.reset()
        return venue

    return sim


def binance_client_fixture(**kwargs: Any) -> Callable[..., Any]:
    """A pytest fixture (name it `client` by assignment): binance_client(sim, **kwargs), closed after the test."""

    @pytest.fixture
    async def client(sim: SimVenue) -> AsyncIterator[Any]:
        c = binance_client(sim, **kwargs)
        try:
            yield c
        finally:
            await c.close_connection()

    return client


def _stop_quietly(venue: SimVenue) -> None:
    try:
        venue.stop()
    except Exception:
        venue.proc.kill()


def binance_client_class(sim: SimVenue) -> Any:
    """python-binance's AsyncClient with its REST and WebSocket-API URLs aimed at the venue."""
    from binance import AsyncClient

    return type("SimAsyncClient", (AsyncClient,), {"API_URL": sim.api_url, "WS_API_URL": sim.ws_api_url})


def binance_client(
    sim: SimVenue, *, timeout: float | None = None, ws_timeout: float = 2.0, **kwargs: Any
) -> Any:
    """A python-binance AsyncClient aimed at the venue (construct it inside a running event loop).

    `timeout` (seconds) bounds each REST request, for tests of dropped replies. `ws_timeout`
    bounds each WebSocket-API request and, because python-binance's reader only notices a
    close when a read times out, also how long `close_connection()` takes (default 10 s).
    """
    if timeout is not None:
        kwargs.setdefault("requests_params", {"timeout": timeout})
    client = binance_client_class(sim)(sim.api_key, sim.api_secret, **kwargs)
    client.ws_api.TIMEOUT = ws_timeout
    return client


async def sockets_at_least(
    sim: SimVenue, count: int, kind: str | None = "binance:market", within: float = 15.0
) -> None:
    """wait_for_sockets without blocking the event loop (a python-binance reconnect needs it)."""
    try:
        async with asyncio.timeout(within):
            while await asyncio.to_thread(open_sockets, sim, kind) < count:
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(
            f"timed out after {within}s waiting for {count} websocket(s) at the venue"
        ) from None


def quick(socket: Any, seconds: float = 1.0) -> Any:
    """A python-binance market socket that closes within `seconds` (its reader polls at TIMEOUT)."""
    socket.TIMEOUT = seconds
    return socket


def open_sockets(sim: SimVenue, kind: str | None = None) -> int:
    """Websockets open at the venue: all, or one "protocol:kind" such as "binance:market"."""
    state = sim.control.state()
    return state["websockets"] if kind is None else state["sockets"].get(kind, 0)


def subscribed(sim: SimVenue, kind: str, prefix: str) -> list[str]:
    """The topics starting with `prefix` that sockets of `kind` ("bybit:public") subscribed to."""
    return [t for t in sim.control.state()["topics"].get(kind, []) if t.startswith(prefix)]


def wait_for_sockets(sim: SimVenue, count: int, kind: str | None = "binance:market") -> None:
    """Until the venue has `count` such websockets registered (subscribed), so no step is missed."""
    wait_until(lambda: open_sockets(sim, kind) >= count, what=f"{count} {kind} websocket(s) at the venue")


def socket_manager(client: Any, sim: SimVenue, **kwargs: Any) -> Any:
    """A BinanceSocketManager whose market streams come from the venue."""
    from binance import BinanceSocketManager

    manager = BinanceSocketManager(client, **kwargs)
    manager.STREAM_URL = sim.stream_url
    return manager
