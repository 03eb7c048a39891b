"""Binance request authentication: API key header, HMAC-SHA256 signature, timestamp window.

REST signs totalParams = the raw query string followed by the raw body (signature pair
removed), exactly the bytes the client sent; the WebSocket API signs the other params
sorted by name and URL-encoded (what python-binance 1.0.37 sends for
`userDataStream.subscribe.signature` and the order methods).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus, urlencode

from services.exchange_sim.binance_errors import (
    AHEAD_OF_SERVER,
    BAD_KEY_FORMAT,
    BAD_SIGNATURE,
    OUTSIDE_RECV_WINDOW,
    REJECTED_KEY,
    BinanceError,
    mandatory,
)

KEY_FORMAT = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000


def hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_key(got: str | None, expected: str) -> None:
    """-2014 when missing or malformed, -2015 when not the venue's key."""
    if not got or not KEY_FORMAT.match(got):
        raise BAD_KEY_FORMAT
    if not hmac.compare_digest(got.encode(), expected.encode()):
        raise REJECTED_KEY


def _without_signature(raw: str) -> tuple[str, str | None]:
    kept, signature = [], None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def check_rest_signature(raw_query: str, raw_body: str, secret: str) -> None:
    query, sig_q = _without_signature(raw_query)
    body, sig_b = _without_signature(raw_body)
    signature = sig_q or sig_b
    if not signature:
        raise mandatory("signature")
    payload = query + body
    if not _equal(signature, hmac_hex(secret, payload)) and not _equal(
        signature, hmac_hex(secret, unquote_plus(payload))
    ):
        raise BAD_SIGNATURE


def check_ws_signature(params: Mapping[str, Any], secret: str) -> None:
    signature = params.get("signature")
    if not signature:
        raise mandatory("signature")
    rest = sorted((k, v) for k, v in params.items() if k != "signature")
    if not _equal(str(signature), hmac_hex(secret, urlencode(rest))):
        raise BAD_SIGNATURE


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.lower().encode(), expected.encode())


def check_timestamp(timestamp: Any, recv_window: Any, server_ms: int) -> None:
    """Binance's rule: timestamp < server + 1000 and server - timestamp <= recvWindow."""
    if timestamp in (None, ""):
        raise mandatory("timestamp")
    try:
        ts = int(timestamp)
        window = int(recv_window) if recv_window not in (None, "") else DEFAULT_RECV_WINDOW
    except (TypeError, ValueError):
        raise mandatory("timestamp") from None
    if window <= 0 or window > MAX_RECV_WINDOW:
        raise BinanceError(-1131, f"recvWindow must be less than {MAX_RECV_WINDOW}.")
    if ts >= server_ms + 1000:
        raise AHEAD_OF_SERVER
    if server_ms - ts > window:
        raise OUTSIDE_RECV_WINDOW
