"""Logging that never prints a secret: a readable line on a terminal, JSON everywhere else.

Every secret the process loads (API keys and secrets, passwords) is registered here and
replaced by `***` in every log line, exception text included; signatures, key headers and
URL passwords are masked by pattern as well, whatever shape the line gives them.

The format (log_format): `HH:MM:SS LEVEL service: message key=value` when stderr is a terminal
(the level coloured unless NO_COLOR is set), one JSON object a line in a file or a pipe;
LOG_FORMAT=text or LOG_FORMAT=json chooses either whatever stderr is.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import orjson

_secrets: set[str] = set()
# A secret by the name it goes under, in any shape a library logs it: `key=value` (query
# strings, form bodies), `"key": "value"` (JSON), `'key': 'value'` (the repr of a headers dict:
# pybit and python-binance log request headers at DEBUG) and `('key', 'value')` (python-binance
# logs a signed body as a list of pairs), escaped quotes included.
_SECRET_NAME = (
    r"(?<![\w-])(?:[\w-]*(?:api[-_]?key|secret|password|passwd|listen[-_]?key)|x-bapi-sign|sign|signature"
    r"|(?:bot|access|auth|refresh)[-_]?token|authorization|cookie)"
)
_PATTERNS = [
    (
        re.compile(
            rf"(?i)({_SECRET_NAME}\\?[\"']?\s*(?:[:=]|(?<=[\"']),)\s*(?:b(?=[\"']))?\\?[\"']?(?:(?:bearer|basic)\s+)?)"
            r"[^\s\"',&;})\]\\]+"
        ),
        r"\1***",
    ),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(@)"), r"\1***\2"),  # user:password@ in a URL
]


def register_secret(value: str | None) -> None:
    """Mask this value in every later log line (ignored when shorter than 6 characters)."""
    if value and len(value) >= 6:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, masked in _PATTERNS:
        text = pattern.sub(masked, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: for files, collectors and scripts (every line parses)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        extra = getattr(record, "fields", None)
        if extra:  # beside the envelope: a field named like one of its keys gets a `_` after it
            doc.update(
                {(f"{k}_" if k in doc or k == "exc" else k): redact(v) if isinstance(v, str) else v
                 for k, v in extra.items()}
            )  # fmt: skip
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(doc, default=str).decode()


_COLOURS = {"DEBUG": "\x1b[2m", "WARNING": "\x1b[33m", "ERROR": "\x1b[31m", "CRITICAL": "\x1b[1;31m"}
_RESET = "\x1b[0m"


def _field_text(value: object) -> str:
    text = str(value)
    return f'"{text}"' if (not text or " " in text) else text


class TextFormatter(logging.Formatter):
    """`HH:MM:SS LEVEL service: message key=value`: a line a person reads on a terminal (UTC
    time, the level coloured when `colour`), the traceback below it; masked like the JSON."""

    def __init__(self, service: str, *, colour: bool = False) -> None:
        super().__init__()
        self.service, self.colour = service, colour

    def format(self, record: logging.LogRecord) -> str:
        when = time.strftime("%H:%M:%S", time.gmtime(record.created))
        level = record.levelname
        if self.colour and level in _COLOURS:
            level = f"{_COLOURS[level]}{level}{_RESET}"
        text = f"{when} {level} {self.service}: {record.getMessage()}"
        extra = getattr(record, "fields", None)
        if extra:
            text += " " + " ".join(f"{k}={_field_text(v)}" for k, v in extra.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return redact(text)


FORMATS = ("text", "json")


def log_format(env: Mapping[str, str] | None = None, stream: TextIO | None = None) -> str:
    """The format of the log lines, `text` or `json`: LOG_FORMAT when set (`plain` is text), else
    text on a terminal and JSON anywhere else (a file, a pipe, supervisord's log), so files stay
    machine-readable."""
    env = os.environ if env is None else env
    chosen = env.get("LOG_FORMAT", "").strip().lower()
    if chosen == "plain":
        return "text"
    if chosen in FORMATS:
        return chosen
    return "text" if _terminal(sys.stderr if stream is None else stream) else "json"


def _terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or foreign stream
        return False


def setup_logging(service: str, level: str | None = None, *, json: bool | None = None) -> None:
    """Configure the root logger once, to stderr: text on a terminal, JSON elsewhere (log_format)."""
    level = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    if json is None:
        json = log_format() == "json"
    handler = logging.StreamHandler(sys.stderr)
    colour = not json and "NO_COLOR" not in os.environ and _terminal(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if json else TextFormatter(service, colour=colour))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "websockets", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
