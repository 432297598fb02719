"""Property fuzzing (hypothesis) of two decoders of untrusted bytes (issue 16): ``Result.load`` on a saved
folder whose result.json / arrays.npz bytes are mutated, and the typed safetensors header parser. The
only allowed outcomes are a value or a WorkbenchError; anything else (a traceback) is a finding."""

from __future__ import annotations

import json
import math
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.errors import WorkbenchError
from workbench.core.result import Check, Result
from workbench.io.weights import DTYPE_SIZES, read_safetensors_header

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**1100, 2**1100) | st.floats() | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
                    max_leaves=12)


@pytest.fixture(scope="module")
def saved() -> dict[str, bytes]:
    r = Result("probe", model="m", data="d", config={"k": 1}, metrics={"a": 1.5, "b": float("nan")},
               checks=[Check("c", True, 0.5, None, "ok")], info={"dtype": "float32"},
               arrays={"x": np.arange(12, dtype=np.float32).reshape(3, 4), "names": np.array(["a", "bc"])})
    with tempfile.TemporaryDirectory() as t:
        d = r.save(Path(t) / "r")
        return {n: (d / n).read_bytes() for n in ("result.json", "arrays.npz")}


def _load(files: dict[str, bytes]):
    with tempfile.TemporaryDirectory() as t:
        for name, data in files.items():
            (Path(t) / name).write_bytes(data)
        try:
            return Result.load(t)
        except WorkbenchError as e:
            assert "\n" not in e.one_line()
            return e


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b[:cut] if cut is not None else b)


@FAST
@given(which=st.sampled_from(["result.json", "arrays.npz"]),
       edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
       cut=st.none() | st.integers(0, 4000))
def test_result_load_on_mutated_bytes_returns_or_raises_one_typed_line(saved, which, edits, cut):
    out = _load({**saved, which: _mutate(saved[which], edits, cut)})
    if isinstance(out, Result):
        for a in out.arrays.values():
            assert a.dtype.kind != "O"


@FAST
@given(path=st.lists(st.sampled_from(["metrics", "checks", 0, "value", "passed", "name", "info", "provenance",
                                      "seed", "arrays", "config", "analyzer", "format", "message", "a"]),
                     min_size=1, max_size=3),
       value=JSON)
def test_result_load_on_mutated_json_fields(saved, path, value):
    doc = json.loads(saved["result.json"])
    node = doc
    for key in path[:-1]:
        nxt = node[key] if isinstance(node, dict) and key in node else (
            node[key] if isinstance(node, list) and isinstance(key, int) and key < len(node) else None)
        if not isinstance(nxt, (dict, list)):
            break
        node = nxt
    last = path[-1]
    if isinstance(node, dict):
        node[str(last)] = value
    elif isinstance(node, list) and node:
        node[int(last) if isinstance(last, int) else 0] = value
    out = _load({**saved, "result.json": json.dumps(doc).encode()})
    if isinstance(out, Result):  # accepted: every field is of the type the rest of the workbench relies on
        assert all(isinstance(v, float) for v in out.metrics.values())
        assert all(isinstance(c.passed, bool) and isinstance(c.message, str) for c in out.checks)
        assert isinstance(out.info, dict) and isinstance(out.config, dict)


def _entry_strategy():
    return st.fixed_dictionaries({
        "dtype": st.sampled_from(list(DTYPE_SIZES)) | JSON,
        "shape": st.lists(st.integers(-3, 1 << 40), max_size=4) | JSON,
        "data_offsets": st.lists(st.integers(-5, 1 << 40), min_size=0, max_size=3) | JSON,
    }) | JSON


@FAST
@given(header=st.dictionaries(st.text(max_size=8), _entry_strategy(), max_size=4) | JSON,
       tail=st.binary(max_size=64), nest=st.integers(0, 3000))
def test_safetensors_header_parser_returns_typed_entries_or_one_line(header, tail, nest):
    raw = json.dumps(header).encode()
    if nest:  # deep nesting inside the first value, well under the 1 MB header limit
        raw = b'{"w":' + b"[" * nest + b"]" * nest + b"}"
    data = struct.pack("<Q", len(raw)) + raw + tail
    try:
        out = read_safetensors_header(data)
    except WorkbenchError as e:
        assert "\n" not in e.one_line()
        return
    for entry in out.values():
        assert isinstance(entry["dtype"], str) and entry["dtype"] in DTYPE_SIZES
        assert all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"])
        b, e = entry["data_offsets"]
        assert 0 <= b <= e <= len(tail) and e - b == math.prod(entry["shape"]) * DTYPE_SIZES[entry["dtype"]]


@FAST
@given(data=st.binary(max_size=300))
def test_safetensors_header_parser_on_random_bytes(data):
    try:
        read_safetensors_header(data)
    except WorkbenchError as e:
        assert "\n" not in e.one_line()


def test_a_zip_version_the_reader_cannot_handle_is_one_typed_line(tmp_path):
    """Found by the fuzzer above: a central directory claiming "version needed to extract" 6.4 made zipfile
    raise NotImplementedError through Result.load."""
    import numpy as np

    from workbench.core.errors import WorkbenchError
    from workbench.core.result import Result

    out = tmp_path / "r"
    Result("probe", metrics={"a": 1.0}, arrays={"x": np.arange(4.0)}).save(out)
    data = bytearray((out / "arrays.npz").read_bytes())
    at = data.index(b"PK\x01\x02")
    data[at + 6:at + 8] = (64).to_bytes(2, "little")  # central directory: version needed to extract
    (out / "arrays.npz").write_bytes(bytes(data))
    try:
        Result.load(out)
    except WorkbenchError as e:
        assert "\n" not in e.one_line()
    else:
        raise AssertionError("a zip the reader cannot handle loaded")
