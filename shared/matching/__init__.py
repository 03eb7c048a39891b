"""The matching engine both simulated venues run: the paper venue (services/exchange_sim) wraps it
in the Binance and Bybit protocols and a market clock, the backtester (backtest/) drives it over a
candle series. Protocol-neutral: accounts, orders, the synthetic book, fills, fees, events."""
