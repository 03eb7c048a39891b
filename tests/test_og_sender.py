"""The sender of an order command is the bot whose stream it came on (`orders:cmd:{venue}:{bot}`,
writable only by that bot's runner user): a process holding one runner's Redis credentials
cannot make the order gateway place, cancel, replay or sync for another bot. Its XADD to the
other bot's stream (or the legacy shared one) is NOPERM; what it writes on its own stream naming
the other bot is dead-lettered, and the other bot's order stays open at the venue.

Also: a bot that appears after the gateway started is served (the gateway's rescan), and what an
upgrade left on the legacy shared `orders:cmd:{venue}` is still drained.

Real redis-server loaded with the generated ACL, real gateway process (as the `order_gateway`
user), real paper venue, a real process as the intruder."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from shared import redis_acl
from shared.codec import encode
from shared.messages import (
    BotSynced,
    CancelAll,
    CancelOrder,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
    SyncBot,
)
from shared.redis_acl import Runner
from shared.redis_server import RedisServer
from shared.streams import dlq, legacy_order_commands, og_order, order_commands
from tests.helpers.acl import start_acl_redis
from tests.helpers.gateway import place, start_gateway, wait_gateway_ready, wait_status, write_config
from tests.helpers.og_sync import events, wait_reconciled
from tests.helpers.procs import Proc, base_env, wait_until
from tests.helpers.sim import SimVenue, sim_fixture

sim = sim_fixture()
EVIL, LATE = "evil", "late"  # a compromised bot's runner; a bot deployed after the gateway started
RUNNERS = [Runner(f"bot_{b}", b, ((b, "sim"),)) for b in ("b1", EVIL, LATE)]


class Deployment:
    """A Redis under the generated ACL and an order gateway running as its own user."""

    def __init__(self, server: RedisServer, secrets: Path, tmp_path: Path) -> None:
        self.server, self.secrets, self.tmp_path = server, secrets, tmp_path
        self.admin = self.client(redis_acl.ADMIN)
        self.gateway: Proc | None = None

    def env(self, user: str) -> dict[str, str]:
        return base_env(f"redis://127.0.0.1:{self.server.port}/0", REDIS_USER=user,
                        REDIS_PASSWORD_FILE=str(self.secrets / user))  # fmt: skip

    def client(self, user: str) -> redis.Redis:
        return redis.Redis(
            port=self.server.port, username=user, password=(self.secrets / user).read_text().strip()
        )

    def start_gateway(self, sim: SimVenue) -> Proc:
        config = write_config(self.tmp_path / "og.toml", sim)
        self.gateway = start_gateway(self.env("order_gateway"), config, self.tmp_path / "og.log")
        wait_gateway_ready(self.admin, self.gateway)
        wait_reconciled(self.admin)
        return self.gateway

    def xadd_as(self, user: str, entries: list[tuple[str, object]]) -> list[str]:
        """XADD each (stream, message) from a separate process holding `user`'s credentials."""
        batch = [
            [stream, {k.decode(): v.decode() for k, v in encode(msg).items()}] for stream, msg in entries
        ]
        done = subprocess.run([sys.executable, "-m", "tests.helpers.intruder", json.dumps(batch)],
                              env=self.env(user), capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    secrets = tmp_path / "secrets"
    server = start_acl_redis(tmp_path / "redis", secrets, RUNNERS)
    dep = Deployment(server, secrets, tmp_path)
    try:
        yield dep
    finally:
        if dep.gateway is not None and dep.gateway.alive():
            assert dep.gateway.terminate() == 0, dep.gateway.output()[-2000:]
        dep.admin.close()
        server.kill()


def now_ms() -> int:
    return int(time.time() * 1000)


def limit(bot: str, cid: str, price: Decimal) -> PlaceOrder:
    return PlaceOrder(cid=cid, bot=bot, venue="sim", symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT,
                      quantity=Decimal("0.001"), price=price, ts=now_ms())  # fmt: skip


def venue_status(sim: SimVenue, cid: str) -> str:
    return next(o["status"] for o in sim.control.orders() if o.get("client_order_id") == cid)


def test_a_runner_credential_cannot_act_for_another_bot(sim, deployment):
    dep, r = deployment, deployment.admin
    dep.start_gateway(sim)
    p = Decimal(sim.control.state()["prices"]["BTCUSDT"]) - 300
    first = place(r, 1, price=str(p))  # b1's order, open at the venue
    wait_status(r, first.cid, OrderStatus.NEW)
    owner_events = len(events(r, "b1"))

    as_b1 = [
        CancelOrder(cid=first.cid, bot="b1", venue="sim", symbol="BTCUSDT", ts=now_ms()),
        CancelAll(bot="b1", venue="sim", ts=now_ms()),
        first,  # a replay of b1's order
        limit("b1", "b1-000002", p),  # b1's next cid, taken before b1 uses it
        SyncBot(bot="b1", venue="sim", symbol="BTCUSDT", token="intruder", seq=0, ts=now_ms()),
    ]
    elsewhere = dep.xadd_as(
        f"bot_{EVIL}", [(order_commands("sim", "b1"), as_b1[0]), (legacy_order_commands("sim"), as_b1[0])]
    )
    assert all(o.startswith("NOPERM") for o in elsewhere), f"wrote b1's or the shared stream: {elsewhere}"

    own = order_commands("sim", EVIL)
    assert dep.xadd_as(f"bot_{EVIL}", [(own, cmd) for cmd in as_b1]) == ["ok"] * len(as_b1)
    dead = wait_until(
        lambda: len(d := r.xrange(dlq(own))) == len(as_b1) and d, what="every intruding command refused"
    )
    reasons = {f[b"dlq_reason"].decode() for _, f in dead}
    assert reasons == {"command names bot 'b1' on the command stream of bot 'evil'"}
    assert r.xpending(own, "order_gateway")["pending"] == 0
    assert venue_status(sim, first.cid) == "NEW", "b1's order is untouched at the venue"
    assert r.hget(og_order(first.cid), "status") == b"NEW"
    assert not r.exists(og_order("b1-000002")), "b1's next cid is still free"
    assert len(events(r, "b1")) == owner_events, "b1 got no answer to commands it never sent"
    assert not events(r, EVIL), "nor did the intruder"
    assert dep.gateway.output().count("on the command stream of bot 'evil': refused (dead-lettered)") == len(
        as_b1
    )

    # b1's own runner still commands its own orders
    assert dep.xadd_as("bot_b1", [(order_commands("sim", "b1"), as_b1[0])]) == ["ok"]
    wait_status(r, first.cid, OrderStatus.CANCELED)
    assert not any(isinstance(m, BotSynced) and m.token == "intruder" for m in events(r, "b1"))


def test_a_bot_added_later_is_served_and_the_legacy_stream_is_drained(sim, deployment):
    dep, r = deployment, deployment.admin
    p = Decimal(sim.control.state()["prices"]["BTCUSDT"]) - 300
    legacy = legacy_order_commands("sim")
    r.xadd(legacy, encode(limit("b1", "b1-000001", p)))  # queued by b1 before the upgrade
    r.xadd(legacy, encode(CancelOrder(cid="b1-000001", bot=EVIL, venue="sim", symbol="BTCUSDT")))
    dep.start_gateway(sim)
    wait_status(r, "b1-000001", OrderStatus.NEW)
    wait_until(lambda: r.xpending(legacy, "order_gateway")["pending"] == 0 and not r.xinfo_groups(legacy)[0]["lag"],
               what="the legacy stream drained")  # fmt: skip
    assert venue_status(sim, "b1-000001") == "NEW", "the ownership checks still hold on the legacy stream"
    refused = [m for m in events(r, EVIL) if getattr(m, "status", None) is OrderStatus.REJECTED]
    assert refused and "does not belong to bot 'evil'" in refused[0].reason

    late = order_commands("sim", LATE)
    assert not r.exists(late), "the bot's stream did not exist when the gateway started"
    order = PlaceOrder(cid="late-000001", bot=LATE, venue="sim", symbol="BTCUSDT", side=Side.BUY,
                       order_type=OrderType.MARKET, quantity=Decimal("0.001"), ts=now_ms())  # fmt: skip
    assert dep.xadd_as(f"bot_{LATE}", [(late, order)]) == ["ok"]
    wait_until(lambda: any(getattr(m, "status", None) is OrderStatus.FILLED for m in events(r, LATE)),
               what="the late bot's order filled")  # fmt: skip
    assert r.xpending(late, "order_gateway")["pending"] == 0
