"""Images: the one reader every model input goes through, and where an image may come from.

`decode_image` turns bytes into the upright RGB image training, prediction, explanation and export
all see; `open_image` does it for an `input` reference (a file path or a zip:// reference);
`decode_upload` for a file uploaded for one prediction. `validate_image` decodes a dataset's image
once at load time so damage shows then, and `inside_folder` keeps the image paths of a stored table
inside that table's own folder.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import statistics
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.data import archive
from core.data.limits import DataLimits
from core.data.messages import clip, fmt_bytes
from core.data.read import read_file_capped
from core.errors import CorruptImageError, DataError, FileTooLargeError, ImageTooLargeError

_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")  # only the decoders we advertise get to run


def read_image_bytes(ref: str, *, limits: DataLimits | None = None) -> bytes:
    """The raw bytes behind an image `input` reference (a file path or a zip:// reference)."""
    limits = limits or DataLimits()
    ref = os.fspath(ref)
    if archive.is_zip_ref(ref):
        zip_path, member = archive.parse_ref(ref)
        zf = archive.open_cached(zip_path)
        return archive.read_member(zf, member, limits.max_file_bytes, zip_path.name)
    return read_file_capped(Path(ref), limits)


def open_image(ref: str, *, limits: DataLimits | None = None) -> Image.Image:
    """Open an image `input` reference as an upright RGB image (alpha flattened onto white)."""
    limits = limits or DataLimits()
    ref = os.fspath(ref)
    return decode_image(read_image_bytes(ref, limits=limits), _describe_ref(ref), limits=limits)


def decode_image(data: bytes, where: str, *, limits: DataLimits | None = None) -> Image.Image:
    """Image bytes as the upright RGB image every model sees: the one reader for training,
    prediction, explanation and export. `where` names the file in error messages."""
    limits = limits or DataLimits()
    if len(data) > limits.max_file_bytes:
        raise FileTooLargeError(f"{where} is {fmt_bytes(len(data))}, over the limit of "
                                f"{fmt_bytes(limits.max_file_bytes)}; use a smaller image.")
    image = _open_checked(data, where, limits)
    try:
        image.load()
        if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation: phones store photos sideways
            image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptImageError(f"{where} cannot be decoded ({exc}); "
                                f"replace or remove that image.") from None
    return _to_rgb(image)


# An upload for one prediction gets the same pixel budget as a training image.
UPLOAD_MAX_PIXELS = DataLimits.max_image_pixels


def decode_upload(data: bytes, name: str) -> Image.Image:
    """A file uploaded for one prediction or explanation, read by `decode_image` so it is seen exactly
    as training saw its images; an unreadable or oversized file is a DataError naming the upload."""
    try:
        return decode_image(data, repr(name), limits=DataLimits(max_image_pixels=UPLOAD_MAX_PIXELS))
    except CorruptImageError:
        raise DataError(f"{name!r} is not a readable image; upload a PNG, JPEG, WebP or BMP file.") from None
    except ImageTooLargeError:
        raise DataError(f"{name!r} is too large ({UPLOAD_MAX_PIXELS:,} pixels at most); upload a smaller "
                        "image.") from None


def median_image_side(refs: Iterable[str], *, sample: int = 16) -> int | None:
    """The median shorter side, in pixels, of the first `sample` images that open (None if none does):
    what an automatic input size is chosen from."""
    sides = []
    for ref in itertools.islice(refs, sample):
        try:
            sides.append(min(open_image(ref).size))
        except Exception:  # noqa: BLE001 - an odd image only affects the estimate
            continue
    return int(statistics.median(sides)) if sides else None


def _describe_ref(ref: str) -> str:
    if archive.is_zip_ref(ref):
        zip_path, member = archive.parse_ref(ref)
        return f"ZIP entry '{member}' in '{zip_path.name}'"
    return f"Image '{ref}'"


def _open_checked(data: bytes, where: str, limits: DataLimits) -> Image.Image:
    """Open (header only) with both our pixel limit and PIL's bomb guard mapped to typed errors."""
    if not data:
        raise CorruptImageError(f"{where} is an empty file; replace or remove it.")
    try:
        # Turning PIL's bomb warning into an error touches the global filter list; the only
        # filter ever added is this one, so an interleaving thread can at worst keep it.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{where} is too large to decode safely ({exc}); resize it.") from None
    except UnidentifiedImageError:
        raise CorruptImageError(f"{where} is not a readable PNG, JPEG, WebP or BMP image; replace or "
                                f"remove it.") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptImageError(f"{where} cannot be read ({exc}); replace or remove it.") from None
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise ImageTooLargeError(f"{where} is {width}x{height} = {width * height:,} pixels, above the "
                                 f"limit of {limits.max_image_pixels:,}; resize it or raise "
                                 f"max_image_pixels.")
    return image


def validate_image(data: bytes, where: str, limits: DataLimits) -> None:
    """Decode the whole image once so truncated or damaged files fail now, not mid-training."""
    image = _open_checked(data, where, limits)
    try:
        image.verify()  # checks structure and checksums (PNG CRCs) without decoding pixels
        image = Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS)  # verify() spends the object
        image.draft("RGB", (1, 1))  # JPEG: decode at 1/8 scale; still reads every byte
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptImageError(f"{where} is damaged or truncated ({exc}); replace or remove it.") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode.startswith(("I", "F")):
        image = _to_8bit(image)  # convert("RGB") would clip 16-bit scans to almost-white
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale a 16-bit / 32-bit / float grayscale image into 8 bits by its nominal range."""
    values = np.asarray(image, dtype=np.float64)
    peak = float(values.max()) if values.size else 0.0
    top = 1.0 if peak <= 1.0 and image.mode == "F" else 255.0 if peak <= 255 else 65535.0
    return Image.fromarray((values / top * 255).clip(0, 255).astype(np.uint8), "L")


def digest(data: bytes) -> str:
    """What an image is known by in duplicate, leakage and fingerprint checks: the same bytes under
    another path are the same image."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_STORED_IMAGES_ONLY = ("an uploaded or saved CSV can only use images stored with it, so fix the path or upload "
                       "a ZIP of <label>/<image> folders instead")


def inside_folder(raw: str, base: Path, where: str) -> Path:
    """`raw` resolved (symlinks too) inside `base`, an already resolved folder, or a refusal.

    Whatever lies outside gets one message, whether or not it exists, and no message shows the
    server's folders: an upload must not learn what else is on the server.
    """
    outside = DataError(f"{where} names an image outside this dataset's own folder (absolute paths, '~' "
                        f"and '..' are not allowed here); {_STORED_IMAGES_ONLY}.")
    if raw.startswith("~") or Path(raw).is_absolute():
        raise outside
    try:
        path = (base / raw).resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop, an overlong name
        raise outside from None
    if not path.is_relative_to(base):
        raise outside
    if not path.is_file():
        raise DataError(f"{where} points to '{clip(raw)}', which is not in this dataset's folder; "
                        f"{_STORED_IMAGES_ONLY}.")
    return path


def resolves_inside(file: Path, root: Path) -> bool:
    """Whether `file`, symlinks followed, lies inside `root` (an already resolved folder)."""
    try:
        return file.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a symlink loop
        return False
