"""`automata tail STREAM`: the last entries of a stream, decoded, and with `--follow` the new
ones as they come (XREAD BLOCK from the last id shown, so nothing between is missed).

Each entry prints as `id type key=value ...` from its msgspec message (decimals exact, never in
exponent notation: 0.00000059, not 5.9E-7);
an entry that does not decode (a dead letter, a foreign writer) prints its raw fields. Fields
beside the envelope, such as a dead letter's `dlq_reason`, are shown after the message.
`--json` prints one JSON object per entry instead, for scripts.

With `--bot ID`, STREAM may name one of the bot's streams by its kind: `automata tail decisions
--bot demo_dca -f` follows what the bot decides and why, one line each (`time bot: text`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import redis
import typer

from cli import common, output
from shared import streams
from shared.codec import DecodeError, decode
from shared.display import plain
from shared.ids import IdError

# A bot's streams by kind, for `--bot`.
BOT_STREAMS = {
    "decisions": streams.bot_decisions,
    "control": streams.bot_control,
    "events": streams.order_events,
}

ENVELOPE = {"type", "v", "data"}


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def entry_doc(entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """The entry as a plain dict: stream_id (the entry id), type, the message's fields, then any
    fields beside the envelope (a message may have its own `id`, hence `stream_id`)."""
    raw = {_text(k): _text(v) for k, v in fields.items()}
    doc: dict[str, Any] = {"stream_id": _text(entry_id)}
    try:
        msg = decode(fields)
    except DecodeError as exc:
        doc["type"] = raw.get("type", "?")
        doc["undecodable"] = str(exc)
        doc.update({k: v for k, v in raw.items() if k != "type"})
        return doc
    data = msgspec.to_builtins(msg, builtin_types=(Decimal,))
    doc["type"] = data.pop("type", raw.get("type"))
    doc.update(data)
    doc.update({k: v for k, v in raw.items() if k not in ENVELOPE})
    return doc


def _value(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):  # a balance's assets are a tuple: JSON, not a repr
        return output.dumps(value)
    text = plain(value) if isinstance(value, Decimal) else str(value)
    return f'"{text}"' if (" " in text or not text) else text


def line(doc: dict[str, Any]) -> str:
    ms_text = doc["stream_id"].split("-")[0]
    ms = int(ms_text) if ms_text.isdigit() else 0
    when = datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3] if ms else "?"
    if doc["type"] == "decision" and "text" in doc:  # a sentence for a person: time, bot, text
        ts = doc.get("ts") or 0
        said = datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else when
        return f"{said} {doc.get('bot', '?')}: {doc['text']}"
    rest = " ".join(f"{k}={_value(v)}" for k, v in doc.items() if k not in ("stream_id", "type"))
    return f"{doc['stream_id']} {when} {doc['type']} {rest}"


def tail(
    stream: str = typer.Argument(
        ...,
        help="stream key, e.g. notify, orders:cmd:sim:manual, account:sim; with --bot ID: decisions, control, events",
    ),
    count: int = typer.Option(10, "--count", "-n", help="how many of the last entries to show"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new entries until Ctrl-C"),
    as_json: bool = output.json_option(
        "one JSON object a line for each entry (amounts as exact decimal strings)"
    ),
    bot: str = typer.Option(
        None, "--bot", help="a bot's stream by kind: `tail decisions --bot ID` (also control, events)"
    ),
) -> None:
    """Decoded entries of a stream (the last N; with --follow, then the new ones)."""
    out = common.console()
    if bot is not None:
        if stream not in BOT_STREAMS:
            common.fail(out, f"with --bot, STREAM is one of {', '.join(BOT_STREAMS)} (got {stream!r})", 2)
        try:
            stream = BOT_STREAMS[stream](bot)
        except IdError as exc:
            common.fail(out, str(exc), 2)
    r, _url = common.redis_client(out)
    kind = r.type(stream).decode()
    if kind not in ("stream", "none"):
        common.fail(out, f"{stream} is a {kind}, not a stream")
    if kind == "none" and not follow:
        common.fail(out, f"no stream {stream!r} (`automata status` lists the streams with groups)")

    def emit(entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        doc = entry_doc(entry_id, fields)
        if as_json:
            output.emit(doc)
        else:
            out.print(line(doc), markup=False, soft_wrap=True)

    last = b"0-0"
    entries = list(reversed(r.xrevrange(stream, count=count))) if count > 0 else []
    for entry_id, fields in entries:
        emit(entry_id, fields)
        last = entry_id
    if not follow:
        return
    if not entries:
        top = r.xrevrange(stream, count=1)
        last = top[0][0] if top else b"0-0"
    try:
        while True:
            for _stream, batch in r.xread({stream: last}, count=500, block=1000) or []:
                for entry_id, fields in batch:
                    emit(entry_id, fields)
                    last = entry_id
    except KeyboardInterrupt:
        return
    except redis.RedisError as exc:
        common.fail(out, f"lost Redis: {exc}")
