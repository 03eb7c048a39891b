"""The market gateway's Prometheus metrics (registered once per process)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared import metrics
from shared.prom import Counter, Gauge


@dataclass(frozen=True)
class GatewayMetrics:
    ws_messages: Counter  # (venue, stream): websocket messages received for each target stream
    entries: Counter  # (stream, source): entries written; source live | backfill
    duplicates: Counter  # (stream,): candles refused because already stored
    backfilled: Counter  # (stream,): candles written from REST klines
    reconnects: Counter  # (venue,): socket drops
    rest_requests: Counter  # (venue, endpoint)
    stalls: Counter  # (venue, what)
    book_dropped: Counter  # (venue,): book tickers dropped (Redis down or buffer full)
    feed_lag: Gauge  # (stream,): local time - close time of the newest live candle, seconds
    ws_up: Gauge  # (venue,): 1 while the socket delivers


@functools.cache
def gateway_metrics() -> GatewayMetrics:
    return GatewayMetrics(
        ws_messages=metrics.counter(
            "automata_md_ws_messages_total",
            "Websocket messages received, by target stream",
            ("venue", "stream"),
        ),
        entries=metrics.counter(
            "automata_md_entries_total", "Entries written to md:* streams", ("stream", "source")
        ),
        duplicates=metrics.counter(
            "automata_md_duplicate_candles_total",
            "Candles already stored (XADD id not above the top)",
            ("stream",),
        ),
        backfilled=metrics.counter(
            "automata_md_backfilled_candles_total", "Candles written from REST klines", ("stream",)
        ),
        reconnects=metrics.counter("automata_md_reconnects_total", "Websocket drops", ("venue",)),
        rest_requests=metrics.counter(
            "automata_md_rest_requests_total", "REST requests to the venue", ("venue", "endpoint")
        ),
        stalls=metrics.counter("automata_md_stalls_total", "Stalled feeds detected", ("venue", "what")),
        book_dropped=metrics.counter(
            "automata_md_book_dropped_total", "Book tickers dropped before Redis", ("venue",)
        ),
        feed_lag=metrics.gauge(
            "automata_md_feed_lag_seconds",
            "Local time minus close time of the newest live candle",
            ("stream",),
        ),
        ws_up=metrics.gauge("automata_md_ws_up", "1 while the venue socket delivers data", ("venue",)),
    )
