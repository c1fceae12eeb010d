"""The loaded-dataset record shared by data loading, training and evaluation.

Loading (formats, validation, splitting) lives in `core/data.py`; this module only holds the
shape everyone else depends on, so the engine never imports the loaders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

Task = Literal["text", "image"]
SPLITS = ("train", "validation", "test")


@dataclass
class LabeledData:
    """A validated, split dataset.

    Each split frame has columns `input` (the text, or an image reference understood by
    `core.data.open_image`), `label` (class name, str) and `label_id` (int index into `labels`).
    """

    task: Task
    labels: list[str]
    splits: dict[str, pd.DataFrame]
    source: str
    name: str
    warnings: list[str] = field(default_factory=list)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> pd.DataFrame:
        return self.splits[name]

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}
