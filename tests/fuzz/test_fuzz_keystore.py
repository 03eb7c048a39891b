"""Fuzz: keystore files are outside input (a damaged disk, a hostile edit). Whatever the bytes,
opening one ends in the keystore's own KeystoreError (WrongPassword is one) or a working store;
never another exception, never a KDF that asks for more than the bounds. scrypt stays cheap:
the parsing layer is fuzzed without deriving a key, and the files that are unlocked use a small N
(and a small re-seal cost, via the test-only SCRYPT_N override)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import keystore
from shared.keystore import MAX_KDF_MEMORY, MAX_N, MAX_P, MAX_R, KeyPair, Keystore, KeystoreError
from tests.fuzz.budget import FUZZ
from tests.fuzz.shapes import json_values as json_values_of
from tests.test_keystore_hardening import PASSWORD, legacy_file

SMALL_N = 2**4

json_values = json_values_of(text_size=40, key_size=12)
# kdf values that are cheap to derive with, or refused before any derivation
kdf_numbers = st.sampled_from([0, 1, 2, 3, 16, 1000, 1024, 2**21, 2**40, -1]) | json_values


def sample_files(tmp: Path) -> dict[str, bytes]:
    """A sealed (version 2) and an unsealed (version 1, as the old code wrote it) file, two entries each."""
    pairs = {
        "binance": KeyPair("FuzzApiKey0000000", "FuzzApiSecret0000"),
        "bybit": KeyPair("FuzzKey1111111", "FuzzSecret1111"),
    }
    store = Keystore.create(tmp / "v2.json", PASSWORD, n=SMALL_N)
    for venue, pair in pairs.items():
        store.put(venue, pair)
    store.save()
    return {
        "v2": (tmp / "v2.json").read_bytes(),
        "v1": legacy_file(tmp / "v1.json", pairs, n=SMALL_N).read_bytes(),
    }


def use(path: Path) -> None:
    """Open and read everything, as `automata keys list` and the services do; then write it back."""
    store = Keystore.open(path, PASSWORD)
    for venue in store.venues():
        store.updated(venue)
        try:
            store.get(venue)
        except KeystoreError:
            pass
    store.save()


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_fuzz_arbitrary_bytes_are_a_keystore_error(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    path = tmp_path_factory.mktemp("bytes") / "keystore.json"
    path.write_bytes(raw)
    with pytest.raises(KeystoreError):
        Keystore.open(path, PASSWORD)


top_keys = st.sampled_from(["format", "version", "kdf", "cipher", "check", "entries", "seal", "other"])
docs = st.dictionaries(top_keys, json_values, max_size=8).map(
    lambda d: {"format": "automata-keystore", "version": 2, "cipher": "AES-256-GCM", **d}
)


@FUZZ
@given(doc=docs | json_values)
def test_fuzz_parse_refuses_cleanly_and_never_lets_a_large_kdf_through(doc: Any) -> None:
    try:
        sealed = keystore.parse(Path("fuzz.json"), orjson.dumps(doc))
    except KeystoreError as exc:
        assert str(exc).startswith("fuzz.json: ")
        return
    kdf = sealed.kdf
    assert 2 <= kdf.n <= MAX_N and 1 <= kdf.r <= MAX_R and 1 <= kdf.p <= MAX_P
    assert 128 * kdf.n * kdf.r <= MAX_KDF_MEMORY


def paths_of(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths_of(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += paths_of(value, (*prefix, i))
    return found


@FUZZ
@given(data=st.data(), which=st.sampled_from(["v1", "v2"]), edits=st.integers(min_value=1, max_value=3))
def test_fuzz_edited_files_are_a_keystore_error_or_a_working_store(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, which: str, edits: int
) -> None:
    tmp = tmp_path_factory.mktemp("edit")
    doc = orjson.loads(sample_files(tmp)[which])
    for _ in range(edits):
        where = data.draw(st.sampled_from(paths_of(doc)))
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        key = where[-1]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[key]
        else:
            cheap = key in ("n", "r", "p") and where[0] == "kdf"
            parent[key] = data.draw(kdf_numbers if cheap else json_values)
        if not paths_of(doc):
            break
    path = tmp / "edited.json"
    path.write_bytes(orjson.dumps(doc))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keystore, "SCRYPT_N", SMALL_N)  # a re-seal on save stays cheap
        try:
            use(path)
        except KeystoreError:
            pass
