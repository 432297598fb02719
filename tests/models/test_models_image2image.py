"""Image-to-image zoo cards: shapes, preprocessing, PSNR bookkeeping, training that must beat its baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models.zoo as zoo
from models import image2image as i2i
from models import train_image2image as t
from models.recipes import IMAGE2IMAGE_RECIPES
from models.weights import read_manifest, zoo_weights_path
from workbench.data.registry import get_samples

CARDS = {c.id: c for c in zoo.CARDS}
IDS = sorted(IMAGE2IMAGE_RECIPES)


@pytest.mark.parametrize("card_id", IDS)
def test_card_is_image2image_and_fully_convolutional(card_id):
    card = CARDS[card_id]
    assert card.task == "image2image" and card.kind == "image2d" and card.class_names == ()
    assert card.input_shape == (1, 64, 64) and card.summary()["task"] == "image2image"
    model = card.build().eval()
    scale = card.extra["output_scale"]
    for h, w in ((64, 64), (24, 40)):
        with torch.no_grad():
            out = model(torch.rand(2, 1, h, w))
        assert tuple(out.shape) == (2, 1, scale * h, scale * w)
    modules = dict(model.named_modules())
    assert card.layers_of_interest and all(n in modules for n in card.layers_of_interest)


@pytest.mark.parametrize("card_id", IDS)
def test_default_data_preprocesses_to_the_input_shape(card_id):
    card = CARDS[card_id]
    sample = get_samples(card.default_data)[0]
    x, shown = card.preprocess(sample), card.display(sample)
    assert x.dtype == np.float32 and x.shape == card.input_shape and np.isfinite(x).all()
    assert shown.shape == (64, 64, 3) and shown.min() >= 0 and shown.max() <= 1
    assert np.array_equal(card.preprocess(sample), x)  # deterministic (the denoiser's noise too)


def test_denoise_input_carries_the_trained_noise_level():
    sample = get_samples("skimage:camera")[0]
    clean = i2i.sr_preprocess(sample)
    noisy = CARDS["denoise_cnn.sigma25"].preprocess(sample)
    assert abs(float((noisy - clean).std()) - 25 / 255) < 0.01


def test_psnr_and_degradations():
    ref = np.full((32, 32), 0.5)
    assert abs(i2i.psnr(ref + 0.1, ref, shave=0) - 20.0) < 1e-9
    assert i2i.psnr(ref, ref) > 150
    lr = t.downscale(torch.rand(1, 1, 32, 32))
    assert lr.shape == (1, 1, 16, 16) and t.upscale(lr).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("card_id", IDS)
def test_built_model_beats_its_baseline_and_reproduces_its_recorded_psnr(card_id):
    card = CARDS[card_id]
    status = card.status(card)
    if not status["available"]:
        pytest.fail(f"{card_id}: zoo weights not built; `make zoo` builds them", pytrace=False)
    entry = read_manifest()["cards"][card_id]
    assert entry["psnr_db"] >= entry["baseline_psnr_db"] + IMAGE2IMAGE_RECIPES[card_id]["min_gain_db"]
    assert "PSNR" in status["note"] and status["psnr_db"] == entry["psnr_db"]
    scores = t.evaluate(IMAGE2IMAGE_RECIPES[card_id], card.loader(card))
    assert abs(scores["psnr_db"] - entry["psnr_db"]) < 1e-3
    assert abs(scores["baseline_psnr_db"] - entry["baseline_psnr_db"]) < 1e-3


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ZOO_DIR", str(tmp_path))
    card_id = "denoise_cnn.sigma25"
    # 3 steps cannot beat the baseline: the gate is opened here to test the mechanics, closed below
    monkeypatch.setitem(IMAGE2IMAGE_RECIPES, card_id,
                        {**IMAGE2IMAGE_RECIPES[card_id], "steps": 3, "min_gain_db": -99.0})
    return card_id


def test_build_writes_verified_weights_then_skips_and_fails_loudly_below_the_baseline(tiny, monkeypatch, capsys):
    from models import train

    assert train.build_zoo([tiny]) == []  # dispatched to the image-to-image trainer
    entry = read_manifest()["cards"][tiny]
    assert entry["task"] == "image2image" and entry["recipe"]["hyperparameters"]["steps"] == 3
    card = CARDS[tiny]
    assert card.status(card)["sha256"] == entry["sha256"] and card.loader(card) is not None
    assert t.build(tiny) == [] and f"{tiny}: up to date" in capsys.readouterr().out
    zoo_weights_path(tiny).unlink()
    monkeypatch.setitem(IMAGE2IMAGE_RECIPES, tiny, {**IMAGE2IMAGE_RECIPES[tiny], "min_gain_db": 99.0})
    failures = t.build(tiny)
    assert len(failures) == 1 and "below the required" in failures[0] and not zoo_weights_path(tiny).exists()
    assert train.main(["--only", tiny]) == 1
