"""An image uploaded to Predict or Explain is read by the same reader as training data
(`core.data.decode_image`): upright, transparency on white, 16-bit scans scaled, not clipped."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from core.data import decode_image
from core.data import decode_upload as read_image
from core.errors import DataError


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_transparent_pixels_become_white_not_their_hidden_colour() -> None:
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red everywhere, but the left half fully transparent
    rgba[:, 4:, 3] = 255
    img = read_image(_png(Image.fromarray(rgba, "RGBA")), "logo.png")
    arr = np.asarray(img)
    assert img.mode == "RGB"
    assert (arr[:, :4] == 255).all() and (arr[:, 4:] == (200, 0, 0)).all()


def test_an_exif_rotated_phone_photo_is_turned_upright() -> None:
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: "rotate 90° clockwise to view"
    buf = io.BytesIO()
    photo.save(buf, "JPEG", exif=exif, quality=95)
    data = buf.getvalue()
    img = read_image(data, "phone.jpg")
    assert img.size == (20, 40)  # width and height swapped back
    np.testing.assert_array_equal(np.asarray(img), np.asarray(decode_image(data, "phone.jpg")))


def test_a_16_bit_scan_is_scaled_into_8_bits() -> None:
    values = np.linspace(0, 65535, 64 * 4).reshape(4, 64).astype(np.uint16)
    img = read_image(_png(Image.fromarray(values)), "scan.png")
    arr = np.asarray(img)
    assert img.mode == "RGB" and arr.min() == 0 and arr.max() == 255 and len(np.unique(arr)) > 50


@pytest.mark.parametrize(("data", "words"), [(b"hello", "not a readable image"), (b"", "not a readable image")])
def test_unreadable_uploads_are_a_data_error_naming_the_file(data: bytes, words: str) -> None:
    with pytest.raises(DataError, match=words) as err:
        read_image(data, "notes <b>.png")
    assert "'notes <b>.png'" in str(err.value) and "upload a PNG, JPEG, WebP or BMP" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # one sentence, no chained trace


def test_an_image_over_the_pixel_limit_is_refused_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.data import images

    monkeypatch.setattr(images, "UPLOAD_MAX_PIXELS", 100)
    with pytest.raises(DataError, match="'big.png' is too large") as err:
        read_image(_png(Image.new("RGB", (20, 20))), "big.png")
    assert "upload a smaller image" in str(err.value)


def test_reading_uploads_does_not_load_torch() -> None:
    code = ("import sys, core.data; core.data.decode_upload(" + repr(_png(Image.new('RGB', (2, 2))))
            + ", 'x.png'); print(sorted(m for m in ('torch', 'transformers', 'captum', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the Train page's automatic image size reads a sample of the training images -------------

def _image_files(tmp_path, sizes: list[tuple[int, int]]) -> list[str]:
    refs = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"img{i}.png"
        path.write_bytes(_png(Image.new("RGB", size)))
        refs.append(str(path))
    return refs


def test_the_median_shorter_side_of_the_sampled_images(tmp_path) -> None:
    from core.data import median_image_side

    refs = _image_files(tmp_path, [(40, 10), (30, 50), (64, 64)])  # shorter sides 10, 30, 64
    assert median_image_side(refs) == 30
    assert median_image_side(refs[:2]) == 20  # an even count: the mean of the middle two


def test_only_the_first_sample_images_are_opened(tmp_path) -> None:
    from core.data import median_image_side

    refs = _image_files(tmp_path, [(8, 8)] * 3 + [(100, 100)] * 4)
    assert median_image_side(refs, sample=3) == 8
    assert median_image_side(iter(refs), sample=7) == 100  # any iterable, read no further than needed


def test_unreadable_images_are_skipped_and_none_is_no_answer(tmp_path) -> None:
    from core.data import median_image_side

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    refs = [str(broken), str(tmp_path / "missing.png"), *_image_files(tmp_path, [(12, 20)])]
    assert median_image_side(refs) == 12
    assert median_image_side(refs[:2]) is None
    assert median_image_side([]) is None


def test_a_dataset_profile_reads_a_sample_of_the_training_split(tmp_path) -> None:
    """The Train page's summary of a dataset: classes and sizes, and the typical input size from at
    most TEXT_SAMPLE training texts."""
    import pandas as pd

    from core.data import dataset_profile, load_dataset
    from core.data.profile import mean_words

    rows = [("one two three four", "pos" if i % 2 else "neg") for i in range(60)]
    path = tmp_path / "t.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    info = dataset_profile(load_dataset(path))
    assert info["task"] == "text" and info["labels"] == ["neg", "pos"] and info["median_side"] is None
    assert info["mean_words"] == 4.0 and sum(info["sizes"].values()) == 60
    assert mean_words(pd.Series(["a b", "a b c d"] + ["x"] * 10), sample=2) == 3.0
    assert mean_words(pd.Series([], dtype=str)) is None
