"""Decode user images (PNG/JPEG only) with size and pixel limits checked before decoding."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from workbench.core.errors import DataError, InputTooLargeError
from workbench.core.sample import Sample
from workbench.io import limits


def _check_header(im: Image.Image) -> None:
    w, h = im.size
    if w < 1 or h < 1:
        raise DataError(f"image has an empty size {w}x{h}")
    if max(w, h) > limits.MAX_IMAGE_SIDE:
        raise InputTooLargeError(f"image is {w}x{h} px, over the {limits.MAX_IMAGE_SIDE}-px side limit",
                                 "downscale it first")
    if getattr(im, "n_frames", 1) != 1:
        raise DataError(f"image has {im.n_frames} frames", "upload a single still image")


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _check_end(data: bytes, fmt: str, name: str) -> None:
    """Refuse bytes after the image's end marker: polyglots (PNG+ZIP, JPEG+HTML) hide payloads there."""
    if fmt == "PNG" and not data.endswith(_PNG_END):
        raise DataError(f"{name} has data after or instead of the PNG end chunk", "re-save it as a plain PNG")
    if fmt == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise DataError(f"{name} has data after or instead of the JPEG end marker", "re-save it as a plain JPEG")


def decode_image(data: bytes, name: str = "upload") -> Sample:
    """Bytes of a PNG or JPEG -> Sample with float32 (H, W, 3) in [0, 1].

    Raises InputTooLargeError (bytes, sides, pixels) or DataError (format, corrupt) with one line.
    """
    if len(data) > limits.MAX_IMAGE_BYTES:
        raise InputTooLargeError(f"{name} is {len(data) / 1e6:.1f} MB, over the "
                                 f"{limits.MAX_IMAGE_BYTES / 1e6:.0f} MB limit", "upload a smaller image")
    if not data:
        raise DataError(f"{name} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = limits.MAX_IMAGE_PIXELS
            with Image.open(io.BytesIO(data), formats=list(limits.IMAGE_FORMATS)) as im:
                _check_header(im)
                _check_end(data, im.format, name)
                im.verify()  # checksums and the closing chunk, before any pixel is decoded
            with Image.open(io.BytesIO(data), formats=list(limits.IMAGE_FORMATS)) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                arr = np.asarray(im, dtype=np.float32) / 255.0
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputTooLargeError(f"{name} declares more than {limits.MAX_IMAGE_PIXELS} pixels",
                                 "downscale it first") from None
    except Image.UnidentifiedImageError:
        raise DataError(f"{name} is not a PNG or JPEG image", "upload a .png or .jpg file") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{name} could not be decoded ({type(e).__name__})",
                        "the file may be truncated or corrupt") from None
    sha = hashlib.sha256(data).hexdigest()[:12]
    return Sample(f"upload:{sha}", "image", arr, None, "", f"uploaded file {name}")


def load_image_file(path: str | Path) -> Sample:
    """Read a PNG/JPEG file from disk, checking its size before reading it."""
    from workbench.io.safe import read_file

    p = Path(path)
    return decode_image(read_file(p, limits.MAX_IMAGE_BYTES, what="image", hint="give a PNG or JPEG file"), p.name)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _image_files(folder: Path, budget: list[int]) -> list[Path]:
    """PNG/JPEG files directly in ``folder`` (no hidden files, no symbolic links), sorted by name;
    ``budget[0]`` counts the directory entries still allowed to be scanned."""
    out = []
    for entry in sorted(folder.iterdir()):
        budget[0] -= 1
        if budget[0] < 0:
            raise InputTooLargeError(f"{folder} holds over {limits.MAX_FOLDER_ENTRIES} entries",
                                     "point at a smaller folder")
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            out.append(entry)
    return out


def scan_image_folder(root: str | Path) -> tuple[list[Path], list[int | None], tuple[str, ...]]:
    """The images of a folder, in the ImageFolder layout when it has one: ``root/<class>/*.png`` gives
    class = sub-folder name (classes sorted by name, labels their indices); images directly in ``root``
    (and no sub-folders with images) are unlabelled. Nothing is decoded here; counts and total bytes are
    checked against :mod:`workbench.io.limits`. Returns (paths, labels, class names)."""
    p = Path(root).expanduser()
    if not p.is_dir():
        raise DataError(f"{p} is not a folder", "give a folder of PNG/JPEG images (one sub-folder per class)")
    budget = [limits.MAX_FOLDER_ENTRIES]
    subdirs = [d for d in sorted(p.iterdir()) if d.is_dir() and not d.is_symlink() and not d.name.startswith(".")]
    by_class = [(d.name, _image_files(d, budget)) for d in subdirs]
    by_class = [(name, files) for name, files in by_class if files]
    if by_class:
        classes = tuple(name for name, _ in by_class)
        paths = [f for _, files in by_class for f in files]
        labels: list[int | None] = [i for i, (_, files) in enumerate(by_class) for _ in files]
    else:
        classes, paths = (), _image_files(p, budget)
        labels = [None] * len(paths)
    if not paths:
        raise DataError(f"{p} holds no PNG/JPEG image", "put images in it, or one sub-folder of images per class")
    if len(paths) > limits.MAX_DATASET_SAMPLES:
        raise InputTooLargeError(f"{p} holds {len(paths)} images, over the {limits.MAX_DATASET_SAMPLES} limit",
                                 "point at a smaller folder")
    total = sum(f.stat().st_size for f in paths)
    if total > limits.MAX_FOLDER_BYTES:
        raise InputTooLargeError(f"{p} holds {total / 1e9:.1f} GB of images, over the "
                                 f"{limits.MAX_FOLDER_BYTES / 1e9:.0f} GB limit", "point at a smaller folder")
    return paths, labels, classes
