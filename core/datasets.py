"""The loaded-dataset record shared by data loading, training and evaluation.

Loading (formats, validation, splitting) lives in `core/data.py`; this module only holds the
shape everyone else depends on, so the engine never imports the loaders.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
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

    `name` is what people call the dataset (a saved dataset's name, a demo's, a file's stem);
    `fingerprint` identifies its content: equal fingerprints mean the same examples, labels and
    split assignment, wherever the files lie. The loader hashes images by their bytes; a record built
    by hand without one gets a fingerprint of its inputs as given.
    """

    task: Task
    labels: list[str]
    splits: dict[str, pd.DataFrame]
    source: str
    name: str
    warnings: list[str] = field(default_factory=list)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = content_fingerprint(
                self.task, self.labels,
                {k: (v["input"].tolist(), v["label"].tolist()) for k, v in self.splits.items()})

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> pd.DataFrame:
        return self.splits[name]

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}


def content_fingerprint(task: str, labels: Sequence[str],
                        splits: Mapping[str, tuple[Sequence[object], Sequence[object]]]) -> str:
    """A short stable hash of a dataset's task, label order and (input, label) pairs in order per split.

    `splits` maps a split name to its inputs (texts, or digests of image bytes) and labels. JSON
    arrays keep the boundaries between items unambiguous; 64 bits are plenty to tell datasets apart.
    """
    h = hashlib.blake2b(digest_size=8)
    h.update(json.dumps([task, [str(x) for x in labels]]).encode())
    for name in SPLITS:
        inputs, targets = splits.get(name, ((), ()))
        part = json.dumps([name, [str(x) for x in inputs], [str(x) for x in targets]], ensure_ascii=False)
        h.update(part.encode("utf-8", "surrogatepass"))  # JSON input may hold a lone surrogate
    return h.hexdigest()
