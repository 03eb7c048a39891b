"""Fuzz: stream envelopes of every message type (shared/codec.py, shared/messages.py, the bus's
dead-letter path).

Valid messages, generated from the Struct definitions themselves, round-trip; anything else
(random bytes, random JSON, valid envelopes with a field mutated) decodes to a valid message
or is refused with the codec's DecodeError, never another exception. End to end, hostile
entries on a stream a real consumer reads land in the dead-letter stream with a reason each,
and the good entries around them are handled.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.strategy_runner.inputs import InputCheck
from shared.bus import Consumer, DeadLetter, Entry
from shared.codec import DecodeError, decode, encode
from shared.ids import seq_of
from shared.messages import (
    MAX_AMOUNT,
    MESSAGE_TYPES,
    BotControl,
    BotSynced,
    Candle,
    ControlAction,
    Message,
    OrderUpdate,
    TimerFired,
    TradeRequest,
)
from tests.fuzz.budget import FUZZ

pytestmark = pytest.mark.timeout(120)

FINITE = st.decimals(min_value=0, max_value=MAX_AMOUNT - 1, allow_nan=False, allow_infinity=False)
JSON_LEAF = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
JSON = st.recursive(
    JSON_LEAF,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=12,
)
BAD_AMOUNTS = ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "-1", "1e20", "1e999999999", "-1e-9"]


def _built(cls: type, kw: dict[str, Any]) -> Any:
    try:
        return cls(**kw)
    except ValueError:
        return None


def strategy_for(t: mi.Type) -> st.SearchStrategy[Any]:
    """Values of a msgspec type, from its inspected type info (amounts finite and in range)."""
    if isinstance(t, mi.StructType):
        required = {f.name: strategy_for(f.type) for f in t.fields if f.required}
        optional = {f.name: strategy_for(f.type) for f in t.fields if not f.required}
        # a Struct that checks its fields together (Exits, TradeRequest, an order list's legs)
        # refuses some combinations where it is built: those are not messages, left out
        built = st.fixed_dictionaries(required, optional=optional).map(lambda kw: _built(t.cls, kw))
        return built.filter(lambda value: value is not None)
    if isinstance(t, mi.UnionType):
        return st.one_of([strategy_for(x) for x in t.types])
    if isinstance(t, mi.VarTupleType | mi.ListType):
        items = st.lists(strategy_for(t.item_type), max_size=3)
        return items.map(tuple) if isinstance(t, mi.VarTupleType) else items
    if isinstance(t, mi.DictType):
        return st.dictionaries(strategy_for(t.key_type), strategy_for(t.value_type), max_size=3)
    if isinstance(t, mi.EnumType):
        return st.sampled_from(list(t.cls))
    if isinstance(t, mi.StrType) and t.pattern is not None:  # a command's cid: one of ours
        return st.from_regex(t.pattern, fullmatch=True).filter(lambda s: len(s) <= (t.max_length or len(s)))
    simple: dict[type, st.SearchStrategy[Any]] = {
        mi.StrType: st.text(max_size=30),
        mi.IntType: st.integers(-(2**63), 2**63 - 1),
        mi.BoolType: st.booleans(),
        mi.DecimalType: FINITE,
        mi.NoneType: st.none(),
        mi.AnyType: JSON,
    }
    if type(t) in simple:
        return simple[type(t)]
    raise AssertionError(f"no strategy for {t!r}: teach strategy_for this type")


MESSAGES = st.one_of([strategy_for(mi.type_info(cls)) for cls in MESSAGE_TYPES.values()])


def amount_paths(cls: type[msgspec.Struct]) -> list[str]:
    """The Decimal fields of a message (the nested Balance's as `balances`)."""
    out = []
    for f in mi.type_info(cls).fields:
        kinds = f.type.types if isinstance(f.type, mi.UnionType) else (f.type,)
        nested = isinstance(f.type, mi.VarTupleType) and isinstance(f.type.item_type, mi.StructType)
        if nested or any(isinstance(k, mi.DecimalType) for k in kinds):
            out.append(f.name)
    return out


AMOUNT_CASES = [(tag, name) for tag, cls in MESSAGE_TYPES.items() for name in amount_paths(cls)]


def decodes_or_refuses(fields: dict[Any, Any]) -> Message | None:
    """The property: a valid message, or DecodeError with a reason; nothing else escapes."""
    try:
        msg = decode(fields)
    except DecodeError as exc:
        assert str(exc), "a refusal must say why"
        return None
    assert isinstance(msg, Message)
    assert decode(encode(msg)) == msg, "what was accepted must round-trip"
    return msg


@FUZZ
@given(MESSAGES)
def test_every_message_type_round_trips(msg: Message) -> None:
    fields = encode(msg)
    assert decode(fields) == msg
    # the same entry as redis-py gives it with decode_responses (str keys and values)
    assert decode({k.decode(): v.decode() for k, v in fields.items()}) == msg


def test_generator_covers_every_message_type() -> None:
    assert set(MESSAGE_TYPES) == {
        "candle", "book", "place", "place_list", "cancel", "cancel_list", "cancel_all", "sync", "order_update",
        "synced", "balance", "control", "trade", "timer", "notification", "decision",
    }  # fmt: skip
    assert AMOUNT_CASES, "the amount cases are derived from the Struct definitions"


def minimal(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON object of a message with only its required fields, each a plain valid value."""
    plain = {mi.StrType: "x", mi.IntType: 1, mi.BoolType: True, mi.DecimalType: "1", mi.VarTupleType: []}
    obj: dict[str, Any] = {"type": cls.__struct_config__.tag}
    for f in mi.type_info(cls).fields:
        if f.required:
            if isinstance(f.type, mi.EnumType):
                obj[f.name] = list(f.type.cls)[0].value
            elif isinstance(f.type, mi.StrType) and f.type.pattern is not None:
                obj[f.name] = "b1-000001"  # a command's cid (shared/ids.py)
            else:
                obj[f.name] = plain[type(f.type)]
    return obj


def nested_with(cls: type[msgspec.Struct], name: str, bad: str) -> Any:
    """`bad` as field `name`'s value; for a tuple of Structs (balances, a list's legs), one
    minimal item whose first Decimal field holds it."""
    field = next(f for f in mi.type_info(cls).fields if f.name == name)
    if not (isinstance(field.type, mi.VarTupleType) and isinstance(field.type.item_type, mi.StructType)):
        return bad
    item_cls = field.type.item_type.cls
    item = minimal(item_cls)
    if item_cls.__struct_config__.tag is None:  # an untagged Struct (Balance) has no type key
        del item["type"]
    first = next(f.name for f in mi.type_info(item_cls).fields if f.name in amount_paths(item_cls))
    return [{**item, first: bad}]


@pytest.mark.parametrize(("tag", "name"), AMOUNT_CASES)
def test_bad_amounts_are_refused(tag: str, name: str) -> None:
    """Every Decimal field of every message refuses NaN, infinities, negatives and >= 1e20 (a
    fee may be negative: a rebate), when decoded (and so when built: same __post_init__)."""
    for bad in BAD_AMOUNTS:
        obj = minimal(MESSAGE_TYPES[tag])
        obj[name] = nested_with(MESSAGE_TYPES[tag], name, bad)
        fields = {b"type": tag.encode(), b"v": b"1", b"data": json.dumps(obj).encode()}
        if name == "fee" and bad in ("-1", "-1e-9"):
            assert isinstance(decode(fields), Message)
            continue
        with pytest.raises(DecodeError, match="finite number"):
            decode(fields)
            pytest.fail(f"{tag}.{name} = {bad} was accepted")


def _mutations() -> st.SearchStrategy[tuple[str, Any]]:
    huge = st.sampled_from([10**30, -(10**30), "9" * 5000, 1e308, "1e999999999", "x" * 100_000])
    nonfinite = st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "inf", "sNaN"])
    deep = st.integers(1, 5000).map(lambda n: "D" * n)  # stands for nesting n deep (see _apply)
    value = JSON | huge | nonfinite | deep
    return st.tuples(st.text(max_size=20) | st.sampled_from(["type", "cid", "price", "balances"]), value)


def _apply(obj: dict[str, Any], mutation: tuple[str, Any], drop: bool) -> dict[str, Any]:
    key, value = mutation
    if drop:
        obj.pop(key, None)
    else:
        obj[key] = value
    return obj


def _dumps(obj: dict[str, Any]) -> bytes:
    """JSON text; a "DDD..." value becomes an object nested that deep (json.dumps would recurse)."""
    text = json.dumps(obj)
    for depth in sorted({len(v) for v in obj.values() if isinstance(v, str) and v and set(v) == {"D"}}):
        text = text.replace(json.dumps("D" * depth), '{"a":' * depth + "1" + "}" * depth)
    return text.encode()


ENVELOPE_KEYS = st.sampled_from([b"type", b"v", b"data", "type", "v", "data", b"other"])


@FUZZ
@given(
    msg=MESSAGES,
    mutations=st.lists(st.tuples(_mutations(), st.booleans()), min_size=1, max_size=3),
    envelope=st.dictionaries(ENVELOPE_KEYS, st.binary(max_size=20) | st.text(max_size=20), max_size=2),
)
@example(  # Notification.data nested 5000 deep: RecursionError escaped the codec and ended the consumer
    msg=MESSAGE_TYPES["notification"](id="n", kind="info", text="t"),
    mutations=[(("data", "D" * 5000), False)],
    envelope={},
)
def test_mutated_envelopes_decode_or_refuse(msg, mutations, envelope) -> None:
    fields: dict[Any, Any] = dict(encode(msg))
    obj = json.loads(fields[b"data"])
    for mutation, drop in mutations:
        obj = _apply(obj, mutation, drop)
    fields[b"data"] = _dumps(obj)
    fields.update(envelope)  # wrong/unknown type, version, str keys, missing data
    decodes_or_refuses(fields)


@FUZZ
@given(
    fields=st.dictionaries(
        ENVELOPE_KEYS,
        st.binary(max_size=200) | st.text(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()),
        max_size=4,
    ),
    tag=st.sampled_from([*MESSAGE_TYPES, "", "nope"]),
    version=st.sampled_from([b"1", b"0", b"2", b"-1", b"9" * 5000, b"x", b"\xff"]),
    data=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()),
)
def test_random_entries_decode_or_refuse(fields, tag, version, data) -> None:
    decodes_or_refuses(fields)
    decodes_or_refuses({b"type": tag.encode(), b"v": version, b"data": data})


# --- end to end: a real Redis and the real consumer ------------------------------------------

S, G = "fuzz:in", "g"

HOSTILE: list[dict[Any, Any]] = [
    {"garbage": "1"},
    {"type": "notification", "v": "1", "data": b"\xff\xfe"},
    {"type": "notification", "v": "1", "data": b"{" * 100_000},
    {
        "type": "notification",
        "v": "1",
        "data": '{"type":"notification","id":"x","kind":"k","text":"t","data":'
        + '{"a":' * 5000
        + "1"
        + "}" * 5000
        + "}",
    },  # fmt: skip
    {"type": "nope", "v": "1", "data": "{}"},
    {"type": "notification", "v": "99", "data": "{}"},
    {"type": "notification", "v": "9" * 5000, "data": "{}"},
    {
        "type": "place",
        "v": "1",
        "data": json.dumps(
            {
                "type": "place",
                "cid": "c",
                "bot": "b",
                "venue": "v",
                "symbol": "S",
                "side": "BUY",
                "order_type": "LIMIT",
                "price": "NaN",
            }
        ),
    },  # fmt: skip
    {
        "type": "order_update",
        "v": "1",
        "data": json.dumps(
            {
                "type": "order_update",
                "cid": "c",
                "bot": "b",
                "venue": "v",
                "symbol": "S",
                "status": "NEW",
                "cum_filled_qty": "-Infinity",
            }
        ),
    },  # fmt: skip
    {
        "type": "candle",
        "v": "1",
        "data": json.dumps(
            {
                "type": "candle",
                "venue": "v",
                "symbol": "S",
                "interval": "1m",
                "open_time": 1,
                "close_time": 2,
                "open": "1e999999999",
                "high": "1",
                "low": "1",
                "close": "1",
                "volume": "1",
            }
        ),
    },  # fmt: skip
    {"type": "cancel", "v": "1", "data": '{"type":"notification","id":"x","kind":"k","text":"t"}'},
    {"type": "book", "v": "1", "data": '{"type":"book","venue":"v","symbol":"S","bid":"1"}'},
]


def _good(i: int) -> dict[bytes, bytes]:
    return encode(MESSAGE_TYPES["notification"](id=f"good-{i}", kind="info", text=str(i)))


async def test_hostile_entries_are_dead_lettered_and_the_consumer_goes_on(redis_client) -> None:
    for i, bad in enumerate(HOSTILE):
        await redis_client.xadd(S, _good(i))
        await redis_client.xadd(S, bad)
    await redis_client.xadd(S, _good(len(HOSTILE)))
    seen: list[str] = []

    async def handler(entry: Entry) -> None:
        seen.append(entry.message.id)

    consumer = Consumer(redis_client, [S], G, "c1", handler, block_ms=50, retry_delay_s=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(20):
            while len(seen) < len(HOSTILE) + 1 or await redis_client.xlen(f"dlq:{S}") < len(HOSTILE):
                assert not task.done(), f"the consumer ended: {task.exception()!r}"
                await asyncio.sleep(0.02)
        assert not task.done(), "the consumer keeps running after every hostile entry"
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 5)
    assert seen == [f"good-{i}" for i in range(len(HOSTILE) + 1)]
    dead = await redis_client.xrange(f"dlq:{S}")
    assert len(dead) == len(HOSTILE)
    for _, fields in dead:
        assert fields[b"dlq_reason"].startswith(b"decode error: "), fields[b"dlq_reason"][:200]
    assert (await redis_client.xpending(S, G))["pending"] == 0
    # the deep-nesting entry is there with its reason, not lost with a dead consumer
    assert any(b"RecursionError" in f[b"dlq_reason"] for _, f in dead)


# --- the strategy runner's input check (services/strategy_runner/inputs.py) --------------------

BOT = InputCheck("b1", "sim", "BTCUSDT", "1m")
OWN = {"bot": "b1", "venue": "sim", "symbol": "BTCUSDT", "interval": "1m"}


@FUZZ
@given(
    msg=MESSAGES,
    stream=st.sampled_from([BOT.candles, BOT.events, BOT.control, "md:candles:sim:ETHUSDT:1m", "x"]),
    own=st.sets(st.sampled_from(sorted(OWN))),
)
def test_runner_inputs_accept_only_their_own_or_dead_letter(msg: Message, stream: str, own: set[str]) -> None:
    """Any decoded message on any stream: accepted only where it belongs, else DeadLetter with a
    reason; never another exception (a step fed the wrong input, or a runner stopped)."""
    fields = {name for name in own if name in msg.__struct_fields__}
    msg = msgspec.structs.replace(msg, **{name: OWN[name] for name in fields})  # often the bot's own
    try:
        BOT.check(stream, msg)
    except DeadLetter as exc:
        assert exc.reason
        return
    if stream == BOT.candles:
        assert isinstance(msg, Candle) and (msg.venue, msg.symbol, msg.interval) == ("sim", "BTCUSDT", "1m")
    elif stream == BOT.events:
        assert isinstance(msg, OrderUpdate | BotSynced) and (msg.bot, msg.venue) == ("b1", "sim")
    else:
        assert stream == BOT.control and isinstance(msg, BotControl | TimerFired | TradeRequest)
        assert not isinstance(msg, BotControl | TradeRequest) or msg.bot == "b1"
        if isinstance(msg, BotControl):  # a cancel names one order of the bot; no other control names one
            assert seq_of(msg.cid, "b1") is not None if msg.action == ControlAction.CANCEL else not msg.cid
