"""Cost estimates before an explanation runs: passes the method needs × measured seconds per pass.

Each computed explanation records its time per forward/backward pass in
`<run>/explanations/timing.json`, per device kind; until one exists the estimate falls back to a
rough figure from the model's size (and says so). Torch-free, so the dashboard can show it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.explain.catalog import describe_cost, estimate_seconds, faithfulness_forwards, method_params

TIMING_FILE = "timing.json"
# A pass costs a fixed part (kernel launches, Python, the head) plus a part that grows with the
# input: on MiniLM, 16 tokens took 0.027 s per pass and 128 tokens 0.043 s. Half fixed is close.
FIXED_SHARE = 0.5
# Fallbacks measured on a 2-core CPU (bench/explain_latency.py): MiniLM (22.7M params), 128 tokens,
# 0.043 s per forward+backward pass; EfficientNet-Lite0 (4.65M), 224², 0.045 s.
_TEXT_REF = (0.043, 128, 22.7e6)
_IMAGE_REF = (0.045, 224 * 224, 4.65e6)
# A forward pass alone costs about a third of a forward+backward one (the backward does roughly twice
# the work); the faithfulness check is forward passes only.
FORWARD_SHARE = 1 / 3


def _path(run_dir: Path) -> Path:
    return Path(run_dir) / "explanations" / TIMING_FILE


def read_timings(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads(_path(run_dir).read_text())
    except (OSError, ValueError):
        return {}


def scale(per_pass: float, units_measured: float, units: float) -> float:
    """Seconds per pass at `units` tokens (or pixels) from a measurement at `units_measured`."""
    return per_pass * (FIXED_SHARE + (1 - FIXED_SHARE) * units / max(1.0, units_measured))


def _units(task: str, size: int) -> int:
    return max(1, size if task == "text" else size * size)


def record_pass_time(run_dir: Path, device: str, task: str, seconds_per_pass: float, size: int) -> None:
    """The newest measurement, averaged with the previous one (brought to the same input size)."""
    data = read_timings(run_dir)
    old = data.get(device)
    units = _units(task, size)
    per_pass = seconds_per_pass
    if old and old.get("task") == task and "per_pass" in old:
        per_pass = 0.5 * per_pass + 0.5 * scale(float(old["per_pass"]), float(old["units"]), units)
    data[device] = {"task": task, "per_pass": per_pass, "units": units}
    p = _path(run_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, p)


def estimate(run_dir: Path, method: str, params: dict[str, Any] | None, *, task: str, size: int,
             n_features: int, total_params: int | None, device: str = "cpu",
             faithfulness: bool = True) -> tuple[float, bool, str]:
    """(seconds, measured?, sentence) for `method` on an input of `size` tokens (text) or pixels
    per side (image) with `n_features` words or patches, including the faithfulness check's
    forward passes unless `faithfulness` is off."""
    units = _units(task, size)
    entry = read_timings(run_dir).get(device)
    if entry and entry.get("task") == task and "per_pass" in entry:
        per_pass, measured = scale(float(entry["per_pass"]), float(entry["units"]), units), True
    else:
        ref_s, ref_units, ref_params = _TEXT_REF if task == "text" else _IMAGE_REF
        size_factor = float(total_params or ref_params) / ref_params
        per_pass, measured = scale(ref_s, ref_units, units) * size_factor, False
    seconds = estimate_seconds(method, params, per_pass, n_features)
    check = faithfulness_forwards(task) * per_pass * FORWARD_SHARE if faithfulness else 0.0
    seconds += check
    sentence = describe_cost(method, params, seconds, device)
    if check:
        sentence += f" (with ~{check:.1f} s for its faithfulness check)"
    return seconds, measured, sentence + ("" if measured else " (rough: not yet measured on this machine)")


def input_size(value: Any, task: str, image_size: int | None = None) -> tuple[int, int]:
    """(size, features) an estimate assumes for `value` before it is tokenized or opened: about two
    tokens a word plus [CLS] and [SEP] (at most 512) and one feature a word for text; the run's
    image size and a 14 × 14 patch grid for images."""
    if task == "text":
        return min(len(str(value).split()) * 2 + 2, 512), max(1, len(str(value).split()))
    return int(image_size or 224), 196


def estimate_methods(run_dir: Path, summary: dict[str, Any], methods: Sequence[str], form: dict[str, Any],
                     value: Any, task: str) -> tuple[float, list[str]]:
    """(total seconds, one sentence per method) for explaining `value` with each of `methods`
    under the Explain form's settings `form`, on the device the run trained on."""
    size, feats = input_size(value, task, summary.get("image_size"))
    device = "cuda" if str(summary.get("device", "cpu")).startswith("cuda") else "cpu"
    total, lines = 0.0, []
    for m in methods:
        s, _, sentence = estimate(run_dir, m, method_params(m, form), task=task, size=size, n_features=feats,
                                  total_params=summary.get("total_params"), device=device)
        total += s
        lines.append(sentence)
    return total, lines
