"""Fuzz: Telegram updates and webhook requests are outside input. Any JSON shape through the
update -> command path (parse, order, authorise, handle with a real Redis and a real HTTP Bot API
fake) is ignored, refused or obeyed, never an exception; nothing reaches a bot unless an allowed
user sent it. verify_webhook answers False, never raises, whatever the headers and body."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import redis
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.commands import MAX_UPDATE_ID, TelegramCommands, in_order, parse_command
from services.notifier.telegram import TelegramClient
from services.notifier.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_webhook
from tests.fuzz.budget import FUZZ
from tests.fuzz.shapes import json_values as json_values_of
from tests.helpers.notifier_fakes import BOT_USERNAME, TOKEN, FakeTelegram
from tests.test_notifier_commands import seed_bot

USERS = (111,)
CHATS = (111, -100500)
json_values = json_values_of(max_leaves=6)
known_ids = st.sampled_from([111, 222, 999, -100500, -100999, 0])
ids = known_ids | known_ids | json_values  # mostly ids that mean something here
texts = (
    st.sampled_from(
        ["/pause dca1", "/stop@automata_bot dca1", "/STOP@Automata_Bot dca1", "/resume@other dca1", "/stop",
         "/bots", "/status", "/balance sim", "/balance", "/", "/@", "/pause dca1 extra", "/pause ../x", "/help"]
    )
    | st.text(max_size=60).map(lambda t: "/" + t)
    | json_values
)  # fmt: skip
people = st.fixed_dictionaries({"id": ids}, optional={"username": json_values, "is_bot": json_values})
chats = st.fixed_dictionaries(
    {"id": ids}, optional={"type": st.sampled_from(["private", "group"]) | json_values}
)
# a message as Telegram sends one, with now and then what makes it not a user's own command
plausible = st.fixed_dictionaries(
    {"chat": chats, "from": people, "text": texts},
    optional={"sender_chat": json_values, "forward_origin": json_values},
)
# anything else: fields missing, of the wrong type, in other update kinds
odd = st.fixed_dictionaries(
    {},
    optional={
        "chat": chats | json_values,
        "from": people | json_values,
        "text": texts,
        "caption": texts,
        "sender_chat": json_values,
    },
)
update_ids = st.integers(min_value=-5, max_value=2**63) | json_values
updates = (
    st.fixed_dictionaries({"update_id": st.integers(0, 10**6), "message": plausible})
    | st.fixed_dictionaries({"update_id": st.integers(0, 10**6), "message": plausible})
    | st.fixed_dictionaries(
        {"update_id": update_ids},
        optional={"message": odd | json_values, "edited_message": plausible, "channel_post": odd},
    )
    | json_values
)


def obeyed(update: Any) -> bool:
    """Whether an allowed user sent a command to this bot from an allowed place (the oracle)."""
    cmd = parse_command(update, BOT_USERNAME)
    if cmd is None or cmd.user_id not in USERS:
        return False
    return cmd.chat_id in CHATS or (cmd.chat_type == "private" and cmd.chat_id == cmd.user_id)


@FUZZ
@given(update=updates)
def test_fuzz_parse_command_never_raises(update: Any) -> None:
    cmd = parse_command(update, BOT_USERNAME)
    if cmd is not None:
        assert type(cmd.chat_id) is int and (cmd.user_id is None or type(cmd.user_id) is int)
        assert "@" not in cmd.name and all(isinstance(a, str) for a in cmd.args)
        text = update["message"]["text"].strip()
        head = text.split()[0]
        assert "@" not in head or head.split("@", 1)[1].lower() == BOT_USERNAME, "another bot's command"


@FUZZ
@given(
    batch=st.lists(
        st.fixed_dictionaries({"update_id": st.integers(-5, 2**63) | json_values}) | json_values, max_size=6
    )
)
def test_fuzz_update_order_never_raises(batch: list[Any]) -> None:
    ordered = in_order(batch)
    assert [i for i, _ in ordered] == sorted(i for i, _ in ordered)
    assert all(type(i) is int and 0 <= i < MAX_UPDATE_ID for i, _ in ordered)


def test_fuzz_updates_through_the_command_handler(
    sync_redis: redis.Redis, redis_server: Any, telegram: FakeTelegram
) -> None:
    """handle_update with a real Redis and the HTTP fake: no exception; a bot's control stream and
    an answer only for an allowed user's command."""
    seed_bot(sync_redis, "dca1", "running")
    loop = asyncio.new_event_loop()

    async def setup() -> tuple[TelegramCommands, aiohttp.ClientSession, aioredis.Redis]:
        session = aiohttp.ClientSession()
        client = TelegramClient(
            session, base_url=telegram.base_url, token=TOKEN, per_chat_rate=1000, stopping=asyncio.Event()
        )
        conn = aioredis.Redis.from_url(redis_server.url)
        commands = TelegramCommands(
            conn, client, CHATS, USERS, ["sim"], asyncio.Event(), username=BOT_USERNAME
        )
        return commands, session, conn

    commands, session, conn = loop.run_until_complete(setup())

    @FUZZ
    @given(update=updates)
    def run(update: Any) -> None:
        controls, answers = sync_redis.xlen("bot:dca1:control"), len(telegram.sent())
        loop.run_until_complete(asyncio.wait_for(commands.handle_update(update), timeout=30))
        if obeyed(update):
            assert len(telegram.sent()) == answers + 1, "an allowed user's command is answered"
        else:
            assert sync_redis.xlen("bot:dca1:control") == controls, "a refused command reached the bot"
            assert len(telegram.sent()) == answers, "a refused command was answered"

    try:
        run()
    finally:
        loop.run_until_complete(session.close())
        loop.run_until_complete(conn.aclose())
        loop.close()


header_maps = st.dictionaries(
    st.sampled_from([TIMESTAMP_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER.lower(), "Other"])
    | st.text(max_size=20),
    st.text(max_size=80) | st.integers().map(str),
    max_size=4,
)


@FUZZ
@given(
    secret=st.text(max_size=20),
    headers=header_maps,
    body=st.binary(max_size=200),
    now=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
)
def test_fuzz_verify_webhook_never_raises(
    secret: str, headers: dict[str, str], body: bytes, now: float
) -> None:
    assert verify_webhook(secret, headers, body, now=now) in (True, False)


@FUZZ
@given(
    secret=st.text(min_size=1, max_size=20),
    body=st.binary(max_size=200),
    stamp=st.integers(0, 10**11),
    flip=st.integers(0, 10**6),
)
def test_fuzz_a_signature_holds_for_its_body_only(secret: str, body: bytes, stamp: int, flip: int) -> None:
    headers = {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(secret, stamp, body)}
    assert verify_webhook(secret, headers, body, now=stamp)
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
        assert not verify_webhook(secret, headers, tampered, now=stamp)
