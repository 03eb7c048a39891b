"""`automata trade` and POST /api/smart-trades end to end: a real strategy runner with a `manual` bot,
a real order gateway and the paper venue (python-binance underneath). The TradeRequest reaches
the bot, its market entry is placed and fills, its exits (an OCO: take profit above, stop below)
are sent and accepted by the venue; the same request id again opens nothing; the command
refuses before writing when a term is bad or no bot takes trades on the symbol; `trade sell`
closes; the dashboard's endpoint does the same with the dashboard's own Redis user."""

from __future__ import annotations

import json
from decimal import Decimal

import redis

from cli.heartbeats import read_heartbeats
from services.web.settings import WebSettings
from shared.codec import decode, encode
from shared.messages import Decision, PlaceOrder, PlaceOrderList, Side, TradeRequest
from shared.streams import bot_control, bot_decisions, bot_state, dlq, order_commands
from tests.helpers.bots import reading_candles, write_bots
from tests.helpers.cli import cli
from tests.helpers.gateway import start_gateway, wait_gateway_ready, write_config
from tests.helpers.procs import python, wait_until
from tests.helpers.sim import SimVenue, sim_fixture
from tests.helpers.web import TOKEN, client
from tests.test_bot_cancel import web_redis_url

sim = sim_fixture()
DUST = Decimal("0.00001")  # under the step: what a fee in base can leave
BOT = {"id": "mt", "strategy": "manual", "venue": "sim", "symbol": "BTCUSDT", "lease_ms": 1000}


def state(r: redis.Redis, bot: str = "mt") -> dict:
    raw = r.get(bot_state(bot))
    return json.loads(raw)["state"] if raw else {}


def sent(r: redis.Redis) -> list:
    return [
        m
        for _, f in r.xrange(order_commands("sim", "mt"))
        if isinstance(m := decode(f), PlaceOrder | PlaceOrderList)
    ]


def answers(r: redis.Redis) -> list[Decision]:
    return [d for _, f in r.xrange(bot_decisions("mt")) if (d := decode(f)).fields.get("request")]


def venue_accepted(venue: SimVenue, side: str) -> list[dict]:
    return [e for e in venue.control.journal() if e["kind"] == "accepted" and e["order"]["side"] == side
            and str(e.get("client_order_id", "")).startswith("mt-")]  # fmt: skip


async def test_a_manual_trade_from_the_cli_and_the_dashboard(
    sim, env, tmp_path, sync_redis, redis_server
) -> None:
    r = sync_redis
    config = write_config(tmp_path / "automata.toml", sim)
    bots = write_bots(tmp_path / "bots.toml", BOT)
    cenv = {**env, "AUTOMATA_CONFIG": str(config), "AUTOMATA_BOTS": str(bots)}
    gateway = start_gateway(cenv, config, tmp_path / "og.log")
    wait_gateway_ready(r, gateway)
    runner = python(
        "services.strategy_runner", "--bot", "mt", env=cenv, log_path=tmp_path / "runner.log"
    ).start()
    wait_until(lambda: reading_candles(r, "mt"), timeout=30, what="the runner up")
    # its heartbeat names the bots it runs that take manual trades (how the notifier finds them)
    wait_until(lambda: [b.extra.get("trades") for b in read_heartbeats(r) if b.service == "strategy_runner"]
               == [{"mt": "sim:BTCUSDT"}], timeout=15, what="the runner's heartbeat naming mt")  # fmt: skip

    # refused before anything is written: a bad term names its flag, a symbol no bot trades says how to add one
    bad = cli(cenv, "trade", "buy", "BTCUSDT", "--quote", "100", "--tp", "2%,,4%")
    assert bad.returncode == 2 and "--tp: an empty target in '2%,,4%'" in bad.stdout, bad.stdout + bad.stderr
    bad = cli(cenv, "trade", "buy", "BTCUSDT", "--quote", "100", "--sl", "0.01")
    assert bad.returncode == 2 and "--sl: write it as a percent, e.g. 1% (got '0.01')" in bad.stdout, (
        bad.stdout
    )
    none = cli(cenv, "trade", "buy", "ETHUSDT", "--quote", "100", "--tp", "2%")
    assert (
        none.returncode == 2
        and "no bot takes manual trades on ETHUSDT: add a bot to the bots file" in none.stdout
        and 'symbol = "ETHUSDT"' in none.stdout.replace("\n", "")  # the lines for this symbol
    )
    assert r.xlen(bot_control("mt")) == 0  # the runner made the stream (its group); nothing on it

    # the trade: sent, the entry placed and filled at market, the exits sent as it fills
    res = cli(cenv, "trade", "buy", "BTCUSDT", "--quote", "100", "--tp", "2%", "--sl", "1%", "--wait", "30")
    assert res.returncode == 0, res.stdout + res.stderr
    out = " ".join(res.stdout.split())
    assert "buy BTCUSDT quote 100 at market tp 2% sl 1% sent to mt (bot:mt:control" in out, out
    assert "mt: trade " in out and "; entry mt-000001" in out, out
    assert "entry mt-000001 BUY BTCUSDT MARKET" in out and ": FILLED, filled" in out, out
    (said,) = answers(r)
    assert said.fields["outcome"] == "sent" and said.fields["cid"] == "mt-000001"
    entry = sent(r)[0]
    assert isinstance(entry, PlaceOrder) and (entry.side, entry.quote_quantity) == (Side.BUY, Decimal(100))
    oco = wait_until(
        lambda: [c for c in sent(r) if isinstance(c, PlaceOrderList)], timeout=30, what="the exits sent"
    )[0]
    bought = Decimal(state(r)["position"]["base"])
    assert all(leg.side == Side.SELL and leg.quantity <= bought for leg in oco.legs), oco
    above, below = oco.legs
    assert above.price > entry_price(r) > below.stop_price

    # the same request again (a resend: a second entry with the same id) opens nothing
    ((_id, fields),) = [(i, f) for i, f in r.xrange(bot_control("mt"))]
    again = r.xadd(bot_control("mt"), fields)
    wait_until(lambda: state_applied(r, again), timeout=20, what="the resent request applied")
    assert [d.fields["outcome"] for d in answers(r)] == ["sent", "duplicate"]
    assert len([c for c in sent(r) if isinstance(c, PlaceOrder) and c.side == Side.BUY]) == 1

    # a request for another bot on this bot's control stream is dead-lettered, never handed to the strategy
    stray = TradeRequest(id="stray", bot="other", symbol="BTCUSDT", quote=Decimal(10))
    r.xadd(bot_control("mt"), encode(stray))
    (dead,) = wait_until(
        lambda: r.xrange(dlq(bot_control("mt"))), timeout=20, what="the stray request dead-lettered"
    )
    assert b"trade request for bot other on the control stream of mt" in dead[1][b"dlq_reason"]
    assert "stray" not in [d.fields["request"] for d in answers(r)]

    # a second trade while this one is on is refused, saying how to close it
    second = cli(cenv, "trade", "buy", "BTCUSDT", "--quote", "20", "--wait", "20")
    assert second.returncode == 1 and "has a trade open already" in second.stdout, second.stdout

    # the venue holds both legs of the exit OCO (the order gateway's list path)
    wait_until(lambda: len(venue_accepted(sim, "SELL")) == 2, timeout=30, what="the OCO's legs at the venue")

    # the dashboard (its own Redis user): a bad term is a 422 naming it; a sell closes the trade
    settings = WebSettings(redis_url=web_redis_url(redis_server, r), ledger_url="sqlite:////nonexistent/x.db",
                           token=TOKEN, bots_file=str(bots))  # fmt: skip
    async with client(settings, authorization=f"Bearer {TOKEN}") as api:
        refused = await api.post(
            "/api/smart-trades", json={"side": "buy", "symbol": "BTCUSDT", "quote": "10", "tp": "2%,4%:50%"}
        )
        assert (
            refused.status_code == 422
            and refused.json()["error"] == "tp: 2 targets but 1 shares in '2%,4%:50%'"
        )
        bad = await api.post(
            "/api/smart-trades", json={"side": "buy", "symbol": "BTCUSDT", "quote": "10", "sl": "1"}
        )
        assert bad.status_code == 422 and bad.json()["error"].startswith("sl: write it as a percent"), (
            bad.text
        )
        closed = await api.post("/api/smart-trades", json={"side": "sell", "symbol": "BTCUSDT", "wait": 10})
        assert closed.status_code == 200, closed.text
        body = closed.json()
        assert (
            body["bot"] == "mt"
            and body["outcome"] == "closing"
            and body["trade"] == "sell BTCUSDT (close at market)"
        )
        assert "close — open orders cancelled, the position sold at market" in body["answer"]
        assert body["status"] == "FILLED" and body["cid"].startswith("mt-"), body  # the sale, waited for
    wait_until(lambda: not state(r).get("orders") and Decimal(state(r)["position"].get("base", "0")) < DUST,
               timeout=30, what="the exits cancelled and the position sold")  # fmt: skip
    assert venue_accepted(sim, "SELL")[-1]["order"]["type"] == "MARKET"  # the close's sale
    # the close ended the trade, not the bot: the next trade goes out with no resume
    assert state(r).get("mode", "running") == "running"  # the default is left out of the JSON
    again = cli(cenv, "trade", "buy", "BTCUSDT", "--quote", "20", "--wait", "20")
    assert again.returncode == 0 and "FILLED" in again.stdout, again.stdout
    # a close from the CLI waits for its sale and shows it
    sold = cli(cenv, "trade", "sell", "BTCUSDT", "--wait", "20")
    assert sold.returncode == 0 and "sale " in sold.stdout and "SELL BTCUSDT MARKET" in sold.stdout, (
        sold.stdout
    )
    assert ": FILLED" in sold.stdout, sold.stdout
    assert gateway.alive() and runner.alive()
    assert runner.terminate() == 0 and gateway.terminate() == 0


def entry_price(r: redis.Redis) -> Decimal:
    position = state(r)["position"]
    return Decimal(position["cost"]) / Decimal(position["base"])


def state_applied(r: redis.Redis, entry: bytes) -> bool:
    raw = r.get(bot_state("mt"))
    last = json.loads(raw).get("last_applied", {}).get(bot_control("mt"), "0-0") if raw else "0-0"
    return tuple(map(int, last.split("-"))) >= tuple(map(int, entry.decode().split("-")))


def test_several_manual_bots_on_a_symbol_take_one_trade_each(sim, env, tmp_path, sync_redis) -> None:
    """A bot holds one trade at a time: two manual bots on BTCUSDT hold two. A buy without --bot
    goes to the first holding none; with both holding, a third is refused before anything is
    written; a sell without --bot must name which."""
    r = sync_redis
    config = write_config(tmp_path / "automata.toml", sim)
    bots = write_bots(tmp_path / "bots.toml", {**BOT, "id": "ma"}, {**BOT, "id": "mb"})
    cenv = {**env, "AUTOMATA_CONFIG": str(config), "AUTOMATA_BOTS": str(bots)}
    gateway = start_gateway(cenv, config, tmp_path / "og.log")
    wait_gateway_ready(r, gateway)
    runner = python("services.strategy_runner", "--bot", "ma", "--bot", "mb", env=cenv,
                    log_path=tmp_path / "runner.log").start()  # fmt: skip
    wait_until(
        lambda: reading_candles(r, "ma") and reading_candles(r, "mb"), timeout=30, what="the runner up"
    )

    def buy() -> str:
        res = cli(
            cenv, "trade", "buy", "BTCUSDT", "--quote", "20", "--tp", "2%", "--sl", "1%", "--wait", "30"
        )
        return " ".join((res.stdout + res.stderr).split()) + f" (exit {res.returncode})"

    first, second = buy(), buy()
    assert "sent to ma" in first and ": FILLED" in first and "(exit 0)" in first, first
    assert "sent to mb" in second and ": FILLED" in second and "(exit 0)" in second, second
    third = buy()
    assert "every bot that takes manual trades on BTCUSDT has one open (ma, mb)" in third, third
    assert "(exit 2)" in third and r.xlen(bot_control("ma")) == r.xlen(bot_control("mb")) == 1
    which = cli(cenv, "trade", "sell", "BTCUSDT", "--wait", "20")
    assert which.returncode == 2 and "several bots hold a trade on BTCUSDT (ma, mb): name one" in " ".join(
        which.stdout.split()
    ), which.stdout
    sold = cli(cenv, "trade", "sell", "BTCUSDT", "--bot", "mb", "--wait", "20")
    assert sold.returncode == 0 and "SELL BTCUSDT MARKET" in sold.stdout, sold.stdout
    # mb's sale done, it holds no trade: the next buy goes to it, ma keeps its own
    wait_until(lambda: not {"trade", "closing"} & set(state(r, "mb")), timeout=20, what="mb's trade over")
    assert "sent to mb" in buy()
    assert runner.terminate() == 0 and gateway.terminate() == 0
