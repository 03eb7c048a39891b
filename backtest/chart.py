"""PNG of a backtest: price with the fills marked, and the equity curve against buy-and-hold."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from backtest.engine import RunResult  # noqa: E402
from backtest.report import equity_curve  # noqa: E402
from shared.messages import Side  # noqa: E402

MAX_POINTS = 4000


def _dates(ms: np.ndarray) -> np.ndarray:
    return ms.astype("datetime64[ms]")


def draw_chart(result: RunResult, path: str | Path, title: str = "") -> Path:
    sr = result.series
    n = len(sr)
    stride = max(1, n // MAX_POINTS)
    times = _dates(sr.open_time)
    close = sr.floats(sr.close)
    equity = equity_curve(result)
    first_open = float(sr.floats(sr.open[:1])[0])
    hold = equity[0] * close / first_open
    fig, (ax_p, ax_e) = plt.subplots(2, 1, figsize=(12, 7), sharex=True, height_ratios=(3, 2))
    ax_p.plot(times[::stride], close[::stride], lw=0.8, color="#555", label="close")
    for side, marker, color in ((Side.BUY, "^", "#1a9850"), (Side.SELL, "v", "#d73027")):
        pts = [x for x in result.fills if x.side == side]
        if pts:
            ax_p.scatter(
                _dates(np.array([x.ts for x in pts], dtype=np.int64)),
                [float(x.price) for x in pts],
                marker=marker,
                s=22,
                color=color,
                label=f"{side.lower()} ({len(pts)})",
                zorder=3,
            )
    ax_p.set_ylabel(result.setup.filters.quote_asset)
    ax_p.legend(loc="upper left", fontsize=8)
    ax_p.set_title(title or f"{result.setup.strategy.name} on {result.setup.filters.symbol}")
    ax_e.plot(times[::stride], equity[::stride], lw=1.0, color="#2166ac", label="equity")
    ax_e.plot(times[::stride], hold[::stride], lw=0.8, color="#999", ls="--", label="buy and hold")
    ax_e.set_ylabel("equity")
    ax_e.legend(loc="upper left", fontsize=8)
    ax_e.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
