"""EEG uploads are kept as ``<private folder>/<sha16>/<clean original name>``: the data id, the loader's titles
and errors name the user's file, while the content hash keeps different files apart."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from workbench.core.errors import InputTooLargeError
from workbench.data import eeg_synth as es
from workbench.data import get_samples
from workbench.data.paths import path_id
from workbench.io import eeg, limits
from workbench.io.eeg import EegFileError, save_upload, upload_name


@pytest.fixture(autouse=True)
def _private_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the uploads folder of this test only
    return tmp_path


def _edf(tmp_path: Path) -> bytes:
    import mne

    data = np.random.default_rng(0).standard_normal((len(es.CHANNELS), 3 * 128)) * 20e-6
    raw = mne.io.RawArray(data, mne.create_info(list(es.CHANNELS), 128.0, "eeg"), verbose=False)
    mne.export.export_raw(str(tmp_path / "x.edf"), raw, overwrite=True, verbose=False)
    return (tmp_path / "x.edf").read_bytes()


def test_the_data_id_names_the_users_file_under_its_content_hash(tmp_path):
    data = _edf(tmp_path)
    path = Path(save_upload(data, "night recording.EDF"))
    sha16 = hashlib.sha256(data).hexdigest()[:16]
    assert path.parent.name == sha16 and path.name == "night_recording.edf"
    assert path.parent.parent == tmp_path / f"workbench-eeg-uploads-{os.getuid()}"
    assert path_id(str(path)) == f"edf:{tmp_path}/{path.parent.parent.name}/{sha16}/night_recording.edf"
    samples = get_samples(str(path))  # routed by the (lower-cased) extension and read back whole
    assert samples and "night_recording.edf" in samples[0].source and sha16 not in samples[0].source
    assert (path.parent.stat().st_mode & 0o077) == 0 == (path.parent.parent.stat().st_mode & 0o077)  # private
    assert save_upload(data, "night recording.EDF") == str(path)  # the same upload: the same id
    assert Path(save_upload(data + b"\0", "night recording.EDF")).parent.name != sha16  # other content


@pytest.mark.parametrize(("name", "kept"), [
    ("../../etc/passwd.edf", "passwd.edf"),
    ("C:\\Users\\me\\rec 1.BDF", "rec_1.bdf"),
    (".hidden.fif", "hidden.fif"),
    ("<b>x</b>;rm -rf.edf", "b_rm_-rf.edf"),  # "/" ends a path part, even in a tag
    ("<b>x<b>;rm -rf $(id).edf", "b_x_b_rm_-rf_id.edf"),
    ("été.edf", "t.edf"),
    ("x" * 300 + ".edf", "x" * 76 + ".edf"),
])
def test_only_the_base_name_in_safe_characters_is_kept(name, kept):
    assert upload_name(name) == kept
    path = Path(save_upload(b"0       some bytes", name))
    assert path.name == kept and path.parent.parent.name.startswith("workbench-eeg-uploads-")


def test_the_checks_before_storing_still_refuse(monkeypatch):
    for bad in ("notes.txt", "rec.edf ", "noextension", ".edf", "x\\.edf"):
        with pytest.raises(EegFileError, match="not an EEG format"):
            save_upload(b"data", bad)
    with pytest.raises(EegFileError, match="empty"):
        save_upload(b"", "rec.edf")
    monkeypatch.setattr(limits, "MAX_EEG_BYTES", 10)
    with pytest.raises(InputTooLargeError):
        save_upload(b"x" * 11, "rec.edf")


def test_the_folder_keeps_the_latest_uploads_only(tmp_path):
    paths = [Path(save_upload(f"recording {i}".encode(), f"rec{i}.edf")) for i in range(eeg.UPLOAD_KEEP + 3)]
    folder = paths[0].parent.parent
    assert len(list(folder.iterdir())) == eeg.UPLOAD_KEEP
    assert paths[-1].is_file() and not paths[0].exists() and not paths[0].parent.exists()
    assert not list(folder.glob("*/*.part"))  # written whole, then renamed
