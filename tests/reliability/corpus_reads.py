"""Generated corpus of untrusted reads (issue 16), by class, and a driver that runs each case through the
real CLI entry (``workbench.cli.main``) in one process with a bounded address space.

    python -m tests.reliability.corpus_reads CLASS ROOT OUT.json

writes the class's files under ROOT, runs every case and writes, per case, the exit code, the stderr
lines and whether a traceback escaped; plus the peak RSS growth over the warmed-up process. Classes:
special files, compressed-size bombs, result.json schema violations, malformed safetensors headers.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import resource
import struct
import sys
import traceback
import zipfile
from pathlib import Path

import numpy as np

BASE = "toy_mlp.moons"  # the smallest zoo architecture: `zoo add` builds it to check keys and shapes
MODEL = "digits_vgg.sk"  # `run` resolves --data before it loads any weights
AS_HEADROOM = 3 << 30  # address space the process may still grow by after warm-up: a bomb fails, not the host


# ---- small builders ------------------------------------------------------------------------------

def _result_doc(**over) -> dict:
    doc = {"format": 1, "analyzer": "probe", "model": "m", "data": "d", "config": {}, "metrics": {"a": 1.0},
           "checks": [{"name": "c", "passed": True, "value": 1.0, "threshold": None, "message": "ok"}],
           "info": {}, "provenance": {"model_id": "m", "seed": 0}, "arrays": ["x"]}
    doc.update(over)
    return doc


def _npy_member(zf: zipfile.ZipFile, name: str, header: dict, data: bytes = b"", **kw) -> None:
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(data)


def _result_dir(root: Path, name: str, doc, arrays: dict | None = None, npz: bytes | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "result.json").write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    if npz is not None:
        (d / "arrays.npz").write_bytes(npz)
    elif arrays is not None:
        np.savez_compressed(d / "arrays.npz", **arrays)
    return d


def _zeros_member(zf: zipfile.ZipFile, name: str, nbytes: int) -> None:
    """A float64 member of ``nbytes`` zeros, streamed (never held in memory): a deflate bomb."""
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (nbytes // 8,)})
        chunk = bytes(1 << 22)
        for _ in range(nbytes // len(chunk)):
            f.write(chunk)


def _st(header, data: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _entry(**over) -> dict:
    e = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    e.update(over)
    return e


# ---- the classes ---------------------------------------------------------------------------------

def special_files(root: Path) -> list[tuple[str, list[str]]]:
    """Every file-reading entry, given a FIFO, /dev/zero, a link to /dev/zero, a directory, a 30 GB sparse file."""
    root.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "fifo")
    (root / "zero_link").symlink_to("/dev/zero")
    (root / "a_dir.png").mkdir()
    with open(root / "sparse", "wb") as f:
        f.truncate(30 << 30)
    targets = {"fifo": root / "fifo", "dev_zero": Path("/dev/zero"), "link_dev_zero": root / "zero_link",
               "directory": root / "a_dir.png", "sparse_30gb": root / "sparse"}
    out = []
    for kind, src in targets.items():
        for suffix in (".png", ".npz", ".npy", ".edf", ".mat", ".safetensors", ".py"):
            p = root / f"{kind}{suffix}"
            if not p.exists():
                p.symlink_to(src)  # the suffix selects the reader; the link leads to the special file
        out += [(f"{kind}:image", ["run", "attribution", "--model", MODEL, "--data", str(root / f"{kind}.png"),
                                   "--out", str(root / "out" / kind)]),
                (f"{kind}:npz", ["run", "attribution", "--model", MODEL, "--data", f"npz:{root / f'{kind}.npz'}",
                                 "--out", str(root / "out" / kind)]),
                (f"{kind}:npy", ["run", "attribution", "--model", MODEL, "--data", f"npz:{root / f'{kind}.npy'}",
                                 "--out", str(root / "out" / kind)]),
                (f"{kind}:edf", ["run", "eeg_saliency", "--model", "eeg_compact.synth", "--data",
                                 f"edf:{root / f'{kind}.edf'}", "--out", str(root / "out" / kind)]),
                (f"{kind}:mat", ["run", "eeg_saliency", "--model", "eeg_compact.synth", "--data",
                                 f"edf:{root / f'{kind}.mat'}", "--out", str(root / "out" / kind)]),
                (f"{kind}:zoo_add", ["zoo", "add", BASE, str(root / f"{kind}.safetensors")]),
                (f"{kind}:model_file", ["run", "receptive_field", "--model", f"{root / f'{kind}.py'}:build",
                                     "--out", str(root / "out" / kind)])]
        # a result folder whose files are the special file (planted links are never followed)
        for member in ("result.json", "arrays.npz"):
            d = root / f"res_{kind}_{member.split('.')[0]}"
            d.mkdir()
            if member == "arrays.npz":
                (d / "result.json").write_text(json.dumps(_result_doc()))
            (d / member).symlink_to(src)
            out += [(f"{kind}:report:{member}", ["report", str(d), "-o", str(root / "r.html")]),
                    (f"{kind}:add_artifact:{member}", ["zoo", "add-artifact", str(d)])]
        out.append((f"{kind}:report_dir", ["report", str(src), "-o", str(root / "r.html")]))
    return out


def bombs(root: Path) -> list[tuple[str, list[str]]]:
    """.npz members that claim or inflate to gigabytes, for `report` (arrays.npz) and `--data npz:`."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def npz(name: str, build) -> None:
        p = root / f"{name}.npz"
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
            build(zf)
        files[name] = p

    big = {"descr": "<f8", "fortran_order": False, "shape": (1 << 28,)}  # 2 GiB claimed
    npz("claims_2gb", lambda zf: _npy_member(zf, "x", big, bytes(64)))
    npz("claims_2gb_each_of_3", lambda zf: [_npy_member(zf, k, {**big, "shape": (100_000_000,)}) for k in "xyz"])
    npz("claims_exabytes", lambda zf: _npy_member(zf, "x", {**big, "shape": (1 << 31, 1 << 31, 1 << 31)}))
    npz("deflate_bomb_1_2gb", lambda zf: _zeros_member(zf, "x", 1200 << 20))
    npz("deflate_bombs_3x700mb", lambda zf: [_zeros_member(zf, k, 700 << 20) for k in "xyz"])
    npz("many_members", lambda zf: [zf.writestr(f"m{i}.npy", b"") for i in range(5000)])
    # a member whose zip entry claims far more than deflate can produce from its compressed bytes
    p = root / "lying_size.npz"
    member = io.BytesIO()
    np.save(member, np.zeros(4))
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", member.getvalue())  # no zip64 extra: the 32-bit sizes are the only ones
    raw = bytearray(p.read_bytes())
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size in both headers
        i = raw.find(sig)
        raw[i + off:i + off + 4] = struct.pack("<L", 0xFFFFFFF0)
    p.write_bytes(bytes(raw))
    files["lying_size"] = p
    out = []
    for name, p in files.items():
        d = _result_dir(root, f"res_{name}", _result_doc(arrays=["x"]), npz=p.read_bytes())
        out += [(f"{name}:report", ["report", str(d), "-o", str(root / "r.html")]),
                (f"{name}:add_artifact", ["zoo", "add-artifact", str(d)]),
                (f"{name}:data_npz", ["run", "attribution", "--model", MODEL, "--data", f"npz:{p}",
                                      "--out", str(root / "out" / name)])]
    return out


def _object_npz() -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as zf:
        _npy_member(zf, "x", {"descr": "|O", "fortran_order": False, "shape": (1,)}, pickle.dumps([1]))
    return b.getvalue()


def schema(root: Path) -> list[tuple[str, list[str]]]:
    """result.json / arrays.npz that break the schema; each for `report` and `zoo add-artifact`."""
    root.mkdir(parents=True, exist_ok=True)
    x = {"x": np.zeros((2, 3), np.float32)}
    check = _result_doc()["checks"][0]
    docs: dict[str, tuple] = {
        "metric_string": (_result_doc(metrics={"a": "high"}), x),
        "metric_list": (_result_doc(metrics={"a": [1]}), x),
        "metric_null": (_result_doc(metrics={"a": None}), x),
        "metric_int_overflows_float": (_result_doc(metrics={"a": 10**400}), x),
        "check_value_overflows_float": (_result_doc(checks=[{**check, "value": -(10**400)}]), x),
        "metrics_list": (_result_doc(metrics=[1, 2]), x),
        "checks_dict": (_result_doc(checks={"a": 1}), x),
        "check_not_table": (_result_doc(checks=["c"]), x),
        "check_value_string": (_result_doc(checks=[{**check, "value": "big"}]), x),
        "check_passed_string": (_result_doc(checks=[{**check, "passed": "yes"}]), x),
        "check_message_number": (_result_doc(checks=[{**check, "message": 3}]), x),
        "info_list": (_result_doc(info=[1]), x),
        "config_string": (_result_doc(config="a=1"), x),
        "analyzer_missing": ({k: v for k, v in _result_doc().items() if k != "analyzer"}, x),
        "analyzer_number": (_result_doc(analyzer=7), x),
        "analyzer_path": (_result_doc(analyzer="../../etc"), x),
        "model_number": (_result_doc(model=3), x),
        "format_future": (_result_doc(format=99), x),
        "format_string": (_result_doc(format="1"), x),
        "provenance_unknown_field": (_result_doc(provenance={"evil": 1}), x),
        "provenance_seed_string": (_result_doc(provenance={"seed": "0"}), x),
        "provenance_list": (_result_doc(provenance=[1]), x),
        "arrays_not_list": (_result_doc(arrays="x"), x),
        "array_listed_missing": (_result_doc(arrays=["x", "y"]), x),
        "array_unlisted": (_result_doc(arrays=[]), x),
        "arrays_npz_absent": (_result_doc(), None),
        "top_level_list": ([1, 2], x),
        "wrong_shape_declared": (_result_doc(analyzer="shape_probe"), {"x": np.zeros((2, 3, 4), np.float32)}),
        "named_size_mismatch": (_result_doc(analyzer="shape_probe", arrays=["x", "y"]),
                                {"x": np.zeros((2, 3), np.float32), "y": np.zeros((4,), np.float32)}),
    }
    for field in check:
        docs[f"check_missing_{field}"] = (_result_doc(checks=[{k: v for k, v in check.items() if k != field}]), x)
    out = []
    for name, (doc, arrays) in docs.items():
        d = _result_dir(root, name, doc, arrays)
        out += [(f"{name}:report", ["report", str(d), "-o", str(root / "r.html")]),
                (f"{name}:add_artifact", ["zoo", "add-artifact", str(d)])]
    raw = {"json_deep": b"[" * 200_000 + b"]" * 200_000, "json_invalid": b"{", "json_not_utf8": b'{"a": "\xff"}',
           "json_empty": b"", "json_nan_names": b'{"analyzer": NaN}'}
    npzs = {"npz_object_dtype": _object_npz(), "npz_empty": b"", "npz_truncated": None,
            "npz_not_zip": b"PK\x03\x04junk"}
    for name, body in raw.items():
        d = _result_dir(root, name, body, x)
        out.append((f"{name}:report", ["report", str(d), "-o", str(root / "r.html")]))
    for name, body in npzs.items():
        d = _result_dir(root, name, _result_doc(), x if body is None else None, npz=body)
        if body is None:
            full = (d / "arrays.npz").read_bytes()
            (d / "arrays.npz").write_bytes(full[: len(full) // 2])
        out.append((f"{name}:report", ["report", str(d), "-o", str(root / "r.html")]))
    return out


def safetensors_headers(root: Path) -> list[tuple[str, list[str]]]:
    """Malformed safetensors headers through `zoo add`: each fits under the 1 MB header limit."""
    root.mkdir(parents=True, exist_ok=True)
    data = bytes(8)
    cases = {
        "deep_objects": _st(b'{"a":' * 150_000 + b"1" + b"}" * 150_000),
        "deep_lists": _st(b'{"a":{"dtype":"F32","shape":' + b"[" * 300_000 + b"]" * 300_000 + b"}}"),
        "deep_metadata": _st(b'{"__metadata__":' + b"[" * 300_000 + b"]" * 300_000 + b"}"),
        "shape_int": _st({"w": _entry(shape=2)}, data),
        "shape_string": _st({"w": _entry(shape="2")}, data),
        "shape_negative": _st({"w": _entry(shape=[-2])}, data),
        "shape_float": _st({"w": _entry(shape=[2.0])}, data),
        "shape_bool": _st({"w": _entry(shape=[True, True])}, data),
        "shape_nested": _st({"w": _entry(shape=[[2]])}, data),
        "shape_huge": _st({"w": _entry(shape=[1 << 62, 1 << 62])}, data),
        "dtype_unknown": _st({"w": _entry(dtype="F128")}, data),
        "dtype_number": _st({"w": _entry(dtype=4)}, data),
        "dtype_list": _st({"w": _entry(dtype=["F32"])}, data),
        "offsets_past_end": _st({"w": _entry(data_offsets=[0, 1 << 40])}, data),
        "offsets_reversed": _st({"w": _entry(data_offsets=[8, 0])}, data),
        "offsets_three": _st({"w": _entry(data_offsets=[0, 4, 8])}, data),
        "offsets_strings": _st({"w": _entry(data_offsets=["0", "8"])}, data),
        "offsets_size_mismatch": _st({"w": _entry(shape=[3])}, data),
        "entry_list": _st({"w": [1, 2]}, data),
        "entry_missing_dtype": _st({"w": {"shape": [2], "data_offsets": [0, 8]}}, data),
        "entry_extra_field": _st({"w": _entry(code="x")}, data),
        "metadata_not_strings": _st({"__metadata__": {"a": {"b": 1}}, "w": _entry()}, data),
        "header_list": _st(b"[1, 2]"),
        "header_not_json": _st(b"{not json}"),
        "header_not_utf8": _st(b'{"\xff": 1}'),
        "header_length_2_63": struct.pack("<Q", 1 << 63) + b"{}",
        "pickle_renamed": pickle.dumps({"w": np.zeros(2)}),
        "torch_zip_renamed": b"PK\x03\x04" + bytes(200),
        "png_renamed": b"\x89PNG\r\n\x1a\n" + bytes(100),
        "empty": b"",
        "nine_bytes": b"\x01" + bytes(8),
    }
    out = []
    for name, body in cases.items():
        p = root / f"{name}.safetensors"
        p.write_bytes(body)
        out.append((name, ["zoo", "add", BASE, str(p)]))
    return out


CLASSES = {"special_files": special_files, "bombs": bombs, "schema": schema, "safetensors": safetensors_headers}


# ---- the driver ------------------------------------------------------------------------------------

def _register_probe() -> None:
    """A Result class that declares array shapes, as an analyzer's Result would."""
    from workbench.core.result import Result

    class ShapeProbe(Result):
        array_shapes = {"x": (None, "C"), "y": ("C",)}

    Result.classes.setdefault("shape_probe", ShapeProbe)


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def run_cases(cases: list[tuple[str, list[str]]]) -> dict:
    from workbench.cli import main

    _register_probe()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        main(["zoo", "list"])  # warm-up: imports, card registry
        main(["run", "attribution", "--model", MODEL, "--data", "/nonexistent.png", "--out", os.devnull + "_"])
    soft = _vm_bytes() + AS_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (soft, resource.getrlimit(resource.RLIMIT_AS)[1]))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rows = []
    for name, argv in cases:
        err, out = io.StringIO(), io.StringIO()
        tb = ""
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                rc = main(argv)
        except BaseException as e:  # noqa: BLE001 - exactly what the test must catch
            rc, tb = -1, "".join(traceback.format_exception_only(type(e), e)).strip()[:300]
        rows.append({"case": name, "rc": rc, "stderr": err.getvalue().splitlines(), "traceback": tb})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"cases": rows, "rss_growth": peak - base}


if __name__ == "__main__":
    cls, root, out_path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    Path(out_path).write_text(json.dumps(run_cases(CLASSES[cls](root))))
