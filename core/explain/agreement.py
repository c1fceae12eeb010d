"""Comparing explanations (pure numpy/scipy): rank agreement between methods on one input, and the
difference between two runs' explanations of the same input.

The main comparison uses the magnitude of each score (what a heatmap's brightness shows): saliency-type
methods have no sign, so a signed comparison would call agreeing methods opposed. Between two signed
methods the signed rank correlation is reported too, and `agreement_notes` says when two methods
agree on *where* the evidence is but not on *which way* it points. Images are compared
on a 14 × 14 grid of patch totals: pixel-level speckle is not what a reader compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.explain.catalog import METHODS

GRID = 14


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho; 0 when either side is constant (a flat map ranks nothing)."""
    from scipy.stats import spearmanr  # lazy: the Explain page imports this module for grids only

    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    rho = spearmanr(a, b).statistic
    return 0.0 if not np.isfinite(rho) else float(rho)


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of the k highest-scoring features the two rankings have in common."""
    a, b = np.ravel(a), np.ravel(b)
    k = max(1, min(k, len(a)))
    top_a = set(np.argsort(-a, kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(top_a & top_b) / k


def grid_cells(size: int, grid: int) -> np.ndarray:
    """(size, size) ids of the cells of a grid × grid partition of a square map (row-major)."""
    cell = (np.arange(size) * grid) // size
    return cell[:, None] * grid + cell[None, :]


def patch_sums(heatmap: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of a square map per cell of a grid × grid partition, and each pixel's cell id."""
    ids = grid_cells(heatmap.shape[0], grid)
    return np.bincount(ids.ravel(), weights=np.ravel(heatmap), minlength=grid * grid), ids


def comparable(scores: np.ndarray, signed: bool = False) -> np.ndarray:
    """|scores| (or the signed scores) per word, or per patch of a 14 × 14 grid for an image heatmap."""
    s = np.asarray(scores, dtype=np.float64)
    s = s if signed else np.abs(s)
    return patch_sums(s, min(GRID, s.shape[0]))[0] if s.ndim == 2 else s


def default_k(n: int) -> int:
    return max(1, round(0.2 * n))


def _is_signed(name: str) -> bool:
    return METHODS[name].signed if name in METHODS else True  # a name outside the catalog: signed


def _label(name: str) -> str:
    return METHODS[name].label if name in METHODS else name


def agreement_matrix(named_scores: Sequence[tuple[str, np.ndarray]]) -> dict[str, Any]:
    """Rank correlation (of magnitudes, and signed where both methods have a sign) and top-20 % overlap
    between every pair of methods on the same input. `signed_spearman` is None for a pair where either
    method is unsigned."""
    names = [n for n, _ in named_scores]
    vecs = [comparable(s) for _, s in named_scores]
    signed = [_is_signed(n) for n in names]
    signed_vecs = [comparable(s, signed=True) for _, s in named_scores]
    sizes = {len(v) for v in vecs}
    if len(sizes) > 1:
        raise ValueError("Explanations to compare must cover the same words or the same image.")
    m = len(vecs)
    k = default_k(next(iter(sizes))) if vecs else 1
    rho = np.eye(m)
    overlap = np.eye(m)
    signed_rho: list[list[float | None]] = [[1.0 if i == j and signed[i] else None for j in range(m)]
                                            for i in range(m)]
    for i in range(m):
        for j in range(i + 1, m):
            rho[i, j] = rho[j, i] = rank_correlation(vecs[i], vecs[j])
            overlap[i, j] = overlap[j, i] = top_k_overlap(vecs[i], vecs[j], k)
            if signed[i] and signed[j]:
                signed_rho[i][j] = signed_rho[j][i] = rank_correlation(signed_vecs[i], signed_vecs[j])
    return {"methods": names, "spearman": rho.tolist(), "top_k_overlap": overlap.tolist(), "k": k,
            "signed": signed, "signed_spearman": signed_rho}


AGREE_ON_WHERE = 0.5  # rank correlation of magnitudes from which two maps point at the same parts


def agreement_notes(agreement: dict[str, Any]) -> list[str]:
    """Plain sentences for pairs of signed methods that agree on where the evidence is (magnitudes
    correlate) but not on which way it points (signed scores do not)."""
    names, rho, signed_rho = agreement["methods"], agreement["spearman"], agreement.get("signed_spearman")
    notes = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            s = signed_rho[i][j] if signed_rho else None
            if s is not None and rho[i][j] >= AGREE_ON_WHERE and s <= 0:
                notes.append(f"{_label(names[i])} and {_label(names[j])} point at the same parts (rank correlation "
                             f"{rho[i][j]:.2f} on sizes) but not the same way (signed {s:.2f}): what one "
                             "reads as support, the other reads as speaking against the class.")
    return notes


def _normalised(s: np.ndarray) -> np.ndarray:
    peak = np.abs(s).max() if s.size else 0.0
    return s / peak if peak > 0 else s


def _resize(heatmap: np.ndarray, size: int) -> np.ndarray:
    if heatmap.shape[0] == size:
        return heatmap
    idx = (np.arange(size) * heatmap.shape[0]) // size
    return heatmap[np.ix_(idx, idx)]


def explanation_diff(a: Any, b: Any) -> dict[str, Any]:
    """Two runs' explanations of the same input, each scaled to its largest magnitude, and b − a.

    `a` and `b` are `Explanation` records (text: the same text; image: the same picture)."""
    if a.task != b.task:
        raise ValueError(f"Cannot compare a {a.task} explanation with a {b.task} explanation.")
    if a.task == "text":
        if a.text != b.text:
            raise ValueError("The two explanations are of different texts.")
        known = all(s[0] >= 0 for s in (a.word_spans or []) + (b.word_spans or []))
        if known:
            spans_b = {tuple(s): i for i, s in enumerate(b.word_spans or [])}
            shared = [(i, spans_b[tuple(s)]) for i, s in enumerate(a.word_spans or []) if tuple(s) in spans_b]
        elif a.words == b.words:  # no character offsets (slow tokenizers): the same words, by position
            shared = [(i, i) for i in range(len(a.words or []))]
        else:
            raise ValueError("These two models split the text into different words and their tokenizers give no "
                             "character offsets, so their explanations cannot be lined up word by word.")
        ia, ib = [i for i, _ in shared], [j for _, j in shared]
        sa, sb = _normalised(np.asarray(a.word_scores)[ia]), _normalised(np.asarray(b.word_scores)[ib])
        return {"task": "text", "words": [a.words[i] for i in ia], "a": sa.tolist(), "b": sb.tolist(),
                "diff": (sb - sa).tolist(), "spearman": rank_correlation(np.abs(sa), np.abs(sb)),
                "runs": [a.run_id, b.run_id], "methods": [a.method, b.method]}
    size = min(a.heatmap.shape[0], b.heatmap.shape[0])
    ha, hb = _normalised(_resize(a.heatmap, size)), _normalised(_resize(b.heatmap, size))
    return {"task": "image", "a": ha, "b": hb, "diff": hb - ha, "image": a.image if a.image.shape[0] == size
            else b.image, "spearman": rank_correlation(comparable(ha), comparable(hb)),
            "runs": [a.run_id, b.run_id], "methods": [a.method, b.method]}
