"""Card preprocessing: shapes, dtypes, value ranges, torchvision parity, kind refusal."""

from __future__ import annotations

import numpy as np
import pytest

import models.zoo as zoo
from models import preprocess as pp
from workbench.core.errors import DataError
from workbench.core.sample import Sample
from workbench.data.registry import dataset_arrays, get_samples

CARDS = {c.id: c for c in zoo.CARDS}
IMAGE_CARDS = sorted(k for k, c in CARDS.items() if c.kind == "image2d")


@pytest.fixture(scope="module")
def chelsea():
    return get_samples("skimage:chelsea")[0]


@pytest.mark.parametrize("card_id", IMAGE_CARDS)
def test_image_cards_take_a_colour_photo(card_id, chelsea):
    card = CARDS[card_id]
    x = card.preprocess(chelsea)
    assert x.shape == tuple(card.input_shape) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.std() > 0.05


def test_value_ranges_follow_each_recipe(chelsea):
    digit = pp.digits_preprocess(get_samples("digits:0")[0])
    assert digit.shape == (1, 32, 32) and digit.min() >= -1.0 and digit.max() <= 1.0
    assert digit.min() == pytest.approx(-1.0)  # black background of sklearn digits
    eff = pp.efficientnet_preprocess(chelsea)
    crop = pp.efficientnet_display(chelsea)
    np.testing.assert_allclose(eff, (crop.transpose(2, 0, 1) * 255 - 127) / 128, atol=1e-5)
    tv = pp.imagenet_preprocess(chelsea)
    assert abs(float(tv.mean())) < 1.5 and tv.std() > 0.3


def test_imagenet_crop_matches_torchvision_transforms(chelsea):
    import torch
    from torchvision import transforms

    ref = transforms.Compose([transforms.Resize(256, antialias=True), transforms.CenterCrop(224),
                              transforms.Normalize(pp.IMAGENET_MEAN, pp.IMAGENET_STD)])
    expected = ref(torch.from_numpy(chelsea.array.transpose(2, 0, 1).copy())).numpy()
    np.testing.assert_allclose(pp.imagenet_preprocess(chelsea), expected, atol=2e-5)


def test_training_and_inference_use_the_same_digits_preprocessing():
    x, _ = dataset_arrays("digits", "all")
    batch = pp.digits_batch(x[[0, 5, 9]])
    single = np.stack([pp.digits_preprocess(s) for s in get_samples("digits:0,5,9")])
    np.testing.assert_array_equal(batch, single)


def test_digits_display_is_the_resized_grayscale(chelsea):
    shown = pp.digits_display(chelsea)
    assert shown.shape == (32, 32, 3) and shown.min() >= 0 and shown.max() <= 1
    np.testing.assert_array_equal(shown[..., 0], shown[..., 2])
    np.testing.assert_allclose(pp.digits_preprocess(chelsea)[0], (shown[..., 0] - 0.5) / 0.5, atol=1e-6)


def test_grayscale_and_rgb_images_are_both_accepted():
    gray = get_samples("skimage:camera")[0]
    assert gray.array.ndim == 2
    assert pp.efficientnet_preprocess(gray).shape == (3, 224, 224)
    assert pp.digits_preprocess(gray).shape == (1, 32, 32)


def test_mnist1d_signal_passes_through():
    sample = get_samples("mnist1d:0")[0]
    x = CARDS["mnist1d_cnn.default"].preprocess(sample)
    assert x.shape == (1, 40) and x.dtype == np.float32
    np.testing.assert_array_equal(x, sample.array)
    np.testing.assert_array_equal(CARDS["mnist1d_cnn.default"].display(sample), sample.array)


def test_wrong_kind_is_refused_with_one_line(chelsea):
    signal = get_samples("mnist1d:0")[0]
    with pytest.raises(DataError, match="takes signal data") as err:
        CARDS["mnist1d_cnn.default"].preprocess(chelsea)
    assert "\n" not in err.value.one_line() and err.value.hint
    for card_id in IMAGE_CARDS:
        with pytest.raises(DataError, match="takes image data"):
            CARDS[card_id].preprocess(signal)


def test_bad_arrays_are_refused():
    with pytest.raises(DataError, match="shape"):
        pp.mnist1d_preprocess(Sample("x:1", "signal", np.zeros((2, 40), np.float32)))
    with pytest.raises(DataError, match="NaN"):
        pp.digits_preprocess(Sample("x:2", "image", np.full((8, 8), np.nan, np.float32)))
    with pytest.raises(DataError, match="shape"):
        pp.imagenet_preprocess(Sample("x:3", "image", np.zeros((8, 8, 4), np.float32)))


def test_extreme_aspect_ratio_stays_cheap_and_central():
    strip = np.tile(np.linspace(0, 1, 4096, dtype=np.float32), (2, 1))  # 2 x 4096 ramp
    crop = pp.resize_center_crop(strip, 256, 224)  # uncut: a 3 x 256 x 524288 float intermediate
    assert crop.shape == (224, 224, 3)
    assert abs(float(crop.mean()) - 0.5) < 0.01 and crop[:, 0].mean() < crop[:, -1].mean()
