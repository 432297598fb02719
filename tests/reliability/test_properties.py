"""Plan item 2 (CI size): property-based tests over loader inputs and every analyzer's Config."""

from __future__ import annotations

import dataclasses
import json
import struct
import typing
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.corpus import reference_state_dict
from workbench.core.analyzer import list_analyzers
from workbench.core.config import from_dict, to_dict
from workbench.core.errors import ConfigError, WorkbenchError
from workbench.io.images import decode_image
from workbench.io.weights import load_user_safetensors, read_safetensors_header

CI = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _png(w, h, depth, color, body: bytes) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b""))


@CI
@given(w=st.integers(0, 2**32 - 1), h=st.integers(0, 2**32 - 1), depth=st.sampled_from([1, 2, 4, 8, 16, 3, 0]),
       color=st.integers(0, 7), body=st.binary(max_size=256))
def test_png_header_fields_give_an_image_or_a_typed_error(w, h, depth, color, body):
    try:
        s = decode_image(_png(w, h, depth, color, body))
    except WorkbenchError as e:
        assert "\n" not in e.one_line()
    else:
        assert s.array.shape == (h, w, 3)


@CI
@given(st.binary(max_size=2048))
def test_random_bytes_never_escape_as_untyped_errors(data):
    outcomes = []
    for load in (decode_image, lambda d: load_user_safetensors(d, REF)):
        try:
            outcomes.append(type(load(data)).__name__)
        except WorkbenchError as e:  # anything else propagates and fails the test
            outcomes.append(e.code)
    assert len(outcomes) == 2 and all(o for o in outcomes)


REF = reference_state_dict()
_META = st.fixed_dictionaries({"dtype": st.sampled_from(["F32", "F16", "BF16", "I64", "F64", "??"]),
                               "shape": st.lists(st.integers(-2, 8), max_size=4),
                               "data_offsets": st.lists(st.integers(-10, 10_000), min_size=0, max_size=3)})


@CI
@given(header=st.dictionaries(st.sampled_from(sorted(REF) + ["x", "__metadata__"]), _META, max_size=8),
       payload=st.binary(max_size=512))
def test_safetensors_header_fields_give_tensors_or_a_typed_error(header, payload):
    h = json.dumps(header).encode()
    data = struct.pack("<Q", len(h)) + h + payload
    try:
        read_safetensors_header(data)
        out = load_user_safetensors(data, REF)
    except WorkbenchError:
        return
    assert set(out) == set(REF)


def _value_strategy(cls, f: dataclasses.Field):
    t, m = typing.get_type_hints(cls)[f.name], f.metadata
    anything = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans())
    if m.get("choices"):
        valid = st.sampled_from(m["choices"]) if not m.get("multi") else \
            st.lists(st.sampled_from(m["choices"]), min_size=1, max_size=3, unique=True).map(",".join)
    elif t is bool:
        valid = st.booleans()
    elif t is int:
        valid = st.integers(int(m["min"]) if m.get("min") is not None else -1000,
                            int(m["max"]) if m.get("max") is not None else 1000)
    elif t is float:
        valid = st.floats(m.get("min") if m.get("min") is not None else -1e3,
                          m.get("max") if m.get("max") is not None else 1e3, allow_nan=False)
    else:
        valid = st.text(max_size=12)
    return st.one_of(valid, valid.map(str), anything)


@pytest.mark.parametrize("analyzer", list_analyzers(), ids=lambda a: a.name)
def test_config_validation_raises_only_config_errors_and_round_trips(analyzer):
    cls = analyzer.Config
    fields = dataclasses.fields(cls)

    @settings(max_examples=200, deadline=2000)
    @given(st.fixed_dictionaries({}, optional={f.name: _value_strategy(cls, f) for f in fields}))
    def check(values):
        try:
            cfg = from_dict(cls, values)
        except ConfigError as e:
            assert "\n" not in e.one_line()
            return
        assert from_dict(cls, to_dict(cfg)) == cfg

    check()
    assert from_dict(cls, {}) == cls()  # the defaults are valid
