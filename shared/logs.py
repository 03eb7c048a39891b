"""Structured logging (one JSON object a line) that never prints a secret.

Every secret the process loads (API keys and secrets, passwords) is registered here and
replaced by `***` in every log line, exception text included; signatures, key headers and
URL passwords are masked by pattern as well, whatever shape the line gives them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import Any

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
        if extra:
            doc.update({k: redact(str(v)) if isinstance(v, str) else v for k, v in extra.items()})
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(doc, default=str).decode()


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(service: str, level: str | None = None, *, json: bool | None = None) -> None:
    """Configure the root logger once: JSON to stderr (LOG_FORMAT=plain for humans)."""
    level = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    if json is None:
        json = os.environ.get("LOG_FORMAT", "json").lower() != "plain"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(service) if json else PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "websockets", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
