"""Money, ids, codec, config and log redaction."""

from __future__ import annotations

import logging
from decimal import Decimal

import msgspec
import pytest

from shared import codec, ids, money
from shared.config import ConfigError, load_config
from shared.filters import FilterError, SymbolFilters
from shared.logs import JsonFormatter, redact, register_secret
from shared.messages import Balance, BalanceUpdate, OrderStatus, OrderUpdate, Side


def test_money_refuses_floats_and_rounds_by_side():
    assert money.dec("0.1") + money.dec("0.2") == Decimal("0.3")
    with pytest.raises(money.MoneyError):
        money.dec(0.1)
    with pytest.raises(money.MoneyError):
        money.dec("nan")
    assert money.round_down(Decimal("1.23456"), Decimal("0.001")) == Decimal("1.234")
    assert money.round_up(Decimal("1.23401"), Decimal("0.001")) == Decimal("1.235")
    assert money.fmt(Decimal("25000.000")) == "25000"
    assert money.fmt(Decimal("0.00100")) == "0.001"


def test_cids_round_trip_and_reject_bad_ids():
    cid = ids.format_cid("dca_1", 42)
    assert cid == "dca_1-000042"
    assert ids.parse_cid(cid) == ("dca_1", 42)
    assert ids.format_cid("b", 1234567) == "b-1234567"
    assert ids.bot_of("x-HNA2TXFJ1234") is None
    for bad in ("", "a" * 25, "with-dash", "spa ce"):
        with pytest.raises(ids.IdError):
            ids.check_bot_id(bad)


def test_filters_round_and_check():
    f = SymbolFilters(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"),
                      step_size=Decimal("0.00001"), min_notional=Decimal("5"))  # fmt: skip
    assert f.round_price(Decimal("100.019"), Side.BUY) == Decimal("100.01")
    assert f.round_price(Decimal("100.011"), Side.SELL) == Decimal("100.02")
    assert f.round_qty(Decimal("0.123456")) == Decimal("0.12345")
    with pytest.raises(FilterError, match="NOTIONAL"):
        f.check(Decimal("0.00001"), Decimal("100"))
    with pytest.raises(FilterError, match="PERCENT_PRICE"):
        f.check(Decimal("1"), Decimal("1000"), ref_price=Decimal("100"))
    f.check(Decimal("1"), Decimal("100"), ref_price=Decimal("100"))


def test_percent_price_by_side_checks_each_side_against_its_own_band():
    """Binance's documented PERCENT_PRICE_BY_SIDE example: a buy within [0.2, 1.2] × the average
    price, a sell within [0.8, 5] ×. A sell at +50 % is fine there; one band would refuse it."""
    f = SymbolFilters(symbol="ETHBTC", base_asset="ETH", quote_asset="BTC", tick_size=Decimal("0.01"),
                      step_size=Decimal("0.001"), multiplier_up=Decimal("1.2"), multiplier_down=Decimal("0.2"),
                      sell_multiplier_up=Decimal(5), sell_multiplier_down=Decimal("0.8"))  # fmt: skip
    ref, qty = Decimal(100), Decimal(1)
    f.check(qty, Decimal(50), ref_price=ref, side=Side.BUY)
    f.check(qty, Decimal(150), ref_price=ref, side=Side.SELL)
    with pytest.raises(FilterError, match=r"PERCENT_PRICE: price 130 outside \[20, 120\]"):
        f.check(qty, Decimal(130), ref_price=ref, side=Side.BUY)
    with pytest.raises(FilterError, match=r"PERCENT_PRICE: price 70 outside \[80, 500\]"):
        f.check(qty, Decimal(70), ref_price=ref, side=Side.SELL)
    one_band = msgspec.structs.replace(f, sell_multiplier_up=None, sell_multiplier_down=None)
    assert one_band.price_band(Side.SELL, ref) == one_band.price_band(Side.BUY, ref) == (20, 120)


def test_envelope_is_readable_text_with_decimal_strings():
    msg = OrderUpdate(cid="b-000001", bot="b", venue="sim", symbol="BTCUSDT", status=OrderStatus.FILLED,
                      cum_filled_qty=Decimal("0.00100000"), fee=Decimal("0.000001"), fee_asset="BTC")  # fmt: skip
    fields = codec.encode(msg)
    assert fields[b"type"] == b"order_update" and fields[b"v"] == b"1"
    text = fields[b"data"].decode()
    assert '"cum_filled_qty":"0.00100000"' in text
    assert codec.decode(fields) == msg
    assert codec.decode({k.decode(): v.decode() for k, v in fields.items()}) == msg
    bal = BalanceUpdate(venue="sim", balances=(Balance("BTC", Decimal("1"), Decimal("0.5")),))
    assert codec.decode(codec.encode(bal)).balances[0].total == Decimal("1.5")


def test_envelope_upcaster_runs_for_old_versions(monkeypatch):
    monkeypatch.setitem(codec.UPCASTERS, ("notification", 0), lambda d: {**d, "text": d.pop("body")})
    fields = {
        b"type": b"notification",
        b"v": b"0",
        b"data": b'{"type":"notification","id":"1","kind":"info","body":"hi"}',
    }
    assert codec.decode(fields).text == "hi"


def test_config_errors_name_file_and_field(tmp_path):
    path = tmp_path / "automata.toml"
    path.write_text('[services.notifier]\nmetrics_port = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert str(err.value).startswith(f"{path}: services.notifier.metrics_port: Expected `int`")
    path.write_text("[order_gateway]\nlease_ms = 2000\nrecv_window_ms = 5000\n")
    with pytest.raises(ConfigError, match="order_gateway: lease_ms .2000. must be above recv_window_ms"):
        load_config(path, env={})  # a frozen gateway's signed order could land after a standby took over
    path.write_text("[venues.sim]\nkind = 'sim'\nsurprise = 1\n")
    with pytest.raises(ConfigError, match=r"venues\.sim.*surprise"):
        load_config(path, env={})
    path.write_text("[redis\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, env={})


def test_config_env_overrides_and_keys(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(
        '[venues.binance]\nkind = "binance"\n[keys.bybit]\napi_key = "bybitkey123"\napi_secret = "bybitsecret456"\n'
    )
    env = {
        "REDIS_URL": "redis://h:1/2",
        "BINANCE_API_KEY": "k" * 20,
        "BINANCE_API_SECRET": "s" * 20,
        "BINANCE_API_TEST": "true",
    }
    cfg = load_config(path, env=env)
    assert cfg.redis.url == "redis://h:1/2"
    assert cfg.venues["binance"].testnet is True
    assert cfg.keys["binance"].api_secret == "s" * 20
    assert cfg.keys["bybit"].api_key == "bybitkey123"
    assert "s" * 20 not in repr(cfg) and "bybitsecret456" not in repr(cfg)
    with pytest.raises(ConfigError, match="BINANCE_API_KEY and BINANCE_API_SECRET"):
        load_config(path, env={"BINANCE_API_KEY": "only-key"})


def test_logs_never_print_registered_secrets():
    register_secret("SuperSecretValue123")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "key=%s sig", ("SuperSecretValue123",), None)
    try:
        raise RuntimeError("boom SuperSecretValue123")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter("t").format(record)
    assert "SuperSecretValue123" not in line
    assert msgspec.json.decode(line)["msg"] == "key=*** sig"
    assert "signature=***" in redact("a=1&signature=" + "ab" * 32)
