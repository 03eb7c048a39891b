"""The exchanges' documented payloads (tests/fixtures/venues) and what to compare them with.

    documented("binance", "order_full")        # the payload, as the exchange documents it
    shape_gaps(documented_body, served_body)   # where the paper venue's answer differs in shape
    with documented_answers(...) as url: ...   # an HTTP server answering with documented bodies

Each fixture file is {"_source": {url, section, file, notes}, "payload": ...}: where the
example was copied from and what, if anything, was changed (tests/fixtures/venues/*/README.md).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "venues"


def fixture(venue: str, name: str) -> dict[str, Any]:
    """The whole fixture file: `_source` and `payload`."""
    return json.loads((FIXTURES / venue / f"{name}.json").read_text())


def documented(venue: str, name: str) -> Any:
    """A fresh copy of the documented payload (tests may change their copy)."""
    return fixture(venue, name)["payload"]


def json_type(value: Any) -> str:
    """The JSON type a value is sent as: decimals sent as strings stay "string"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


MAPS = frozenset({"cumFeeDetail"})  # objects keyed by data (a coin), not by field names


def shape_gaps(
    doc: Any, served: Any, path: str = "$", *, optional: frozenset[str] = frozenset()
) -> list[str]:
    """Where `served` does not have the documented shape: a documented key missing (unless its
    name is in `optional`) or a value of another JSON type, recursively (a list by its first
    item, a MAPS object by its values). Keys the venue adds beyond the documented ones are not gaps."""
    if json_type(doc) != json_type(served):
        return [f"{path}: documented {json_type(doc)} {doc!r:.40}, served {json_type(served)} {served!r:.40}"]
    gaps: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key not in served:
                if key not in optional:
                    gaps.append(f"{path}.{key}: documented, not served")
                continue
            mine = served[key]
            if key in MAPS and isinstance(value, dict) and isinstance(mine, dict):
                value, mine = list(value.values())[:1], list(mine.values())[:1]
            gaps += shape_gaps(value, mine, f"{path}.{key}", optional=optional)
    elif isinstance(doc, list) and doc and served:
        gaps += shape_gaps(doc[0], served[0], f"{path}[0]", optional=optional)
    return gaps


class _Answers(BaseHTTPRequestHandler):
    """Answers each request with the (status, body) registered for its path's longest prefix."""

    answers: dict[str, tuple[int, Any]] = {}

    def _answer(self) -> None:
        path = self.path.split("?", 1)[0]
        prefix = max((p for p in self.answers if path.startswith(p)), key=len, default=None)
        status, body = self.answers[prefix] if prefix is not None else (404, {"code": -1, "msg": "no answer"})
        if callable(body):
            body = body()
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def documented_answers(
    answers: dict[str, tuple[int, Any]],
) -> Iterator[tuple[str, dict[str, tuple[int, Any]]]]:
    """A loopback HTTP server answering path prefixes with (status, JSON body or a callable
    making one); yields its base URL and the answers, which a test may change between requests."""
    table = dict(answers)
    handler = type("Answers", (_Answers,), {"answers": table})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", table
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def server_time() -> dict[str, int]:
    """Binance's GET /api/v3/time answer (the adapters sync their clock at start)."""
    return {"serverTime": int(time.time() * 1000)}
