"""How faithful an explanation is: does removing what it ranks highest change the prediction more
than removing parts at random?

Text (DeYoung et al. 2020, ERASER): comprehensiveness = p(class) − p(class without the top-k %
words), sufficiency = p(class) − p(class with only the top-k % words), averaged over k = 10, 20,
50 %. Images (Petsiuk et al. 2018, RISE): deletion AUC (patches removed in ranked order; lower is
better) and insertion AUC (patches restored onto a blurred copy; higher is better).

Every number comes with the same measure for random rankings of the same input, because a raw
comprehensiveness of 0.3 means little on its own: the score is how far the explanation beats random.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.explain.agreement import patch_sums
from core.explain.catalog import IMAGE_GRID, IMAGE_STEPS, RANDOM_RANKINGS, TEXT_FRACTIONS

GOOD_MARGIN = 0.05  # five probability points above random


def badge(score: float) -> str:
    if score > GOOD_MARGIN:
        return "better than random"
    if score > 0:
        return "barely better than random"
    return "no better than random"


def _random_rankings(n: int, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(count)]


def text_faithfulness(target: Any, word_scores: np.ndarray, class_index: int, seed: int = 0) -> dict[str, Any]:
    n = len(word_scores)
    if n == 0:
        return {"kind": "text", "score": 0.0, "badge": "no words to remove"}
    rankings = [np.argsort(-word_scores, kind="stable"), *_random_rankings(n, RANDOM_RANKINGS, seed)]
    rows = [np.zeros(n, dtype=bool)]
    for order in rankings:
        for frac in TEXT_FRACTIONS:
            top = order[: max(1, round(frac * n))]
            removed = np.zeros(n, dtype=bool)
            removed[top] = True
            rows += [removed, ~removed]  # comprehensiveness, then sufficiency
    probs = target.probabilities_without(np.stack(rows))[:, class_index].detach().cpu().numpy()
    p0, rest = float(probs[0]), probs[1:].reshape(len(rankings), len(TEXT_FRACTIONS), 2)
    comp = p0 - rest[:, :, 0].mean(axis=1)
    suff = p0 - rest[:, :, 1].mean(axis=1)
    score = float(comp[0] - comp[1:].mean())
    return {
        "kind": "text", "probability": p0,
        "comprehensiveness": float(comp[0]), "sufficiency": float(suff[0]),
        "random_comprehensiveness": float(comp[1:].mean()), "random_sufficiency": float(suff[1:].mean()),
        "fractions": list(TEXT_FRACTIONS), "score": score, "badge": badge(score),
        "summary": (f"Removing the words it ranks highest lowers the model's confidence in this class by "
                    f"{comp[0]:.2f} on average (removing as many random words: {comp[1:].mean():.2f}). Keeping "
                    f"only those words lowers it by {suff[0]:.2f} (keeping as many random words: "
                    f"{suff[1:].mean():.2f}). A faithful explanation's words matter more than random ones: "
                    "the first drop is larger than random, the second smaller."),
    }


def _auc(curve: np.ndarray) -> float:
    y = np.asarray(curve, dtype=np.float64)
    return float(((y[1:] + y[:-1]) / 2).mean())  # trapezoids over equal steps of [0, 1]


def image_faithfulness(target: Any, heatmap: np.ndarray, class_index: int, seed: int = 0,
                       batch_size: int = 16) -> dict[str, Any]:
    grid = min(IMAGE_GRID, target.size)
    scores, ids = patch_sums(heatmap, grid)
    n = grid * grid
    x = target.inputs().detach()
    removed_base = target.baseline("zeros")  # deletion: the mean colour (RISE uses a constant)
    blurred = target.baseline("blur")  # insertion starts from a blurred copy
    ids_t = torch.as_tensor(ids, device=x.device)
    rankings = [np.argsort(-scores, kind="stable"), *_random_rankings(n, RANDOM_RANKINGS, seed)]
    counts = [round(i * n / IMAGE_STEPS) for i in range(IMAGE_STEPS + 1)]
    images = []
    for order in rankings:
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        pixel_rank = torch.as_tensor(rank, device=x.device)[ids_t]  # (S, S) rank of each pixel's patch
        for k in counts:
            top = (pixel_rank < k).view(1, 1, *pixel_rank.shape)
            images.append(torch.where(top, removed_base, x))  # deletion: top-k patches gone
            images.append(torch.where(top, x, blurred))  # insertion: only top-k patches sharp
    batch = torch.cat(images)
    probs = []
    with torch.no_grad():
        for i in range(0, len(batch), batch_size):
            probs.append(torch.softmax(target.forward(batch[i:i + batch_size]).float(), dim=-1)[:, class_index])
    p = torch.cat(probs).cpu().numpy().reshape(len(rankings), len(counts), 2)
    deletion = [_auc(p[r, :, 0]) for r in range(len(rankings))]
    insertion = [_auc(p[r, :, 1]) for r in range(len(rankings))]
    rand_del, rand_ins = float(np.mean(deletion[1:])), float(np.mean(insertion[1:]))
    score = float((insertion[0] - deletion[0]) - (rand_ins - rand_del))
    return {
        "kind": "image", "probability": float(p[0, 0, 0]),
        "deletion_auc": deletion[0], "insertion_auc": insertion[0],
        "random_deletion_auc": rand_del, "random_insertion_auc": rand_ins,
        "fractions": [k / n for k in counts],
        "deletion_curve": p[0, :, 0].tolist(), "insertion_curve": p[0, :, 1].tolist(),
        "random_deletion_curve": p[1:, :, 0].mean(axis=0).tolist(),
        "random_insertion_curve": p[1:, :, 1].mean(axis=0).tolist(),
        "score": score, "badge": badge(score),
        "summary": (f"Hiding the patches it ranks highest first, the model's confidence in this class averages "
                    f"{deletion[0]:.2f} while they disappear (random order: {rand_del:.2f}). Showing them first on "
                    f"a blurred copy, it averages {insertion[0]:.2f} (random order: {rand_ins:.2f}). A faithful "
                    "map makes confidence fall faster than random in the first case and rise faster in the "
                    "second."),
    }


def faithfulness(target: Any, scores: np.ndarray, class_index: int, seed: int = 0) -> dict[str, Any]:
    """`scores`: word scores for a TextTarget, the (S, S) heatmap for an ImageTarget."""
    if target.task == "text":
        return text_faithfulness(target, scores, class_index, seed)
    return image_faithfulness(target, scores, class_index, seed)
