"""Which column of a table holds the text (or image path), the label and the split.

Names are matched in tiers (`text` beats `review`, which beats `review_text`); an explicit
--text-column / --label-column / --split-column always wins. `inspect_columns` reports the same
detection without failing, for the UI and the CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.data import archive
from core.data.limits import DataLimits
from core.data.messages import fmt_names
from core.data.read import Table, kind_of, read_table
from core.data.sources import Source, resolve_source
from core.errors import MissingColumnError

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


def inspect_columns(path: str | os.PathLike[str], *, limits: DataLimits = DataLimits()) -> dict[str, Any]:
    """Describe a source for UI/CLI help without failing on ambiguity.

    Returns task, format, columns, the detected text/label/split/path column (None when missing or
    ambiguous), the candidates for each, the number of rows and any reading warnings.
    """
    src = resolve_source(path, None, None, None)
    kind = kind_of(src.path)
    info: dict[str, Any] = {"source": str(path), "format": kind, "task": "image", "columns": [],
                            "rows": None, "text_column": None, "label_column": None,
                            "split_column": None, "path_column": None, "text_candidates": [],
                            "label_candidates": [], "warnings": []}
    if kind in ("zip", "folder"):
        return info
    table = read_table(src.path, kind, limits)
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


def _given_column(table: Table, given: str, setting: str) -> str:
    if given in table.columns:
        return given
    folded = [c for c in table.columns if c.strip().lower() == given.strip().lower()]
    if len(folded) == 1:
        return folded[0]
    raise MissingColumnError(f"'{table.path.name}' has no column '{given}' (columns: "
                             f"{fmt_names(table.columns)}); check {setting}.")


def _pick_column(table: Table, role: str, tiers: Sequence[Sequence[str]], exclude: set[Any],
                 setting: str) -> str:
    found = _candidates(table.columns, tiers, exclude)
    if len(found) == 1:
        return found[0]
    if found:
        raise MissingColumnError(f"'{table.path.name}' has several possible {role} columns "
                                 f"({fmt_names(found)}); choose {setting} to use.")
    raise MissingColumnError(f"'{table.path.name}' has no recognisable {role} column (columns: "
                             f"{fmt_names(table.columns)}); choose {setting}, or add a header row "
                             f"if the file has none.")


def _find_split_column(columns: Sequence[str]) -> str | None:
    found = [c for c in columns if _norm(c) in _SPLIT_NAMES]
    return found[0] if len(found) == 1 else None


def _detect_path_column(table: Table, exclude: set[Any]) -> str | None:
    """A path-like column whose first values name image files, else None."""
    for col in _candidates(table.columns, _PATH_TIERS, exclude):
        values = [str(v).strip() for v in table.column(col)[:20] if v is not None and str(v).strip()]
        if values and all(archive.is_image_name(v) for v in values):
            return col
    return None


@dataclass
class Columns:
    """The columns a table's examples are read from, and the task they make it."""

    input: str
    label: str
    split: str | None
    task: str


def choose_columns(table: Table, src: Source, split_column: str | None,
                   use_split: bool) -> Columns:
    split = None
    if use_split:
        split = (_given_column(table, split_column, "the split column") if split_column
                 else _find_split_column(table.columns))
    given_text = _given_column(table, src.text_column, "the text column") if src.text_column else None
    given_label = _given_column(table, src.label_column, "the label column") if src.label_column else None
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
            table, "image path", _PATH_TIERS, exclude, "the text column (the one with the image paths)")
    else:
        text = _fallback(table, exclude) or _pick_column(table, "text", _TEXT_TIERS, exclude,
                                                         "the text column")
    label = given_label or _fallback_label(table, exclude | {text}) or _pick_column(
        table, "label", _LABEL_TIERS, exclude | {text}, "the label column")
    if label == text:
        raise MissingColumnError(f"'{table.path.name}' uses column '{text}' for both text and label; "
                                 f"choose different text and label columns.")
    return Columns(text, label, split, task)


def _fallback(table: Table, exclude: set[Any]) -> str | None:
    """With no named text column but a clear label and one other column, that column is the text."""
    if _candidates(table.columns, _TEXT_TIERS, exclude):
        return None
    labels = _candidates(table.columns, _LABEL_TIERS, exclude)
    rest = [c for c in table.columns if c not in exclude and c not in labels and not _is_id(c)]
    return rest[0] if len(labels) == 1 and len(rest) == 1 else None


def _fallback_label(table: Table, exclude: set[Any]) -> str | None:
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
