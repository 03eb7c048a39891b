"""Identifiers: bot ids and client order ids.

Our client order ids are `{bot}-{seq:06d}` (ClientOrderId): the same command replayed always
carries the same cid, so the order gateway's write-ahead log and the exchange itself both
refuse a second order with it. Every order at a venue carries some client order id (OrderCid):
one of ours, or a foreign one (placed by hand or by another tool), which the gateway reports
and never adopts. Both travel as plain strings, so entries written before these types decode.
"""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple, NewType

import msgspec

# Binance newClientOrderId: ^[a-zA-Z0-9-_]{1,36}$; Bybit orderLinkId: at most 36 characters.
MAX_CID_LEN = 36
# \Z, not $: `$` also matches before a trailing newline ("b1\n" is no bot id)
BOT_ID_RE = re.compile(r"^[A-Za-z0-9_]{1,24}\Z")
# [0-9], not \d: \d also matches other scripts' digits, which int() reads and venues refuse.
# Shown as it is in the reason a command with a bad cid is dead-lettered with.
CID_RE = re.compile(r"^[A-Za-z0-9_]{1,24}-[0-9]{6,}\Z")

# One of ours. The type of a command's cid: a PlaceOrder or CancelOrder whose cid breaks the
# format is refused when it is decoded (the entry is dead-lettered with the reason), before
# it reaches the order gateway's log or the venue.
ClientOrderId = NewType(
    "ClientOrderId", Annotated[str, msgspec.Meta(pattern=CID_RE.pattern, max_length=MAX_CID_LEN)]
)
# Any order's cid as its venue holds it, ours or foreign: the type of what the gateway reports
# (OrderUpdate, BotSynced). Not checked on decode: a venue's report is what it is.
OrderCid = NewType("OrderCid", str)


VALID_BOTS_KEPT = 1024  # bot ids found valid, remembered (a process runs a few bots)
_VALID_BOTS: set[str] = set()


class IdError(ValueError):
    """An identifier that breaks its format."""


class CidParts(NamedTuple):
    """A ClientOrderId taken apart: the bot that placed the order and its sequence."""

    bot: str
    seq: int


def check_bot_id(bot: str) -> str:
    """Return bot unchanged if it is a valid bot id ([A-Za-z0-9_]{1,24}), else raise IdError."""
    if type(bot) is str and bot in _VALID_BOTS:  # every cid a bot makes checks its id again
        return bot
    if not isinstance(bot, str) or not BOT_ID_RE.match(bot):
        raise IdError(f"invalid bot id {bot!r}: use 1 to 24 of A-Z, a-z, 0-9, _")
    if len(_VALID_BOTS) < VALID_BOTS_KEPT:
        _VALID_BOTS.add(bot)
    return bot


def format_cid(bot: str, seq: int) -> ClientOrderId:
    """`{bot}-{seq:06d}`; seq must be >= 0 (more than 6 digits are allowed, never truncated, as
    long as the cid stays within the venues' 36 characters)."""
    if type(bot) is not str or bot not in _VALID_BOTS:  # check_bot_id's own first test, without its call
        check_bot_id(bot)
    plain = type(seq) is int and seq >= 0  # the usual case, in one test; the rest looked at closer
    if not plain and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
        raise IdError(f"invalid order sequence {seq!r}")
    cid = f"{bot}-{seq:06d}"
    if len(cid) > MAX_CID_LEN:
        raise IdError(f"client order id {cid!r} is longer than the venues' {MAX_CID_LEN} characters")
    return cid  # type: ignore[return-value]  # a ClientOrderId: NewType's call only costs a call per order


def _parts(cid: object) -> CidParts | None:
    if not isinstance(cid, str) or len(cid) > MAX_CID_LEN or not CID_RE.match(cid):
        return None
    bot, _, seq = cid.partition("-")  # a bot id has no "-"
    return CidParts(bot, int(seq))


def check_cid(cid: str) -> ClientOrderId:
    """Return cid as a ClientOrderId if it is one of ours (as format_cid makes), else raise IdError."""
    if _parts(cid) is None:
        raise IdError(f"not an Automata client order id: {cid!r}")
    return ClientOrderId(cid)


def parse_cid(cid: str) -> CidParts:
    """Split a cid into (bot, seq); raise IdError for anything not made by format_cid."""
    parts = _parts(cid)
    if parts is None:
        raise IdError(f"not an Automata client order id: {cid!r}")
    return parts


def seq_of(cid: str, bot: str) -> int | None:
    """The sequence of a cid of `bot`'s prefix, or None for any other cid."""
    parts = _parts(cid)
    return parts.seq if parts is not None and parts.bot == bot else None


def bot_of(cid: str) -> str | None:
    """The bot owning a cid, or None for a foreign order (placed by hand or another tool)."""
    parts = _parts(cid)
    return parts.bot if parts is not None else None
