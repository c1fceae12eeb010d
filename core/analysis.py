"""Where a run fails: calibration, confidence, the examples behind each confusion-matrix cell, error
rates by text length / class / image size, and the examples two runs disagree on.

Pure pandas/numpy over a run's `predictions.parquet` (one row per test example with `input`,
`label`, `label_id`, `pred`, `pred_id`, `confidence`, `correct` and `prob_<class>` columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.metrics import ECE_BINS, expected_calibration_error, reliability_bins
from core.runs import Run

HISTOGRAM_BINS = 10  # bars of the right-vs-wrong confidence chart (a picture, not a metric)


def probability_columns(preds: pd.DataFrame) -> list[str]:
    return [c for c in preds.columns if c.startswith("prob_")]


def calibration(preds: pd.DataFrame, bins: int = ECE_BINS) -> dict[str, Any]:
    """Reliability bins (confidence vs accuracy per bin) and the expected calibration error, binned as
    the run's summary is, so the diagram's ECE is the one every other page shows."""
    probs = preds[probability_columns(preds)].to_numpy(dtype=float)
    y = preds["label_id"].to_numpy(dtype=int)
    return {"bins": reliability_bins(probs, y, bins), "ece": float(expected_calibration_error(probs, y, bins)),
            "n": int(len(preds)), "mean_confidence": float(preds["confidence"].mean()),
            "accuracy": float(preds["correct"].mean())}


def confidence_histogram(preds: pd.DataFrame, bins: int = HISTOGRAM_BINS) -> pd.DataFrame:
    """Counts of right and wrong predictions per confidence bin."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(preds["confidence"].to_numpy(float), edges[1:-1], right=True), 0, bins - 1)
    correct = preds["correct"].to_numpy(bool)
    return pd.DataFrame({"lo": edges[:-1], "hi": edges[1:],
                         "right": np.bincount(which[correct], minlength=bins),
                         "wrong": np.bincount(which[~correct], minlength=bins)})


def cell_examples(preds: pd.DataFrame, true_label: str, pred_label: str, limit: int = 50) -> pd.DataFrame:
    """The test examples of one confusion-matrix cell, most confident first, with their row index
    (the id the Explain page takes as `?example=`)."""
    sel = preds[(preds["label"].astype(str) == str(true_label)) & (preds["pred"].astype(str) == str(pred_label))]
    sel = sel.sort_values("confidence", ascending=False).head(limit)
    cols = ["input", "label", "pred", "confidence", *probability_columns(preds)]
    return sel[cols].rename_axis("example").reset_index()


def _integer_bins(values: pd.Series, bins: int, unit: str) -> tuple[pd.Series, list[str]]:
    """Whole-number values (words, pixels) in up to `bins` quantile ranges that never overlap, each
    labelled by the whole numbers it holds ('2–13 words', '14–22 words'), and the labels in numeric
    order: a range that starts above the previous one's end, never a float edge shown twice."""
    v = values.round().astype(int).to_numpy()
    edges = np.unique(np.floor(np.quantile(v, np.linspace(0, 1, bins + 1))).astype(int))
    if len(edges) < 2:
        label = f"{int(v[0])} {unit}"
        return pd.Series([label] * len(v), index=values.index), [label]
    # Range i holds (edges[i], edges[i+1]]; the first also holds the minimum itself.
    bounds = [(int(edges[0]), int(edges[1]))] + [(int(edges[i]) + 1, int(edges[i + 1]))
                                                 for i in range(1, len(edges) - 1)]
    labels = [f"{lo}–{hi} {unit}" if lo != hi else f"{lo} {unit}" for lo, hi in bounds]
    which = np.searchsorted(edges[1:], v, side="left")
    return pd.Series([labels[i] for i in which], index=values.index), labels


def error_breakdown(preds: pd.DataFrame, by: str, bins: int = 4, image_sizes: Sequence[int] | None = None
                    ) -> pd.DataFrame:
    """Error rate per group: `by` = "class" (true class), "length" (text length in words, quartile
    bins) or "image_size" (shorter side in pixels, quartile bins; sizes given by the caller)."""
    order: list[str] | None = None
    if by == "class":
        key = preds["label"].astype(str)
    elif by == "length":
        key, order = _integer_bins(preds["input"].astype(str).str.split().str.len(), bins, "words")
    elif by == "image_size":
        if image_sizes is None:
            raise ValueError("image_size needs the images' sizes")
        key, order = _integer_bins(pd.Series(list(image_sizes), index=preds.index, dtype=float), bins, "px")
    else:
        raise ValueError(f"Unknown breakdown {by!r}; use class, length or image_size.")
    g = preds.assign(_key=key.to_numpy()).groupby("_key", sort=False)
    out = pd.DataFrame({"n": g.size(), "errors": g["correct"].apply(lambda c: int((~c.astype(bool)).sum()))})
    out["error_rate"] = out["errors"] / out["n"]
    out = out.reset_index().rename(columns={"_key": by})
    if order is None:
        return out
    rank = {label: i for i, label in enumerate(order)}  # numeric order: "2–13" before "14–22"
    return out.sort_values(by, key=lambda col: col.map(rank)).reset_index(drop=True)


def image_sides(refs: Sequence[str]) -> list[int]:
    """The shorter side of each image (header read only)."""
    from core.data import read_image_bytes

    out = []
    for ref in refs:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(read_image_bytes(str(ref)))) as im:
            out.append(min(im.size))
    return out


def disagreements(a: Run, b: Run, limit: int = 100) -> pd.DataFrame:
    """Test examples on which two runs predict different classes, with who was right."""
    from core.compare import paired_predictions

    pa, pb = paired_predictions(a, b)
    differ = (pa["pred_id"].to_numpy() != pb["pred_id"].to_numpy())
    rows = pd.DataFrame({
        "example": pa.index[differ], "input": pa.loc[differ, "input"].astype(str).to_numpy(),
        "label": pa.loc[differ, "label"].astype(str).to_numpy(),
        f"{a.id}": pa.loc[differ, "pred"].astype(str).to_numpy(),
        f"{b.id}": pb.loc[differ, "pred"].astype(str).to_numpy(),
        "right": np.where(pa.loc[differ, "correct"].to_numpy(bool), a.id,
                          np.where(pb.loc[differ, "correct"].to_numpy(bool), b.id, "neither")),
        "confidence_a": pa.loc[differ, "confidence"].to_numpy(float),
        "confidence_b": pb.loc[differ, "confidence"].to_numpy(float),
    })
    return rows.head(limit)
