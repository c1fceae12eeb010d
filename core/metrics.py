"""Classification metrics over numpy arrays, following scikit-learn's conventions.

Precision/recall/F1 of a class with no predicted (or no true) examples is 0, as with
`zero_division=0`; "weighted" averages weight each class by its support.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Equal-width confidence bins for the expected calibration error and the reliability diagram: one
# binning everywhere (summary, Runs header, Compare, model cards, reliability chart, report), so a run
# never shows two ECE values.
ECE_BINS = 15


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    idx = np.asarray(y_true, dtype=np.int64) * num_labels + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(idx, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class_prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return precision, recall, f1, support


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy(probs: np.ndarray, y_true: np.ndarray) -> float:
    p = np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, 1.0)
    return float(-np.log(p).mean())


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS) -> float:
    """Equal-width confidence bins; |accuracy - confidence| weighted by the share in each bin."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def reliability_bins(probs: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per-bin confidence, accuracy and count, for reliability diagrams."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        out.append({
            "lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(mask.sum()),
            "confidence": float(conf[mask].mean()) if mask.any() else float("nan"),
            "accuracy": float(correct[mask].mean()) if mask.any() else float("nan"),
        })
    return out


def classification_report(probs: np.ndarray, y_true: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Everything `summary.json` reports about one split, from class probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    n = len(labels)
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, n)
    precision, recall, f1, support = per_class_prf(cm)
    total = support.sum()
    weights = support / total if total else np.zeros(n)
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "weighted_precision": float((precision * weights).sum()),
        "weighted_recall": float((recall * weights).sum()),
        "weighted_f1": float((f1 * weights).sum()),
        "loss": cross_entropy(probs, y_true) if len(y_true) else 0.0,
        "ece": expected_calibration_error(probs, y_true) if len(y_true) else 0.0,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
    }


def format_report(report: dict[str, Any]) -> str:
    """A fixed-width table like scikit-learn's, for the terminal."""
    names = list(report["per_class"])
    width = max([len(x) for x in names] + [12])
    lines = [f"{'':>{width}}  precision  recall  f1-score  support"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:>{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:8.3f}"
                     f"  {m['support']:7d}")
    lines.append("")
    n = report["n"]
    lines.append(f"{'accuracy':>{width}}  {'':9}  {'':6}  {report['accuracy']:8.3f}  {n:7d}")
    for avg in ("macro", "weighted"):
        lines.append(f"{avg + ' avg':>{width}}  {report[avg + '_precision']:9.3f}  "
                     f"{report[avg + '_recall']:6.3f}  {report[avg + '_f1']:8.3f}  {n:7d}")
    lines.append(f"{'loss':>{width}}  {report['loss']:.4f}    ECE {report['ece']:.4f}")
    return "\n".join(lines)
