"""The plain record every explanation call returns, and its on-disk cache (numpy only, no torch).

Cached files live in `<run>/explanations/<key>.npz`: arrays as arrays, everything else as one JSON
string, loaded with `allow_pickle=False`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CACHE_DIR = "explanations"
CACHE_VERSION = 1
# Sanity-check results of an older cascade (v2 left CNN stems and text position embeddings trained, v3
# BatchNorm running statistics) are never reused or reported.
SANITY_VERSION = 4
_ARRAYS = ("token_scores", "word_scores", "heatmap", "image")


@dataclass
class Explanation:
    run_id: str
    task: str
    method: str
    params: dict[str, Any]
    labels: list[str]
    target: int
    predicted: int
    probabilities: list[float]
    seconds: float  # compute time (of the original computation when served from the cache)
    passes: int
    delta: float | None = None  # |completeness error| (IG, DeepLift, GradientShap)
    # text
    text: str | None = None
    tokens: list[str] | None = None
    token_scores: np.ndarray | None = None
    words: list[str] | None = None
    word_spans: list[tuple[int, int]] | None = None
    word_scores: np.ndarray | None = None
    truncated: bool = False
    n_tokens: int = 0
    # image
    heatmap: np.ndarray | None = None  # (S, S)
    image: np.ndarray | None = None  # (S, S, 3) uint8, the model's view of the input
    faithfulness: dict[str, Any] | None = None
    device: str = "cpu"
    cached: bool = False
    load_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def target_label(self) -> str:
        return str(self.labels[self.target])

    @property
    def predicted_label(self) -> str:
        return str(self.labels[self.predicted])

    def scores(self) -> np.ndarray:
        """Per word (text) or per pixel (image): what rankings and comparisons use."""
        out = self.word_scores if self.task == "text" else self.heatmap
        return np.asarray(out if out is not None else [], dtype=np.float64)

    def meta(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in _ARRAYS}
        d["target_label"], d["predicted_label"] = self.target_label, self.predicted_label
        return d

    def to_dict(self, arrays: bool = True) -> dict[str, Any]:
        """JSON-ready: arrays as nested lists (heatmaps rounded to keep files small)."""
        d = self.meta()
        if arrays:
            for k in _ARRAYS:
                v = getattr(self, k)
                if v is not None:
                    d[k] = np.round(v, 6).tolist() if v.dtype.kind == "f" else v.tolist()
        return d

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k) for k in _ARRAYS if getattr(self, k) is not None}
        meta = {k: v for k, v in self.meta().items() if k not in ("cached", "load_seconds")}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        os.close(fd)
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps({"version": CACHE_VERSION, **meta})), **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Explanation | None:
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                arrays = {k: z[k] for k in _ARRAYS if k in z.files}
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            return None  # a damaged cache entry is recomputed, never trusted
        if meta.pop("version", None) != CACHE_VERSION:
            return None
        meta.pop("target_label", None)
        meta.pop("predicted_label", None)
        if meta.get("word_spans") is not None:
            meta["word_spans"] = [tuple(s) for s in meta["word_spans"]]
        return cls(**meta, **arrays)


def input_fingerprint(value: Any, task: str) -> str:
    """Stable hash of a text, or of an image file's bytes / a PIL image's pixels."""
    h = hashlib.sha256()
    if task == "text":
        h.update(b"text:" + str(value).encode())
    elif isinstance(value, (str, Path)) and Path(value).is_file():
        h.update(b"file:" + Path(value).read_bytes())
    elif isinstance(value, (str, Path)):  # an image inside a saved dataset's ZIP: datasets never change
        h.update(b"ref:" + str(value).encode())
    else:
        img = value.convert("RGB")
        h.update(f"image:{img.size}".encode() + img.tobytes())
    return h.hexdigest()


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]
