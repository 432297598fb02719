"""The user's own data sets through the one registry and the io limits: image folders, .npz/.npy arrays
and EDF/BDF recordings cut into windows; each one valid, malformed and over a limit."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from workbench.core.eeg_layout import CHANNELS
from workbench.core.errors import DataError, InputTooLargeError, UnknownIdError
from workbench.data import get_samples, resolve
from workbench.io import limits
from workbench.io.arrays import load_arrays

RNG = np.random.default_rng(0)


# ---- folder: ImageFolder layout --------------------------------------------------------------------

def _png(path, value: int, size=(12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def _image_folder(root):
    for cls, v in (("cat", 10), ("dog", 200)):
        for i in range(2):
            _png(root / cls / f"{i}.png", v + i)
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_gives_class_labels_by_sub_folder(tmp_path):
    root = _image_folder(tmp_path / "set")
    out = get_samples(f"folder:{root}")
    assert [s.label for s in out] == [0, 0, 1, 1] and [s.label_name for s in out] == ["cat", "cat", "dog", "dog"]
    assert out[0].kind == "image" and out[0].array.shape == (10, 12, 3)
    assert np.allclose(out[3].array, 201 / 255) and out[3].id == f"folder:{root}:3"
    assert [s.id for s in get_samples(f"folder:{root}:1-2")] == [f"folder:{root}:1", f"folder:{root}:2"]
    assert get_samples(out[2].id)[0].label == 1  # a sample id resolves again
    assert len(get_samples(str(root))) == 4  # a bare folder path stands for folder:


def test_flat_folder_is_unlabelled_and_bad_folders_fail_with_one_line(tmp_path):
    for i in range(3):
        _png(tmp_path / "flat" / f"{i}.jpg", 50)
    assert [s.label for s in get_samples(f"folder:{tmp_path / 'flat'}")] == [None] * 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG/JPEG"):
        get_samples(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="not a folder"):
        get_samples(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "broken" / "a").mkdir(parents=True)
    (tmp_path / "broken" / "a" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(DataError) as e:
        get_samples(f"folder:{tmp_path / 'broken'}")
    assert "\n" not in e.value.one_line()
    with pytest.raises(DataError, match="out of range"):
        get_samples(f"folder:{tmp_path / 'flat'}:3")


def test_folder_limits_are_checked_before_decoding(tmp_path, monkeypatch):
    root = _image_folder(tmp_path / "set")
    monkeypatch.setattr(limits, "MAX_DATASET_SAMPLES", 3)
    with pytest.raises(InputTooLargeError, match="4 images"):
        resolve(f"folder:{root}")
    monkeypatch.setattr(limits, "MAX_DATASET_SAMPLES", 100)
    monkeypatch.setattr(limits, "MAX_FOLDER_BYTES", 100)
    with pytest.raises(InputTooLargeError, match="GB of images"):
        resolve(f"folder:{root}")
    monkeypatch.setattr(limits, "MAX_FOLDER_BYTES", 10**9)
    monkeypatch.setattr(limits, "MAX_FOLDER_ENTRIES", 2)
    with pytest.raises(InputTooLargeError, match="entries"):
        resolve(f"folder:{root}")


# ---- npz: / .npy ---------------------------------------------------------------------------------------

def test_npz_with_labels_and_class_names(tmp_path):
    x = RNG.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    p = tmp_path / "set.npz"
    np.savez(p, x=x, y=np.array([0, 1, 2, 0, 1, 2]), classes=np.array(["a", "b", "c"]))
    out = get_samples(f"npz:{p}:image")
    assert len(out) == 6 and out[4].label == 1 and out[4].label_name == "b"
    assert out[4].array.dtype == np.float32 and np.allclose(out[4].array, x[4] / 255.0)
    assert [s.id for s in get_samples(f"npz:{p}:image:2-3")] == [f"npz:{p}:image:2", f"npz:{p}:image:3"]
    assert get_samples(f"npz:{p}:5", kind="image")[0].kind == "image"  # the model's kind decides
    with pytest.raises(DataError, match="images .* or signals"):
        get_samples(f"npz:{p}")  # (N, 8, 8) could be either
    sig = get_samples(f"npz:{p}:signal:0")[0]
    assert sig.kind == "signal" and sig.array.shape == (8, 8)


def test_npy_vectors_and_signals(tmp_path):
    np.save(tmp_path / "v.npy", RNG.standard_normal((5, 2)))
    v = get_samples(str(tmp_path / "v.npy"))
    assert len(v) == 5 and v[0].kind == "vector" and v[0].label is None and v[0].array.shape == (2,)
    np.save(tmp_path / "s.npy", RNG.standard_normal((4, 40)).astype(np.float32))
    s = get_samples(f"npz:{tmp_path / 's.npy'}:signal:1")
    assert s[0].array.shape == (1, 40)


def test_npz_never_unpickles_and_refuses_malformed_files(tmp_path):
    obj = np.empty(2, dtype=object)
    obj[:] = [{"a": 1}, [2]]
    np.savez(tmp_path / "obj.npz", x=obj)  # numpy pickles object arrays into the archive
    with pytest.raises(DataError, match="not plain numbers"):
        get_samples(f"npz:{tmp_path / 'obj.npz'}")
    np.savez(tmp_path / "nox.npz", data=np.zeros((3, 2)))
    with pytest.raises(DataError, match="no array 'x'"):
        get_samples(f"npz:{tmp_path / 'nox.npz'}")
    np.savez(tmp_path / "lab.npz", x=np.zeros((3, 2)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="2 labels for 3"):
        get_samples(f"npz:{tmp_path / 'lab.npz'}")
    good = (tmp_path / "lab.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="not a valid .npz"):
        get_samples(f"npz:{tmp_path / 'cut.npz'}")
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan]]))
    with pytest.raises(DataError, match="NaN"):
        get_samples(f"npz:{tmp_path / 'nan.npy'}")
    np.save(tmp_path / "img.npy", np.full((2, 4, 4), 3.0))
    with pytest.raises(DataError, match=r"pixels in \[0, 1\]"):
        get_samples(f"npz:{tmp_path / 'img.npy'}:image")
    with pytest.raises(UnknownIdError):
        get_samples(str(tmp_path / "missing.npz"))


def test_array_limits_are_checked_on_the_header_before_decoding(tmp_path, monkeypatch):
    p = tmp_path / "big.npz"
    np.savez_compressed(p, x=np.zeros((1000, 100), np.float32))  # 400 kB decoded, a few hundred bytes on disk
    monkeypatch.setattr(limits, "MAX_ARRAY_BYTES", 100_000)
    with pytest.raises(InputTooLargeError, match="declares"):
        load_arrays(p)
    # a member whose zip entry lies about its size is still held to the .npy header's shape
    with zipfile.ZipFile(tmp_path / "small.npz", "w") as z:
        with z.open("x.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**6,)})
    with pytest.raises(InputTooLargeError, match=r"declares \(1000000,\) float32"):
        load_arrays(tmp_path / "small.npz")
    monkeypatch.setattr(limits, "MAX_ARRAY_FILE_BYTES", 10)
    with pytest.raises(InputTooLargeError, match="MB limit"):
        load_arrays(p)


# ---- edf: recordings cut into windows --------------------------------------------------------------------

def _edf(path, names=CHANNELS, seconds=10, sfreq=128.0):
    import mne

    data = RNG.standard_normal((len(names), int(seconds * sfreq))) * 20e-6
    raw = mne.io.RawArray(data, mne.create_info(list(names), sfreq, "eeg"), verbose=False)
    mne.export.export_raw(str(path), raw, overwrite=True, verbose=False)
    return path, data


def test_edf_in_the_eeg_layout_and_in_windows_of_any_length(tmp_path):
    p, _ = _edf(tmp_path / "rec.edf")
    out = get_samples(f"edf:{p}")
    assert len(out) == 3 and out[0].array.shape == (30, 384) and out[2].id == f"edf:{p}:2"
    p2, data = _edf(tmp_path / "few.edf", names=("C3", "C4"), seconds=5, sfreq=100.0)
    win = get_samples(f"edf:{p2}:w=2")
    assert len(win) == 2 and win[1].array.shape == (2, 200) and win[1].meta["sfreq"] == 100.0
    assert np.abs(win[1].array - data[:, 200:400] * 1e6).max() < 0.05 * np.abs(data).max() * 1e6
    assert [s.id for s in get_samples(f"edf:{p2}:w=2:1")] == [f"edf:{p2}:w=2:1"]


def test_malformed_and_over_limit_recordings(tmp_path, monkeypatch):
    p, _ = _edf(tmp_path / "rec.edf", seconds=6)
    with pytest.raises(DataError, match="w=SECONDS"):
        get_samples(f"edf:{p}:w=0")
    with pytest.raises(DataError, match="shorter than one"):
        get_samples(f"edf:{p}:w=20")
    (tmp_path / "junk.edf").write_bytes(b"0" * 300)
    with pytest.raises(DataError) as e:
        get_samples(f"edf:{tmp_path / 'junk.edf'}:w=1")
    assert "\n" not in e.value.one_line()
    monkeypatch.setattr(limits, "MAX_EEG_WINDOWS", 2)
    with pytest.raises(InputTooLargeError, match="windows"):
        get_samples(f"edf:{p}:w=1")
