"""Dataset loading and validation: files, folders, ZIPs and demos in; a split `LabeledData` out.

Every problem a user can fix raises a typed `core.errors.DataError` whose message is one sentence
naming the file, the row (as a spreadsheet shows it: header is row 1) or ZIP entry, and the fix.
Things worth knowing but not fatal (duplicates, leakage, imbalance, truncation, encoding guesses)
become strings in `LabeledData.warnings`. Loading is read-only: nothing is written or extracted.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import json
import lzma
import math
import os
import re
import warnings
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from core.data import archive
from core.data import store as datastore
from core.data.dataset import SPLITS, LabeledData, Task, content_fingerprint
from core.errors import (
    ArchiveTooLargeError,
    ConfigError,
    CorruptImageError,
    DataError,
    DecodedTooLargeError,
    EmptyFileError,
    EmptyTextError,
    EncodingError,
    FileTooLargeError,
    HeaderOnlyError,
    ImageTooLargeError,
    MalformedRowError,
    MissingColumnError,
    MissingLabelError,
    SingleClassError,
    TooFewExamplesError,
    UnknownLabelError,
    UnsupportedFormatError,
)


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


# --- formats and column names ---------------------------------------------------------------

_TABLE_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "txt", ".jsonl": "jsonl",
                     ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
_SUPPORTED = (".csv, .tsv, .txt, .jsonl, .json, .parquet (text; .gz/.bz2/.xz compressed too), "
              ".zip or a folder of <label>/<image> subfolders (images)")
_HINTS = {".xlsx": "save it as 'CSV UTF-8' from your spreadsheet app",
          ".xls": "save it as 'CSV UTF-8' from your spreadsheet app",
          ".ods": "save it as CSV from your spreadsheet app",
          ".tar": "re-pack it as a .zip", ".tgz": "re-pack it as a .zip", ".7z": "re-pack it as a .zip",
          ".rar": "re-pack it as a .zip"}

# Tiers of column names: a unique match in an earlier tier wins; two matches in one tier are
# ambiguous. The last tier matches any word of a compound name such as "review_text".
_TEXT_TIERS = (("text",),
               ("sentence", "review", "content", "body", "document", "comment", "tweet", "utterance",
                "message", "question", "query", "abstract", "description", "passage", "paragraph",
                "excerpt", "post", "sms", "headline", "title", "prompt", "input", "doc", "statement",
                "phrase", "transcript", "email", "summary", "caption"))
_LABEL_TIERS = (("label",),
                ("labels", "sentiment", "category", "class", "target", "topic", "y", "intent",
                 "emotion", "polarity", "genre", "tag", "class_label", "label_text", "rating", "stars",
                 "classification", "outcome", "gold_label", "output"))
_PATH_TIERS = (("path", "image", "filepath", "file", "filename", "file_path", "image_path"),
               ("img", "image_file", "img_path", "file_name", "image_name", "imagepath", "picture"))
_SPLIT_NAMES = ("split",)
_SPLIT_ALIASES = {"train": "train", "training": "train",
                  "validation": "validation", "val": "validation", "valid": "validation",
                  "dev": "validation", "eval": "validation", "validate": "validation",
                  "test": "test", "testing": "test"}
_TOKENS_PER_WORD = 1.3  # rough subword tokens per whitespace word for English BPE/WordPiece
_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")  # only the decoders we advertise get to run
_PLURAL = {"row": "rows", "line": "lines", "record": "records", "entry": "entries", "file": "files"}


# --- public API -----------------------------------------------------------------------------

def load_dataset(source: str | os.PathLike[str], *, task: str | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 split_column: str | None = None, seed: int = 0, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, max_samples: int | None = None,
                 max_text_tokens_hint: int = 256, limits: DataLimits = DataLimits(),
                 confine: bool = False) -> LabeledData:
    """Load, validate and split a dataset for training.

    `source` is a table file (CSV/TSV/TXT/JSONL/JSON/Parquet; image paths in a `path` column make
    it an image dataset), an image ZIP or folder laid out as `<label>/<file>`, or `demo:NAME`.
    For image tables, `text_column` names the column holding the image paths.

    Image paths in a table stored by tunescope itself (a staged upload or a saved dataset) must stay
    inside that table's own folder; `confine=True` applies the same rule to any other source (the
    dashboard passes it). Other local tables, a user's own files on the command line, keep local paths.
    """
    _check_options(task, val_fraction, test_fraction, max_samples, seed)
    src = _resolve_source(source, task, text_column, label_column, confine)
    ex = _read_examples(src, split_column, limits)
    _check_classes(ex)
    if max_samples is not None and max_samples < len(ex.labels):
        ex = ex.subset(_subsample(ex.labels, max_samples, seed))
    notes = list(ex.warnings)
    if ex.splits is not None:
        assignment = _splits_from_column(ex, val_fraction, test_fraction, seed, notes)
    else:
        assignment = _stratified_split(ex.labels, val_fraction, test_fraction, seed)
    labels = _sort_labels(set(ex.labels))
    notes += _quality_warnings(ex, assignment, labels, max_text_tokens_hint)
    _require_all_splits(ex, assignment)
    return _assemble(src, ex, assignment, labels, notes)


def load_for_config(cfg: Any) -> LabeledData:
    """The dataset a RunConfig describes, loaded and split exactly as training will see it."""
    d = cfg.data
    return load_dataset(d.source, text_column=d.text_column, label_column=d.label_column,
                        split_column=d.split_column, seed=d.split_seed, val_fraction=d.val_fraction,
                        test_fraction=d.test_fraction, max_samples=d.max_samples,
                        max_text_tokens_hint=cfg.model.max_length)


def _require_all_splits(ex: _Examples, assignment: list[str]) -> None:
    """Training needs examples to learn from, to pick the best epoch on, and to score on."""
    empty = [s for s in ("train", "validation", "test") if s not in assignment]
    if empty:
        raise TooFewExamplesError(
            f"'{ex.file}' has only {len(assignment)} usable examples, too few for a "
            f"{' and '.join(empty)} split; add examples (a few per class at least) or give a split "
            f"column with train, validation and test rows.")


def load_labeled_file(path: str | os.PathLike[str], *, labels: Sequence[str] | None = None,
                      task: str | None = None, text_column: str | None = None,
                      label_column: str | None = None, max_text_tokens_hint: int = 256,
                      limits: DataLimits = DataLimits(), confine: bool = False) -> LabeledData:
    """Load a labelled file for evaluation: every row goes to the "test" split, nothing is split.

    With `labels` (the model's classes, in its order) every label must be one of them and
    `label_id` indexes into that list; otherwise the file's own labels are used. `confine` as in
    `load_dataset`.
    """
    _check_options(task, 0.0, 0.0, None, 0)
    src = _resolve_source(path, task, text_column, label_column, confine)
    ex = _read_examples(src, None, limits, use_split_column=False)
    if labels is not None:
        known = [str(label) for label in labels]
        _check_known_labels(ex, known)
    else:
        known = _sort_labels(set(ex.labels))
    assignment = ["test"] * len(ex.labels)
    notes = list(ex.warnings) + _quality_warnings(ex, assignment, known, max_text_tokens_hint)
    return _assemble(src, ex, assignment, known, notes)


def inspect_columns(path: str | os.PathLike[str], *, limits: DataLimits = DataLimits()) -> dict[str, Any]:
    """Describe a source for UI/CLI help without failing on ambiguity.

    Returns task, format, columns, the detected text/label/split/path column (None when missing or
    ambiguous), the candidates for each, the number of rows and any reading warnings.
    """
    src = _resolve_source(path, None, None, None)
    kind = _kind_of(src.path)
    info: dict[str, Any] = {"source": str(path), "format": kind, "task": "image", "columns": [],
                            "rows": None, "text_column": None, "label_column": None,
                            "split_column": None, "path_column": None, "text_candidates": [],
                            "label_candidates": [], "warnings": []}
    if kind in ("zip", "folder"):
        return info
    table = _read_table(src.path, kind, limits)
    split = _find_split_column(table.columns)
    exclude = {split} if split else set()
    path_col = _detect_path_column(table, exclude)
    text_cands = _candidates(table.columns, _TEXT_TIERS, exclude)
    input_col = path_col or (text_cands[0] if len(text_cands) == 1 else src.text_column)
    label_cands = _candidates(table.columns, _LABEL_TIERS, exclude | {input_col})
    info.update(task="image" if path_col else "text", columns=list(table.columns), rows=len(table),
                split_column=split, path_column=path_col, text_candidates=text_cands,
                label_candidates=label_cands, warnings=list(table.warnings),
                text_column=input_col,
                label_column=label_cands[0] if len(label_cands) == 1 else src.label_column)
    return info


def read_image_bytes(ref: str, *, limits: DataLimits | None = None) -> bytes:
    """The raw bytes behind an image `input` reference (a file path or a zip:// reference)."""
    limits = limits or DataLimits()
    ref = os.fspath(ref)
    if archive.is_zip_ref(ref):
        zip_path, member = archive.parse_ref(ref)
        zf = archive.open_cached(zip_path)
        return archive.read_member(zf, member, limits.max_file_bytes, zip_path.name)
    return _read_file_capped(Path(ref), limits)


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
        raise FileTooLargeError(f"{where} is {archive.fmt_bytes(len(data))}, over the limit of "
                                f"{archive.fmt_bytes(limits.max_file_bytes)}; use a smaller image.")
    image = _open_checked(data, where, limits)
    try:
        image.load()
        if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation: phones store photos sideways
            image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptImageError(f"{where} cannot be decoded ({exc}); "
                                f"replace or remove that image.") from None
    return _to_rgb(image)


# --- sources --------------------------------------------------------------------------------

@dataclass
class _Source:
    given: str
    path: Path
    name: str
    task: str | None
    text_column: str | None
    label_column: str | None
    confined: bool = False  # image paths in a table must resolve inside the table's own folder


def _check_options(task: str | None, val_fraction: float, test_fraction: float,
                   max_samples: int | None, seed: int) -> None:
    if task not in (None, "text", "image"):
        raise ConfigError(f"task must be 'text' or 'image' (or empty to detect it), got {task!r}.")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ConfigError(f"{name} must be at least 0 and below 1, got {value}.")
    if val_fraction + test_fraction >= 0.9:
        raise ConfigError("val_fraction + test_fraction must leave at least 10% for training.")
    if max_samples is not None and (isinstance(max_samples, bool) or max_samples < 1):
        raise ConfigError(f"max_samples must be a positive number, got {max_samples!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative whole number, got {seed!r}.")


def _resolve_source(source: str | os.PathLike[str], task: str | None, text_column: str | None,
                    label_column: str | None, confine: bool = False) -> _Source:
    given = os.fspath(source)
    if isinstance(given, str) and given.startswith("demo:"):
        return _resolve_demo(given, task, text_column, label_column)
    if not str(given).strip():
        raise DataError("The dataset source is empty; give a file, a folder, a ZIP or demo:NAME.")
    path = Path(given).expanduser()
    if not path.exists():
        if confine or _in_tunescope_storage(path):  # a server path says nothing to a dashboard user
            raise DataError(f"The dataset '{path.name}' is no longer there (it may have been deleted); "
                            "pick or upload it again.")
        raise DataError(f"'{given}' does not exist; check the path (or use demo:NAME for a demo).")
    saved_name = _saved_dataset_name(path)
    # Decided from where the file lives, not only from a keyword: a queued job carries just the
    # source path, and the worker must apply the same rule the page did.
    confined = confine or saved_name is not None or _in_tunescope_storage(path)
    return _Source(str(given), path, saved_name or _stem(path), task, text_column, label_column, confined)


def _in_tunescope_storage(path: Path) -> bool:
    """True inside the upload staging or saved-dataset areas of $TUNESCOPE_HOME (symlinks resolved)."""
    try:
        real = path.resolve()
        roots = [datastore.uploads_dir().resolve(), datastore.datasets_dir().resolve()]
    except (OSError, RuntimeError):
        return True  # cannot tell: the stricter rule is the safe one
    return any(real.is_relative_to(root) for root in roots)


def _saved_dataset_name(path: Path) -> str | None:
    """The name a dataset was saved under, when `path` is the `data.<ext>` file of a saved dataset's
    folder (its stem, "data", would otherwise name every saved dataset alike), else None."""
    meta = path.parent / datastore.META
    if path.is_dir() or _stem(path) != "data" or not meta.is_file():
        return None
    try:
        with open(meta, "rb") as fh:
            record = json.loads(fh.read(2**20))  # a saved dataset's own small record; cap a foreign one
    except (OSError, ValueError):
        return None
    name = record.get("name") if isinstance(record, dict) else None
    # The record must describe this very folder, so a stray dataset.json elsewhere changes nothing.
    return name if isinstance(name, str) and name == path.parent.name and datastore.NAME.fullmatch(name) else None


def _resolve_demo(given: str, task: str | None, text_column: str | None,
                  label_column: str | None) -> _Source:
    name = given[len("demo:"):].strip()
    try:
        from core.data import demos  # lazy: demos are optional and must not be needed to load files
    except ImportError:
        raise DataError(f"'{given}' names a demo, but demo datasets are not available in this "
                        f"install; pass a file or folder instead.") from None
    try:
        spec = demos.get_demo(name)
        path = Path(demos.demo_path(name))
    except LookupError:
        raise DataError(f"There is no demo called '{name}'; check the name after 'demo:'.") from None
    return _Source(given, path, getattr(spec, "name", name) or name,
                   task or getattr(spec, "task", None),
                   text_column or getattr(spec, "text_column", None),
                   label_column or getattr(spec, "label_column", None))


def _stem(path: Path) -> str:
    name = path.name
    for _ in range(2):  # "reviews.csv.gz" -> "reviews"
        suffix = Path(name).suffix.lower()
        if suffix in _COMPRESSIONS or suffix in _TABLE_EXTENSIONS or suffix == ".zip":
            name = name[: -len(suffix)]
    return name or path.name


def _kind_of(path: Path) -> str:
    """'folder', 'zip', or a table format; raises UnsupportedFormatError otherwise."""
    if path.is_dir():
        return "folder"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".zip":
        return "zip"
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext in _TABLE_EXTENSIONS:
        if _TABLE_EXTENSIONS[ext] == "parquet" and path.suffix.lower() in _COMPRESSIONS:
            raise UnsupportedFormatError(f"'{path.name}' is a compressed Parquet file; Parquet is "
                                         f"already compressed, so decompress it first.")
        return _TABLE_EXTENSIONS[ext]
    hint = _HINTS.get(ext) or ("zip images into <label>/ folders" if archive.is_image_name(ext)
                               else "convert it to CSV")
    raise UnsupportedFormatError(f"'{path.name}' has an unsupported type ('{ext or 'no extension'}'); "
                                 f"use {_SUPPORTED} — {hint}.")


# --- reading raw bytes and text -------------------------------------------------------------

def _read_file_capped(path: Path, limits: DataLimits) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise FileTooLargeError(
                f"'{path.name}' is {archive.fmt_bytes(size)}, over the limit of "
                f"{archive.fmt_bytes(limits.max_file_bytes)}; use a smaller file (or a sample) "
                f"or raise max_file_bytes.")
        return path.read_bytes()
    except FileNotFoundError:  # the name only: messages never show the server's folders
        raise DataError(f"'{path.name}' does not exist; check the path.") from None
    except IsADirectoryError:
        raise DataError(f"'{path.name}' is a folder, not a file.") from None
    except PermissionError:
        raise DataError(f"'{path.name}' cannot be read (permission denied); check its permissions.") from None


def _read_table_bytes(path: Path, limits: DataLimits) -> bytes:
    data = _read_file_capped(path, limits)
    kind = _COMPRESSIONS.get(path.suffix.lower())
    if kind:
        data = _decompress(path, data, kind, limits.max_file_bytes)
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise EmptyFileError(f"'{path.name}' is empty; it needs a header row and at least one "
                             f"labelled example.")
    return data


def _decompress(path: Path, data: bytes, kind: str, cap: int) -> bytes:
    """Decompress in memory, stopping one byte past the cap so a bomb cannot fill memory."""
    openers = {"gzip": lambda f: gzip.GzipFile(fileobj=f), "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}
    try:
        with openers[kind](io.BytesIO(data)) as fh:
            out = fh.read(cap + 1)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise DataError(f"'{path.name}' is not a readable {kind} file ({exc}); re-compress it or "
                        f"use the uncompressed file.") from None
    if len(out) > cap:
        raise FileTooLargeError(f"'{path.name}' decompresses to more than the limit of "
                                f"{archive.fmt_bytes(cap)}; use a smaller file or raise max_file_bytes.")
    return out


_BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"), (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
         (b"\xef\xbb\xbf", "utf-8", "UTF-8"), (b"\xff\xfe", "utf-16-le", "UTF-16"),
         (b"\xfe\xff", "utf-16-be", "UTF-16"))


def _decode(path: Path, data: bytes) -> tuple[str, list[str]]:
    """Text and warnings: BOM-marked UTF-8/16/32, plain UTF-8, else Windows-1252/Latin-1."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            return _decode_strict(path, data[len(bom):], codec, label), []
    utf16 = _sniff_utf16(data)
    if utf16:
        text = _decode_strict(path, data, utf16, "UTF-16")
        return text, [f"'{path.name}' is UTF-16 without a byte-order mark; it was read as {utf16}."]
    if data.startswith(b"PK\x03\x04"):
        raise EncodingError(f"'{path.name}' is a ZIP or Excel file, not text; save it as "
                            f"'CSV UTF-8' (or rename a ZIP of images to .zip).")
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise EncodingError(f"'{path.name}' contains binary data (a NUL byte on line {line}), so it "
                            f"is not a text file; save it as UTF-8 text.")
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
    try:
        text, codec = data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:  # cp1252 leaves five bytes undefined; Latin-1 maps every byte
        text, codec = data.decode("latin-1"), "Latin-1"
    return text, [f"'{path.name}' is not valid UTF-8 (first bad byte on line {line}), so it was "
                  f"read as {codec}; if accented letters look wrong, re-save it as UTF-8."]


def _decode_strict(path: Path, data: bytes, codec: str, label: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise EncodingError(f"'{path.name}' looks like {label} but byte {exc.start} cannot be "
                            f"decoded ({exc.reason}); re-save it as UTF-8.") from None


def _sniff_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM: ASCII-heavy text then has a NUL in every other byte."""
    sample = data[:4096]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.6 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.6 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


# --- tables ---------------------------------------------------------------------------------

@dataclass
class _Table:
    """Column-oriented rows of one file, with how a user finds each row in it."""

    path: Path
    columns: list[str]
    data: dict[str, list[Any]]
    numbers: Sequence[int]  # spreadsheet row (header = 1), JSONL line, or record index
    unit: str  # "row", "line" or "record"
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.numbers)

    def column(self, name: str) -> list[Any]:
        return self.data[name]


def _read_table(path: Path, kind: str, limits: DataLimits) -> _Table:
    if kind == "parquet":
        return _read_parquet(path, limits)
    raw = _read_table_bytes(path, limits)
    if len(raw) > limits.max_decoded_bytes:
        raise _decoded_too_large(path, len(raw), limits)
    text, notes = _decode(path, raw)
    del raw
    text = text.lstrip("\ufeff")  # a second BOM left by tools that add one unconditionally
    if not text.strip():
        raise EmptyFileError(f"'{path.name}' is empty; it needs a header row and at least one "
                             f"labelled example.")
    if kind in ("jsonl", "json"):
        _check_json_values(path, text, limits)
        table = _parse_jsonl(path, text, limits) if kind == "jsonl" else _parse_json(path, text, limits)
    else:
        table = _parse_delimited(path, text, _delimiter(kind, text), limits)
    table.warnings[:0] = notes
    return table


# --- decoding bounds ------------------------------------------------------------------------

def _decoded_too_large(path: Path, size: int, limits: DataLimits) -> DecodedTooLargeError:
    return DecodedTooLargeError(
        f"'{path.name}' decodes to {archive.fmt_bytes(size)} or more, over the limit of "
        f"{archive.fmt_bytes(limits.max_decoded_bytes)} (max_decoded_bytes), so it was refused before "
        f"being read into memory; use a smaller file or a sample, or raise max_decoded_bytes.")


def _too_many_rows(path: Path, unit: str, limits: DataLimits) -> DecodedTooLargeError:
    return DecodedTooLargeError(
        f"'{path.name}' has more than {limits.max_rows:,} {_PLURAL[unit]}, the limit (max_rows); use a "
        f"sample of the file, or raise max_rows.")


def _too_many_columns(path: Path, n: int, limits: DataLimits) -> DecodedTooLargeError:
    return DecodedTooLargeError(
        f"'{path.name}' has {n:,} columns, over the limit of {limits.max_columns:,} (max_columns); keep "
        f"only the columns you need, or raise max_columns.")


def _too_many_cells(path: Path, rows: int, width: int, limits: DataLimits) -> DecodedTooLargeError:
    return DecodedTooLargeError(
        f"'{path.name}' holds more than {limits.max_cells:,} cells ({rows:,} rows x {width:,} columns), "
        f"the limit (max_cells); drop the columns you do not need or use a sample, or raise max_cells.")


# A JSON string literal, in the unrolled form that matches in linear time.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def _check_json_values(path: Path, text: str, limits: DataLimits) -> None:
    """Refuse JSON that would parse into more than max_cells Python values, before parsing it.

    Every value but the first in an array or object follows a comma, so commas plus containers
    outside string literals bound the number of values; commas inside texts do not count.
    """
    def bound(t: str) -> int:
        return t.count(",") + t.count("[") + t.count("{") + 1

    # Counting is fast; stripping the strings first (slower) is only needed when the rough count,
    # commas inside texts included, is already over the limit.
    if bound(text) > limits.max_cells and bound(_JSON_STRING.sub("", text)) > limits.max_cells:
        raise DecodedTooLargeError(
            f"'{path.name}' holds more than {limits.max_cells:,} JSON values, the limit (max_cells); "
            f"drop the fields you do not need or use a sample, or raise max_cells.")


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _lines(text: str) -> Any:
    """The lines of `text` with their line breaks (\\n, \\r\\n or \\r), one at a time: a StringIO would hold a
    second, four-bytes-a-character copy of the whole file, a list one object per line."""
    return (m.group() for m in _LINE.finditer(text))


def _delimiter(kind: str, text: str) -> str:
    if kind == "tsv":
        return "\t"
    # The header rarely contains punctuation of its own, so the most frequent candidate in it
    # is the separator; a comma wins ties because it is the CSV default.
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _parse_delimited(path: Path, text: str, delimiter: str, limits: DataLimits) -> _Table:
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))  # long documents are fine
    reader = csv.reader(_lines(text), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        header = []
    header = [h.strip() for h in header]
    while header and not header[-1]:  # "text,label," from some exporters
        header.pop()
    if not header:
        raise EmptyFileError(f"'{path.name}' has no header row; add one such as 'text,label'.")
    columns = _unique_names(header)
    if len(columns) > limits.max_columns:
        raise _too_many_columns(path, len(columns), limits)
    rows, numbers, (interior, first_blank) = _read_rows(path, reader, len(columns), delimiter, limits)
    if not rows:
        raise HeaderOnlyError(f"'{path.name}' has a header ({', '.join(columns)}) but no data rows; "
                              f"add at least one labelled example per class.")
    data = dict(zip(columns, (list(col) for col in zip(*rows, strict=True)), strict=True))
    table = _Table(path, columns, data, numbers, "row")
    if interior:
        shown = _fmt_locs("row", first_blank) + (f" and {interior - len(first_blank)} more"
                                                 if interior > len(first_blank) else "")
        table.warnings.append(f"'{path.name}' has {interior} empty row(s) ({shown}); they were skipped.")
    return table


def _read_rows(path: Path, reader: Any, width: int, delimiter: str, limits: DataLimits
               ) -> tuple[list[list[str]], list[int], tuple[int, list[int]]]:
    """Rows of exactly `width` fields, their spreadsheet row numbers, and the blank rows between data
    rows (how many, and the first few). Blank rows count towards max_rows: a file of nothing but
    line breaks must not get past the limits."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    blanks, interior, first_blank = 0, 0, []
    row_no, last_line = 1, reader.line_num
    try:
        for fields in reader:
            row_no += 1
            first_line, last_line = last_line + 1, reader.line_num
            if row_no - 1 > limits.max_rows:
                raise _too_many_rows(path, "row", limits)
            if not any(f.strip() for f in fields):
                blanks += 1
                if len(first_blank) < 5:
                    first_blank.append(row_no)
                continue
            interior = blanks  # blank rows before this data row are inside the table
            if len(fields) != width:
                fields = _fit_row(path, fields, width, row_no, first_line, last_line, delimiter)
            if (len(rows) + 1) * width > limits.max_cells:
                raise _too_many_cells(path, len(rows) + 1, width, limits)
            rows.append(fields)
            numbers.append(row_no)
    except csv.Error as exc:
        raise MalformedRowError(f"'{path.name}' row {row_no + 1} cannot be parsed ({exc}); "
                                f"fix the quoting on that row.") from None
    first_blank = [n for n in first_blank if not numbers or n < numbers[-1]]
    return rows, numbers, (interior, first_blank)


def _fit_row(path: Path, fields: list[str], width: int, row_no: int, first_line: int,
             last_line: int, delimiter: str) -> list[str]:
    # Trailing empty fields ("a,b,,") are an exporter quirk, not a broken row.
    if len(fields) > width and not any(f.strip() for f in fields[width:]):
        return fields[:width]
    where = f"row {row_no}" + (f" (line {first_line} in a text editor)" if first_line != row_no else "")
    sep = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}[delimiter]
    if last_line - first_line > 1:
        fix = "a double quote on that row probably opens a quoted field that never closes"
    else:
        fix = f"wrap fields that contain a {sep} in double quotes"
    raise MalformedRowError(f"'{path.name}' {where} has {len(fields)} field(s) but the header has "
                            f"{width}; {fix}.")


def _unique_names(names: list[str]) -> list[str]:
    """Blank or repeated header names get suffixes, so a stray extra column cannot hide another."""
    seen: Counter[str] = Counter()
    out = []
    for i, name in enumerate(names):
        base = name or f"column_{i + 1}"
        seen[base] += 1
        out.append(base if seen[base] == 1 else f"{base}.{seen[base] - 1}")
    return out


def _parse_jsonl(path: Path, text: str, limits: DataLimits) -> _Table:
    records, numbers = [], []
    # One line at a time (a list of every line would cost an object per line), on \n, \r\n or \r only,
    # not splitlines: U+2028 is valid inside JSON. Blank lines count towards max_rows too.
    for lineno, line in enumerate(_lines(text), 1):
        if lineno > limits.max_rows:
            raise _too_many_rows(path, "line", limits)
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MalformedRowError(f"'{path.name}' line {lineno} is not valid JSON ({exc.msg} at "
                                    f"column {exc.colno}); each line must be one object like "
                                    f'{{"text": "...", "label": "..."}}.') from None
        if not isinstance(obj, dict):
            raise MalformedRowError(f"'{path.name}' line {lineno} is a JSON {type(obj).__name__}, not "
                                    f'an object; each line must look like {{"text": "...", "label": "..."}}.')
        records.append(obj)
        numbers.append(lineno)
    return _records_table(path, records, numbers, "line", limits)


def _parse_json(path: Path, text: str, limits: DataLimits) -> _Table:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{") and exc.msg == "Extra data":
            return _parse_jsonl(path, text, limits)  # JSON lines saved with a .json extension
        raise MalformedRowError(f"'{path.name}' is not valid JSON ({exc.msg} on line {exc.lineno}, "
                                f"column {exc.colno}); fix that spot or export the data as JSON "
                                f"lines.") from None
    if isinstance(obj, dict):
        obj = _unwrap_json_object(obj)
    if not isinstance(obj, list):
        raise MalformedRowError(f"'{path.name}' must hold a list of objects like "
                                f'[{{"text": "...", "label": "..."}}].')
    for i, rec in enumerate(obj, 1):
        if not isinstance(rec, dict):
            raise MalformedRowError(f"'{path.name}' record {i} is a JSON {type(rec).__name__}, not an "
                                    f'object like {{"text": "...", "label": "..."}}.')
    return _records_table(path, obj, range(1, len(obj) + 1), "record", limits)


def _unwrap_json_object(obj: dict[str, Any]) -> list[Any]:
    """Accept {"data": [records]} wrappers and column-oriented {"text": [...], "label": [...]}."""
    lists = [v for v in obj.values() if isinstance(v, list)]
    if len(lists) == len(obj) >= 2 and len({len(v) for v in lists}) == 1:
        return [dict(zip(obj, values, strict=True)) for values in zip(*lists, strict=True)]
    if len(lists) == 1 and all(isinstance(r, dict) for r in lists[0]):
        return lists[0]
    return [obj]


def _records_table(path: Path, records: list[dict[str, Any]], numbers: Sequence[int],
                   unit: str, limits: DataLimits) -> _Table:
    if not records:
        raise EmptyFileError(f"'{path.name}' has no records; add one object per example like "
                             f'{{"text": "...", "label": "..."}}.')
    if len(records) > limits.max_rows:
        raise _too_many_rows(path, unit, limits)
    columns = list(dict.fromkeys(k for rec in records for k in rec))
    if len(columns) > limits.max_columns:
        raise _too_many_columns(path, len(columns), limits)
    if len(columns) * len(records) > limits.max_cells:  # every record gets a cell in every column
        raise _too_many_cells(path, len(records), len(columns), limits)
    data = {c: [rec.get(c) for rec in records] for c in columns}
    return _Table(path, [str(c) for c in columns], {str(k): v for k, v in data.items()}, numbers, unit)


def _read_parquet(path: Path, limits: DataLimits) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = _read_file_capped(path, limits)
    if not data:
        raise EmptyFileError(f"'{path.name}' is empty; it needs at least one labelled example.")
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        strings = _check_parquet_metadata(path, pf, limits)
        # Strings stay dictionary-encoded in Arrow (repeats cost one copy), so what they decode to can
        # be measured before a single Python object is made.
        table = pq.ParquetFile(pa.BufferReader(data), read_dictionary=strings).read()
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"'{path.name}' is not a readable Parquet file ({exc}); re-export it, or "
                        f"save it as CSV.") from None
    if table.num_rows == 0:
        raise HeaderOnlyError(f"'{path.name}' has columns ({', '.join(table.column_names)}) but no "
                              f"rows; add at least one labelled example per class.")
    decoded = sum(_arrow_decoded_bytes(chunk) for col in table.columns for chunk in col.chunks)
    if decoded > limits.max_decoded_bytes:
        raise _decoded_too_large(path, decoded, limits)
    columns = _unique_names([str(c) for c in table.column_names])
    # Only plain columns are converted eagerly; nested ones (lists, structs) stay as Python objects.
    values = {name: table.column(i).to_pylist() for i, name in enumerate(columns)}
    return _Table(path, columns, values, range(1, table.num_rows + 1), "record")


_PARQUET_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}


def _check_parquet_metadata(path: Path, pf: Any, limits: DataLimits) -> list[str]:
    """Refuse from the footer alone what would decode past the limits; return the string leaves.

    Rows, columns and leaf values (a list column counts each element) are exact in the footer;
    the bytes of fixed-width values follow from their count, those of strings from the
    uncompressed page sizes, a lower bound when they are dictionary-encoded (checked after reading).
    """
    meta = pf.metadata
    columns = len(pf.schema_arrow.names)
    if meta.num_rows > limits.max_rows:
        raise _too_many_rows(path, "record", limits)
    if columns > limits.max_columns:
        raise _too_many_columns(path, columns, limits)
    schema = pf.schema
    strings = [schema.column(j).path for j in range(meta.num_columns)
               if schema.column(j).physical_type == "BYTE_ARRAY"]
    values = estimate = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for j in range(group.num_columns):
            chunk = group.column(j)
            values += chunk.num_values
            kind = chunk.physical_type
            if kind == "FIXED_LEN_BYTE_ARRAY":
                estimate += chunk.num_values * max(schema.column(j).length or 1, 1)
            elif kind in _PARQUET_WIDTHS:
                estimate += chunk.num_values * _PARQUET_WIDTHS[kind]
            else:
                estimate += chunk.total_uncompressed_size
    if values > limits.max_cells:
        raise DecodedTooLargeError(
            f"'{path.name}' holds {values:,} values, more than the limit of {limits.max_cells:,} cells "
            f"(max_cells); drop the columns you do not need or use a sample, or raise max_cells.")
    if estimate > limits.max_decoded_bytes:
        raise _decoded_too_large(path, estimate, limits)
    return strings


def _arrow_decoded_bytes(arr: Any) -> int:
    """Bytes an Arrow array's values amount to once every dictionary entry is spelled out."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = arr.type
    if pa.types.is_dictionary(kind):
        entries = arr.dictionary
        if _is_bytes_type(kind.value_type):
            sizes = pc.binary_length(entries)
        else:  # a non-string dictionary (from a stored Arrow schema): its mean entry size
            sizes = pa.array([max(entries.nbytes // max(len(entries), 1), 1)] * len(entries), pa.int64())
        total = pc.sum(pc.take(sizes.cast(pa.int64()), arr.indices)).as_py()
        return int(total or 0) + 4 * len(arr)
    if _is_bytes_type(kind):
        return int(pc.sum(pc.binary_length(arr).cast(pa.int64())).as_py() or 0) + 4 * len(arr)
    if pa.types.is_struct(kind):
        return sum(_arrow_decoded_bytes(child) for child in arr.flatten())
    if pa.types.is_map(kind):
        return _arrow_decoded_bytes(arr.keys) + _arrow_decoded_bytes(arr.items)
    if isinstance(kind, (pa.ListType, pa.LargeListType, pa.FixedSizeListType)):
        return _arrow_decoded_bytes(arr.flatten()) + 4 * len(arr)
    return int(arr.nbytes)


def _is_bytes_type(kind: Any) -> bool:
    import pyarrow as pa

    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind))


# --- columns --------------------------------------------------------------------------------

def _norm(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name).strip())  # reviewText -> review_Text
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _candidates(columns: Sequence[str], tiers: Sequence[Sequence[str]], exclude: set[Any]) -> list[str]:
    """Columns matching the first tier that matches anything (several = ambiguous)."""
    usable = [c for c in columns if c not in exclude]
    for tier in tiers:
        found = [c for c in usable if _norm(c) in tier]
        if found:
            return found
    words = {w for tier in tiers for w in tier}
    return [c for c in usable if set(_norm(c).split("_")) & words]


def _given_column(table: _Table, given: str, flag: str) -> str:
    if given in table.columns:
        return given
    folded = [c for c in table.columns if c.strip().lower() == given.strip().lower()]
    if len(folded) == 1:
        return folded[0]
    raise MissingColumnError(f"'{table.path.name}' has no column '{given}' (columns: "
                             f"{_fmt_names(table.columns)}); check {flag}.")


def _pick_column(table: _Table, role: str, tiers: Sequence[Sequence[str]], exclude: set[Any],
                 flag: str) -> str:
    found = _candidates(table.columns, tiers, exclude)
    if len(found) == 1:
        return found[0]
    if found:
        raise MissingColumnError(f"'{table.path.name}' has several possible {role} columns "
                                 f"({_fmt_names(found)}); pass {flag} with the one to use.")
    raise MissingColumnError(f"'{table.path.name}' has no recognisable {role} column (columns: "
                             f"{_fmt_names(table.columns)}); pass {flag}, or add a header row "
                             f"if the file has none.")


def _find_split_column(columns: Sequence[str]) -> str | None:
    found = [c for c in columns if _norm(c) in _SPLIT_NAMES]
    return found[0] if len(found) == 1 else None


def _detect_path_column(table: _Table, exclude: set[Any]) -> str | None:
    """A path-like column whose first values name image files, else None."""
    for col in _candidates(table.columns, _PATH_TIERS, exclude):
        values = [str(v).strip() for v in table.column(col)[:20] if v is not None and str(v).strip()]
        if values and all(archive.is_image_name(v) for v in values):
            return col
    return None


@dataclass
class _Columns:
    input: str
    label: str
    split: str | None
    task: str


def _choose_columns(table: _Table, src: _Source, split_column: str | None,
                    use_split: bool) -> _Columns:
    split = None
    if use_split:
        split = (_given_column(table, split_column, "--split-column") if split_column
                 else _find_split_column(table.columns))
    given_text = _given_column(table, src.text_column, "--text-column") if src.text_column else None
    given_label = _given_column(table, src.label_column, "--label-column") if src.label_column else None
    exclude = {split, given_label} - {None}
    task = src.task
    if task is None:
        task = "image" if (given_text is None and _detect_path_column(table, exclude)) else "text"
        if given_text is not None and _looks_like_paths(table.column(given_text)):
            task = "image"
    if given_text:
        text = given_text
    elif task == "image":
        text = _detect_path_column(table, exclude) or _pick_column(
            table, "image path", _PATH_TIERS, exclude, "--text-column (the image path column)")
    else:
        text = _fallback(table, exclude) or _pick_column(table, "text", _TEXT_TIERS, exclude,
                                                         "--text-column")
    label = given_label or _fallback_label(table, exclude | {text}) or _pick_column(
        table, "label", _LABEL_TIERS, exclude | {text}, "--label-column")
    if label == text:
        raise MissingColumnError(f"'{table.path.name}' uses column '{text}' for both text and label; "
                                 f"pass different --text-column and --label-column.")
    return _Columns(text, label, split, task)


def _fallback(table: _Table, exclude: set[Any]) -> str | None:
    """With no named text column but a clear label and one other column, that column is the text."""
    if _candidates(table.columns, _TEXT_TIERS, exclude):
        return None
    labels = _candidates(table.columns, _LABEL_TIERS, exclude)
    rest = [c for c in table.columns if c not in exclude and c not in labels and not _is_id(c)]
    return rest[0] if len(labels) == 1 and len(rest) == 1 else None


def _fallback_label(table: _Table, exclude: set[Any]) -> str | None:
    if _candidates(table.columns, _LABEL_TIERS, exclude):
        return None
    rest = [c for c in table.columns if c not in exclude and not _is_id(c)]
    return rest[0] if len(rest) == 1 else None


def _is_id(column: str) -> bool:
    name = _norm(column)
    return name in ("id", "idx", "index", "uid", "uuid", "key") or name.endswith("_id")


def _looks_like_paths(values: list[Any]) -> bool:
    sample = [str(v).strip() for v in values[:20] if v is not None and str(v).strip()]
    return bool(sample) and all(archive.is_image_name(v) for v in sample)


# --- examples -------------------------------------------------------------------------------

@dataclass
class _Examples:
    """Validated inputs and labels, with where each came from for error messages."""

    task: str
    file: str  # the file named in messages
    inputs: list[str]
    labels: list[str]
    locs: list[Any]  # row numbers, or entry/file names
    unit: str  # what a loc is: "row", "line", "record", "entry", "file"
    keys: list[Hashable]  # identity for duplicate detection: stripped text or image hash
    splits: list[str] | None = None
    label_column: str | None = None
    warnings: list[str] = field(default_factory=list)

    def where(self, i: int) -> str:
        return _fmt_loc(self.unit, self.locs[i])

    def subset(self, idx: Sequence[int]) -> _Examples:
        pick = [int(i) for i in idx]
        return _Examples(self.task, self.file, [self.inputs[i] for i in pick],
                         [self.labels[i] for i in pick], [self.locs[i] for i in pick], self.unit,
                         [self.keys[i] for i in pick],
                         None if self.splits is None else [self.splits[i] for i in pick],
                         self.label_column, list(self.warnings))


def _read_examples(src: _Source, split_column: str | None, limits: DataLimits,
                   use_split_column: bool = True) -> _Examples:
    kind = _kind_of(src.path)
    if kind in ("zip", "folder"):
        if src.task == "text":
            raise ConfigError(f"'{src.path.name}' holds images, so it cannot be used with task 'text'; "
                              f"drop the task setting or use task 'image'.")
        if kind == "zip":
            return _zip_examples(src.path, limits)
        return _folder_examples(src.path, limits, src.confined)
    table = _read_table(src.path, kind, limits)
    cols = _choose_columns(table, src, split_column, use_split_column)
    if cols.task == "image":
        ex = _table_image_examples(table, cols, limits, src.confined)
    else:
        ex = _table_text_examples(table, cols, limits)
    if cols.split:
        ex.splits = _split_values(table, cols.split)
    ex.warnings[:0] = table.warnings
    return ex


def _table_labels(table: _Table, column: str) -> list[str]:
    labels = [_as_label(v, table, column, i) for i, v in enumerate(table.column(column))]
    missing = [table.numbers[i] for i, v in enumerate(labels) if v is None]
    if missing:
        raise MissingLabelError(f"'{table.path.name}' has no label in column '{column}' at "
                                f"{_fmt_locs(table.unit, missing)}; {_fix_rows(table.unit, len(missing))}.")
    return labels  # type: ignore[return-value]


def _table_text_examples(table: _Table, cols: _Columns, limits: DataLimits) -> _Examples:
    texts = [_as_text(v) for v in table.column(cols.input)]
    keys: list[Hashable] = [t.strip() for t in texts]
    empty = [table.numbers[i] for i, k in enumerate(keys) if not k]
    if empty:
        raise EmptyTextError(f"'{table.path.name}' has empty text in column '{cols.input}' at "
                             f"{_fmt_locs(table.unit, empty)}; {_fix_rows(table.unit, len(empty))}.")
    labels = _table_labels(table, cols.label)
    return _Examples("text", table.path.name, texts, labels, list(table.numbers), table.unit, keys,
                     label_column=cols.label)


def _table_image_examples(table: _Table, cols: _Columns, limits: DataLimits,
                          confined: bool = False) -> _Examples:
    labels = _table_labels(table, cols.label)
    base = table.path.resolve().parent
    inputs: list[str] = []
    keys: list[Hashable] = []
    for i, value in enumerate(table.column(cols.input)):
        where = f"'{table.path.name}' {_fmt_loc(table.unit, table.numbers[i])}"
        raw = _as_text(value).strip()
        if not raw:
            raise EmptyTextError(f"{where} has no image path in column '{cols.input}'; fill it in "
                                 f"or delete the row.")
        if confined:
            path = _inside_folder(raw, base, where)
        else:  # the user's own CSV on their own machine: their paths, their files
            path = Path(raw).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                raise DataError(f"{where} points to '{raw}', which does not exist (paths are relative "
                                f"to '{base}'); fix the path or delete the row.")
        if not archive.is_image_name(path.name):
            raise UnsupportedFormatError(f"{where} points to '{raw}', which is not a .png, .jpg, "
                                         f".jpeg, .webp or .bmp image; convert it or delete the row.")
        data = _read_file_capped(path, limits)
        _validate_image(data, f"{where} (image '{raw}')", limits)
        inputs.append(str(path.resolve()))
        keys.append(_digest(data))
    return _Examples("image", table.path.name, inputs, labels, list(table.numbers), table.unit, keys,
                     label_column=cols.label)


_STORED_IMAGES_ONLY = ("an uploaded or saved CSV can only use images stored with it, so fix the path or upload "
                       "a ZIP of <label>/<image> folders instead")


def _inside_folder(raw: str, base: Path, where: str) -> Path:
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
        raise DataError(f"{where} points to '{_clip(raw)}', which is not in this dataset's folder; "
                        f"{_STORED_IMAGES_ONLY}.")
    return path


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _split_values(table: _Table, column: str) -> list[str]:
    out, bad = [], []
    for i, value in enumerate(table.column(column)):
        name = _SPLIT_ALIASES.get(_as_text(value).strip().lower())
        if name is None:
            bad.append(i)
        out.append(name or "")
    if bad:
        first = _as_text(table.column(column)[bad[0]]).strip()
        raise DataError(f"'{table.path.name}' has split value '{first}' in column '{column}' at "
                        f"{_fmt_locs(table.unit, [table.numbers[i] for i in bad])}; use train, "
                        f"validation (or val/dev) or test.")
    return out


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def _as_label(value: Any, table: _Table, column: str, i: int) -> str | None:
    """Labels are strings; 1 and 1.0 both become "1" so numeric classes do not split in two."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (list, tuple, dict)):
        raise DataError(f"'{table.path.name}' {_fmt_loc(table.unit, table.numbers[i])} holds a "
                        f"{type(value).__name__} in column '{column}'; multi-label data is not "
                        f"supported, so give one label per row.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


# --- images ---------------------------------------------------------------------------------

def _zip_examples(path: Path, limits: DataLimits) -> _Examples:
    infos = archive.check_zip(path, limits)
    all_files = _zip_file_names(path)
    layout = _image_layout(f"ZIP '{path.name}'", [i.filename for i in infos], all_files)
    inputs, keys = [], []
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            data = archive.read_member(zf, info, limits.max_file_bytes, path.name)
            _validate_image(data, f"ZIP entry '{info.filename}' in '{path.name}'", limits)
            inputs.append(archive.make_ref(path, info.filename))
            keys.append(_digest(data))
    return _image_examples(path, layout, inputs, keys, [i.filename for i in infos], "entry",
                           len(all_files) - len(infos))


def _zip_file_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return [i.filename for i in zf.infolist()
                if not i.is_dir() and not archive.is_ignored_name(i.filename)]


def _folder_examples(path: Path, limits: DataLimits, confined: bool = False) -> _Examples:
    files = _walk_folder(path)
    images = [f for f in files if archive.is_image_name(f)]
    if len(images) > limits.max_archive_entries:
        raise ArchiveTooLargeError(
            f"Folder '{path.name}' has {len(images):,} images, more than the limit of "
            f"{limits.max_archive_entries:,}; use a subset or raise max_archive_entries.")
    layout = _image_layout(f"Folder '{path.name}'", images, files)
    inputs, keys, total = [], [], 0
    root = path.resolve()
    for rel in images:
        file = path / rel
        if confined and not _resolves_inside(file, root):
            raise DataError(f"Image '{rel}' in folder '{path.name}' links outside this dataset's own folder; "
                            f"replace the link with the image itself.")
        data = _read_file_capped(file, limits)
        total += len(data)
        if total > limits.max_archive_bytes:
            raise ArchiveTooLargeError(
                f"Folder '{path.name}' holds more than {archive.fmt_bytes(limits.max_archive_bytes)} "
                f"of images; use a subset or raise max_archive_bytes.")
        _validate_image(data, f"Image '{rel}' in folder '{path.name}'", limits)
        inputs.append(str(file.resolve()))
        keys.append(_digest(data))
    return _image_examples(path, layout, inputs, keys, images, "file", len(files) - len(images))


def _resolves_inside(file: Path, root: Path) -> bool:
    try:
        return file.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a symlink loop
        return False


def _walk_folder(root: Path) -> list[str]:
    """Relative POSIX paths of the files under root, sorted, without hidden files or __MACOSX."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not archive.is_ignored_name(d))
        rel_dir = Path(dirpath).relative_to(root)
        out += [(rel_dir / f).as_posix() for f in sorted(filenames) if not archive.is_ignored_name(f)]
    return out


def _image_layout(container: str, images: list[str], all_files: list[str]
                  ) -> list[tuple[str, str | None]]:
    """(label, split or None) per image from `<label>/<file>` or `<split>/<label>/<file>` paths,
    optionally inside one common top-level folder."""
    expected = ("expected images in <label>/<file> folders such as cat/1.png and dog/2.png "
                "(optionally inside one top folder, or under train/, validation/ and test/)")
    if not images:
        others = f" (it holds {len(all_files)} other file(s), e.g. '{all_files[0]}')" if all_files else ""
        raise DataError(f"{container} contains no .png, .jpg, .jpeg, .webp or .bmp images{others}; {expected}.")
    parts = [[p for p in name.split("/") if p not in ("", ".")] for name in images]
    if (len({p[0] for p in parts}) == 1 and all(len(p) >= 3 for p in parts)
            and not all(p[0].lower() in _SPLIT_ALIASES and len(p) == 3 for p in parts)):
        parts = [p[1:] for p in parts]
    if all(len(p) == 3 and p[0].strip().lower() in _SPLIT_ALIASES for p in parts):
        return [(p[1].strip(), _SPLIT_ALIASES[p[0].strip().lower()]) for p in parts]
    bad = next((name for name, p in zip(images, parts, strict=True) if len(p) != 2), None)
    if bad is not None:
        raise DataError(f"{container} has '{bad}' at the wrong folder depth; {expected}.")
    return [(p[0].strip(), None) for p in parts]


def _image_examples(path: Path, layout: list[tuple[str, str | None]], inputs: list[str],
                    keys: list[Hashable], locs: list[str], unit: str, ignored: int) -> _Examples:
    splits = [s for _, s in layout]
    ex = _Examples("image", path.name, inputs, [label for label, _ in layout], locs, unit, keys,
                   splits=splits if all(s is not None for s in splits) else None)  # type: ignore[misc]
    if ignored:
        ex.warnings.append(f"'{path.name}' holds {ignored} file(s) that are not .png/.jpg/.jpeg/"
                           f".webp/.bmp images; they were ignored.")
    return ex


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


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


def _validate_image(data: bytes, where: str, limits: DataLimits) -> None:
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


def _describe_ref(ref: str) -> str:
    if archive.is_zip_ref(ref):
        zip_path, member = archive.parse_ref(ref)
        return f"ZIP entry '{member}' in '{zip_path.name}'"
    return f"Image '{ref}'"


# --- validation -----------------------------------------------------------------------------

def _check_classes(ex: _Examples) -> None:
    counts = Counter(ex.labels)
    column = f" in column '{ex.label_column}'" if ex.label_column else ""
    if len(counts) < 2:
        only = next(iter(counts), "")
        raise SingleClassError(f"'{ex.file}' has only one class ('{only}'){column}; a classifier "
                               f"needs examples of at least two classes.")
    rare = _sort_labels({c for c, n in counts.items() if n < 2})
    if rare:
        first = rare[0]
        loc = ex.where(ex.labels.index(first))
        others = f" (so do {_fmt_names(rare[1:])})" if len(rare) > 1 else ""
        raise TooFewExamplesError(f"'{ex.file}': class '{first}' has only 1 example, at {loc}{others}; "
                                  f"every class needs at least 2, so add examples or remove it.")


def _check_known_labels(ex: _Examples, known: list[str]) -> None:
    allowed = set(known)
    unknown = [i for i, label in enumerate(ex.labels) if label not in allowed]
    if unknown:
        first = ex.labels[unknown[0]]
        more = f" ({len(unknown)} rows in all)" if len(unknown) > 1 else ""
        raise UnknownLabelError(f"'{ex.file}' {ex.where(unknown[0])} has label '{first}', which the "
                                f"model does not know{more} (its labels: {_fmt_names(known)}); fix "
                                f"the label or remove the row.")


# --- sampling and splitting -----------------------------------------------------------------

def _sort_labels(labels: set[str]) -> list[str]:
    """Numeric labels sort by value, others naturally ("class2" < "class10")."""
    def as_number(s: str) -> float | None:
        try:
            return float(s)
        except ValueError:
            return None
    numbers = {s: as_number(s) for s in labels}
    if all(v is not None and math.isfinite(v) for v in numbers.values()):
        return sorted(labels, key=lambda s: (numbers[s], s))

    def natural(s: str) -> tuple[Any, ...]:
        return tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower())
                     for t in re.split(r"(\d+)", s)) + ((2, 0, s),)
    return sorted(labels, key=natural)


def _by_class(labels: Sequence[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    return {c: groups[c] for c in _sort_labels(set(groups))}


def _apportion(counts: Sequence[int], total: int) -> list[int]:
    """Split `total` across classes in proportion to `counts` (largest remainder, ties by order)."""
    whole = sum(counts)
    if whole == 0 or total <= 0:
        return [0] * len(counts)
    exact = [c * total / whole for c in counts]
    out = [math.floor(x) for x in exact]
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _subsample(labels: Sequence[str], n: int, seed: int) -> list[int]:
    """A stratified, seed-deterministic subset of `n` indices keeping >= 2 examples per class."""
    groups = _by_class(labels)
    if n < 2 * len(groups):
        raise ConfigError(f"max_samples={n} is too small for {len(groups)} classes; use at least "
                          f"{2 * len(groups)} so every class keeps two examples.")
    quotas = _apportion([len(g) for g in groups.values()], n)
    for k in range(len(quotas)):
        while quotas[k] < 2:  # a rare class keeps two examples, paid for by the largest quota
            quotas[max(range(len(quotas)), key=lambda j: quotas[j])] -= 1
            quotas[k] += 1
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for idx, take in zip(groups.values(), quotas, strict=True):
        picked += rng.choice(idx, size=take, replace=False).tolist()
    return sorted(picked)


def _stratified_split(labels: Sequence[str], val_fraction: float, test_fraction: float,
                      seed: int) -> list[str]:
    """Split name per example; every class keeps >= 1 training example and, with >= 2, one test."""
    groups = _by_class(labels)
    counts = [len(g) for g in groups.values()]
    total = len(labels)
    tests = _apportion(counts, round(total * test_fraction))
    vals = _apportion(counts, round(total * val_fraction))
    for k, n in enumerate(counts):
        if test_fraction > 0 and n >= 2:
            tests[k] = max(tests[k], 1)  # a class absent from test cannot be scored
        over = tests[k] + vals[k] - (n - 1)
        if over > 0:  # give back validation first: the test set matters more
            back = min(vals[k], over)
            vals[k] -= back
            tests[k] -= over - back
    if val_fraction > 0 and sum(vals) == 0:
        k = max(range(len(counts)), key=lambda j: (counts[j] - tests[j], -j))
        if counts[k] - tests[k] >= 2:
            vals[k] = 1  # an empty validation set would leave nothing to select the best epoch on
    rng = np.random.default_rng(seed)
    out = ["train"] * total
    for idx, t, v in zip(groups.values(), tests, vals, strict=True):
        order = rng.permutation(idx)
        for i in order[:t]:
            out[i] = "test"
        for i in order[t:t + v]:
            out[i] = "validation"
    return out


def _splits_from_column(ex: _Examples, val_fraction: float, test_fraction: float, seed: int,
                        notes: list[str]) -> list[str]:
    """Use the given splits; carve a missing validation/test split out of train (and say so)."""
    out = list(ex.splits or [])
    train = [i for i, s in enumerate(out) if s == "train"]
    if not train:
        raise DataError(f"'{ex.file}' marks no examples as train in its split column; mark at least "
                        f"one example of each class as train.")
    present = set(out)
    missing = [s for s in ("validation", "test") if s not in present]
    if missing:
        share = {"validation": val_fraction if "validation" in missing else 0.0,
                 "test": test_fraction if "test" in missing else 0.0}
        scale = len(train) / len(out)  # the fractions are of the whole dataset, not of train
        sub = _stratified_split([ex.labels[i] for i in train], min(share["validation"] / scale, 0.45),
                                min(share["test"] / scale, 0.45), seed)
        for i, s in zip(train, sub, strict=True):
            out[i] = s
        notes.append(f"'{ex.file}' has no {' or '.join(missing)} examples, so "
                     f"{'they were' if len(missing) > 1 else 'one was'} drawn from train "
                     f"(stratified, seed {seed}).")
    in_train = {ex.labels[i] for i, s in enumerate(out) if s == "train"}
    absent = _sort_labels(set(ex.labels) - in_train)
    if absent:
        notes.append(f"Class(es) {_fmt_names(absent)} have no training examples in '{ex.file}', so "
                     f"the model cannot learn them; move some of their examples to train.")
    return out


# --- warnings -------------------------------------------------------------------------------

def _quality_warnings(ex: _Examples, assignment: list[str], labels: list[str],
                      max_tokens: int) -> list[str]:
    noun = "text" if ex.task == "text" else "image"
    notes = _duplicate_warnings(ex, assignment, noun)
    counts = Counter(ex.labels)
    if len(counts) >= 2:
        big, small = max(counts, key=counts.get), min(counts, key=counts.get)  # type: ignore[arg-type]
        if counts[big] > 10 * counts[small]:
            notes.append(f"Classes are strongly imbalanced in '{ex.file}': '{big}' has "
                         f"{counts[big]} examples but '{small}' only {counts[small]} "
                         f"({counts[big] / counts[small]:.0f}x); expect weak results on the rare "
                         f"class(es) and watch macro F1.")
    folded: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        folded[label.strip().casefold()].append(label)
    clashes = [v for v in folded.values() if len(v) > 1]
    if clashes:
        notes.append(f"Labels {' / '.join(_fmt_names(v) for v in clashes)} in '{ex.file}' differ "
                     f"only in letter case, so they count as separate classes; make them consistent.")
    if ex.task == "text":
        long = sum(1 for t in ex.inputs if len(t.split()) * _TOKENS_PER_WORD > max_tokens)
        if long:
            notes.append(f"{long} of {len(ex.inputs)} texts in '{ex.file}' are longer than about "
                         f"{max_tokens} tokens and will be truncated; raise the max length if the "
                         f"end of a text matters.")
    if "validation" not in assignment and any(s != "test" for s in assignment):
        notes.append(f"'{ex.file}' is too small for a validation split, so the best epoch cannot be "
                     f"chosen on held-out data; add more examples.")
    return notes


def _duplicate_warnings(ex: _Examples, assignment: list[str], noun: str) -> list[str]:
    notes = []
    first: dict[Hashable, int] = {}
    label_sets: dict[Hashable, set[str]] = defaultdict(set)
    split_sets: dict[Hashable, set[str]] = defaultdict(set)
    repeats: list[int] = []
    for i, key in enumerate(ex.keys):
        if key in first:
            repeats.append(i)
        else:
            first[key] = i
        label_sets[key].add(ex.labels[i])
        split_sets[key].add(assignment[i])
    if repeats:
        i = repeats[0]
        notes.append(f"{len(repeats)} {noun}(s) in '{ex.file}' exactly repeat an earlier one "
                     f"(e.g. {ex.where(i)} repeats {ex.where(first[ex.keys[i]])}); remove "
                     f"duplicates unless they are intended.")
    conflicts = [k for k, s in label_sets.items() if len(s) > 1]
    if conflicts:
        k = conflicts[0]
        notes.append(f"{len(conflicts)} {noun}(s) in '{ex.file}' carry conflicting labels (e.g. "
                     f"{ex.where(first[k])} is labelled both {_fmt_names(_sort_labels(label_sets[k]), last=' and ')}); "
                     f"fix the labels, since the model cannot learn both.")
    leaked = sum(1 for s in split_sets.values() if len(s) > 1)
    if leaked:
        notes.append(f"{leaked} {noun}(s) in '{ex.file}' appear in more than one split "
                     f"(train/validation/test leakage), which inflates test scores; remove the "
                     f"duplicates.")
    return notes


# --- assembly and formatting ----------------------------------------------------------------

def _assemble(src: _Source, ex: _Examples, assignment: list[str], labels: list[str],
              notes: list[str]) -> LabeledData:
    index = {label: i for i, label in enumerate(labels)}
    splits = {}
    content: dict[str, tuple[list[Any], list[str]]] = {}
    for name in SPLITS:
        rows = [i for i, s in enumerate(assignment) if s == name]
        splits[name] = pd.DataFrame({
            "input": pd.Series([ex.inputs[i] for i in rows], dtype=object),
            "label": pd.Series([ex.labels[i] for i in rows], dtype=object),
            "label_id": pd.Series([index[ex.labels[i]] for i in rows], dtype=np.int64),
        })
        # images by the digest of their bytes, so the same images under another path match
        ids = ex.keys if ex.task == "image" else ex.inputs
        content[name] = ([ids[i] for i in rows], [ex.labels[i] for i in rows])
    task: Task = "image" if ex.task == "image" else "text"
    return LabeledData(task=task, labels=list(labels), splits=splits, source=src.given,
                       name=src.name, warnings=list(dict.fromkeys(notes)),
                       fingerprint=content_fingerprint(task, labels, content))


def _fmt_loc(unit: str, loc: Any) -> str:
    return f"{unit} '{loc}'" if isinstance(loc, str) else f"{unit} {loc}"


def _fmt_locs(unit: str, locs: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(f"'{x}'" if isinstance(x, str) else str(x) for x in locs[:limit])
    more = f" and {len(locs) - limit} more" if len(locs) > limit else ""
    return f"{unit if len(locs) == 1 else _PLURAL[unit]} {shown}{more}"


def _fix_rows(unit: str, n: int) -> str:
    return f"fill it in or delete that {unit}" if n == 1 else f"fill them in or delete those {_PLURAL[unit]}"


def _fmt_names(names: Sequence[Any], limit: int = 12, last: str = ", ") -> str:
    quoted = [f"'{n}'" for n in names[:limit]]
    shown = ", ".join(quoted[:-1]) + last + quoted[-1] if len(quoted) > 1 else "".join(quoted)
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


__all__ = ["DataLimits", "UnknownLabelError", "decode_image", "inspect_columns", "load_dataset",
           "load_labeled_file", "open_image", "read_image_bytes"]
