"""The resource limits on what a dataset may be and decode to, and the errors that enforce them.

Every reader in core/data takes a `DataLimits`; the messages here name the limit that was hit and
the field that raises it. Imports only `core.errors` and `core.data.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.data.messages import PLURAL, fmt_bytes
from core.errors import ConfigError, DecodedTooLargeError


@dataclass(frozen=True)
class DataLimits:
    """Resource limits that keep a hostile or accidental upload from exhausting memory or disk."""

    max_file_bytes: int = 200 * 2**20  # any single input file (a table, an image, a ZIP member)
    max_image_pixels: int = 40_000_000  # width * height; decompression-bomb guard
    max_archive_bytes: int = 2 * 2**30  # sum of uncompressed sizes in a ZIP or image folder
    max_archive_ratio: float = 200.0  # uncompressed / compressed, per entry and overall
    max_archive_entries: int = 200_000
    # What a table may decode to, whatever its size on disk: a few kB of Parquet (repeated strings,
    # run-length zeros) or of commas can otherwise become gigabytes of Python objects.
    max_decoded_bytes: int = 256 * 2**20  # text and values a table decodes to (Parquet; CSV/JSON text)
    max_rows: int = 1_000_000  # rows, lines or records of a table
    max_columns: int = 1_000
    # rows x columns (Parquet: leaf values; JSON: values of any kind). Each cell costs ~60-80 bytes as a
    # Python object on top of its text, so 4M cells stay within a few hundred MB.
    max_cells: int = 4_000_000

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_image_pixels", "max_archive_bytes", "max_archive_entries",
                     "max_decoded_bytes", "max_rows", "max_columns", "max_cells"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"DataLimits.{name} must be a positive whole number, got {value!r}.")
        ratio = self.max_archive_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
            raise ConfigError(f"DataLimits.max_archive_ratio must be a positive number, got {ratio!r}.")


def decoded_too_large(path: Path, size: int, limits: DataLimits) -> DecodedTooLargeError:
    return DecodedTooLargeError(
        f"'{path.name}' decodes to {fmt_bytes(size)} or more, over the limit of "
        f"{fmt_bytes(limits.max_decoded_bytes)} (max_decoded_bytes), so it was refused before "
        f"being read into memory; use a smaller file or a sample, or raise max_decoded_bytes.")


def too_many_rows(path: Path, unit: str, limits: DataLimits) -> DecodedTooLargeError:
    return DecodedTooLargeError(
        f"'{path.name}' has more than {limits.max_rows:,} {PLURAL[unit]}, the limit (max_rows); use a "
        f"sample of the file, or raise max_rows.")


def too_many_columns(path: Path, n: int, limits: DataLimits) -> DecodedTooLargeError:
    return DecodedTooLargeError(
        f"'{path.name}' has {n:,} columns, over the limit of {limits.max_columns:,} (max_columns); keep "
        f"only the columns you need, or raise max_columns.")


def too_many_cells(path: Path, rows: int, width: int, limits: DataLimits) -> DecodedTooLargeError:
    return DecodedTooLargeError(
        f"'{path.name}' holds more than {limits.max_cells:,} cells ({rows:,} rows x {width:,} columns), "
        f"the limit (max_cells); drop the columns you do not need or use a sample, or raise max_cells.")
