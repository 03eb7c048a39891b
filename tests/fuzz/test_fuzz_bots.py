"""Fuzz: bot files (services/strategy_runner/bots.py load_bots) and the strategies' params.

A bots file, TOML or the JSON list layout, mutated any way, loads to a list of BotConfig
whose params parse to finite numbers, or fails with a ConfigError naming the file and the bot
or field; never a TypeError, InvalidOperation, RecursionError or Unicode error.
"""

from __future__ import annotations

import copy
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.strategy_runner.bots import load_bots
from shared.config import ConfigError
from shared.messages import MAX_AMOUNT
from shared.strategy.registry import load_strategy
from tests.fuzz.budget import FUZZ
from tests.fuzz.shapes import apply_mutations
from tests.fuzz.test_fuzz_config import VALUE, paths, toml_doc

pytestmark = pytest.mark.timeout(120)

VALID: dict[str, Any] = {
    "bots": [
        {"id": "dca1", "strategy": "dca", "symbol": "BTCUSDT", "params": {"qty_inicial": 20, "taxa": 0.001,
         "lucro_reaplicar": "s", "size_curve": "1.5"}},
        {"id": "grid1", "strategy": "grid", "params": {"lower": "20000", "upper": "30000", "levels": 5,
         "stop_loss": "19000", "spacing": "geometric"}},
        {"id": "frac1", "strategy": "fractal_trailing", "interval": "5m", "lease_ms": 2000,
         "params": {"entry": "25000", "quantity": "0.01", "pad": "0.1%", "lookback_days": 2}},
    ]
}  # fmt: skip
PATHS = paths(VALID)
# Only names that import nothing new: a fuzzer must not import (run) arbitrary modules.
STRATEGY_NAMES = st.sampled_from(
    ["dca", "grid", "fractal_trailing", "nope", ".x", ":x", "..", "strategies.dca:Nope", "strategies.dca:ALIASES",
     "strategies.dca:DcaStrategy", "strategies.grid", "shared.messages:MAX_AMOUNT", "a" * 300]
)  # fmt: skip
FIELD_VALUE = (
    VALUE
    | STRATEGY_NAMES
    | st.sampled_from(
        ["NaN", "-Infinity", "1e999999999", "-1", 10**25, 99999999999, "s", "talvez", "9" * 100]
    )
)


def _finite(obj: Any) -> bool:
    if isinstance(obj, Decimal):
        return obj.is_finite() and abs(obj) < MAX_AMOUNT
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return all(_finite(v) for v in obj)
    return True


def load_or_refuse(tmp: Path, name: str, text: str | bytes) -> None:
    """The property: BotConfigs whose params parse to finite numbers, or a ConfigError naming
    the file and then what is wrong."""
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        bots = load_bots(path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)
        assert str(exc)[len(f"{path}: ") :].strip()
        return
    for bot in bots:
        params = load_strategy(bot.strategy).parse_params(bot.params)
        built = msgspec.structs.asdict(params) if isinstance(params, msgspec.Struct) else params
        assert _finite(built), f"{bot.id}: params hold a number no arithmetic can take: {built}"
        assert _finite(msgspec.structs.asdict(bot))


def apply(mutations: list[tuple[tuple[Any, ...], str, Any]]) -> dict[str, Any]:
    return apply_mutations(VALID, mutations)


MUTATIONS = st.lists(
    st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "drop", "unknown"]), FIELD_VALUE),
    min_size=1,
    max_size=3,
)


def toml_bots(doc: dict[str, Any]) -> str:
    bots = doc.get("bots")
    if not isinstance(bots, list) or not all(isinstance(b, dict) for b in bots):
        return toml_doc(doc)
    return "".join("[[bots]]\n" + toml_doc(b) for b in bots) + toml_doc(
        {k: v for k, v in doc.items() if k != "bots"}
    )


def seed_layout(doc: dict[str, Any]) -> Any:
    """The same bots in the JSON list layout: [{"name": {"function": ..., params}}]."""
    bots = doc.get("bots")
    if not isinstance(bots, list):
        return bots
    out = []
    for bot in bots:
        if not isinstance(bot, dict):
            out.append(bot)
            continue
        body = {k: v for k, v in bot.items() if k in ("venue", "symbol", "interval", "enabled")}
        params = bot.get("params")
        body.update(params if isinstance(params, dict) else {"params": params})
        body["function"] = bot.get("strategy")
        out.append({str(bot.get("id")): body})
    return out


def test_the_valid_files_load(tmp_path: Path) -> None:
    assert len(load_bots(_write(tmp_path / "bots.toml", toml_bots(VALID)))) == 3
    assert len(load_bots(_write(tmp_path / "bots.json", json.dumps(seed_layout(VALID))))) == 3


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@FUZZ
@given(mutations=MUTATIONS)
@example(mutations=[(("bots", 0, "params", "qty_inicial"), "set", "NaN")])  # InvalidOperation escaped
@example(mutations=[(("bots", 1, "params", "lower"), "set", "nan")])
@example(mutations=[(("bots", 2, "strategy"), "set", ".x")])  # TypeError from import_module
@example(mutations=[(("bots", 1, "params", "levels"), "set", 99999999999)])  # the grid's start would hang
def test_mutated_toml_bots_load_or_name_the_field(tmp_path_factory, mutations) -> None:
    load_or_refuse(tmp_path_factory.mktemp("bots"), "bots.toml", toml_bots(apply(mutations)))


@FUZZ
@given(mutations=MUTATIONS, seed=st.booleans())
def test_mutated_json_bots_load_or_name_the_field(tmp_path_factory, mutations, seed) -> None:
    doc = apply(mutations)
    text = json.dumps(seed_layout(doc) if seed else doc, allow_nan=True)
    load_or_refuse(tmp_path_factory.mktemp("bots"), "bots.json", text)


@FUZZ
@given(
    text=st.text(max_size=200) | st.binary(max_size=200), suffix=st.sampled_from(["bots.toml", "bots.json"])
)
@example(text=b"\xff[", suffix="bots.json")  # UnicodeDecodeError escaped
@example(text="[" * 100_000, suffix="bots.json")  # RecursionError escaped
@example(text='[{"a": [1]}]', suffix="bots.json")  # the list layout's body as a list: TypeError
@example(text='[{"a": "xy"}]', suffix="bots.json")  # ... as a string: ValueError
@example(text='[{"a": {"function": "dca", "x": ' + "[" * 900 + "]" * 900 + "}}]", suffix="bots.json")
def test_arbitrary_bot_files_load_or_refuse(tmp_path_factory, text, suffix) -> None:
    load_or_refuse(tmp_path_factory.mktemp("bots"), suffix, text)


def test_mutations_do_not_touch_the_template() -> None:
    before = copy.deepcopy(VALID)
    apply([(("bots", 0, "params", "qty_inicial"), "drop", None)])
    assert before == VALID
