"""Card preprocessing: a ``Sample`` in, a float32 numpy array the model takes out.

Every card's ``preprocess(sample)`` and ``display(sample)`` come from here, and training
(``models.train``) calls the same batched functions, so train and inference preprocessing
are one code path. Images arrive as float32 (H, W) or (H, W, 3) in [0, 1]; signals as
float32 (C, T).
"""

from __future__ import annotations

import numpy as np

from workbench.core.errors import DataError
from workbench.core.sample import Sample

DIGITS_SIZE = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MNIST1D_SHAPE = (1, 40)
MAX_ASPECT = 8.0
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma weights


def _require(sample: Sample, kind: str, model: str) -> np.ndarray:
    """The sample's array if it is of ``kind``; a one-line DataError otherwise."""
    if sample.kind != kind:
        raise DataError(f"{model} takes {kind} data, but {sample.id!r} is a {sample.kind}",
                        "pick an image (digits:N, skimage:NAME, upload)" if kind == "image"
                        else "pick a signal (mnist1d:N)")
    arr = np.asarray(sample.array, dtype=np.float32)
    if kind == "image" and not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise DataError(f"image {sample.id!r} has shape {arr.shape}, expected (H, W) or (H, W, 3)")
    if not np.isfinite(arr).all():
        raise DataError(f"{sample.id!r} holds NaN or infinite values")
    return arr


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 3) by repeating; (H, W, 3) passes through. float32."""
    image = np.asarray(image, dtype=np.float32)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (antialiased when shrinking). (N, C, H, W) float32 -> (N, C, *size)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if tuple(t.shape[-2:]) == tuple(size):
        return t.numpy().copy()
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out.numpy()


# ---- digits (1, 32, 32) ----------------------------------------------------------------------

def digits_resized(images: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) in [0, 1] -> grayscale (N, 32, 32) in [0, 1], float32."""
    images = np.asarray(images, dtype=np.float32)
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[3] == 3)):
        raise DataError(f"digit images must be (N, H, W) or (N, H, W, 3), got {images.shape}")
    gray = images @ _LUMA if images.ndim == 4 else images
    out = resize(gray[:, None], (DIGITS_SIZE, DIGITS_SIZE))[:, 0]
    return np.clip(out, 0.0, 1.0)


def digits_batch(images: np.ndarray) -> np.ndarray:
    """The digits models' input: (N, H, W[, 3]) in [0, 1] -> (N, 1, 32, 32) float32 in [-1, 1].

    Grayscale, bilinear resize to 32x32, then ``(x - 0.5) / 0.5``. Used by training and by
    :func:`digits_preprocess`, so both see the same numbers. Expects light ink on a dark
    background, as in sklearn's digits.
    """
    return ((digits_resized(images) - 0.5) / 0.5)[:, None].astype(np.float32)


def digits_preprocess(sample: Sample) -> np.ndarray:
    """Image sample -> (1, 32, 32) float32 for the digits cards."""
    return digits_batch(_require(sample, "image", "this digits model")[None])[0]


def digits_display(sample: Sample) -> np.ndarray:
    """Image sample -> (32, 32, 3) float32 in [0, 1]: the resized grayscale the model sees."""
    gray = digits_resized(_require(sample, "image", "this digits model")[None])[0]
    return to_rgb(gray)


# ---- ImageNet (3, 224, 224) ------------------------------------------------------------------

def resize_center_crop(image: np.ndarray, shorter: int, crop: int) -> np.ndarray:
    """(H, W[, 3]) in [0, 1] -> RGB (crop, crop, 3) in [0, 1]: shorter side to ``shorter``
    (bilinear, antialiased), then a centre crop, as torchvision's Resize + CenterCrop do.
    Past an aspect ratio of ``MAX_ASPECT`` the long side is first cut to its central band, so a
    1 x 4096 strip cannot make a gigabyte-sized intermediate."""
    rgb = to_rgb(image)
    h, w = rgb.shape[:2]
    if max(h, w) > MAX_ASPECT * min(h, w):  # only a central band can reach the crop: bound memory
        band = int(MAX_ASPECT * min(h, w))
        rgb = rgb[(h - band) // 2:(h - band) // 2 + band] if h > w else \
            rgb[:, (w - band) // 2:(w - band) // 2 + band]
        h, w = rgb.shape[:2]
    longer = int(shorter * max(h, w) / min(h, w))  # torchvision's rounding
    new_h, new_w = (shorter, longer) if h <= w else (longer, shorter)
    chw = resize(rgb.transpose(2, 0, 1)[None], (new_h, new_w))[0]
    top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
    out = chw[:, top:top + crop, left:left + crop].transpose(1, 2, 0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def efficientnet_preprocess(sample: Sample) -> np.ndarray:
    """Image sample -> (3, 224, 224) float32: shorter side 224, centre crop, ``(255 x - 127) / 128``."""
    crop = resize_center_crop(_require(sample, "image", "EfficientNet-Lite0"), 224, 224)
    return ((crop * 255.0 - 127.0) / 128.0).transpose(2, 0, 1).astype(np.float32)


def efficientnet_display(sample: Sample) -> np.ndarray:
    """Image sample -> (224, 224, 3) float32 in [0, 1]: the crop the model sees."""
    return resize_center_crop(_require(sample, "image", "EfficientNet-Lite0"), 224, 224)


def imagenet_preprocess(sample: Sample) -> np.ndarray:
    """Image sample -> (3, 224, 224) float32 for torchvision models: shorter side 256, centre
    crop 224, normalized with the ImageNet mean and std."""
    crop = resize_center_crop(_require(sample, "image", "this ImageNet model"), 256, 224)
    out = (crop - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return out.transpose(2, 0, 1).astype(np.float32)


def imagenet_display(sample: Sample) -> np.ndarray:
    """Image sample -> (224, 224, 3) float32 in [0, 1]: the crop torchvision models see."""
    return resize_center_crop(_require(sample, "image", "this ImageNet model"), 256, 224)


# ---- mnist1d (1, 40) -------------------------------------------------------------------------

def mnist1d_batch(signals: np.ndarray) -> np.ndarray:
    """The mnist1d model's input: (N, 40) or (N, 1, 40) raw signals -> (N, 1, 40) float32, unscaled.
    Used by training and by :func:`mnist1d_preprocess`."""
    x = np.asarray(signals, dtype=np.float32)
    x = x[:, None, :] if x.ndim == 2 else x
    if x.shape[1:] != MNIST1D_SHAPE:
        raise DataError(f"mnist1d signals must be (N, 40) or (N, 1, 40), got {np.shape(signals)}")
    return x.copy()


def mnist1d_preprocess(sample: Sample) -> np.ndarray:
    """Signal sample (1, 40) -> the same values as float32 (mnist1d needs no scaling)."""
    arr = _require(sample, "signal", "the mnist1d model")
    if arr.shape != MNIST1D_SHAPE:
        raise DataError(f"signal {sample.id!r} has shape {arr.shape}, the mnist1d model takes "
                        f"{MNIST1D_SHAPE}", "use mnist1d:N samples")
    return mnist1d_batch(arr[None])[0]


def mnist1d_display(sample: Sample) -> np.ndarray:
    """Signal sample -> (1, 40) float32, raw values."""
    return mnist1d_preprocess(sample)


# ---- EEG (30, 384): Cui et al.'s drowsiness layout ---------------------------------------------

EEG_SHAPE = (30, 384)  # 30 channels (workbench.data.eeg_synth.CHANNELS order), 3 s at 128 Hz
EEG_SCALE_UV = 10.0  # model units per microvolt: x / 10 uV keeps inputs near unit scale


def eeg_batch(windows: np.ndarray) -> np.ndarray:
    """The EEG models' input: (N, 30, 384) windows in microvolts -> (N, 30, 384) float32, each channel's
    mean over the window removed (recordings carry DC offsets; the published data is band-passed),
    then divided by 10 uV. Used by training and by :func:`eeg_preprocess`."""
    x = np.asarray(windows, dtype=np.float32)
    if x.ndim != 3 or x.shape[1:] != EEG_SHAPE:
        raise DataError(f"EEG windows must be (N, 30, 384), got {np.shape(windows)}",
                        "30 channels, 3 s at 128 Hz (workbench.io.eeg reads recordings into this layout)")
    return ((x - x.mean(-1, keepdims=True)) / EEG_SCALE_UV).astype(np.float32)


def eeg_preprocess(sample: Sample) -> np.ndarray:
    """Signal sample (30, 384) in uV -> (30, 384) float32 model input (see :func:`eeg_batch`)."""
    arr = _require(sample, "signal", "this EEG model")
    if arr.shape != EEG_SHAPE:
        raise DataError(f"signal {sample.id!r} has shape {arr.shape}, the EEG models take {EEG_SHAPE}",
                        "use eeg_synth.drowsy windows or an EEG file (.mat, .edf, .bdf, .fif)")
    return eeg_batch(arr[None])[0]


def eeg_display(sample: Sample) -> np.ndarray:
    """Signal sample -> (30, 384) float32 raw microvolts (what the traces show)."""
    arr = _require(sample, "signal", "this EEG model")
    if arr.shape != EEG_SHAPE:
        raise DataError(f"signal {sample.id!r} has shape {arr.shape}, the EEG models take {EEG_SHAPE}")
    return arr.astype(np.float32).copy()


# ---- 2-D toy points (moons, circles) (2,) ------------------------------------------------------

TOY2D_SHAPE = (2,)


def vector_batch(points: np.ndarray) -> np.ndarray:
    """The toy MLPs' input: (N, 2) points -> (N, 2) float32, unscaled (make_moons / make_circles
    already live near [-1.5, 2.5]). Used by training and by :func:`vector_preprocess`."""
    x = np.asarray(points, dtype=np.float32)
    if x.ndim != 2 or x.shape[1:] != TOY2D_SHAPE:
        raise DataError(f"toy points must be (N, 2), got {np.shape(points)}", "use moons:N or circles:N samples")
    if not np.isfinite(x).all():
        raise DataError("toy points hold NaN or infinite values")
    return x.copy()


def vector_preprocess(sample: Sample) -> np.ndarray:
    """Vector sample (2,) -> the same values as float32 (2,)."""
    if sample.kind != "vector":
        raise DataError(f"the toy MLPs take 2-D points, but {sample.id!r} is a {sample.kind}",
                        "pick moons:N or circles:N")
    return vector_batch(np.asarray(sample.array)[None])[0]


def vector_display(sample: Sample) -> np.ndarray:
    """Vector sample -> (2,) float32, the raw point."""
    return vector_preprocess(sample)
