"""The paper venue: a deterministic spot exchange speaking the Binance and Bybit wire protocols."""
