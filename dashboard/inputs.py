"""Reading what a user uploads for a single prediction (not datasets: those go through core.data)."""

from __future__ import annotations

from typing import Any

from core.errors import DataError

MAX_IMAGE_PIXELS = 40_000_000


def read_image(data: bytes, name: str) -> Any:
    """A PIL RGB image from uploaded bytes, read by training's own reader (`core.data.decode_image`:
    EXIF rotation applied, transparency on white, 16-bit scans scaled), so Predict and Explain see
    exactly what the model was trained on; or a DataError saying what is wrong with the file."""
    from core.data import DataLimits, decode_image
    from core.errors import CorruptImageError, ImageTooLargeError

    try:
        return decode_image(data, repr(name), limits=DataLimits(max_image_pixels=MAX_IMAGE_PIXELS))
    except CorruptImageError:
        raise DataError(f"{name!r} is not a readable image; upload a PNG, JPEG, WebP or BMP file.") from None
    except ImageTooLargeError:
        raise DataError(f"{name!r} is too large ({MAX_IMAGE_PIXELS:,} pixels at most); upload a smaller "
                        "image.") from None
