"""What a run attends to across its test set: for N test examples, the words (text) or mean
attribution maps (images) most associated with each predicted class, plus the most confidently
wrong examples. Runs as a background job (`explain` job kind, op `dataset`); the result is a JSON
file in the run's explanations folder, so the page reads it back without torch."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import RunError
from core.explain.agreement import patch_sums
from core.explain.catalog import get_method, suggested_for
from core.explain.model_access import as_run, model_stamp
from core.explain.record import CACHE_DIR, cache_key
from core.runs import Run

DEFAULT_N = 100
MAP_SIZE = 56
TOP_WORDS = 15
SHRINK = 2
DATASET_PREFIX = "dataset-"


def default_method(task: str, has_cnn: bool) -> tuple[str, dict[str, Any]]:
    """Cheap enough for a hundred examples on a CPU, and complete (IG) where possible."""
    return suggested_for(task, has_cnn, examples=DEFAULT_N)


def sample(predictions: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    if n <= 0:
        raise RunError("The number of examples must be at least 1.")
    return predictions.sample(n=min(n, len(predictions)), random_state=seed).sort_index()


def confidently_wrong(predictions: pd.DataFrame, k: int = 10) -> list[dict[str, Any]]:
    wrong = predictions[~predictions["correct"].astype(bool)].nlargest(k, "confidence")
    return [{"input": str(r.input), "label": str(r.label), "pred": str(r.pred), "confidence": float(r.confidence)}
            for r in wrong.itertuples()]


def _downsample(heatmap: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    if heatmap.shape[0] <= size:
        return heatmap.astype(np.float64)
    total, ids = patch_sums(heatmap, size)
    count = np.bincount(ids.ravel(), minlength=size * size)
    return (total / np.maximum(count, 1)).reshape(size, size)


def result_path(run: Run, n: int, method: str, params: dict[str, Any], seed: int) -> Path:
    return run.path / CACHE_DIR / f"{DATASET_PREFIX}{cache_key(model_stamp(run), n, method, params, seed)}.json"


def latest_result(run_dir: Path) -> dict[str, Any] | None:
    """The newest dataset view stored for a run (torch-free: for the page)."""
    d = Path(run_dir) / CACHE_DIR
    files = sorted(d.glob(f"{DATASET_PREFIX}*.json"), key=lambda p: p.stat().st_mtime) if d.is_dir() else []
    for p in reversed(files):
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            continue
    return None


def dataset_view(run: str | Path | Run, n: int = DEFAULT_N, method: str | None = None,
                 params: dict[str, Any] | None = None, *, runs_dir: str | Path | None = None, device: str = "auto",
                 seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    from core import inference
    from core.explain.explainer import explain

    r = as_run(run, runs_dir)
    preds = r.predictions()
    bundle, labels = inference.load_run_model(r.path)
    task = bundle.task
    if method is None:
        method, params = default_method(task, bundle.model.cam_layer() is not None)
    method = get_method(method).name
    params = dict(params or {})
    path = result_path(r, n, method, params, seed)
    if path.is_file():
        return json.loads(path.read_text())
    rows = sample(preds, n, seed)
    words: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    maps: dict[int, list[np.ndarray]] = defaultdict(list)
    images: dict[int, list[np.ndarray]] = defaultdict(list)
    seconds = 0.0
    for i, row in enumerate(rows.itertuples()):
        if progress:
            progress(i, len(rows))
        rec = explain(r, str(row.input), method, int(row.pred_id), params=params, faithfulness=False,
                      device=device, use_cache=False)
        seconds += rec.seconds
        c = int(row.pred_id)
        if task == "text":
            for w, s in zip(rec.words or [], rec.word_scores, strict=True):
                words[c][w.lower()].append(float(s))
        else:
            h = rec.heatmap
            peak = float(np.abs(h).max())
            maps[c].append(_downsample(h / peak if peak > 0 else h))
            images[c].append(_downsample(rec.image.mean(axis=-1)))
    if progress:
        progress(len(rows), len(rows))
    per_class = []
    for c, name in enumerate(labels):
        entry: dict[str, Any] = {"class": str(name), "examples": int((rows["pred_id"] == c).sum())}
        if task == "text":
            stats = [(w, float(np.mean(v)), len(v), float(np.sum(v)) / (len(v) + SHRINK)) for w, v in words[c].items()]
            min_count = 2 if sum(1 for s in stats if s[2] >= 2) >= 5 else 1
            # Ranked by a mean shrunk towards zero (sum / (count + 2)): a word seen once with a large
            # score should not outrank one that carries the class in many examples.
            ranked = sorted((s for s in stats if s[2] >= min_count), key=lambda s: -s[3])[:TOP_WORDS]
            entry["top_words"] = [{"word": w, "mean_score": m, "count": k, "rank_score": r} for w, m, k, r in ranked]
        elif maps[c]:
            entry["mean_map"] = np.mean(maps[c], axis=0).round(5).tolist()
            entry["mean_image"] = np.mean(images[c], axis=0).round(1).tolist()
        per_class.append(entry)
    result = {"run_id": r.id, "task": task, "method": method, "params": params, "n": int(len(rows)), "seed": seed,
              "seconds": round(seconds, 3), "classes": per_class, "confidently_wrong": confidently_wrong(preds),
              "accuracy_on_sample": float(rows["correct"].mean()) if len(rows) else None}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return result
