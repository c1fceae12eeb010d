"""The model-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

Randomise the model's weights from the top down, one stage at a time (head, then each block from
the last to the first, then everything left: the embeddings, or an image model's stem), explain
the same input again after each stage, and measure how similar the new explanation is to the
original (Spearman rank correlation of the magnitudes). An explanation that barely changes when the
weights it should depend on are noise is describing the input (edges, word frequency), not the
model. It passes when the correlation with the fully randomised model falls below `PASS_BELOW`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import ModelError
from core.explain.agreement import comparable, rank_correlation
from core.explain.catalog import DEFAULT_MAX_TOKENS
from core.explain.explainer import explain
from core.explain.model_access import COMPUTE_LOCK, as_run, model_stamp
from core.explain.record import CACHE_DIR, SANITY_VERSION, cache_key, input_fingerprint
from core.runs import Run

PASS_BELOW = 0.5


def cascade(model: nn.Module) -> list[tuple[str, list[nn.Module | nn.Parameter]]]:
    """Stages to randomise, output side first. The last stage ("embeddings" for text, "stem" for
    images) takes every weight no earlier stage did: the embedding tables, position/type embeddings
    and their LayerNorm, a CNN's stem, a ViT's patch embedding and final norm. Otherwise the "fully
    randomised" model would keep trained weights that the explanation may still be reading."""
    try:
        blocks = list(model.blocks())
    except ModelError:  # an architecture whose layers we cannot find: the head and the rest still count
        blocks = []
    stages: list[tuple[str, list[nn.Module | nn.Parameter]]] = [("head", list(model.head_modules()))]
    stages += [(f"block {i + 1}", [b]) for i, b in reversed(list(enumerate(blocks)))]
    emb = list(getattr(model, "embedding_modules", lambda: [])())
    covered = {id(p) for _, mods in stages for p in _parameters(mods)}
    last: list[nn.Module | nn.Parameter] = [m for m in emb if any(id(p) not in covered for p in m.parameters())]
    covered |= {id(p) for p in _parameters(last)}
    # Normalisation layers as modules, so their running statistics are reset along with their weights.
    last += [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and any(id(p) not in covered for p in m.parameters(recurse=False))]
    covered |= {id(p) for p in _parameters(last)}
    last += [p for p in model.parameters() if id(p) not in covered]
    if last:
        stages.append(("embeddings" if emb else "stem", last))
    return stages


def _parameters(items: list[nn.Module | nn.Parameter]) -> list[nn.Parameter]:
    """The distinct parameters of modules and bare parameters, in order (shared weights once)."""
    seen: set[int] = set()
    out = []
    for item in items:
        for p in [item] if isinstance(item, nn.Parameter) else item.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


@torch.no_grad()
def randomise(modules: list[nn.Module | nn.Parameter], generator: torch.Generator) -> None:
    """Re-draw every weight (of the given modules, or the given parameters) from a normal
    distribution with the weight's own spread, and forget the running statistics of the modules'
    BatchNorm layers (learned from the training data like any weight)."""
    for item in modules:
        if isinstance(item, nn.Module):
            for m in item.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                    m.reset_running_stats()
    for p in _parameters(modules):
        std = float(p.float().std()) if p.numel() > 1 else 0.0
        noise = torch.randn(p.shape, generator=generator, dtype=torch.float32)
        p.copy_((noise * max(std, 0.02)).to(p.device, p.dtype))


def sanity_check(run: str | Path | Run, value: Any, method: str = "ig", target: int | str | None = None, *,
                 runs_dir: str | Path | None = None, params: dict[str, Any] | None = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS, device: str = "auto", seed: int = 0,
                 use_cache: bool = True, progress: Callable[[int, int, str], None] | None = None
                 ) -> dict[str, Any]:
    """Rank correlation between the explanation and its re-run after each randomisation stage."""
    from core import inference

    r = as_run(run, runs_dir)
    original = explain(r, value, method, target, params=params, faithfulness=False, max_tokens=max_tokens,
                       device=device)
    fingerprint = input_fingerprint(value, original.task)
    key = cache_key(f"sanity-v{SANITY_VERSION}", model_stamp(r), fingerprint, original.method,
                    original.params, original.target, max_tokens, original.device, seed, PASS_BELOW)
    path = r.path / CACHE_DIR / f"sanity-{key}.json"
    if use_cache and path.is_file():
        try:
            return {**json.loads(path.read_text()), "cached": True}
        except (OSError, ValueError):
            pass
    with COMPUTE_LOCK:
        bundle, _ = inference.load_run_model(r.path)
        model = copy.deepcopy(bundle.model)
    stages = cascade(model)
    gen = torch.Generator().manual_seed(seed)
    base = comparable(original.scores())
    rows = []
    for i, (name, modules) in enumerate(stages):
        if progress:
            progress(i, len(stages), name)
        randomise(modules, gen)
        again = explain(r, value, original.method, original.target, params=original.params, faithfulness=False,
                        max_tokens=max_tokens, device=device, model=model, use_cache=False)
        rows.append({"stage": name, "spearman": rank_correlation(base, comparable(again.scores())),
                     "seconds": again.seconds})
    if progress:
        progress(len(stages), len(stages), "done")
    final = rows[-1]["spearman"] if rows else 1.0
    flat = bool(len(base) < 2 or float(base.max() - base.min()) == 0.0)
    passed: bool | None = None if flat else final < PASS_BELOW
    result = {
        "version": SANITY_VERSION, "run_id": r.id, "method": original.method, "params": original.params,
        "target": original.target, "input_hash": fingerprint,
        "stages": rows, "final_spearman": final, "passed": passed, "threshold": PASS_BELOW, "cached": False,
        "max_tokens": max_tokens,
        "summary": ("The original explanation is flat (every score equal), so there is no ranking to compare: "
                    "the check does not apply. Try another method or a different input." if flat else
                    f"After randomising every layer the explanation's ranking correlates {final:.2f} with the "
                    f"original (Spearman; pass below {PASS_BELOW}). " +
                    ("It depends on the learned weights: it passes." if passed else
                     "It changes too little when the model becomes noise: it fails, so it mostly shows "
                     "the input rather than what the model learned.")),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result
