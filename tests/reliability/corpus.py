"""Deterministic malformed-input corpus for every loader (RELIABILITY.md plan item 1).

``python -m tests.reliability.corpus DIR`` writes it to disk; the tests build it in memory.
Each loader gets 200 files: 20 truncations, 50 bit-flip sets, 50 header-field mutations,
20 oversize claims, 20 wrong-format-right-extension, 10 polyglots, 10 empty or near-empty and
20 valid controls. Every case is (name, bytes, is_valid_control).
"""

from __future__ import annotations

import io
import json
import random
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

SEED = 20261122
Case = tuple[str, bytes, bool]


def _png(w: int, h: int, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(w: int, h: int, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_ihdr(w: int, h: int, depth: int = 8, color: int = 2, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + _chunk(b"IEND", b"")


def _other_formats() -> list[bytes]:
    """Real files of formats the loaders must not accept (GIF, BMP, TIFF, ICO, WebP, PDF, zip...)."""
    from PIL import Image

    out = []
    img = Image.new("RGB", (8, 8), (10, 200, 30))
    for fmt in ("GIF", "BMP", "TIFF", "ICO", "WEBP", "PPM", "PCX", "TGA"):  # PDF/EPS embed dates
        buf = io.BytesIO()
        try:
            img.save(buf, fmt)
        except (OSError, KeyError, ValueError):
            continue
        out.append(buf.getvalue())
    out += [b"PK\x03\x04" + bytes(60), b"%PDF-1.4\n%%EOF", b"SIMPLE  =                    T" + bytes(2850),
            b"8BPS\x00\x01" + bytes(60), b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
            b"\x7fELF" + bytes(60), b"#!/bin/sh\nrm -rf /\n", json.dumps({"a": 1}).encode()]
    return out


def _flip(data: bytes, rng: random.Random, lo: int, hi: int, n: int) -> bytes:
    """Flip ``n`` distinct bits in data[lo:hi] (distinct, so that no two flips cancel out)."""
    b = bytearray(data)
    hi = min(hi, len(b))
    for pos in rng.sample(range(lo * 8, hi * 8), min(n, (hi - lo) * 8)):
        b[pos // 8] ^= 1 << (pos % 8)
    return bytes(b)


def _common(valid: list[bytes], rng: random.Random, flip_range, header_mutants, oversize, wrong, polyglots):
    """Assemble the 200 cases from loader-specific pieces."""
    base = valid[0]
    cases: list[Case] = [(f"valid_{i:02d}", v, True) for i, v in enumerate(valid[:20])]
    for i in range(20):
        cut = max(1, int(len(base) * (i + 1) / 22))
        cases.append((f"truncated_{i:02d}", base[:cut], False))
    lo, hi = flip_range(base)
    for i in range(50):
        cases.append((f"bitflip_{i:02d}", _flip(base, rng, lo, hi, 1 + i % 8), False))
    cases += [(f"header_{i:02d}", m, False) for i, m in enumerate(header_mutants[:50])]
    cases += [(f"oversize_{i:02d}", m, False) for i, m in enumerate(oversize[:20])]
    cases += [(f"wrongformat_{i:02d}", wrong[i % len(wrong)] + bytes([i]), False) for i in range(20)]
    cases += [(f"polyglot_{i:02d}", m, False) for i, m in enumerate(polyglots[:10])]
    empties = [b"", b"\0", b"\n", b" " * 8, b"\0" * 8, base[:1], base[:4], base[:8], b"\xff" * 16, b"{}"]
    cases += [(f"empty_{i:02d}", m, False) for i, m in enumerate(empties)]
    assert len(cases) == 200, len(cases)
    return cases


# ---- images ------------------------------------------------------------------------------------

def image_corpus() -> list[Case]:
    rng = random.Random(SEED)
    valid = [_png(8 + i, 6 + i, i) for i in range(10)] + [_jpeg(8 + i, 8, i) for i in range(10)]

    def png_flip_range(b):  # CRC-protected region: every flip must be detected
        return 8, len(b)

    header = []
    for i in range(50):
        w, h = [(0, 5), (5, 0), (2**31 - 1, 5), (5, 2**31 - 1), (4097, 1), (1, 4097), (20000, 20000),
                (5000, 3), (70000, 70000), (4096, 4096 + i)][i % 10]
        depth, color = [(8, 2), (16, 2), (3, 2), (8, 5), (8, 9), (1, 6), (8, 2), (7, 0), (8, 3), (8, 2)][i // 5]
        m = _png_with_ihdr(w, h, depth, color)
        if i % 3 == 2:  # a header whose CRC no longer matches
            m = m[:29] + bytes([m[29] ^ 0xFF]) + m[30:]
        header.append(m)
    oversize = [_png_with_ihdr(20000 + i, 20000, 8, 2) for i in range(10)]
    oversize += [_png_with_ihdr(8, 8, 8, 2, _chunk(b"zTXt", b"k\0\0" + zlib.compress(b"A" * (60 << 20), 9)))]
    oversize += [b"\xff\xd8\xff\xc0\x00\x11\x08" + struct.pack(">HH", 65000, 65000) + b"\x03" + bytes(9)
                 for _ in range(4)]
    oversize += [valid[0] + bytes(21 * 1024 * 1024)] * 5
    polyglots = [valid[0] + b"PK\x03\x04" + bytes(30), b"GIF89a" + valid[0], b"%PDF-1.4" + valid[0],
                 valid[10][:20] + valid[0], b"<html><script>alert(1)</script>" + valid[0]]
    polyglots += [b"\x89PNG\r\n\x1a\n" + b"<script>" * (i + 1) for i in range(5)]
    return _common(valid, rng, png_flip_range, header, oversize, _other_formats(), polyglots)


# ---- safetensors ---------------------------------------------------------------------------------

def reference_state_dict():
    import torch

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                            torch.nn.Linear(4, 2))
    return m.state_dict()


def _st(header: dict, payload: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + payload


def safetensors_corpus() -> list[Case]:
    import torch
    from safetensors.torch import save

    rng = random.Random(SEED + 1)
    ref = reference_state_dict()
    valid = []
    for i in range(20):
        g = torch.Generator().manual_seed(i)
        dtype = (torch.float32, torch.float16, torch.bfloat16)[i % 3]
        valid.append(save({k: (torch.randn(v.shape, generator=g).to(dtype) if v.is_floating_point() else v)
                           for k, v in ref.items()}))
    base = valid[0]
    n = struct.unpack("<Q", base[:8])[0]
    header = json.loads(base[8:8 + n])
    payload = base[8 + n:]

    def header_range(b):  # flips in the header: the tensor bytes themselves may hold any float
        return 8, 8 + n

    mutants = []
    keys = [k for k in header if k != "__metadata__"]
    for i in range(50):
        h = json.loads(json.dumps(header))
        k = keys[i % len(keys)]
        kind = i // len(keys) % 6 if len(keys) else 0
        if kind == 0:
            h[k]["shape"] = [s + 1 for s in h[k]["shape"]] or [2]
        elif kind == 1:
            h[k]["dtype"] = ["I64", "F64", "U8", "BOOL", "I32", "X99"][i % 6]
        elif kind == 2:
            h[k]["data_offsets"] = [h[k]["data_offsets"][0], h[k]["data_offsets"][1] + 4096 * (i + 1)]
        elif kind == 3:
            h[k + "_extra"] = h.pop(k)
        elif kind == 4:
            h.pop(k)
        else:
            h[k]["data_offsets"] = [-1, 4]
        mutants.append(_st(h, payload))
    oversize = [struct.pack("<Q", (100 << 20) + i) + b"{" for i in range(5)]
    oversize += [struct.pack("<Q", 2**63 + i) + b"{}" for i in range(5)]
    many = {f"t{j}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * j, 4 * j + 4]} for j in range(100_000)}
    oversize += [_st(many, bytes(400_000))] * 2
    oversize += [struct.pack("<Q", len(base) + i) + base[8:] for i in range(8)]
    polyglots = [b"\x80\x04\x95" + base, base + b"PK\x03\x04", _png(4, 4, 0) + base,
                 b"PK\x03\x04" + base] + [struct.pack("<Q", 2) + b"[]" + payload] * 3 + \
                [struct.pack("<Q", 4) + b'"ab"'] * 3
    wrong = _other_formats() + [pickle_bytes({"a": 1})]
    return _common(valid, rng, header_range, mutants, oversize, wrong, polyglots)


def pickle_bytes(obj) -> bytes:
    import pickle

    return pickle.dumps(obj)


# ---- zoo checkpoints (torch.save zip files) ------------------------------------------------------

def checkpoint_corpus() -> list[Case]:
    import torch

    rng = random.Random(SEED + 2)
    ref = reference_state_dict()
    valid = []
    for i in range(20):
        buf = io.BytesIO()
        torch.save({k: v + i for k, v in ref.items()}, buf)
        valid.append(buf.getvalue())
    base = valid[0]
    mutants = []
    for i in range(50):  # zip structure fields: local header sizes, central directory offsets, names
        b = bytearray(base)
        pos = [m for m in range(len(b) - 4) if b[m:m + 4] in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06")]
        p = pos[i % len(pos)]
        off = [18, 22, 26, 28, 16, 10, 42, 30, 12, 20][i // len(pos) % 10 if len(pos) else 0]
        b[p + off:p + off + 4] = struct.pack("<I", rng.randrange(2**32))
        mutants.append(bytes(b))
    oversize = [base[:-22] + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 65535, 65535, 2**32 - 1, 2**31, 0)
                for _ in range(20)]
    polyglots = [_png(4, 4, i) + base for i in range(5)] + [base + _png(4, 4, i) for i in range(5)]
    return _common(valid, rng, lambda b: (0, len(b)), mutants, oversize, _other_formats(), polyglots)


CORPORA = {"image": image_corpus, "safetensors": safetensors_corpus, "checkpoint": checkpoint_corpus}


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "artifacts/corpus")
    for loader, make in CORPORA.items():
        d = out / loader
        d.mkdir(parents=True, exist_ok=True)
        for name, data, _ in make():
            (d / name).write_bytes(data)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


# ---- EDF recordings --------------------------------------------------------------------------------

def _edf(seed: int, seconds: int = 6) -> bytes:
    import tempfile

    import mne

    from workbench.data.eeg_synth import CHANNELS

    rng = np.random.default_rng(seed)
    raw = mne.io.RawArray(rng.standard_normal((len(CHANNELS), seconds * 128)) * 20e-6,
                          mne.create_info(list(CHANNELS), 128.0, "eeg"), verbose=False)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.edf"
        mne.export.export_raw(str(p), raw, overwrite=True, verbose=False)
        return p.read_bytes()


def _field(data: bytes, start: int, width: int, text: str) -> bytes:
    return data[:start] + text.encode("latin-1")[:width].ljust(width) + data[start + width:]


def edf_corpus() -> list[Case]:
    rng = random.Random(SEED + 3)
    valid = [_edf(i, 6 + i % 3) for i in range(20)]
    base = valid[0]
    ns = int(base[252:256])
    sig = 256  # per-signal fields start here; each field holds ns entries
    offsets = {"phys_min": sig + ns * 104, "phys_max": sig + ns * 112, "dig_min": sig + ns * 120,
               "dig_max": sig + ns * 128, "samples": sig + ns * 216}
    structural = [(236, 8), (244, 8), (252, 4), (184, 8), (offsets["samples"], 8)]

    def flip_range(b):  # structural numeric fields only: EDF has no checksum, other flips can be valid data
        start, width = structural[rng.randrange(len(structural))]
        return start, start + width

    bad_values = [(236, 8, v) for v in ("-1", "0", "99999999", "abc", "1e9")] + \
                 [(244, 8, v) for v in ("0", "-1", "xyz", "61", "1e-9")] + \
                 [(252, 4, v) for v in ("0", "257", "9999", "-3", "x")] + \
                 [(184, 8, v) for v in ("0", "256", "99999999", "foo", "-256")] + \
                 [(0, 8, v) for v in ("X", "v0", "\xff\xfe", "abc", "-")] + \
                 [(offsets["phys_min"], 8, "abc"), (offsets["phys_max"], 8, "--1")] + \
                 [(offsets["dig_min"], 8, "40000"), (offsets["dig_max"], 8, "-40000")] + \
                 [(offsets["samples"], 8, v) for v in ("0", "-5", "99999999", "abc", "1")]
    header = [_field(base, s, w, v) for s, w, v in bad_values]
    header += [_field(_field(base, offsets["phys_min"], 8, "5"), offsets["phys_max"], 8, "5")]
    header += [_field(_field(base, offsets["dig_min"], 8, "7"), offsets["dig_max"], 8, "7")]
    header += [_field(base, 236, 8, str(int(base[236:244]) + d)) for d in (1, -1, 2, 10, 1000, -2)]
    header += [base[:256 * (1 + ns)] + base[256 * (1 + ns): -(1 + i) * 128] for i in range(8)]
    header = header[:50]
    oversize = [_field(base, 236, 8, "99999999")] * 5 + [_field(base, 252, 4, "9999")] * 5 + \
               [_field(_field(base, 236, 8, "4000000"), 244, 8, "60")] * 5 + [base + bytes(10 << 20)] * 5
    polyglots = [_png(4, 4, i) + base for i in range(5)] + [b"PK\x03\x04" + base[4:] for _ in range(5)]
    return _common(valid, rng, flip_range, header, oversize, _other_formats(), polyglots)


CORPORA["edf"] = edf_corpus


# ---- the published EEG .mat format ------------------------------------------------------------

def _mat_bytes(seed: int, n: int = 6, channels: int = 30, t: int = 384, drop=(), **override) -> bytes:
    import scipy.io

    rng = np.random.default_rng(seed)
    d = {"EEGsample": rng.standard_normal((n, channels, t)) * 10, "substate": (np.arange(n) % 2)[:, None],
         "subindex": (1 + np.arange(n) // 3)[:, None]}
    d.update(override)
    for f in drop:
        d.pop(f)
    buf = io.BytesIO()
    scipy.io.savemat(buf, d)
    return buf.getvalue()


def mat_corpus() -> list[Case]:
    rng = random.Random(SEED + 4)
    valid = [_mat_bytes(i, n=4 + i % 5) for i in range(20)]
    n = 6
    semantic = [dict(drop=("subindex",)), dict(drop=("EEGsample",)), dict(drop=("substate",)),
                dict(drop=("substate", "subindex")), dict(channels=0), dict(channels=29), dict(channels=31),
                dict(t=768), dict(t=383), dict(t=0), dict(n=0),
                dict(substate=np.full((n, 1), 2)), dict(substate=np.full((n, 1), -1)),
                dict(subindex=np.zeros((n, 1))), dict(subindex=np.full((n, 1), -4)),
                dict(substate=np.zeros((n - 1, 1))), dict(subindex=np.ones((n + 2, 1))),
                dict(substate=np.array([["a"]] * n)), dict(EEGsample=np.zeros((n, 30))),
                dict(EEGsample=np.zeros((n, 30, 384, 2))), dict(EEGsample=np.full((n, 30, 384), np.nan)),
                dict(EEGsample=np.full((n, 30, 384), np.inf)), dict(EEGsample="text"),
                dict(substate=np.full((n, 1), 0.5)), dict(subindex=np.full((n, 1), 1.5))]
    header = [_mat_bytes(i, **kw) for i, kw in enumerate(semantic * 2)][:50]

    def flip_range(b):  # the endian indicator (bytes 126-127): the only bytes the format checks itself
        return 126, 128

    oversize = []
    for i in range(20):  # the first element's byte count claims far more data than the file holds
        b = bytearray(valid[i % 20])
        b[132:136] = struct.pack("<I", 2**31 - 1 - i)
        oversize.append(bytes(b))
    polyglots = [_png(4, 4, i) + valid[0] for i in range(5)] + [b"PK\x03\x04" + valid[0][4:] for _ in range(5)]
    return _common(valid, rng, flip_range, header, oversize, _other_formats(), polyglots)


CORPORA["mat"] = mat_corpus
