"""Closing python-binance's websockets at once, so a service stops in milliseconds, not seconds.

python-binance (pinned at 1.0.37) reads each websocket in a loop of its own that notices a close
only between two reads, and a read waits up to the socket's TIMEOUT (10 s by default, the market
gateway's 1 s) for a message. Its close() polls for that loop to end: on a quiet socket, a stop
waited out the whole read (the order gateway's ws_api socket: its 2 s grace, every stop).

Closing the connection under the loop first ends the pending read at once (ConnectionClosedOK),
and the loop, already marked exiting, leaves. Nothing is lost: a socket is closed only when its
reader is done with it (a stop, or a rebuild), and what was in flight on it is recovered the way
a dropped connection's is (the order gateway's poller and start-up reconciliation, the market
gateway's backfill).
"""

from __future__ import annotations

import contextlib
import logging

from shared.binance_lean import AsyncClient, ReconnectingWebsocket, WSListenerState


class _NormalClosures(logging.Filter):
    """python-binance logs every closed connection as an ERROR, a normal closure (code 1000, which
    each close here makes) included. The services report a socket that went down themselves (the
    market gateway's "market socket down", the order gateway's "user stream error"), so a normal
    closure need not alarm anyone in the logs; an abnormal one (ConnectionClosedError) still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("ConnectionClosedOK")


logging.getLogger("binance.ws.reconnecting_websocket").addFilter(_NormalClosures())


async def close_socket_now(socket: ReconnectingWebsocket | None) -> None:
    """Mark the socket's read loop exiting and close its connection, ending the read it waits in.

    The library's own close (its `async with` exit) still runs afterwards and finds it done."""
    if socket is None:
        return
    socket.ws_state = WSListenerState.EXITING
    ws = socket.ws
    if ws is not None:
        with contextlib.suppress(Exception):  # already closed or broken: nothing left to end
            await ws.close()


async def close_client(client: AsyncClient | None) -> None:
    """AsyncClient.close_connection, without waiting out a read of its ws_api socket."""
    if client is None:
        return
    await close_socket_now(getattr(client, "ws_api", None))
    await client.close_connection()
