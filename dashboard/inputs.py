"""Reading what a user uploads for a single prediction (not datasets: those go through core.data)."""

from __future__ import annotations

import io
from typing import Any

from core.errors import DataError

MAX_IMAGE_PIXELS = 40_000_000


def read_image(data: bytes, name: str) -> Any:
    """A PIL RGB image from uploaded bytes, or a DataError saying what is wrong with the file."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name!r} is not a readable image ({type(exc).__name__}); upload a PNG, JPEG, WebP "
                        "or BMP file.") from None
    except Image.DecompressionBombError:
        raise DataError(f"{name!r} is too large ({MAX_IMAGE_PIXELS:,} pixels at most); upload a smaller "
                        "image.") from None
    return img.convert("RGB")
