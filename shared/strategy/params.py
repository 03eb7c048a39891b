"""Loading a strategy's params from a config table: aliases, clear errors, no silent drops.

Config files may use a parameter's English name or any alias (the users' own names, e.g.
`qty_inicial`); accents in keys are ignored (`lucro_alvo_máximo` = `lucro_alvo_maximo`).
Floats from JSON/TOML become Decimal through their shortest text, so 1.02 stays 1.02.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from shared.messages import MAX_AMOUNT
from shared.strategy.failure import failure_text

P = TypeVar("P", bound=msgspec.Struct)


class ParamsError(ValueError):
    """A parameter that is unknown, given twice, or invalid; the message names it."""


def plain_key(key: str) -> str:
    """Key without accents, lower case: how aliases are matched."""
    text = unicodedata.normalize("NFKD", key)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).strip().lower()


def _plain_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_value(v) for v in value]
    return value


def canonical_names(raw: Mapping[str, Any], aliases: Mapping[str, str], source: str) -> dict[str, Any]:
    """raw with every alias replaced by its field name; an alias and its field both given is an error."""
    table = {plain_key(alias): name for alias, name in aliases.items()}
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in raw.items():
        name = table.get(plain_key(key), key)
        if name in out:
            raise ParamsError(f"{source}: {key}: given twice (also as {origin[name]})")
        out[name] = _plain_value(value)
        origin[name] = key
    return out


def load_params(
    params_type: type[P],
    raw: Mapping[str, Any] | None,
    aliases: Mapping[str, str] | None = None,
    source: str = "params",
) -> P:
    """Build params_type from raw (aliases resolved); errors name the source and the field."""
    try:
        data = canonical_names(raw or {}, aliases or {}, source)
        _refuse_unknown(params_type, data, source)
        _refuse_nonfinite_decimals(params_type, data, source)
        return msgspec.convert(data, params_type, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        where = ""
        if " - at `$." in text:
            text, _, path = text.rpartition(" - at `$.")
            where = path.rstrip("`") + ": "
        raise ParamsError(f"{source}: {where}{text}") from None
    except RecursionError:
        raise ParamsError(f"{source}: nested too deep") from None
    except ArithmeticError as exc:  # a check in __post_init__ met a value Decimal cannot compare
        raise ParamsError(f"{source}: a number out of range: {type(exc).__name__}") from None
    except ParamsError:
        raise
    except Exception as exc:  # the params' own __post_init__ has a bug: say where, as a config error
        raise ParamsError(f"{source}: checking the params raised {failure_text(exc)}") from None


def _refuse_unknown(params_type: type[msgspec.Struct], data: dict[str, Any], source: str) -> None:
    """A key that names no field is refused by name, with the field it most resembles: a typo
    must not leave the default in force unnoticed, whether or not the struct forbids unknown
    fields itself (the guide's smallest bot does not)."""
    fields = [f.encode_name for f in msgspec.structs.fields(params_type)]
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {near[0]}?" if near else f"its parameters: {', '.join(fields) or 'none'}"
            raise ParamsError(f"{source}: {key}: unknown parameter ({hint})")


def _refuse_nonfinite_decimals(params_type: type[msgspec.Struct], data: dict[str, Any], source: str) -> None:
    """A Decimal param given as "NaN", "inf" or "1e999999999" is refused by name: NaN would
    otherwise reach the struct's own checks (where comparing it raises), and no price, size or
    fraction is 1e20 or more."""
    for field in mi.type_info(params_type).fields:  # type: ignore[union-attr]
        kinds = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
        value = data.get(field.name)
        if value is None or isinstance(value, bool) or not any(isinstance(k, mi.DecimalType) for k in kinds):
            continue
        try:
            number = Decimal(value if isinstance(value, Decimal) else str(value).strip())
        except InvalidOperation:
            continue  # not a number at all: msgspec's own error names it
        if not (number.is_finite() and -MAX_AMOUNT < number < MAX_AMOUNT):
            raise ParamsError(f"{source}: {field.name}: {str(value)[:40]} is not a finite number below 1e20")


def dump_params(params: msgspec.Struct) -> dict[str, Any]:
    """Params as plain builtins (Decimals as strings), the form saved to files."""
    return msgspec.to_builtins(params)
