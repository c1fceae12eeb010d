"""`explain(run, input, method)`: the one call behind the Explain page, the CLI and the jobs.

Loads the run's model (shared with Predict), turns the input into a target, predicts, attributes,
aggregates sub-tokens into words, scores faithfulness, caches the record in the run directory, and
records the measured time per forward/backward pass for the next cost estimate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import captum.attr  # noqa: F401 - loaded now, not inside the first attribution, whose time per pass it would inflate
import numpy as np
import torch

from core.errors import ConfigError
from core.explain.attributions import attribute, resolve_params
from core.explain.catalog import DEFAULT_MAX_TOKENS, faithfulness_forwards, get_method
from core.explain.faithfulness import faithfulness as score_faithfulness
from core.explain.model_access import COMPUTE_LOCK, as_run, load_target, model_stamp
from core.explain.record import CACHE_DIR, Explanation, cache_key, input_fingerprint
from core.explain.targets import ImageTarget, TextTarget
from core.explain.timing import record_load_time, record_pass_time
from core.runs import Run


def class_index(target: int | str | None, labels: Sequence[str], predicted: int) -> int:
    if target is None or target == "":
        return predicted
    if isinstance(target, str) and target in labels:
        return list(labels).index(target)
    if isinstance(target, (int, np.integer)) or (isinstance(target, str) and target.lstrip("-").isdigit()):
        i = int(target)
        if 0 <= i < len(labels):
            return i
    raise ConfigError(f"Target class {target!r} is not one of this run's classes: {', '.join(map(str, labels))}.")


def _probabilities(target: TextTarget | ImageTarget) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(target.forward(target.inputs()).float(), dim=-1)[0].cpu().numpy()


def cache_path(run: Run, key: str) -> Path:
    return run.path / CACHE_DIR / f"{key}.npz"


def explain(run: str | Path | Run, value: Any, method: str = "ig", target: int | str | None = None, *,
            runs_dir: str | Path | None = None, params: dict[str, Any] | None = None,
            faithfulness: bool = True, max_tokens: int = DEFAULT_MAX_TOKENS, device: str = "auto",
            use_cache: bool = True, model: Any = None) -> Explanation:
    """Explain `run`'s prediction for `value` (a text, an image path or a PIL image) with `method`.

    `target` is a class name or index (default: the predicted class). The record holds per-token
    and per-word scores (text) or a per-pixel heatmap (image), the completeness delta where the
    method has one, the time taken and, unless `faithfulness=False`, the faithfulness scores."""
    from core import inference
    from core.train.engine import pick_device

    t_start = time.perf_counter()
    r = as_run(run, runs_dir)
    info = get_method(method)
    with COMPUTE_LOCK:
        # The first load in this process is timed, so the next estimate can include it (timing.first_load).
        fresh, t_load = not inference.is_loaded(r.path), time.perf_counter()
        bundle, labels = inference.load_run_model(r.path)
        load_s = time.perf_counter() - t_load
        p = resolve_params(info.name, bundle.task, params)
        asked = None if target is None or target == "" else class_index(target, labels, 0)
        # Keyed on the class asked for ("predicted" by default), so a repeat needs no forward pass.
        key = cache_key(model_stamp(r), input_fingerprint(value, bundle.task), info.name, p,
                        "predicted" if asked is None else asked, max_tokens, pick_device(device).type,
                        bool(faithfulness))
        path = cache_path(r, key)
        if use_cache and model is None and path.is_file():
            hit = Explanation.load(path)
            if hit is not None:
                if fresh:
                    record_load_time(r.path, pick_device(device).type, load_s)
                hit.cached, hit.load_seconds = True, time.perf_counter() - t_start
                hit.extra["cache_key"] = key  # what a report draft names it by
                return hit
        t_target = time.perf_counter()
        tgt, labels, dev = load_target(r, value, max_tokens=max_tokens, device=device, model=model)
        if fresh:  # with the move onto the device, which on a GPU is part of loading
            record_load_time(r.path, dev.type, load_s + time.perf_counter() - t_target)
        probs = _probabilities(tgt)
        predicted = int(probs.argmax())
        c = predicted if asked is None else asked
        t0 = time.perf_counter()
        raw = attribute(tgt, info.name, c, p)
        seconds = time.perf_counter() - t0
        rec = Explanation(run_id=r.id, task=tgt.task, method=info.name, params=p, labels=list(labels), target=c,
                          predicted=predicted, probabilities=probs.tolist(), seconds=seconds, passes=raw.passes,
                          delta=raw.delta, device=dev.type,
                          extra={"input_hash": input_fingerprint(value, tgt.task), "max_tokens": max_tokens,
                                 "cache_key": key})
        if isinstance(tgt, TextTarget):
            rec.text, rec.tokens, rec.token_scores = tgt.text, tgt.tokens, raw.scores
            rec.words, rec.word_spans = tgt.words, tgt.word_spans
            rec.word_scores = tgt.word_scores(raw.scores)
            rec.truncated, rec.n_tokens = tgt.truncated, tgt.n_tokens_total
        else:
            rec.heatmap, rec.image = raw.scores.astype(np.float32), tgt.image
        t_check = time.perf_counter()
        if faithfulness:
            rec.faithfulness = score_faithfulness(tgt, rec.scores(), c)
        check_s = time.perf_counter() - t_check
        if model is None:
            if use_cache:
                rec.save(path)
            # The rest of the call (input, prediction, saving; not the first load) is timed too: on a
            # small model it outweighs the attribution, and an estimate without it is far too low.
            rest = time.perf_counter() - t_start - seconds - check_s - (load_s if fresh else 0.0)
            record_pass_time(r.path, dev.type, tgt.task, seconds / max(1, raw.passes),
                             len(tgt.tokens) if isinstance(tgt, TextTarget) else tgt.size, method=info.name,
                             forward_s=check_s / faithfulness_forwards(tgt.task) if faithfulness else None,
                             overhead_s=max(0.0, rest))
        rec.load_seconds = time.perf_counter() - t_start
        return rec


def explain_methods(run: str | Path | Run, value: Any, methods: Sequence[str], target: int | str | None = None,
                    progress: Callable[[int, int, str], None] | None = None,
                    params_by_method: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> list[Explanation]:
    """Several methods on the same input (for the agreement matrix), each with its own parameters."""
    out = []
    for i, m in enumerate(methods):
        if progress:
            progress(i, len(methods), m)
        out.append(explain(run, value, m, target, params=(params_by_method or {}).get(m), **kwargs))
    if progress:
        progress(len(methods), len(methods), "done")
    return out


def cached_explanations(run: str | Path | Run, runs_dir: str | Path | None = None) -> list[Path]:
    r = as_run(run, runs_dir)
    d = r.path / CACHE_DIR
    return sorted(d.glob("*.npz")) if d.is_dir() else []


def to_json(records: Sequence[Explanation]) -> str:
    return json.dumps([rec.to_dict() for rec in records], indent=2)
