"""The backtester: the very strategy code of the live bots over historical candles, with a fill
model that follows the paper venue's path through each candle (see sim.py), a fast path that
skips candles on which nothing can happen (engine.py), reports, charts and parameter sweeps."""
