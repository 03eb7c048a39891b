"""Local stand-ins for what the notifier talks to: a fake Telegram Bot API and a webhook receiver.

Both are real aiohttp servers on 127.0.0.1, each in a thread of its own with its own event loop,
so a test can poll them with the blocking `wait_until` while a notifier subprocess calls them.
They record every request and can be told to fail (HTTP 500, a 429 with retry_after, a 400).
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from aiohttp import web

from services.notifier.webhook import verify_webhook
from tests.helpers.procs import Proc, python, wait_until

TOKEN = "123456789:AAFakeTelegramTokenForTests_abcdef"
HOOK_SECRET = "hook-secret-0123456789"
CHATS = (111, 222)  # private chats: each is also its user's id, and an allowed user
BOT_USERNAME = "automata_bot"


class ThreadedServer:
    """Run an aiohttp app on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Call:
    method: str
    payload: dict[str, Any]
    status: int
    at: float  # monotonic, when it was answered


@dataclass
class FakeTelegram:
    """The Bot API methods the notifier uses: getMe, sendMessage and getUpdates, for one token."""

    token: str
    calls: list[Call] = field(default_factory=list)
    fail_status: int = 0  # answer sendMessage with this status while set (500: Telegram down)
    reject_text: str = ""  # answer 400 to a sendMessage whose text contains this
    _rate_limits: list[int] = field(default_factory=list)  # retry_after of the next 429s
    _updates: list[tuple[int, Any]] = field(default_factory=list)  # (sequence, update as sent)
    _next_update: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadedServer | None = None

    def start(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self.server = ThreadedServer(app).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.url

    # -- scripting --------------------------------------------------------------------------

    def rate_limit_once(self, retry_after: int) -> None:
        with self._lock:
            self._rate_limits.append(retry_after)

    def push_message(
        self, chat_id: int, text: str, username: str = "someone", *, user_id: int | None = None, **extra: Any
    ) -> int:
        """A user writes to the bot (in their private chat unless `user_id` differs from the
        chat: then a group); the next getUpdates returns it. `extra` adds message fields."""
        user = chat_id if user_id is None else user_id
        chat_type = "private" if user == chat_id else "group"
        message = {
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": {"id": user, "is_bot": False, "username": username},
            "text": text,
            **extra,
        }
        return self.push_update(
            lambda update_id: {"update_id": update_id, "message": {"message_id": update_id, **message}}
        )

    def push_update(self, make: Callable[[int], Any]) -> int:
        """Any update, as `make(update_id)` shapes it (a hostile or odd one, for robustness)."""
        with self._lock:
            self._next_update += 1
            update_id = self._next_update
            self._updates.append((update_id, make(update_id)))
        return update_id

    # -- what happened ------------------------------------------------------------------------

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages Telegram accepted (optionally to one chat)."""
        with self._lock:
            return [
                c.payload
                for c in self.calls
                if c.method == "sendMessage"
                and c.status == 200
                and (chat_id is None or int(c.payload["chat_id"]) == chat_id)
            ]

    def attempts(self, predicate: Callable[[dict[str, Any]], bool] = lambda p: True) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == "sendMessage" and predicate(c.payload)]

    def texts(self, chat_id: int) -> list[str]:
        return [p["text"] for p in self.sent(chat_id)]

    # -- the server -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        payload = await request.json() if request.can_read_body else {}
        if request.match_info["token"] != self.token:
            return self._answer(
                method, payload, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        if method == "getUpdates":
            return await self._get_updates(payload)
        if method == "getMe":
            me = {"id": 4242, "is_bot": True, "first_name": "Automata", "username": BOT_USERNAME}
            return self._answer(method, payload, 200, {"ok": True, "result": me})
        if method != "sendMessage":
            return self._answer(
                method, payload, 404, {"ok": False, "error_code": 404, "description": "Not Found"}
            )
        with self._lock:
            retry_after = self._rate_limits.pop(0) if self._rate_limits else None
        if retry_after is not None:
            body = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            }
            return self._answer(method, payload, 429, body)
        if self.fail_status:
            return self._answer(method, payload, self.fail_status, {"ok": False, "error_code": self.fail_status,
                                                                     "description": "Internal Server Error"})  # fmt: skip
        if self.reject_text and self.reject_text in str(payload.get("text", "")):
            body = {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
            return self._answer(method, payload, 400, body)
        result = {
            "message_id": len(self.calls) + 1,
            "chat": {"id": payload.get("chat_id")},
            "text": payload.get("text"),
        }
        return self._answer(method, payload, 200, {"ok": True, "result": result})

    async def _get_updates(self, payload: dict[str, Any]) -> web.Response:
        offset = int(payload.get("offset") or 0)
        deadline = time.monotonic() + min(float(payload.get("timeout") or 0), 2.0)
        while True:
            with self._lock:
                ready = [u for seq, u in self._updates if seq >= offset]
            if ready or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        return self._answer("getUpdates", payload, 200, {"ok": True, "result": ready})

    def _answer(
        self, method: str, payload: dict[str, Any], status: int, body: dict[str, Any]
    ) -> web.Response:
        if method not in ("getUpdates", "getMe"):
            with self._lock:
                self.calls.append(Call(method, payload, status, time.monotonic()))
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    signed_ok: bool

    @property
    def doc(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass
class WebhookReceiver:
    """Accepts POST /hook, verifies it with `secret` as a receiver should (signature over the
    timestamp and the body, within the replay window), records what it got."""

    secret: str
    received: list[Received] = field(default_factory=list)
    fail_status: int = 0
    clock_offset: float = 0.0  # seconds the receiver's clock is ahead (a replay, later)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadedServer | None = None

    def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self.server = ThreadedServer(app).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/hook"

    def docs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.doc for r in self.received]

    def post_again(self, request: Received, body: bytes | None = None) -> int:
        """POST a captured request to this receiver again (a replay; optionally another body),
        with the headers that sign it: the status it answers."""
        signing = ("X-Automata-Id", "X-Automata-Timestamp", "X-Automata-Signature")
        headers = {k: v for k, v in request.headers.items() if k in signing}
        req = urllib.request.Request(self.url, data=body or request.body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    async def _handle(self, request: web.Request) -> web.Response:
        if self.fail_status:
            return web.Response(status=self.fail_status)
        body = await request.read()
        ok = verify_webhook(self.secret, request.headers, body, now=time.time() + self.clock_offset)
        with self._lock:
            self.received.append(Received(body, dict(request.headers), ok))
        return web.Response(status=200 if ok else 401)


def write_config(
    path: Path,
    telegram: FakeTelegram,
    hook: WebhookReceiver | None,
    extra: str = "",
    *,
    allowed_users: tuple[int, ...] = CHATS,
    hook_secret: str = HOOK_SECRET,
) -> Path:
    webhook = f'[notifier.webhook]\nurl = "{hook.url}"\nsecret = "{hook_secret}"\n' if hook else ""
    path.write_text(
        f"""
[bus]
max_deliveries = 2

[notifier]
retry_initial_s = 0.1
retry_max_s = 0.3
{extra}

[notifier.telegram]
chat_ids = [{", ".join(map(str, CHATS))}]
allowed_users = [{", ".join(map(str, allowed_users))}]
base_url = "{telegram.base_url}"
per_chat_rate = 20
poll_timeout_s = 1

{webhook}"""
    )
    return path


def start_notifier(env: dict[str, str], tmp_path: Path, config: Path, name: str = "notifier") -> Proc:
    env = {**env, "AUTOMATA_CONFIG": str(config), "TELEGRAM_BOT_TOKEN": TOKEN, "INSTANCE": "t1"}
    return python("services.notifier", env=env, log_path=tmp_path / f"{name}.log").start()


def wait_ready(client: redis.Redis, proc: Proc) -> None:
    def up() -> bool:
        assert proc.alive(), proc.output()[-3000:]
        return bool(client.get("svc:notifier:t1"))

    wait_until(up, timeout=30, what="the notifier's heartbeat")
