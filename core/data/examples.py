"""Examples: the validated inputs and labels of a table, an image ZIP or an image folder, each
with where it came from (row, line, record, entry or file) for the messages that follow.

Images are read and fully decoded here, once, so a damaged file fails at load time, and keyed by
the digest of their bytes for duplicate and leakage checks.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data import archive
from core.data.columns import Columns, choose_columns
from core.data.images import digest, inside_folder, resolves_inside, validate_image
from core.data.limits import DataLimits
from core.data.messages import fix_rows, fmt_bytes, fmt_loc, fmt_locs
from core.data.read import Table, kind_of, read_file_capped, read_table
from core.data.sources import Source
from core.errors import (
    ArchiveTooLargeError,
    ConfigError,
    DataError,
    EmptyTextError,
    MissingLabelError,
    UnsupportedFormatError,
)

_SPLIT_ALIASES = {"train": "train", "training": "train",
                  "validation": "validation", "val": "validation", "valid": "validation",
                  "dev": "validation", "eval": "validation", "validate": "validation",
                  "test": "test", "testing": "test"}


@dataclass
class Examples:
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
        return fmt_loc(self.unit, self.locs[i])

    def subset(self, idx: Sequence[int]) -> Examples:
        pick = [int(i) for i in idx]
        return Examples(self.task, self.file, [self.inputs[i] for i in pick],
                        [self.labels[i] for i in pick], [self.locs[i] for i in pick], self.unit,
                        [self.keys[i] for i in pick],
                        None if self.splits is None else [self.splits[i] for i in pick],
                        self.label_column, list(self.warnings))


def read_examples(src: Source, split_column: str | None, limits: DataLimits,
                  use_split_column: bool = True) -> Examples:
    kind = kind_of(src.path)
    if kind in ("zip", "folder"):
        if src.task == "text":
            raise ConfigError(f"'{src.path.name}' holds images, so it cannot be used with task 'text'; "
                              f"drop the task setting or use task 'image'.")
        if kind == "zip":
            return _zip_examples(src.path, limits)
        return _folder_examples(src.path, limits, src.confined)
    table = read_table(src.path, kind, limits)
    cols = choose_columns(table, src, split_column, use_split_column)
    if cols.task == "image":
        ex = _table_image_examples(table, cols, limits, src.confined)
    else:
        ex = _table_text_examples(table, cols, limits)
    if cols.split:
        ex.splits = _split_values(table, cols.split)
    ex.warnings[:0] = table.warnings
    return ex


def _table_labels(table: Table, column: str) -> list[str]:
    labels = [_as_label(v, table, column, i) for i, v in enumerate(table.column(column))]
    missing = [table.numbers[i] for i, v in enumerate(labels) if v is None]
    if missing:
        raise MissingLabelError(f"'{table.path.name}' has no label in column '{column}' at "
                                f"{fmt_locs(table.unit, missing)}; {fix_rows(table.unit, len(missing))}.")
    return labels  # type: ignore[return-value]


def _table_text_examples(table: Table, cols: Columns, limits: DataLimits) -> Examples:
    texts = [_as_text(v) for v in table.column(cols.input)]
    keys: list[Hashable] = [t.strip() for t in texts]
    empty = [table.numbers[i] for i, k in enumerate(keys) if not k]
    if empty:
        raise EmptyTextError(f"'{table.path.name}' has empty text in column '{cols.input}' at "
                             f"{fmt_locs(table.unit, empty)}; {fix_rows(table.unit, len(empty))}.")
    labels = _table_labels(table, cols.label)
    return Examples("text", table.path.name, texts, labels, list(table.numbers), table.unit, keys,
                    label_column=cols.label)


def _table_image_examples(table: Table, cols: Columns, limits: DataLimits,
                          confined: bool = False) -> Examples:
    labels = _table_labels(table, cols.label)
    base = table.path.resolve().parent
    inputs: list[str] = []
    keys: list[Hashable] = []
    for i, value in enumerate(table.column(cols.input)):
        where = f"'{table.path.name}' {fmt_loc(table.unit, table.numbers[i])}"
        raw = _as_text(value).strip()
        if not raw:
            raise EmptyTextError(f"{where} has no image path in column '{cols.input}'; fill it in "
                                 f"or delete the row.")
        if confined:
            path = inside_folder(raw, base, where)
        else:  # the user's own CSV on their own machine: their paths, their files
            path = Path(raw).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                raise DataError(f"{where} points to '{raw}', which does not exist (paths are relative "
                                f"to '{base}'); fix the path or delete the row.")
        if not archive.is_image_name(path.name):
            raise UnsupportedFormatError(f"{where} points to '{raw}', which is not a .png, .jpg, "
                                         f".jpeg, .webp or .bmp image; convert it or delete the row.")
        data = read_file_capped(path, limits)
        validate_image(data, f"{where} (image '{raw}')", limits)
        inputs.append(str(path.resolve()))
        keys.append(digest(data))
    return Examples("image", table.path.name, inputs, labels, list(table.numbers), table.unit, keys,
                    label_column=cols.label)


def _split_values(table: Table, column: str) -> list[str]:
    out, bad = [], []
    for i, value in enumerate(table.column(column)):
        name = _SPLIT_ALIASES.get(_as_text(value).strip().lower())
        if name is None:
            bad.append(i)
        out.append(name or "")
    if bad:
        first = _as_text(table.column(column)[bad[0]]).strip()
        raise DataError(f"'{table.path.name}' has split value '{first}' in column '{column}' at "
                        f"{fmt_locs(table.unit, [table.numbers[i] for i in bad])}; use train, "
                        f"validation (or val/dev) or test.")
    return out


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def _as_label(value: Any, table: Table, column: str, i: int) -> str | None:
    """Labels are strings; 1 and 1.0 both become "1" so numeric classes do not split in two."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (list, tuple, dict)):
        raise DataError(f"'{table.path.name}' {fmt_loc(table.unit, table.numbers[i])} holds a "
                        f"{type(value).__name__} in column '{column}'; multi-label data is not "
                        f"supported, so give one label per row.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _zip_examples(path: Path, limits: DataLimits) -> Examples:
    infos = archive.check_zip(path, limits)
    all_files = _zip_file_names(path)
    layout = _image_layout(f"ZIP '{path.name}'", [i.filename for i in infos], all_files)
    inputs, keys = [], []
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            data = archive.read_member(zf, info, limits.max_file_bytes, path.name)
            validate_image(data, f"ZIP entry '{info.filename}' in '{path.name}'", limits)
            inputs.append(archive.make_ref(path, info.filename))
            keys.append(digest(data))
    return _image_examples(path, layout, inputs, keys, [i.filename for i in infos], "entry",
                           len(all_files) - len(infos))


def _zip_file_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return [i.filename for i in zf.infolist()
                if not i.is_dir() and not archive.is_ignored_name(i.filename)]


def _folder_examples(path: Path, limits: DataLimits, confined: bool = False) -> Examples:
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
        if confined and not resolves_inside(file, root):
            raise DataError(f"Image '{rel}' in folder '{path.name}' links outside this dataset's own folder; "
                            f"replace the link with the image itself.")
        data = read_file_capped(file, limits)
        total += len(data)
        if total > limits.max_archive_bytes:
            raise ArchiveTooLargeError(
                f"Folder '{path.name}' holds more than {fmt_bytes(limits.max_archive_bytes)} "
                f"of images; use a subset or raise max_archive_bytes.")
        validate_image(data, f"Image '{rel}' in folder '{path.name}'", limits)
        inputs.append(str(file.resolve()))
        keys.append(digest(data))
    return _image_examples(path, layout, inputs, keys, images, "file", len(files) - len(images))


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
                    keys: list[Hashable], locs: list[str], unit: str, ignored: int) -> Examples:
    splits = [s for _, s in layout]
    ex = Examples("image", path.name, inputs, [label for label, _ in layout], locs, unit, keys,
                  splits=splits if all(s is not None for s in splits) else None)  # type: ignore[misc]
    if ignored:
        ex.warnings.append(f"'{path.name}' holds {ignored} file(s) that are not .png/.jpg/.jpeg/"
                           f".webp/.bmp images; they were ignored.")
    return ex
