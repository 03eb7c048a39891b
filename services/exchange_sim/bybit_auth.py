"""Bybit V5 request authentication, checked exactly as pybit 5.17.0 signs.

REST: HMAC-SHA256 hex of `timestamp + api_key + recv_window + payload`, where payload is the
query string for GET (pybit sorts the keys and does not URL-encode) and the raw JSON body for
POST; headers X-BAPI-API-KEY, X-BAPI-SIGN, X-BAPI-TIMESTAMP, X-BAPI-RECV-WINDOW. The timestamp
must satisfy `server_time - recv_window <= timestamp < server_time + 1000` (Bybit's rule).

WebSocket: `{"op": "auth", "args": [api_key, expires, signature]}` with signature = HMAC of
`GET/realtime{expires}` and expires in the future of the server clock.

Nothing here puts the key or the secret into an error message.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import unquote

from services.exchange_sim.bybit_errors import BAD_SIGN, INVALID_KEY, PARAMS, RECV_WINDOW, BybitError

FUTURE_TOLERANCE_MS = 1000  # Bybit accepts a timestamp at most 1 s ahead of its clock
DEFAULT_RECV_WINDOW_MS = 5000


def sign(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.lower().encode())


def check_rest(
    headers: Mapping[str, str], payloads: list[str], *, api_key: str, secret: str, now_ms: int
) -> None:
    """Raise BybitError (10003 / 10004 / 10002 / 10001) unless the request is signed by the pair.

    `payloads` are the candidate signed strings (for GET the raw and the decoded query string,
    so a client that percent-encodes a value is not refused for it)."""
    key = headers.get("X-BAPI-API-KEY", "")
    if not key or not hmac.compare_digest(key.encode(), api_key.encode()):
        raise BybitError(INVALID_KEY)
    ts_text = headers.get("X-BAPI-TIMESTAMP", "")
    recv_text = headers.get("X-BAPI-RECV-WINDOW", "") or str(DEFAULT_RECV_WINDOW_MS)
    if not ts_text.isdigit() or not recv_text.isdigit():
        raise BybitError(PARAMS, "X-BAPI-TIMESTAMP and X-BAPI-RECV-WINDOW must be integers")
    given = headers.get("X-BAPI-SIGN", "")
    prefix = ts_text + key + recv_text
    if not given or not any(_same(sign(secret, prefix + p), given) for p in payloads):
        raise BybitError(BAD_SIGN)
    ts, recv_window = int(ts_text), int(recv_text)
    if not now_ms - recv_window <= ts < now_ms + FUTURE_TOLERANCE_MS:
        raise BybitError(
            RECV_WINDOW, f"req_timestamp[{ts}],server_timestamp[{now_ms}],recv_window[{recv_window}]"
        )


def get_payloads(raw_query: str) -> list[str]:
    """The strings a GET may have been signed over: as sent, and percent-decoded."""
    decoded = unquote(raw_query)
    return [raw_query] if decoded == raw_query else [raw_query, decoded]


class WsAuthError(ValueError):
    """A refused `auth` op; the text is what goes into `ret_msg`."""


def check_ws_auth(args: object, *, api_key: str, secret: str, now_ms: int) -> None:
    """Raise WsAuthError unless args is [api_key, expires, signature] valid at now_ms."""
    if not isinstance(args, list) or len(args) != 3:
        raise WsAuthError("Params Error")
    key, expires, signature = args
    if not isinstance(key, str) or not hmac.compare_digest(key.encode(), api_key.encode()):
        raise WsAuthError("error:invalid api key")
    try:
        expires_ms = int(expires)
    except (TypeError, ValueError):
        raise WsAuthError("Params Error") from None
    if not isinstance(signature, str) or not _same(sign(secret, f"GET/realtime{expires_ms}"), signature):
        raise WsAuthError("error:signature verification failed")
    if expires_ms <= now_ms:
        raise WsAuthError("error:request expired")
