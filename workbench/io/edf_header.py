"""Pre-parse an EDF/BDF header ourselves before any library sees the file (shared/RELIABILITY.md 2.3).

The header is fixed-width ASCII: 256 bytes of global fields, then 256 bytes per signal laid out
field by field (all labels, then all transducers, ...). Every field a reader would trust is checked
against the limits in :mod:`workbench.io.limits`; a violation raises :class:`EegFileError` naming
the field, its value and the limit.
"""

from __future__ import annotations

import warnings

from workbench.core.errors import DataError
from workbench.io import limits

# per-signal field widths, in header order
_FIELDS = (("label", 16), ("transducer", 80), ("dimension", 8), ("phys_min", 8), ("phys_max", 8),
           ("dig_min", 8), ("dig_max", 8), ("prefilter", 80), ("samples", 8), ("reserved", 32))


class EegFileError(DataError):
    """A recording that cannot be used. ``reason`` is a stable key: truncated, wrong_fields,
    zero_channels, sampling_rate, missing_channels, header, format, too_short, not_finite, labels."""

    code = "bad_eeg_file"

    def __init__(self, reason: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.reason = reason


def _ascii(raw: bytes, what: str, name: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise EegFileError("header", f"{name}: header field {what} is not ASCII",
                           "the file is not a valid EDF/BDF recording") from None


def _number(raw: bytes, what: str, name: str, kind=int):
    text = _ascii(raw, what, name).strip()
    try:
        return kind(text)
    except ValueError:
        raise EegFileError("header", f"{name}: header field {what}={text!r} is not a number",
                           "the file is not a valid EDF/BDF recording") from None


def _global(head: bytes, name: str) -> dict:
    bdf = head[:1] == b"\xff"
    version = head[1:8] if bdf else head[:8]
    if bdf and version != b"BIOSEMI":
        raise EegFileError("format", f"{name}: BDF version field is {version!r}, expected b'BIOSEMI'")
    if not bdf and not _ascii(version, "version", name).strip().isdigit():
        raise EegFileError("format", f"{name}: not an EDF file (version field {version[:8]!r})",
                           "give an EDF, BDF, FIF or .mat file")
    ns = _number(head[252:256], "number of signals", name)
    if ns < 1:
        raise EegFileError("zero_channels", f"{name}: the header declares {ns} signals",
                           "the recording holds no channel")
    if ns > limits.MAX_EEG_CHANNELS:
        raise EegFileError("header", f"{name}: {ns} signals, over the limit of {limits.MAX_EEG_CHANNELS}")
    return {"bdf": bdf, "ns": ns, "header_bytes": _number(head[184:192], "header bytes", name),
            "n_records": _number(head[236:244], "number of data records", name),
            "duration": _number(head[244:252], "record duration", name, float)}


def _signals(block: bytes, ns: int, name: str) -> dict:
    out, pos = {}, 0
    for field, width in _FIELDS:
        vals = [block[pos + i * width: pos + (i + 1) * width] for i in range(ns)]
        pos += ns * width
        if field in ("phys_min", "phys_max"):
            out[field] = [_number(v, field, name, float) for v in vals]
        elif field in ("dig_min", "dig_max", "samples"):
            out[field] = [_number(v, field, name) for v in vals]
        elif field == "label":
            out[field] = [_ascii(v, "label", name).strip() for v in vals]
    return out


def _check_signals(sig: dict, name: str) -> None:
    for i, label in enumerate(sig["label"]):
        n = sig["samples"][i]
        if not 1 <= n <= limits.MAX_EEG_SAMPLES_PER_RECORD:
            raise EegFileError("header", f"{name}: signal {label!r} has {n} samples per record "
                                         f"(allowed 1..{limits.MAX_EEG_SAMPLES_PER_RECORD})")
        if sig["phys_min"][i] == sig["phys_max"][i]:
            raise EegFileError("header", f"{name}: signal {label!r} has physical min = max "
                                         f"({sig['phys_min'][i]}), so it cannot be scaled")
        if sig["dig_min"][i] >= sig["dig_max"][i]:
            raise EegFileError("header", f"{name}: signal {label!r} has digital min {sig['dig_min'][i]} "
                                         f">= max {sig['dig_max'][i]}")


def check_edf_header(data: bytes, file_size: int, name: str) -> dict:
    """Validate the header bytes of an EDF/BDF file of ``file_size`` bytes.

    ``data``: at least the first 256 * (1 + channels) bytes (more is fine). Returns a dict with
    bdf (bool), ns, n_records, duration (s), labels, samples per record, record_bytes.
    Raises EegFileError (reasons: format, header, zero_channels, truncated) or InputTooLargeError.
    """
    from workbench.core.errors import InputTooLargeError

    if len(data) < 256:
        raise EegFileError("truncated", f"{name}: {len(data)} bytes, shorter than the 256-byte EDF header")
    g = _global(data[:256], name)
    ns = g["ns"]
    if g["header_bytes"] != 256 * (1 + ns):
        raise EegFileError("header", f"{name}: header size field says {g['header_bytes']} bytes, "
                                     f"{256 * (1 + ns)} expected for {ns} signals")
    if len(data) < g["header_bytes"]:
        raise EegFileError("truncated", f"{name}: the file ends inside its header "
                                        f"({len(data)} of {g['header_bytes']} bytes)")
    if not 0 < g["duration"] <= limits.MAX_EEG_RECORD_SECONDS:
        raise EegFileError("header", f"{name}: record duration {g['duration']} s is outside "
                                     f"(0, {limits.MAX_EEG_RECORD_SECONDS:g}] s")
    sig = _signals(data[256:g["header_bytes"]], ns, name)
    _check_signals(sig, name)
    record_bytes = sum(sig["samples"]) * (3 if g["bdf"] else 2)
    body = file_size - g["header_bytes"]
    n_records = g["n_records"]
    if n_records < 1:
        raise EegFileError("header", f"{name}: the header declares {n_records} data records",
                           "the file was not closed properly by its writer; re-export it")
    if body < n_records * record_bytes:
        missing = n_records * record_bytes - body
        raise EegFileError("truncated", f"{name}: {missing} bytes of data are missing "
                                        f"({n_records} records of {record_bytes} bytes declared)",
                           "the file is truncated: copy or export it again")
    if body - n_records * record_bytes >= record_bytes:
        raise EegFileError("header", f"{name}: {body - n_records * record_bytes} bytes follow the "
                                     f"{n_records} declared records", "the record count is wrong")
    if body > n_records * record_bytes:
        warnings.warn(f"{name}: {body - n_records * record_bytes} trailing bytes ignored", stacklevel=3)
    seconds = n_records * g["duration"]
    if seconds > limits.MAX_EEG_SECONDS:
        raise InputTooLargeError(f"{name}: {seconds / 3600:.1f} h of recording, over the "
                                 f"{limits.MAX_EEG_SECONDS / 3600:g} h limit", "cut the recording first")
    if n_records * sum(sig["samples"]) * 4 > limits.MAX_EEG_DECODED_BYTES:
        raise InputTooLargeError(f"{name}: decodes to more than {limits.MAX_EEG_DECODED_BYTES >> 20} MB",
                                 "cut the recording or drop channels first")
    return {**g, "labels": sig["label"], "samples": sig["samples"], "record_bytes": record_bytes}
