"""The venue's Prometheus metrics (served at /metrics next to the protocols)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared import metrics
from shared.prom import Counter, Gauge


@dataclass(frozen=True)
class SimMetrics:
    requests: Counter
    orders: Counter
    fills: Counter
    steps: Counter
    faults: Counter
    events_dropped: Counter
    websockets: Gauge


@functools.cache
def sim_metrics() -> SimMetrics:
    return SimMetrics(
        requests=metrics.counter(
            "sim_requests_total", "API requests answered", ("protocol", "endpoint", "status")
        ),
        orders=metrics.counter("sim_orders_total", "Order placements", ("protocol", "result")),
        fills=metrics.counter("sim_fills_total", "Fills (trades) of account orders", ("account",)),
        steps=metrics.counter("sim_market_steps_total", "Market steps taken"),
        faults=metrics.counter("sim_faults_injected_total", "Faults that acted", ("kind",)),
        events_dropped=metrics.counter(
            "sim_user_events_dropped_total", "User-stream events not sent", ("reason",)
        ),
        websockets=metrics.gauge("sim_websockets_open", "Open websocket connections"),
    )
