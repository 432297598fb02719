"""EEG data in: the seeded synthetic set, and the .mat / EDF / BDF / FIF loaders on small files written
here, valid and broken (truncated, wrong fields, zero channels, wrong sampling rate, ...)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.io

from workbench.core.errors import DataError, InputTooLargeError
from workbench.data import dataset_arrays, get_samples
from workbench.data import eeg_synth as es
from workbench.io import limits
from workbench.io.eeg import DOCUMENTED_COUNTS, EegFileError, load_eeg_file, save_upload

RNG = np.random.default_rng(0)


# ---- the synthetic set -------------------------------------------------------------------------

def test_generator_is_deterministic_for_a_seed_and_changes_with_it():
    a, b = es.generate.__wrapped__(7), es.generate.__wrapped__(7)
    for k in ("x", "y", "subject", "mask"):
        assert np.array_equal(a[k], b[k])
    c = es.generate.__wrapped__(8)
    assert not np.allclose(a["x"], c["x"])
    assert es.generate() is es.generate()  # cached


def test_generator_layout_and_planted_truth():
    d = es.generate()
    n = sum(es.WINDOWS_PER_SUBJECT)
    assert d["x"].shape == (n, 30, 384) and d["x"].dtype == np.float32 and es.SFREQ == 128.0
    assert len(es.CHANNELS) == 30 and es.CHANNELS[28] == "Oz" and es.CHANNELS[0] == "Fp1"
    assert len(np.unique(d["subject"])) >= 11
    for s in np.unique(d["subject"]):  # every subject balanced between the classes
        assert d["y"][d["subject"] == s].mean() == 0.5
    assert not d["mask"][d["y"] == 0].any() and d["mask"][d["y"] == 1].any((1, 2)).all()
    assert set(np.flatnonzero(d["mask"].any((0, 2)))) == set(np.flatnonzero(es.posterior_mask()))
    assert es.POSTERIOR == ("T5", "P3", "Pz", "P4", "T6", "O1", "Oz", "O2")
    runs = []  # burst segments last 0.5-2 s (the envelope > 0.2 part of a Hann window is ~70 % of it)
    for tm in d["time_mask"][d["y"] == 1][:100]:
        edges = np.diff(np.concatenate([[0], tm.astype(int), [0]]))
        runs += (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()
    assert 0.25 * 128 <= np.median(runs) <= 2.0 * 128
    assert 0.3 < d["time_mask"][d["y"] == 1].mean() < 0.5  # chance level of the mass-in-bursts metric


def test_background_is_one_over_f_and_drowsy_windows_carry_posterior_alpha():
    d = es.generate()
    f = np.fft.rfftfreq(384, 1 / 128)
    power = (np.abs(np.fft.rfft(d["x"], axis=-1)) ** 2)
    band = (f >= 2) & (f <= 40)
    slope = np.polyfit(np.log(f[band]), np.log(power[d["y"] == 0].mean((0, 1))[band]), 1)[0]
    assert -1.4 < slope < -0.6
    alpha = (f >= 8) & (f <= 12)
    occ = [es.CHANNELS.index(c) for c in ("O1", "Oz", "O2")]
    front = [es.CHANNELS.index(c) for c in ("Fp1", "Fp2", "Fz")]
    ratio_post = power[d["y"] == 1][:, occ][..., alpha].mean() / power[d["y"] == 0][:, occ][..., alpha].mean()
    ratio_front = power[d["y"] == 1][:, front][..., alpha].mean() / power[d["y"] == 0][:, front][..., alpha].mean()
    assert ratio_post > 2.0 and ratio_front < 1.2


def test_data_ids_and_arrays():
    default = get_samples("eeg_synth.drowsy")
    assert len(default) == 96 and {s.meta["subject"] for s in default} == {9, 10, 11}
    s = default[0]
    assert s.kind == "signal" and s.array.shape == (30, 384) and s.meta["mask"].shape == (30, 384)
    assert len(get_samples("eeg_synth.drowsy:subject:3")) == es.WINDOWS_PER_SUBJECT[2]
    assert [x.id for x in get_samples("eeg_synth.drowsy:5,7")] == ["eeg_synth.drowsy:5", "eeg_synth.drowsy:7"]
    x, y = dataset_arrays("eeg_synth.drowsy", "train")
    assert x.shape[0] == sum(es.WINDOWS_PER_SUBJECT[:8]) and set(y.tolist()) == {0, 1}
    full = es.eeg_arrays("test")
    assert set(full["subject"].tolist()) == {9, 10, 11} and full["mask"].shape[1:] == (30, 384)
    for bad in ("eeg_synth.drowsy:subject:12", "eeg_synth.drowsy:99999", "eeg_synth.drowsy:abc"):
        with pytest.raises(DataError):
            get_samples(bad)


# ---- .mat -----------------------------------------------------------------------------------------

def _mat(path, n=6, channels=30, t=384, fields=None, **override):
    d = {"EEGsample": RNG.standard_normal((n, channels, t)) * 10,
         "substate": (np.arange(n) % 2)[:, None], "subindex": (1 + np.arange(n) // 3)[:, None]}
    d.update(override)
    for f in fields or ():
        d.pop(f)
    scipy.io.savemat(str(path), d)
    return path


def test_valid_mat_loads_windows_labels_and_subjects(tmp_path):
    p = _mat(tmp_path / "dataset.mat")
    out = get_samples(str(p))
    assert len(out) == 6 and out[1].label == 1 and out[1].label_name == "drowsy"
    assert out[0].array.shape == (30, 384) and out[0].array.dtype == np.float32
    assert [s.meta["subject"] for s in out] == [1, 1, 1, 2, 2, 2]
    raw = scipy.io.loadmat(str(p))["EEGsample"]
    assert np.allclose(out[4].array, raw[4], atol=1e-4)


@pytest.mark.parametrize("kwargs, reason, word", [
    ({"fields": ["subindex"]}, "wrong_fields", "subindex"),
    ({"fields": ["EEGsample"]}, "wrong_fields", "EEGsample"),
    ({"channels": 0}, "zero_channels", "no channel"),
    ({"channels": 29}, "wrong_fields", "29 channels"),
    ({"t": 768}, "sampling_rate", "768 samples"),
    ({"substate": np.full((6, 1), 2)}, "labels", "allowed"),
    ({"subindex": np.zeros((6, 1))}, "labels", "from 1"),
    ({"substate": np.zeros((5, 1))}, "wrong_fields", "5 entries"),
])
def test_broken_mat_files_give_one_line_typed_errors(tmp_path, kwargs, reason, word):
    p = _mat(tmp_path / "bad.mat", **kwargs)
    with pytest.raises(EegFileError) as e:
        load_eeg_file(p)
    assert e.value.reason == reason and word in str(e.value)
    assert isinstance(e.value, DataError) and "\n" not in e.value.one_line()


def test_truncated_and_foreign_mat_files(tmp_path):
    good = _mat(tmp_path / "good.mat").read_bytes()
    for cut in (len(good) // 2, len(good) - 100, 150):
        (tmp_path / "cut.mat").write_bytes(good[:cut])
        with pytest.raises(EegFileError) as e:
            load_eeg_file(tmp_path / "cut.mat")
        assert e.value.reason in ("truncated", "wrong_fields")
    (tmp_path / "h5.mat").write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + b" " * 200)
    with pytest.raises(EegFileError, match="v7.3"):
        load_eeg_file(tmp_path / "h5.mat")
    (tmp_path / "text.mat").write_bytes(b"hello" * 100)
    with pytest.raises(EegFileError, match="not a MATLAB"):
        load_eeg_file(tmp_path / "text.mat")
    (tmp_path / "empty.mat").write_bytes(b"")
    with pytest.raises(EegFileError, match="empty"):
        load_eeg_file(tmp_path / "empty.mat")


def test_documented_per_subject_counts_are_compared(tmp_path):
    n = sum(DOCUMENTED_COUNTS)
    subj = np.repeat(np.arange(1, 12), DOCUMENTED_COUNTS)
    zeros = np.zeros((n, 30, 384), np.int8)  # compressed: a few hundred kB on disk
    scipy.io.savemat(str(tmp_path / "ok.mat"), {"EEGsample": zeros, "substate": (np.arange(n) % 2)[:, None],
                                                "subindex": subj[:, None]}, do_compression=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = load_eeg_file(tmp_path / "ok.mat")
    assert len(out) == n and out[0].meta["documented_counts"]
    swapped = subj.copy()
    swapped[:10] = 2
    scipy.io.savemat(str(tmp_path / "off.mat"), {"EEGsample": zeros, "substate": (np.arange(n) % 2)[:, None],
                                                 "subindex": swapped[:, None]}, do_compression=True)
    with pytest.warns(UserWarning, match="documented"):
        out = load_eeg_file(tmp_path / "off.mat")
    assert not out[0].meta["documented_counts"]


# ---- EDF / BDF / FIF ------------------------------------------------------------------------------

def _raw(names=es.CHANNELS, seconds=10, sfreq=128.0):
    import mne

    data = RNG.standard_normal((len(names), int(seconds * sfreq))) * 20e-6
    return mne.io.RawArray(data, mne.create_info(list(names), sfreq, "eeg"), verbose=False)


def _export(raw, path):
    import mne

    if str(path).endswith(".fif"):
        raw.save(str(path), overwrite=True, verbose=False)
    else:
        mne.export.export_raw(str(path), raw, overwrite=True, verbose=False)
    return path


@pytest.mark.parametrize("ext", ["edf", "bdf", "fif"])
def test_valid_recordings_are_windowed_in_microvolts(tmp_path, ext):
    raw = _raw(seconds=10)
    p = _export(raw, tmp_path / f"rec_raw.{ext}" if ext == "fif" else tmp_path / f"rec.{ext}")
    out = get_samples(str(p))
    assert len(out) == 3 and out[0].array.shape == (30, 384) and out[0].label is None
    expect = raw.get_data()[:, 384:768] * 1e6
    tol = 1e-3 if ext == "fif" else 0.05  # EDF stores 16-bit, BDF 24-bit integers
    assert np.abs(out[1].array - expect).max() < tol * np.abs(expect).max() + 1e-3


def test_channel_names_are_matched_case_insensitively_with_a_warning(tmp_path):
    names = [c.upper() if i % 2 else c for i, c in enumerate(es.CHANNELS)]
    names = ["T7" if c == "T3" else "P8" if c == "T6" else c for c in names] + ["EKG", "EMG1"]
    p = _export(_raw(names, seconds=6), tmp_path / "upper.edf")
    with pytest.warns(UserWarning, match="loosely") as rec:
        out = load_eeg_file(p)
    assert len(out) == 2 and "T7->T3" in str(rec[0].message) and "FP2->Fp2" in str(rec[0].message)
    assert out[0].meta["recording_channels"][12] == "T7"


def _patch(data: bytes, start: int, text: str) -> bytes:
    return data[:start] + text.encode().ljust(len(text)) + data[start + len(text):]


def test_broken_edf_files_give_one_line_typed_errors(tmp_path):
    good = _export(_raw(seconds=6), tmp_path / "good.edf").read_bytes()
    cases = {
        "truncated": good[: len(good) - 1000],
        "zero_channels": _patch(good, 252, "0   "),
        "header": _patch(good, 236, "-1      "),
        "format": b"\x00garbage" * 64,
    }
    for reason, data in cases.items():
        (tmp_path / "bad.edf").write_bytes(data)
        with pytest.raises(EegFileError) as e:
            load_eeg_file(tmp_path / "bad.edf")
        assert e.value.reason == reason, (reason, str(e.value))
        assert "\n" not in e.value.one_line()
    ns = int(good[252:256])  # physical min = max on the first signal: scaling would divide by zero
    pmin, pmax = 256 + ns * 104, 256 + ns * 112
    same = good[:pmax] + good[pmin:pmin + 8] + good[pmax + 8:]
    (tmp_path / "flat.edf").write_bytes(same)
    with pytest.raises(EegFileError, match="physical min = max"):
        load_eeg_file(tmp_path / "flat.edf")
    (tmp_path / "tiny.edf").write_bytes(good[:100])
    with pytest.raises(EegFileError) as e:
        load_eeg_file(tmp_path / "tiny.edf")
    assert e.value.reason == "truncated"


def test_wrong_rate_missing_channels_short_and_mislabelled_recordings(tmp_path):
    with pytest.raises(EegFileError) as e:
        load_eeg_file(_export(_raw(seconds=6, sfreq=256.0), tmp_path / "fast.edf"))
    assert e.value.reason == "sampling_rate" and "256 Hz" in str(e.value) and "resample" in e.value.hint
    with pytest.raises(EegFileError) as e:
        load_eeg_file(_export(_raw(es.CHANNELS[:-2], seconds=6), tmp_path / "few.edf"))
    assert e.value.reason == "missing_channels" and "Oz, O2" in str(e.value)
    with pytest.raises(EegFileError) as e:
        load_eeg_file(_export(_raw(seconds=2), tmp_path / "short.bdf"))
    assert e.value.reason == "too_short"
    bdf = _export(_raw(seconds=6), tmp_path / "real.bdf")
    (tmp_path / "real.edf").write_bytes(bdf.read_bytes())
    with pytest.raises(EegFileError, match="extension"):
        load_eeg_file(tmp_path / "real.edf")


def test_broken_fif_and_size_limits(tmp_path, monkeypatch):
    good = _export(_raw(seconds=6), tmp_path / "rec_raw.fif").read_bytes()
    (tmp_path / "cut_raw.fif").write_bytes(good[: len(good) // 2])
    with pytest.raises(EegFileError) as e:
        load_eeg_file(tmp_path / "cut_raw.fif")
    assert e.value.reason == "truncated" and "\n" not in e.value.one_line()
    (tmp_path / "fake.fif").write_bytes(b"not a fif file at all")
    with pytest.raises(EegFileError, match="not a FIF"):
        load_eeg_file(tmp_path / "fake.fif")
    monkeypatch.setattr(limits, "MAX_EEG_BYTES", 1000)
    with pytest.raises(InputTooLargeError):
        load_eeg_file(tmp_path / "rec_raw.fif")
    with pytest.raises(InputTooLargeError):
        save_upload(b"x" * 2000, "big.edf")


def test_uploads_are_kept_as_files_and_routed_by_extension(tmp_path):
    data = _export(_raw(seconds=3), tmp_path / "up.edf").read_bytes()
    path = save_upload(data, "my recording.edf")
    assert path.endswith(".edf") and len(get_samples(path)) == 1
    with pytest.raises(EegFileError, match="not an EEG format"):
        save_upload(data, "notes.txt")
    with pytest.raises(EegFileError, match="not an EEG format"):
        load_eeg_file(tmp_path / "x.csv")
