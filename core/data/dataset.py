"""The loaded-dataset record shared by data loading, training and evaluation.

Loading (formats, validation, splitting) lives in the other modules of `core.data`; this module only
holds the shape everyone else depends on, so the engine never imports the loaders.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from core.errors import ConfigError

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

    def approx_bytes(self) -> int:
        """Memory this record holds, Python objects included (what a cache of datasets must count)."""
        frames = sum(int(frame.memory_usage(index=True, deep=True).sum()) for frame in self.splits.values())
        return frames + sum(len(w) for w in self.warnings) + sum(len(str(label)) for label in self.labels)


class ByteBoundedCache:
    """A least-recently-used cache bounded by the bytes its values hold, not by their number.

    Sixteen tiny demos and sixteen 200 MB uploads are not the same load on a server. A value larger
    than the whole budget is returned but not kept. Thread-safe: dashboard sessions share one.
    Values must have `approx_bytes()`, or pass `size_of`.
    """

    def __init__(self, max_bytes: int, size_of: Callable[[Any], int] | None = None) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ConfigError(f"ByteBoundedCache max_bytes must be a positive whole number, got {max_bytes!r}.")
        self.max_bytes = max_bytes
        self._size_of = size_of or (lambda value: int(value.approx_bytes()))
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.total_bytes = 0

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = load()  # outside the lock: one slow load must not stall every other session
        size = self._size_of(value)
        if size > self.max_bytes:
            return value
        with self._lock:
            if key in self._items:  # loaded meanwhile by another session
                self.total_bytes -= self._items.pop(key)[1]
            while self._items and self.total_bytes + size > self.max_bytes:
                self.total_bytes -= self._items.popitem(last=False)[1][1]
            self._items[key] = (value, size)
            self.total_bytes += size
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.total_bytes = 0


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
