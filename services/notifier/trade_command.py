"""Telegram's `/trade buy BTCUSDT 100 tp 2%,4% sl 1% trailing 0.5%` and `/trade sell BTCUSDT`.

The words are `automata trade`'s (shared/trade_terms.py `parse_words`: a bare amount after the
symbol is the quote to spend; tp, sl, stop, trailing, trailing-tp, break-even, time-limit, qty,
price, bot). The bot is the one taking manual trades on the symbol (shared/trade_control.py:
the strategy runners' heartbeats, and the bots file when the notifier has one), and the
TradeRequest (source "telegram") goes to its control stream as the CLI's does. The answer says
what was sent, or why nothing was; the bot's own notification (sent, or refused and why) follows
through the notifier like any other. Only allowed users get here (commands.py's refusal).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from shared.bus import publish
from shared.control import ControlError
from shared.messages import TradeRequest
from shared.streams import bot_control, bot_state, health
from shared.trade_control import file_trade_bots, heartbeat_trade_bots, holding, new_request_id, pick_bot
from shared.trade_terms import TermsError, describe, parse_words

USAGE = (
    "Usage: /trade buy SYMBOL QUOTE [tp 2%,4%[:50%,50%]] [sl 1% | stop PRICE] [trailing 0.5%] "
    "[trailing-tp 0.5%] [break-even] [time-limit 4h] [price P] [bot ID]\n"
    "or /trade sell SYMBOL [bot ID] (closes the trade at market)"
)


async def runner_extras(redis: aioredis.Redis) -> list[dict]:
    """What the strategy runners' heartbeats say besides their pid and times."""
    keys = [k async for k in redis.scan_iter(match=health("strategy_runner", "*"), count=200)]
    extras = []
    for raw in await redis.mget(keys) if keys else []:
        try:
            doc = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            extras.append(doc)
    return extras


async def trade_answer(redis: aioredis.Redis, args: Sequence[str], who: str, bots_file: Path | None) -> str:
    """Send the trade the words ask for; the answer to show the person."""
    if not args:
        return USAGE
    try:
        terms, bot = parse_words(args)
    except TermsError as exc:
        return f"Not sent: {exc.field}: {exc.reason}\n\n{USAGE}"
    bots = {**file_trade_bots(bots_file), **heartbeat_trade_bots(await runner_extras(redis))}
    try:
        names = list(bots)
        states = (
            dict(zip(names, await redis.mget([bot_state(b) for b in names]), strict=True)) if names else {}
        )
        bot_id, _venue = pick_bot(bots, terms.symbol, bot, side=terms.side, holding=holding(states))
    except ControlError as exc:
        return f"Not sent: {exc}"
    request: TradeRequest = terms.request(
        id=new_request_id(), bot=bot_id, source=f"telegram {who}", ts=int(time.time() * 1000)
    )
    await publish(redis, bot_control(bot_id), request)
    return f"Trade {request.id} sent to {bot_id}: {describe(terms)}. The bot answers in a notification."
