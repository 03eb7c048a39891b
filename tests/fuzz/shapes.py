"""Shapes the fuzz tests share: any JSON value, and a valid document with mutations applied."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
)


def json_values(
    scalars: st.SearchStrategy[Any] | None = None,
    *,
    text_size: int = 30,
    key_size: int = 10,
    max_leaves: int = 12,
) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars (by default null, booleans, 64-bit integers, finite floats and
    text) nested in lists and objects of up to 4 items."""
    base = scalars if scalars is not None else SCALARS | st.text(max_size=text_size)
    return st.recursive(
        base,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=key_size), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def mutate(doc: dict[str, Any], path: tuple[Any, ...], action: str, value: Any) -> dict[str, Any]:
    """A copy of `doc` with the item at `path` dropped, renamed into an unknown key, or set."""
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "drop":
        del parent[last]
    elif action == "unknown" and isinstance(parent, dict):
        parent[f"{last}_typo"] = value
    else:
        parent[last] = value
    return doc


def apply_mutations(doc: dict[str, Any], mutations: list[tuple[tuple[Any, ...], str, Any]]) -> dict[str, Any]:
    """`doc` with each mutation applied in turn; one whose path an earlier one removed is skipped."""
    for path, action, value in mutations:
        try:
            doc = mutate(doc, path, action, value)
        except (KeyError, IndexError, TypeError):
            continue
    return doc
