"""The loaders: a source in, a validated and split `LabeledData` out, for training (`load_dataset`,
`load_for_config`) or for evaluation on a labelled file (`load_labeled_file`).

Each runs the stages in order: resolve the source, read the examples, check the classes, subsample
and split, collect warnings, assemble the record. Loading is read-only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.data.dataset import SPLITS, LabeledData, Task, content_fingerprint
from core.data.examples import Examples, read_examples
from core.data.limits import DataLimits
from core.data.sources import Source, resolve_source
from core.data.splits import (
    check_classes,
    check_known_labels,
    quality_warnings,
    require_all_splits,
    sort_labels,
    splits_from_column,
    stratified_split,
    subsample,
)
from core.errors import ConfigError


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
    src = resolve_source(source, task, text_column, label_column, confine)
    ex = read_examples(src, split_column, limits)
    check_classes(ex)
    if max_samples is not None and max_samples < len(ex.labels):
        ex = ex.subset(subsample(ex.labels, max_samples, seed))
    notes = list(ex.warnings)
    if ex.splits is not None:
        assignment = splits_from_column(ex, val_fraction, test_fraction, seed, notes)
    else:
        assignment = stratified_split(ex.labels, val_fraction, test_fraction, seed)
    labels = sort_labels(set(ex.labels))
    notes += quality_warnings(ex, assignment, labels, max_text_tokens_hint)
    require_all_splits(ex, assignment)
    return _assemble(src, ex, assignment, labels, notes)


def load_for_config(cfg: Any) -> LabeledData:
    """The dataset a RunConfig describes, loaded and split exactly as training will see it."""
    d = cfg.data
    return load_dataset(d.source, text_column=d.text_column, label_column=d.label_column,
                        split_column=d.split_column, seed=d.split_seed, val_fraction=d.val_fraction,
                        test_fraction=d.test_fraction, max_samples=d.max_samples,
                        max_text_tokens_hint=cfg.model.max_length)


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
    src = resolve_source(path, task, text_column, label_column, confine)
    ex = read_examples(src, None, limits, use_split_column=False)
    if labels is not None:
        known = [str(label) for label in labels]
        check_known_labels(ex, known)
    else:
        known = sort_labels(set(ex.labels))
    assignment = ["test"] * len(ex.labels)
    notes = list(ex.warnings) + quality_warnings(ex, assignment, known, max_text_tokens_hint)
    return _assemble(src, ex, assignment, known, notes)


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


def _assemble(src: Source, ex: Examples, assignment: list[str], labels: list[str],
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
