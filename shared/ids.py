"""Identifiers: bot ids and deterministic client order ids `{bot}-{seq:06d}`.

The same command replayed always carries the same cid, so the order gateway's write-ahead
log and the exchange itself both refuse a second order with it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

BOT_ID_RE = re.compile(r"^[A-Za-z0-9_]{1,24}$")
CID_RE = re.compile(r"^(?P<bot>[A-Za-z0-9_]{1,24})-(?P<seq>\d{6,})$")


class IdError(ValueError):
    """An identifier that breaks its format."""


def check_bot_id(bot: str) -> str:
    """Return bot unchanged if it is a valid bot id ([A-Za-z0-9_]{1,24}), else raise IdError."""
    if not isinstance(bot, str) or not BOT_ID_RE.match(bot):
        raise IdError(f"invalid bot id {bot!r}: use 1 to 24 of A-Z, a-z, 0-9, _")
    return bot


class ClientOrderId(NamedTuple):
    bot: str
    seq: int

    def __str__(self) -> str:
        return format_cid(self.bot, self.seq)


def format_cid(bot: str, seq: int) -> str:
    """`{bot}-{seq:06d}`; seq must be >= 0 (more than 6 digits are allowed, never truncated)."""
    check_bot_id(bot)
    if not isinstance(seq, int) or seq < 0:
        raise IdError(f"invalid order sequence {seq!r}")
    return f"{bot}-{seq:06d}"


def parse_cid(cid: str) -> ClientOrderId:
    """Split a cid into (bot, seq); raise IdError for anything not made by format_cid."""
    match = CID_RE.match(cid or "")
    if not match:
        raise IdError(f"not an Automata client order id: {cid!r}")
    return ClientOrderId(match["bot"], int(match["seq"]))


def seq_of(cid: str, bot: str) -> int | None:
    """The sequence of a cid of `bot`'s prefix, or None for any other cid."""
    match = CID_RE.match(cid or "")
    return int(match["seq"]) if match and match["bot"] == bot else None


def bot_of(cid: str) -> str | None:
    """The bot owning a cid, or None for a foreign order (placed by hand or another tool)."""
    match = CID_RE.match(cid or "")
    return match["bot"] if match else None
