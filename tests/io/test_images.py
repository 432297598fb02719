import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from workbench.core.errors import DataError, InputTooLargeError
from workbench.io import limits
from workbench.io.images import decode_image, load_image_file


def _png(w, h, color=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def _bomb_png(w: int, h: int) -> bytes:
    """A tiny PNG whose header declares w x h pixels (a decompression bomb's first line)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_valid_png_and_jpeg_decode_to_float_rgb():
    s = decode_image(_png(30, 20), "a.png")
    assert s.array.shape == (20, 30, 3) and s.array.dtype == np.float32
    assert abs(float(s.array[0, 0, 0]) - 200 / 255) < 1e-6 and s.id.startswith("upload:")
    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, "JPEG")
    assert decode_image(buf.getvalue()).array.shape == (8, 8, 3)


def test_declared_giant_images_are_refused_before_decoding():
    with pytest.raises(InputTooLargeError):
        decode_image(_bomb_png(20000, 20000))  # 400 MP declared in a few hundred bytes
    with pytest.raises(InputTooLargeError):
        decode_image(_bomb_png(limits.MAX_IMAGE_SIDE + 1, 10))


@pytest.mark.parametrize("data, err", [
    (b"", DataError), (b"GIF89a" + b"\0" * 100, DataError), (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, DataError),
    (b"<svg onload=alert(1)>", DataError), (b"\0" * (limits.MAX_IMAGE_BYTES + 1), InputTooLargeError),
])
def test_bad_bytes_give_one_line_typed_errors(data, err):
    with pytest.raises(err) as e:
        decode_image(data, "x")
    assert "\n" not in e.value.one_line()


def test_gif_with_png_extension_is_refused(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "GIF")
    p = tmp_path / "fake.png"
    p.write_bytes(buf.getvalue())
    with pytest.raises(DataError):
        load_image_file(p)
    with pytest.raises(DataError):
        load_image_file(tmp_path / "missing.png")
