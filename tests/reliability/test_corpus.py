"""Plan item 1: 200 malformed or valid files per loader; every bad file gives a typed one-line error
within 2 s, every control loads, and memory stays bounded."""

from __future__ import annotations

import hashlib
import resource
import time

import pytest
import torch

from tests.reliability.corpus import checkpoint_corpus, image_corpus, reference_state_dict, safetensors_corpus
from workbench.core.errors import WorkbenchError
from workbench.io.images import decode_image
from workbench.io.weights import load_pinned_checkpoint, load_user_safetensors

MAX_SECONDS = 2.0
MAX_RSS_GROWTH_MB = 512


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _drive(cases, load) -> dict:
    rss0, outcome = _rss_mb(), {"ok": 0, "refused": 0}
    for name, data, valid in cases:
        t = time.perf_counter()
        try:
            load(name, data)
        except WorkbenchError as e:
            assert not valid, f"control {name} refused: {e.one_line()}"
            line = e.one_line()
            assert e.code and "\n" not in line and len(line) < 400, f"{name}: {line!r}"
            outcome["refused"] += 1
        else:
            assert valid, f"bad file {name} was accepted"
            outcome["ok"] += 1
        assert time.perf_counter() - t <= MAX_SECONDS, f"{name} took {time.perf_counter() - t:.2f} s"
    assert _rss_mb() - rss0 <= MAX_RSS_GROWTH_MB
    return outcome


def test_image_corpus():
    out = _drive(image_corpus(), lambda name, data: decode_image(data, name))
    assert out == {"ok": 20, "refused": 180}


def test_safetensors_corpus():
    ref = reference_state_dict()
    out = _drive(safetensors_corpus(), lambda name, data: load_user_safetensors(data, ref))
    assert out == {"ok": 20, "refused": 180}


def test_checkpoint_corpus_with_the_cards_pin(tmp_path):
    """The pin on the card is the first guard: a file that is not the pinned one never reaches the unpickler."""
    cases = checkpoint_corpus()

    def load(name, data):
        p = tmp_path / name
        p.write_bytes(data)
        pin = hashlib.sha256(data).hexdigest() if name.startswith("valid") else hashlib.sha256(cases[0][1]).hexdigest()
        sd = load_pinned_checkpoint(p, pin)
        assert set(sd) == set(reference_state_dict())

    assert _drive(cases, load) == {"ok": 20, "refused": 180}


def test_checkpoint_corpus_pinned_as_is_reaches_only_typed_outcomes(tmp_path):
    """Even if a maintainer pinned a damaged file, the safe unpickler gives a typed error or plain tensors."""
    for name, data, _ in checkpoint_corpus():
        p = tmp_path / name
        p.write_bytes(data)
        t = time.perf_counter()
        try:
            sd = load_pinned_checkpoint(p, hashlib.sha256(data).hexdigest())
        except WorkbenchError as e:
            assert e.code == "bad_weights"
        else:
            assert isinstance(sd, dict) and all(isinstance(v, torch.Tensor) for v in sd.values())
        assert time.perf_counter() - t <= MAX_SECONDS


@pytest.mark.parametrize("make", [image_corpus, safetensors_corpus, checkpoint_corpus])
def test_corpus_is_deterministic(make):
    a, b = make(), make()
    assert [hashlib.sha256(d).hexdigest() for _, d, _ in a] == [hashlib.sha256(d).hexdigest() for _, d, _ in b]


def _drive_eeg_files(cases, suffix: str, tmp_path) -> dict:
    """Each case written as a file with ``suffix`` and loaded by the EEG file loader."""
    import warnings

    from workbench.io.eeg import load_eeg_file

    def load(name, data):
        p = tmp_path / f"{name}{suffix}"
        p.write_bytes(data)
        try:
            load_eeg_file(p)
        finally:
            p.unlink()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _drive(cases, load)


def test_edf_corpus(tmp_path):
    from tests.reliability.corpus import edf_corpus

    assert _drive_eeg_files(edf_corpus(), ".edf", tmp_path) == {"ok": 20, "refused": 180}


def test_mat_corpus(tmp_path):
    """The published drowsiness data set's .mat layout (EEGsample, substate, subindex)."""
    from tests.reliability.corpus import mat_corpus

    assert _drive_eeg_files(mat_corpus(), ".mat", tmp_path) == {"ok": 20, "refused": 180}
