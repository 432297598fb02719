"""Image-to-image zoo cards (x2 super-resolution, Gaussian denoising): data, preprocessing, scores.

Everything is grayscale in [0, 1] (ITU-R BT.601 luma of the bundled scikit-image pictures).

* ``sr_cnn.x2`` takes the image itself as the low-resolution input: shorter side resized to 64
  (bilinear, antialiased), centre crop 64 x 64; the network upsamples it by 2 (128 x 128 out).
* ``denoise_cnn.sigma25`` takes the same 64 x 64 crop plus Gaussian noise of sigma 25/255 drawn
  with a fixed seed (the noise the model was trained to remove; the same noise on every run).

Training (``models.train_image2image``) uses random patches of every bundled picture except the
held-out ones in :data:`HELD_OUT` and a few synthetic ones in :data:`EXCLUDED`; PSNR is measured
on the held-out pictures (shorter side 256, centre crop 256: the high-resolution / clean
reference; low resolution = bicubic antialiased downscaling by 2). Importing this module imports
no torch.
"""

from __future__ import annotations

import functools

import numpy as np

from workbench.core.sample import Sample
from workbench.data.builtin import SKIMAGE_IMAGES

I2I_SIZE = 64
EVAL_SIZE = 256
NOISE_SIGMA = 25.0 / 255.0
NOISE_SEED = 0
SHAVE = 4  # border pixels ignored by PSNR (zero padding makes the outermost pixels unreliable)
HELD_OUT = ("camera", "astronaut", "coins", "moon")
EXCLUDED = ("checkerboard", "colorwheel", "logo", "horse")  # synthetic or binary: not natural statistics
TRAIN_IMAGES = tuple(n for n in SKIMAGE_IMAGES if n not in HELD_OUT and n not in EXCLUDED)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) in [0, 1] -> (H, W) float32 grayscale."""
    image = np.asarray(image, dtype=np.float32)
    return image @ _LUMA if image.ndim == 3 else image


@functools.lru_cache(maxsize=32)
def gray_picture(name: str) -> np.ndarray:
    """A bundled scikit-image picture as grayscale (H, W) float32 in [0, 1] (read-only, cached)."""
    from workbench.data.registry import get_samples

    out = luma(get_samples(f"skimage:{name}")[0].array)
    out.flags.writeable = False
    return out


def square_crop(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W[, 3]) in [0, 1] -> grayscale (size, size) float32: shorter side to ``size``, centre crop."""
    from models.preprocess import resize_center_crop

    return luma(resize_center_crop(np.asarray(image, dtype=np.float32), size, size))


def _input_image(sample: Sample, model: str) -> np.ndarray:
    from models.preprocess import _require

    return square_crop(_require(sample, "image", model), I2I_SIZE)


def noise(shape: tuple, seed: int = NOISE_SEED, sigma: float = NOISE_SIGMA) -> np.ndarray:
    """Fixed Gaussian noise of standard deviation ``sigma`` (float32)."""
    return (np.random.default_rng(seed).standard_normal(shape) * sigma).astype(np.float32)


def sr_preprocess(sample: Sample) -> np.ndarray:
    """Image sample -> (1, 64, 64) float32 grayscale in [0, 1]: the low-resolution input."""
    return _input_image(sample, "the super-resolution model")[None]


def sr_display(sample: Sample) -> np.ndarray:
    """Image sample -> (64, 64, 3) float32 in [0, 1]: the low-resolution input as RGB."""
    return np.repeat(_input_image(sample, "the super-resolution model")[..., None], 3, axis=-1)


def denoise_preprocess(sample: Sample) -> np.ndarray:
    """Image sample -> (1, 64, 64) float32: grayscale crop + fixed N(0, (25/255)^2) noise (not clipped)."""
    clean = _input_image(sample, "the denoising model")
    return (clean + noise(clean.shape))[None]


def denoise_display(sample: Sample) -> np.ndarray:
    """Image sample -> (64, 64, 3) float32 in [0, 1]: the noisy input, clipped for display."""
    return np.repeat(np.clip(denoise_preprocess(sample)[0], 0.0, 1.0)[..., None], 3, axis=-1)


def psnr(estimate: np.ndarray, reference: np.ndarray, shave: int = SHAVE) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1] (peak 1), ignoring ``shave`` border pixels.
    ``estimate`` is clipped to [0, 1] first, as a displayed image would be."""
    est = np.clip(np.asarray(estimate, dtype=np.float64), 0.0, 1.0)
    ref = np.asarray(reference, dtype=np.float64)
    if shave:
        est, ref = est[..., shave:-shave, shave:-shave], ref[..., shave:-shave, shave:-shave]
    mse = float(np.mean((est - ref) ** 2))
    return float(10.0 * np.log10(1.0 / max(mse, 1e-20)))


def image2image_status(card) -> dict:
    """The zoo status plus the held-out PSNR of the model and of its baseline, from the manifest."""
    from models.recipes import IMAGE2IMAGE_RECIPES, image2image_recipe_hash
    from models.weights import manifest_entry, weights_status

    st = weights_status(card)
    entry = manifest_entry(card.id) if st.get("available") else None
    if not entry:
        return st
    score, base = entry.get("psnr_db"), entry.get("baseline_psnr_db")
    note = (f"trained by make zoo (recipe {entry.get('recipe', {}).get('name', '?')}, seed {entry.get('seed')}), "
            f"held-out PSNR {score:.2f} dB vs {entry.get('baseline', 'baseline')} {base:.2f} dB")
    if card.id in IMAGE2IMAGE_RECIPES and entry.get("recipe_hash") != image2image_recipe_hash(card.id):
        note += "; built with an older recipe: run make zoo"
    return {**st, "note": note, "psnr_db": score, "baseline_psnr_db": base, "baseline": entry.get("baseline")}
