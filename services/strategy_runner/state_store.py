"""A bot's persisted state: `bot:{bot}:state`, one JSON document readable with redis-cli GET.

It holds the strategy's own state, the last applied entry id per input stream (so a replayed
entry is recognised and skipped), a version bumped at every commit (fencing), the entry
a strategy failed on (kept to be retried on resume, never lost), and the free balances the
next step will see: read when this step was committed, so a step handled again after a crash
sees what its first handling saw, not whatever the account holds by then.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec


class FailedEntry(msgspec.Struct, frozen=True):
    stream: str
    id: str
    error: str


class RunnerDoc(msgspec.Struct, frozen=True, omit_defaults=True):
    version: int = 0
    last_applied: dict[str, str] = {}
    state: msgspec.Raw = msgspec.Raw(b"null")
    failed: FailedEntry | None = None
    balances: dict[str, Decimal] | None = None  # free per asset, for the next step; None: unknown


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(RunnerDoc)


def encode_doc(doc: RunnerDoc) -> bytes:
    return _encoder.encode(doc)


def decode_doc(data: bytes | None) -> RunnerDoc:
    return _decoder.decode(data) if data else RunnerDoc()


def parse_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def already_applied(doc: RunnerDoc, stream: str, entry_id: str) -> bool:
    last = doc.last_applied.get(stream)
    return last is not None and parse_id(entry_id) <= parse_id(last)


def with_applied(
    doc: RunnerDoc,
    stream: str | None,
    entry_id: str,
    state: Any,
    *,
    failed: FailedEntry | None = None,
    balances: dict[str, Decimal] | None = None,
) -> RunnerDoc:
    """The next document: `entry_id` applied on `stream` (None: a commit of no input entry)."""
    applied = dict(doc.last_applied)
    if stream is not None:
        applied[stream] = entry_id
    return RunnerDoc(
        version=doc.version + 1,
        last_applied=applied,
        state=msgspec.Raw(state),
        failed=failed,
        balances=balances if balances is not None else doc.balances,
    )
