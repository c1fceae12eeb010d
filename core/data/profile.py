"""What choosing settings needs to know of a loaded dataset: task, classes, split sizes, warnings and
the typical input size (mean words per text, median image side), read from a sample of the training
split so a large dataset costs no more than a small one. Torch-free: the Train page calls it."""

from __future__ import annotations

from typing import Any

from core.data.dataset import LabeledData
from core.data.images import median_image_side

TEXT_SAMPLE = 2000  # texts read for the mean length


def mean_words(texts: Any, sample: int = TEXT_SAMPLE) -> float | None:
    """Mean whitespace-separated words over the first `sample` texts (None for no texts)."""
    head = texts.head(sample).astype(str)
    return float(head.str.split().str.len().mean()) if len(head) else None


def dataset_profile(data: LabeledData) -> dict[str, Any]:
    """A JSON-able summary of `data` for forms and estimates."""
    train = data.split("train")["input"]
    text = data.task == "text"
    return {"task": data.task, "labels": list(data.labels), "sizes": data.sizes(), "name": data.name,
            "warnings": list(data.warnings), "mean_words": mean_words(train) if text else None,
            "median_side": None if text else median_image_side(train)}
