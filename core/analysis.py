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

from core.metrics import expected_calibration_error, reliability_bins
from core.runs import Run

CALIBRATION_BINS = 10


def probability_columns(preds: pd.DataFrame) -> list[str]:
    return [c for c in preds.columns if c.startswith("prob_")]


def calibration(preds: pd.DataFrame, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability bins (confidence vs accuracy per bin) and the expected calibration error."""
    probs = preds[probability_columns(preds)].to_numpy(dtype=float)
    y = preds["label_id"].to_numpy(dtype=int)
    return {"bins": reliability_bins(probs, y, bins), "ece": float(expected_calibration_error(probs, y, bins)),
            "n": int(len(preds)), "mean_confidence": float(preds["confidence"].mean()),
            "accuracy": float(preds["correct"].mean())}


def confidence_histogram(preds: pd.DataFrame, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
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


def _length_bins(words: pd.Series, bins: int) -> pd.Series:
    edges = np.unique(np.quantile(words, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return pd.Series([f"{int(words.iloc[0])} words"] * len(words), index=words.index)
    cut = pd.cut(words, edges, include_lowest=True, duplicates="drop")
    return cut.map(lambda iv: f"{int(np.ceil(iv.left))}–{int(iv.right)} words").astype(str)


def error_breakdown(preds: pd.DataFrame, by: str, bins: int = 4, image_sizes: Sequence[int] | None = None
                    ) -> pd.DataFrame:
    """Error rate per group: `by` = "class" (true class), "length" (text length in words, quartile
    bins) or "image_size" (shorter side in pixels, quartile bins; sizes given by the caller)."""
    if by == "class":
        key = preds["label"].astype(str)
    elif by == "length":
        key = _length_bins(preds["input"].astype(str).str.split().str.len(), bins)
    elif by == "image_size":
        if image_sizes is None:
            raise ValueError("image_size needs the images' sizes")
        sizes = pd.Series(list(image_sizes), index=preds.index, dtype=float)
        edges = np.unique(np.quantile(sizes, np.linspace(0, 1, bins + 1)))
        key = (pd.cut(sizes, edges, include_lowest=True, duplicates="drop")
               .map(lambda iv: f"{int(np.ceil(iv.left))}–{int(iv.right)} px").astype(str)
               if len(edges) > 1 else pd.Series([f"{int(sizes.iloc[0])} px"] * len(sizes), index=preds.index))
    else:
        raise ValueError(f"Unknown breakdown {by!r}; use class, length or image_size.")
    g = preds.assign(_key=key.to_numpy()).groupby("_key", sort=False)
    out = pd.DataFrame({"n": g.size(), "errors": g["correct"].apply(lambda c: int((~c.astype(bool)).sum()))})
    out["error_rate"] = out["errors"] / out["n"]
    out = out.reset_index().rename(columns={"_key": by})
    return out.sort_values(by).reset_index(drop=True) if by != "class" else out


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
