"""A person cancels one of a bot's orders, from the CLI (`automata order cancel CID --force`) and
from the dashboard's API: a real runner, a real order gateway and the paper venue. The bot is
asked on its control stream and sends the cancel itself, so only its runner ever writes its
command stream; the venue cancels the order once, the bot's order ends CANCELED, and the same
request again sends nothing. A cancel the bot cannot send is answered in its decisions; a
control whose cid is not the bot's goes to the dead-letter stream and the runner carries on."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from services.web.settings import WebSettings
from shared.codec import decode, encode
from shared.messages import BotControl, CancelOrder, ControlAction, Decision, Notification
from shared.redis_acl import web_user
from shared.redis_server import RedisServer
from shared.streams import bot_control, bot_decisions, bot_state, dlq, order_commands
from tests.helpers.bots import add_candle, candle, publish_filters, reading_candles, write_bots
from tests.helpers.cli import cli
from tests.helpers.gateway import start_gateway, wait_gateway_ready, write_config
from tests.helpers.procs import python, wait_until
from tests.helpers.sim import SimVenue, sim_fixture
from tests.helpers.web import TOKEN, client

sim = sim_fixture()
BOT = {
    "id": "t1",
    "strategy": "tests.helpers.scripted:Scripted",
    "lease_ms": 1000,
    "params": {"qty": "0.001"},
}
CONTROL = bot_control("t1")


def doc(r: redis.Redis) -> dict:
    raw = r.get(bot_state("t1"))
    return json.loads(raw) if raw else {}


def applied(r: redis.Redis, entry: bytes | str) -> bool:
    """The bot's state says it applied the control entry (exactly once: the step's commit)."""
    entry = entry.decode() if isinstance(entry, bytes) else entry
    last = doc(r).get("last_applied", {}).get(CONTROL, "0-0")
    return tuple(map(int, last.split("-"))) >= tuple(map(int, entry.split("-")))


def decisions(r: redis.Redis, cid: str) -> list[Decision]:
    return [d for _, f in r.xrange(bot_decisions("t1")) if (d := decode(f)).fields.get("cid") == cid]


def cancels_sent(r: redis.Redis, cid: str) -> int:
    sent = [decode(f) for _, f in r.xrange(order_commands("sim", "t1"))]
    return sum(1 for c in sent if isinstance(c, CancelOrder) and c.cid == cid)


def venue_cancels(venue: SimVenue, cid: str) -> int:
    return sum(
        1 for e in venue.control.journal() if e["kind"] == "canceled" and e.get("client_order_id") == cid
    )


def start_runner(env: dict[str, str], tmp_path: Path, r: redis.Redis):
    bots = write_bots(tmp_path / "bots.toml", BOT)
    proc = python("services.strategy_runner", "--bot", "t1", env={**env, "AUTOMATA_BOTS": str(bots)},
                  log_path=tmp_path / "runner.log").start()  # fmt: skip
    wait_until(lambda: reading_candles(r, "t1"), timeout=30, what="runner up")
    return proc


def web_redis_url(server: RedisServer, r: redis.Redis) -> str:
    """The dashboard's own Redis user (shared/redis_acl.py) on this server: what it may write."""
    r.execute_command("ACL", "SETUSER", "web", "reset", "on", ">web-password", *web_user().rules)
    return f"redis://web:web-password@127.0.0.1:{server.port}/0"


async def test_a_forced_cancel_from_the_cli_and_the_web_is_sent_by_the_bot_once(
    sim, env, tmp_path, sync_redis, redis_server
) -> None:
    r = sync_redis
    config = write_config(tmp_path / "automata.toml", sim)
    cenv = {**env, "AUTOMATA_CONFIG": str(config)}
    gateway = start_gateway(cenv, config, tmp_path / "og.log")
    wait_gateway_ready(r, gateway)
    runner = start_runner(cenv, tmp_path, r)
    below = Decimal(sim.control.state()["prices"]["BTCUSDT"]) - 1000  # limit buys that rest at the venue
    for i in range(2):
        add_candle(r, candle(i, str(below - 1), str(below + i)))
    first, second = "t1-000001", "t1-000002"
    wait_until(lambda: {o.get("status") for o in doc(r).get("state", {}).get("orders", {}).values()} == {"NEW"}
               and len(doc(r)["state"]["orders"]) == 2, timeout=30, what="both buys NEW in the bot")  # fmt: skip

    # the CLI: the bot is asked, the bot sends the cancel, the venue cancels, the CLI shows it
    res = cli(cenv, "order", "cancel", first, "--force", "--reason", "placed too low", "--wait", "20")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"sent to {CONTROL}" in res.stdout and "CANCELED" in res.stdout, res.stdout
    wait_until(
        lambda: first in doc(r)["state"].get("recent", []), timeout=20, what="the bot's order CANCELED"
    )
    assert first not in doc(r)["state"]["orders"] and second in doc(r)["state"]["orders"]
    assert cancels_sent(r, first) == 1 and venue_cancels(sim, first) == 1
    (said,) = decisions(r, first)
    assert (
        said.fields["outcome"] == "sent" and said.fields["source"] == "cli" and "placed too low" in said.text
    )
    notes = [
        n
        for _, f in r.xrange("notify")
        if isinstance(n := decode(f), Notification) and n.kind == "bot_cancel"
    ]
    assert [n.data["cid"] for n in notes] == [first] and "(cli: placed too low)" in notes[0].text

    # the same control again: the bot answers, nothing is sent
    ((_id, fields),) = r.xrange(CONTROL)
    again = r.xadd(CONTROL, fields)
    wait_until(lambda: applied(r, again), timeout=20, what="the repeated control applied")
    assert [d.fields["outcome"] for d in decisions(r, first)] == ["sent", "not_open"]
    assert cancels_sent(r, first) == 1 and venue_cancels(sim, first) == 1

    # the dashboard, as its own Redis user: the same control, source web
    settings = WebSettings(redis_url=web_redis_url(redis_server, r), ledger_url="sqlite:////nonexistent/x.db",
                           token=TOKEN)  # fmt: skip
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with client(settings, **auth) as api:
        refused = await api.post(f"/api/orders/{second}/cancel", json={})
        assert refused.status_code == 422 and "belongs to bot 't1'" in refused.json()["error"]
        reply = await api.post(f"/api/orders/{second}/cancel", json={"force": True, "reason": "too low"})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"cid": second, "stream": CONTROL, "status": "sent"}
        wait_until(lambda: venue_cancels(sim, second) == 1, timeout=20, what="the venue cancelled it")
        wait_until(
            lambda: second in doc(r)["state"].get("recent", []), timeout=20, what="the bot's order CANCELED"
        )
        over = await api.post(f"/api/orders/{second}/cancel", json={"force": True})
        assert over.json()["status"] == "CANCELED"  # the gateway's record says it is over: nothing sent
    assert doc(r)["state"].get("orders", {}) == {}  # both gone, nothing else placed
    (said,) = decisions(r, second)
    assert said.fields["source"] == "web" and "too low" in said.text
    assert cancels_sent(r, second) == 1 and r.xlen(CONTROL) == 3
    assert not r.exists(dlq(CONTROL)) and runner.alive()
    assert gateway.terminate() == 0


@pytest.mark.usefixtures("answer_syncs")
def test_an_unknown_cid_is_answered_and_a_malformed_one_is_dead_lettered(env, tmp_path, sync_redis) -> None:
    r = sync_redis
    publish_filters(r)
    runner = start_runner(env, tmp_path, r)
    bad = [
        BotControl(bot="t1", action=ControlAction.CANCEL, cid="t2-000001"),  # another bot's order
        BotControl(bot="t1", action=ControlAction.CANCEL, cid="nonsense"),
        BotControl(bot="t1", action=ControlAction.CANCEL),  # no order named
        BotControl(bot="t1", action=ControlAction.PAUSE, cid="t1-000001"),  # a pause names no order
    ]
    for msg in bad:
        r.xadd(CONTROL, encode(msg))
    wait_until(
        lambda: r.xlen(dlq(CONTROL)) == len(bad), timeout=20, what="each malformed control dead-lettered"
    )
    reasons = [f[b"dlq_reason"].decode() for _, f in r.xrange(dlq(CONTROL))]
    assert "'t2-000001' is not an order id of this bot" in reasons[0] and "'nonsense'" in reasons[1]
    assert "''" in reasons[2] and "pause control of bot t1 names an order" in reasons[3]
    assert doc(r)["state"].get("mode", "running") == "running"

    # the runner carries on: a cancel of an order it does not hold is answered, from the CLI too
    res = cli(env, "order", "cancel", "t1-000042", "--force", "--wait", "20")
    assert res.returncode == 1 and "t1-000042" in res.stdout and "holds no such open order" in res.stdout, (
        res.stdout
    )
    (said,) = decisions(r, "t1-000042")
    assert said.fields["outcome"] == "not_open" and said.fields["source"] == "cli"
    assert not any(isinstance(decode(f), CancelOrder) for _, f in r.xrange(order_commands("sim", "t1")))
    assert runner.alive()
