"""Fuzz: config files (shared/config.py) and the paper venue's SIM_* settings
(services/exchange_sim/config.py).

Arbitrary TOML text, random bytes and mutated valid configs load to a config or fail with a
ConfigError that names the file and the field; never a raw tomllib / msgspec / Unicode /
Recursion error, and never a config holding nan or inf.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.exchange_sim.config import _FIELDS, SimConfig, load_sim_config
from shared.config import AppConfig, ConfigError, load_config
from shared.messages import MAX_AMOUNT
from tests.fuzz.budget import FUZZ
from tests.fuzz.shapes import apply_mutations

pytestmark = pytest.mark.timeout(120)


def toml_value(value: Any) -> str:
    """An inline TOML value (strings as JSON basic strings, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items()
            )
            + "}"
        )
    raise AssertionError(f"no TOML for {value!r}")


def toml_doc(doc: dict[str, Any]) -> str:
    return "".join(
        f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}\n"
        for k, v in doc.items()
        if v is not None
    )


SCALAR = (
    st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["", "sim", "binance", "1m", "BTCUSDT", "nan", "-1", "1e999"])
)
VALUE = st.recursive(
    SCALAR,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=10), kids, max_size=3),
    max_leaves=8,
)

VALID: dict[str, Any] = {
    **msgspec.to_builtins(AppConfig()),
    "venues": {"sim": {"kind": "sim"}, "binance": {"kind": "binance", "testnet": True}},
    "keys": {"binance": {"api_key": "k" * 8, "api_secret": "s" * 8}},
    "market_gateway": {"feeds": [{"venue": "sim", "symbols": ["BTCUSDT"], "intervals": ["1m", "5m"]}]},
}


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a nested dict/list (the places a mutation can hit)."""
    out = [prefix] if prefix else []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, item in items:
        out += paths(item, (*prefix, key))
    return out


PATHS = paths(VALID)


def load_text(tmp: Path, text: str | bytes) -> AppConfig | None:
    """The property: a config, or a ConfigError naming the file (then the field or the fault)."""
    path = tmp / "automata.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        cfg = load_config(path, env={})
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)
        assert str(exc)[len(f"{path}: ") :].strip(), "the error says what is wrong"
        return None
    for _, value in _leaves(msgspec.to_builtins(cfg)):
        assert not (isinstance(value, float) and not math.isfinite(value)), "a config holds nan/inf"
    return cfg


def _leaves(obj: Any) -> list[tuple[tuple[Any, ...], Any]]:
    return [(p, _get(obj, p)) for p in paths(obj)]


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def test_the_valid_config_loads(tmp_path: Path) -> None:
    assert load_text(tmp_path, toml_doc(VALID)) is not None


@FUZZ
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "drop", "unknown"]), VALUE),
        min_size=1,
        max_size=3,
    )
)
@example(mutations=[(("market_gateway", "stall_factor"), "set", math.inf)])  # ran on inf before
@example(mutations=[(("bus", "read_count"), "set", [[[[[[[]]]]]]])])
def test_mutated_configs_load_or_name_the_field(tmp_path_factory, mutations) -> None:
    doc = apply_mutations(VALID, mutations)
    load_text(tmp_path_factory.mktemp("cfg"), toml_doc(doc))


@FUZZ
@given(text=st.text(max_size=300) | st.binary(max_size=300))
@example(text=b"\xff\xfe[redis]\n")  # UnicodeDecodeError escaped
@example(text="a = " + "[" * 3000 + "]" * 3000)  # RecursionError escaped from tomllib
@example(text="[notifier.telegram]\ntoken = 'x'\n")  # the error did not name the file
def test_arbitrary_files_load_or_refuse(tmp_path_factory, text) -> None:
    load_text(tmp_path_factory.mktemp("cfg"), text)


# --- the paper venue's SIM_* variables --------------------------------------------------------

SIM_TEXT = st.text(max_size=40) | st.sampled_from(
    ["nan", "inf", "-1", "1e999999999", "99999", "step", "now", "BTC=1,ETH=x", "=1", "BTCUSDT,NOPE", "5",
     "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00", "9" * 40, "0.001", "next-step"]
)  # fmt: skip


def _sane(cfg: SimConfig) -> None:
    assert 0 <= cfg.port <= 65535
    assert math.isfinite(cfg.speed) and cfg.speed >= 0
    assert cfg.start_ms is None or 0 <= cfg.start_ms < 2**53
    amounts = [cfg.maker_fee, cfg.taker_fee, cfg.participation, cfg.max_fill, *cfg.balances.values()]
    assert all(d is None or (d.is_finite() and 0 <= d < MAX_AMOUNT) for d in amounts)
    assert all(fee <= 1 for fee in (cfg.maker_fee, cfg.taker_fee, cfg.participation))
    assert all(asset for asset in cfg.balances)


@FUZZ
@given(env=st.dictionaries(st.sampled_from(sorted(_FIELDS)), SIM_TEXT, max_size=4))
@example(env={"SIM_SPEED": "nan"})
@example(env={"SIM_MAKER_FEE": "1e999999999"})
@example(env={"SIM_PORT": "99999"})
@example(env={"SIM_BALANCES": "=1"})
def test_sim_settings_load_or_name_the_variable(env: dict[str, str]) -> None:
    try:
        cfg = load_sim_config(env)
    except ConfigError as exc:
        assert any(var in str(exc) for var in env), str(exc)
        return
    _sane(cfg)


def test_sim_defaults_are_sane() -> None:
    _sane(load_sim_config({}))
    assert load_sim_config({"SIM_BALANCES": "BTC=1"}).balances == {"BTC": Decimal(1)}
