"""The stream entry envelope: fields `type`, `v` and `data` (the message as JSON).

`redis-cli XRANGE` shows it as text. Decoding failures raise DecodeError with a reason that
the bus writes into the dead-letter stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from shared.messages import MESSAGE_TYPES, AnyMessage, Message

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(AnyMessage)

# (type, old version) -> function turning an old `data` dict into the next version's dict.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}

_VERSION_BYTES = {tag: str(cls.VERSION).encode() for tag, cls in MESSAGE_TYPES.items()}


class DecodeError(ValueError):
    """An entry that is not a valid envelope of a known message."""


def encode(msg: Message) -> dict[bytes, bytes]:
    """Envelope fields for XADD."""
    tag = msg.__struct_config__.tag
    return {b"type": tag.encode(), b"v": _VERSION_BYTES[tag], b"data": _encoder.encode(msg)}


def encode_json(obj: Any) -> bytes:
    return _encoder.encode(obj)


def _field(fields: Mapping[Any, Any], name: bytes) -> bytes | None:
    value = fields.get(name)  # redis-py without decode_responses: bytes keys, the hot path
    if value is None:
        value = fields.get(name.decode())
    if isinstance(value, str):
        value = value.encode()
    return value


# The hot path: bytes keys (redis-py without decode_responses) and the current version.
_CURRENT = {tag.encode(): (cls, _VERSION_BYTES[tag]) for tag, cls in MESSAGE_TYPES.items()}


def decode(fields: Mapping[Any, Any]) -> Message:
    """Decode an entry's field map (bytes or str keys) to its message, or raise DecodeError.

    Whatever else a hostile entry makes the decoding raise (RecursionError from deep nesting,
    an upcaster's KeyError, ...) is a DecodeError too: callers catch one type, and one bad
    entry is dead-lettered instead of ending the consumer."""
    try:
        return _decode(fields)
    except DecodeError:
        raise
    except Exception as exc:  # decoding is pure: any failure means the entry is bad
        raise DecodeError(f"undecodable entry: {type(exc).__name__}: {str(exc)[:200]}") from None


def _decode(fields: Mapping[Any, Any]) -> Message:
    known = _CURRENT.get(fields.get(b"type"))  # type: ignore[arg-type]
    if known is not None and fields.get(b"v") == known[1]:
        data = fields.get(b"data")
        if data is not None:
            try:
                msg = _decoder.decode(data)
            except msgspec.DecodeError:
                pass  # the full path below says what is wrong
            else:
                if type(msg) is known[0]:
                    return msg
    return _decode_checked(fields)


def _decode_checked(fields: Mapping[Any, Any]) -> Message:
    """Every other case: str keys, older versions, and the precise reason for a bad entry."""
    type_b = _field(fields, b"type")
    data = _field(fields, b"data")
    if type_b is None or data is None:
        raise DecodeError("not an envelope: fields 'type' and 'data' are required")
    tag = type_b.decode(errors="replace")
    cls = MESSAGE_TYPES.get(tag)
    if cls is None:
        raise DecodeError(f"unknown message type {tag!r}")
    v_raw = _field(fields, b"v") or b"1"
    try:
        version = int(v_raw)
    except ValueError:
        raise DecodeError(f"bad schema version {v_raw!r}") from None
    try:
        if version == cls.VERSION:
            msg = _decoder.decode(data)
        elif version < cls.VERSION:
            msg = _upcast(tag, version, cls, data)
        else:
            raise DecodeError(f"{tag} schema v{version} is newer than this program's v{cls.VERSION}")
    except msgspec.DecodeError as exc:
        raise DecodeError(f"invalid {tag} v{version}: {exc}") from None
    if not isinstance(msg, cls):
        raise DecodeError(f"envelope type {tag!r} does not match data type {msg.__struct_config__.tag!r}")
    return msg


def _upcast(tag: str, version: int, cls: type[Message], data: bytes) -> Message:
    obj = msgspec.json.decode(data)
    while version < cls.VERSION:
        step = UPCASTERS.get((tag, version))
        if step is None:
            raise DecodeError(f"no upcaster for {tag} v{version}")
        obj = step(obj)
        version += 1
    return msgspec.convert(obj, cls)
