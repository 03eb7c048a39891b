"""Helpers for the order gateway's sync, conflict and robustness tests: orders placed at the
paper venue behind the gateway's back (as if Redis had lost them), SyncBot commands, and the
bot's event stream read whole (order updates and BotSynced answers, in stream order)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from shared.codec import decode, encode
from shared.messages import BotSynced, Message, Notification, OrderUpdate, SyncBot
from shared.streams import NOTIFY, og_open, og_order, order_commands, order_events
from tests.helpers.gateway import BOT
from tests.helpers.procs import wait_until
from tests.helpers.sim import SimVenue

DAY_MS = 24 * 3600 * 1000


def venue_client(sim: SimVenue) -> Any:
    """python-binance's blocking Client on the venue's Binance face (no event loop needed)."""
    from binance import Client

    return type("SimClient", (Client,), {"API_URL": sim.api_url})(sim.api_key, sim.api_secret, ping=False)


def place_behind(sim: SimVenue, client: Any, cid: str, **order: Any) -> dict[str, Any]:
    """An order with the bot's cid placed straight at the venue; its user-stream events are
    dropped, so the gateway learns of it only by looking (what a lost Redis write leaves)."""
    sim.control.fault("drop_event", count=20, match={"client_order_id": cid})
    return client.create_order(newClientOrderId=cid, **order)


def venue_far_from_wall_clock(sim: SimVenue) -> bool:
    """The venue's order times (market time) are more than a day from the local clock."""
    market_ms = int(sim.control.state()["market_time"])
    return abs(market_ms - time.time() * 1000) > DAY_MS


def send_sync(r: redis.Redis, seq: int, token: str, symbol: str = "BTCUSDT", bot: str = BOT) -> SyncBot:
    cmd = SyncBot(bot=bot, venue="sim", symbol=symbol, token=token, seq=seq, ts=int(time.time() * 1000))
    r.xadd(order_commands("sim", bot), encode(cmd))
    return cmd


def events(r: redis.Redis, bot: str = BOT) -> list[Message]:
    """Everything on the bot's event stream, in order."""
    return [decode(f) for _, f in r.xrange(order_events(bot))]


def wait_synced(r: redis.Redis, token: str, timeout: float = 30) -> BotSynced:
    return wait_until(
        lambda: next((m for m in events(r) if isinstance(m, BotSynced) and m.token == token), None),
        timeout=timeout,
        what=f"BotSynced {token}",
    )


def before_answer(r: redis.Redis, token: str) -> list[OrderUpdate]:
    """The order updates published before the BotSynced carrying `token`."""
    out: list[OrderUpdate] = []
    for msg in events(r):
        if isinstance(msg, BotSynced) and msg.token == token:
            return out
        if isinstance(msg, OrderUpdate):
            out.append(msg)
    raise AssertionError(f"no BotSynced {token}")


def notes(r: redis.Redis, kind: str) -> list[Notification]:
    found = [decode(f) for _, f in r.xrange(NOTIFY)]
    return [n for n in found if isinstance(n, Notification) and n.kind == kind]


def wait_reconciled(r: redis.Redis, starts: int = 1, timeout: float = 30) -> Notification:
    """The gateway's start-up reconciliation is done (its summary is on `notify`): from then
    on it takes commands, and orders placed behind its back are no longer seen by it."""
    return wait_until(
        lambda: (found := notes(r, "reconciliation")) and len(found) >= starts and found[starts - 1],
        timeout=timeout,
        what=f"reconciliation summary #{starts}",
    )


def lose(r: redis.Redis, *cids: str) -> None:
    """Redis lost these records (the last second before a power cut)."""
    for cid in cids:
        r.delete(og_order(cid))
        r.srem(og_open("sim"), cid)


def write_bots(path: Path, *bots: tuple[str, str]) -> Path:
    """A bots file of (id, symbol) bots on the paper venue."""
    tables = [
        f'[[bots]]\nid = "{bot}"\nstrategy = "dca"\nvenue = "sim"\nsymbol = "{symbol}"\n'
        for bot, symbol in bots
    ]
    path.write_text("\n".join(tables))
    return path


def reconciled_gateway_fixture() -> Any:
    """The `gateway` fixture of the sync and ownership tests: an order gateway on the module's
    `sim` venue, ready and reconciled; it must stop cleanly."""
    import pytest

    from tests.helpers.gateway import start_gateway, wait_gateway_ready, write_config

    @pytest.fixture
    def gateway(env, sim, tmp_path, sync_redis):  # noqa: ANN001, ANN202
        proc = start_gateway(env, write_config(tmp_path / "og.toml", sim), tmp_path / "og.log")
        wait_gateway_ready(sync_redis, proc)
        wait_reconciled(sync_redis)
        yield proc
        if proc.alive():
            assert proc.terminate() == 0, proc.output()[-2000:]

    return gateway
