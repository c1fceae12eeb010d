"""Small builders for dataset fixture files (tables, images, hostile ZIPs), all made in code."""

from __future__ import annotations

import csv
import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "gray": (128, 128, 128)}


def write_csv(path: Path, rows: Iterable[Sequence[object]], header: Sequence[str] = ("text", "label"),
              encoding: str = "utf-8", delimiter: str = ",") -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def text_rows(per_class: dict[str, int], prefix: str = "example") -> list[tuple[str, str]]:
    """Unique texts: `per_class` maps label -> number of rows."""
    return [(f"{prefix} {label} number {i} with some words", label)
            for label, n in per_class.items() for i in range(n)]


def image_bytes(color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (8, 8),
                fmt: str = "PNG", mode: str = "RGB", seed: int = 0) -> bytes:
    """A tiny solid image; `seed` changes one pixel so images differ byte-wise."""
    img = Image.new(mode, size, color if mode != "L" else color[0])
    img.putpixel((0, 0), (seed % 256, (seed // 256) % 256, 7) if mode == "RGB" else seed % 256)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def rgba_png(rgba: tuple[int, int, int, int] = (0, 0, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (4, 4), rgba).save(buf, "PNG")
    return buf.getvalue()


def truncated_png() -> bytes:
    data = image_bytes(size=(64, 64), seed=3)
    return data[: len(data) // 2]


def png_with_size(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR claims width x height (CRC fixed), to test pixel limits cheaply."""
    data = bytearray(image_bytes(size=(1, 1)))
    # Layout: 8-byte signature, then the IHDR chunk: length(4) 'IHDR'(4) width(4) height(4) ...
    data[16:24] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF  # over chunk type + 13 data bytes
    data[29:33] = struct.pack(">I", crc)
    return bytes(data)


def image_entries(per_class: dict[str, int], prefix: str = "", fmt: str = "PNG", ext: str = "png",
                  start: int = 0) -> dict[str, bytes]:
    """`{prefix}<label>/<i>.<ext>` -> tiny images, distinct unless two calls share `start`."""
    out = {}
    seed = start
    for label, n in per_class.items():
        color = COLORS.get(label, (100, 100, 100))
        for i in range(n):
            seed += 1
            out[f"{prefix}{label}/{i}.{ext}"] = image_bytes(color, fmt=fmt, seed=seed)
    return out


def write_zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def write_zip_raw_names(path: Path, entries: dict[str, bytes]) -> Path:
    """Like write_zip but keeps names exactly (ZipFile.writestr would not normalise a ZipInfo)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo("placeholder")
            info.filename = name  # bypass ZipInfo's own clean-up of backslashes and drive letters
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def write_zip_with_symlink(path: Path, entries: dict[str, bytes], link_name: str, target: str) -> Path:
    write_zip(path, entries)
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo(link_name)
        info.create_system = 3  # Unix, so external_attr carries a mode
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return path


def write_bomb_zip(path: Path, entries: dict[str, bytes], bomb_name: str = "cat/bomb.png",
                   size: int = 8 * 2**20) -> Path:
    """A ZIP whose one entry is `size` zero bytes: compresses about 1000:1."""
    write_zip(path, entries)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(bomb_name, b"\x00" * size)
    return path


def write_image_folder(root: Path, entries: dict[str, bytes]) -> Path:
    for name, data in entries.items():
        file = root / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
    return root


def listing(root: Path) -> list[str]:
    """Every path under root (files and folders), for "nothing was written" checks."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def shapes_entries(n: int = 24, seed: int = 0) -> dict[str, bytes]:
    """Bright squares vs dark stripes (28 × 28 PNGs), `n` per class, for image training tests."""
    import numpy as np

    rng = np.random.default_rng(seed)
    entries = {}
    for i in range(n):
        a = rng.integers(0, 60, (28, 28, 3), dtype=np.uint8)
        a[6:22, 6:22] = 230
        b = rng.integers(0, 60, (28, 28, 3), dtype=np.uint8)
        b[:, ::4] = 160
        for label, arr in (("square", a), ("stripes", b)):
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            entries[f"{label}/{i}.png"] = buf.getvalue()
    return entries
