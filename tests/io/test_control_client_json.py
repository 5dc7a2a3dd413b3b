"""The control client's JSON codec (`encode_json`/`decode_json` over the C `_json` module,
so that an exec probe does not import `json`, `re` and `enum`): the same text and values as
the standard `json` module."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cinit.io.control_client import decode_json, encode_json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_encoding_is_json_dumps(value: object) -> None:
    assert encode_json(value) == json.dumps(value)


@given(JSON_VALUES, st.sampled_from(["", " ", "\n", " \t\r\n"]))
def test_decoding_is_json_loads(value: object, space: str) -> None:
    text = space + json.dumps(value) + space
    assert decode_json(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", " ", "{", "[1,", "{} x", "nul", '"open'])
def test_not_json_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        decode_json(text)


def test_an_object_json_cannot_carry_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="set"):
        encode_json({"x": {1, 2}})


def test_the_codec_imports_neither_json_nor_re() -> None:
    code = (
        "import sys; from cinit.io.control_client import decode_json, encode_json;"
        "decode_json(encode_json({'cmd': 'status', 'n': [1, 2.5]}));"
        "print(sorted({'json', 're', 'enum'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "[]", done.stderr
