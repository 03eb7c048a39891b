"""Reads one entry as consumer w1, opens MULTI, queues the same commands as the worker's
Commit (SET state, XADD output, XACK), marks `t:half` = queued and waits to be SIGKILLed
before EXEC."""

from __future__ import annotations

import os
import time

import redis

from shared.codec import encode
from shared.messages import Notification

r = redis.Redis.from_url(os.environ["REDIS_URL"])
((_, [(entry_id, _fields)]),) = r.xreadgroup("g", "w1", {"t:in": ">"}, count=1)
conn = r.connection_pool.get_connection()
conn.send_command("MULTI")
assert conn.read_response() == b"OK"
for args in (
    ("SET", "t:state:x", entry_id),
    (
        "XADD",
        "t:out",
        "*",
        *[x for kv in encode(Notification(id="o", kind="info", text="x")).items() for x in kv],
    ),
    ("XACK", "t:in", "g", entry_id),
):
    conn.send_command(*args)
    assert conn.read_response() == b"QUEUED"
redis.Redis.from_url(os.environ["REDIS_URL"]).set("t:half", "queued")
time.sleep(3600)
