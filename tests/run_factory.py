"""Finished-looking run directories written straight to disk (no training), for the pages and
comparisons that only read run files. Values are drawn from a seeded RNG so tests can predict them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.metrics import classification_report


def write_fake_run(runs_dir: Path, run_id: str, *, accuracy: float = 0.8, labels: tuple[str, ...] = ("neg", "pos"),
                   method: str = "head", model: str = "minilm", dataset: str = "reviews", seed: int = 0,
                   n_test: int = 60, state: str = "succeeded", data_seed: int = 0, lr: float = 1e-4,
                   train: dict | None = None, correct: np.ndarray | list[bool] | None = None, task: str = "text",
                   fingerprint: str | None = None) -> Path:
    """A run whose test predictions are right with probability `accuracy` (same test inputs for the
    same `data_seed`, so paired comparisons line up), or exactly where `correct` says. `train` adds
    training settings to its config (`lr` is the learning rate it records as used)."""
    rng = np.random.default_rng(seed * 1000 + int(accuracy * 100))
    data_rng = np.random.default_rng(data_seed)
    k = len(labels)
    y = data_rng.integers(0, k, n_test)
    correct = rng.random(n_test) < accuracy if correct is None else np.asarray(correct, bool)
    pred = np.where(correct, y, (y + rng.integers(1, k, n_test)) % k)
    probs = np.full((n_test, k), 0.2 / max(1, k - 1))
    probs[np.arange(n_test), pred] = 0.8
    report = classification_report(probs, y, list(labels))
    path = runs_dir / run_id
    path.mkdir(parents=True)
    cfg = {"data": {"source": f"/data/{dataset}.csv", "split_seed": data_seed},
           "model": {"name": model, "max_length": 64}, "train": {"method": method, "seed": seed, **(train or {})},
           "task": task, "model_name": model, "dataset_name": dataset, "resolved": {"lr": lr}}
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "status.json").write_text(json.dumps({"state": state, "message": "", "updated": time.time()}))
    rows = []
    for step in range(1, 21):
        rows.append({"type": "step", "step": step * 5, "epoch": step / 20, "loss": 1.0 / step + 0.1 * rng.random(),
                     "lr": 1e-4, "samples_per_second": 50.0, "elapsed_s": step * 1.0})
    rows.append({"type": "epoch", "epoch": 1, "step": 100, "train_loss": 0.3, "val_loss": 0.4,
                 "val_accuracy": accuracy, "val_macro_f1": report["macro_f1"], "val_weighted_f1": accuracy,
                 "val_ece": 0.05, "elapsed_s": 20.0, "is_best": True})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if state != "succeeded":
        return path
    inputs = [f"example text number {i}" for i in range(n_test)]
    frame = pd.DataFrame({"input": inputs, "label": [labels[i] for i in y], "label_id": y,
                          "pred": [labels[i] for i in pred], "pred_id": pred, "confidence": probs.max(1),
                          "correct": pred == y, **{f"prob_{c}": probs[:, j] for j, c in enumerate(labels)}})
    frame.to_parquet(path / "predictions.parquet", index=False)
    summary = {"run_id": run_id, "task": task, "model": model, "model_source": "test", "model_licence": "test",
               "method": method, "dataset": {"name": dataset, "source": cfg["data"]["source"],
                                             "sizes": {"train": 200, "validation": 40, "test": n_test},
                                             "warnings": [], **({"fingerprint": fingerprint} if fingerprint else {})},
               "num_labels": k, "labels": list(labels), "trainable_params": 770 if method == "head" else 10_000_000,
               "total_params": 22_000_000, "epochs": 1, "epochs_run": 1, "best_epoch": 1, "steps": 100,
               "stopped_early": False, "train_seconds": 12.5, "train_samples_per_second": 50.0, "device": "cpu",
               "precision": "fp32", "peak_memory_mb": 900.0, "seed": seed, "lr": lr, "host": "test",
               "finished": time.time(), "validation": {"accuracy": accuracy}, "test": report}
    (path / "summary.json").write_text(json.dumps(summary))
    return path
