"""Cost estimates before an explanation runs: passes the method needs × measured seconds per pass.

Each computed explanation records its time per forward/backward pass in
`<run>/explanations/timing.json`, per device kind, and the time the model took to load when the
explanation had to load it; until one exists the estimate falls back to a rough figure from the
model's size (and says so). The load is added only while the model is not in memory (`first_load`).
Torch-free, so the dashboard can show it."""

from __future__ import annotations

import json
import os
import sys
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


def _averaged(new: float, old: Any, old_units: float, units: int, per_unit: bool = True) -> float:
    """The newest figure averaged with the previous one (brought to the same input size), so one
    slow call (a cold start, a busy machine) moves the estimate only halfway."""
    if old is None:
        return new
    return 0.5 * new + 0.5 * (scale(float(old), old_units, units) if per_unit else float(old))


def record_pass_time(run_dir: Path, device: str, task: str, seconds_per_pass: float, size: int, *,
                     method: str | None = None, forward_s: float | None = None,
                     overhead_s: float | None = None) -> None:
    """Record one explanation's measured times: per attribution pass (overall and for `method`, whose
    passes may be batched or gradient-free), per forward pass of its faithfulness check, and the
    rest of the call (preparing the input, predicting, saving)."""
    data = read_timings(run_dir)
    old = data.get(device) or {}
    same = old.get("task") == task and "per_pass" in old
    old_units = float(old.get("units", 1)) if same else 1.0
    units = _units(task, size)
    prev = old if same else {}
    entry: dict[str, Any] = {"task": task, "units": units,
                             "per_pass": _averaged(seconds_per_pass, prev.get("per_pass"), old_units, units)}
    methods = {m: scale(float(v), old_units, units) for m, v in (prev.get("methods") or {}).items()}
    if method:
        methods[method] = _averaged(seconds_per_pass, (prev.get("methods") or {}).get(method), old_units, units)
    if methods:
        entry["methods"] = methods
    for name, value, per_unit in (("forward_s", forward_s, True), ("overhead_s", overhead_s, False)):
        if value is not None:
            entry[name] = _averaged(value, prev.get(name), old_units, units, per_unit)
        elif name in prev:
            entry[name] = scale(float(prev[name]), old_units, units) if per_unit else prev[name]
    if "load_s" in old:  # the model load is measured apart (record_load_time): keep it
        entry["load_s"] = old["load_s"]
    data[device] = entry
    _write(run_dir, data)


def _write(run_dir: Path, data: dict[str, Any]) -> None:
    p = _path(run_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, p)


def record_load_time(run_dir: Path, device: str, seconds: float) -> None:
    """How long loading the run's model took (from disk, checked, onto `device`), measured the one
    time a process loads it; the newest measurement wins (a cold disk cache makes the first slow)."""
    data = read_timings(run_dir)
    data.setdefault(device, {})["load_s"] = float(seconds)
    _write(run_dir, data)


def load_seconds(run_dir: Path, device: str) -> float | None:
    """The measured time to load the run's model on `device`, or None before any was measured."""
    value = (read_timings(run_dir).get(device) or {}).get("load_s")
    return None if value is None else float(value)


def model_in_memory(run_dir: Path) -> bool:
    """Whether this process holds the run's model already. Torch-free: when `core.inference` was never
    imported (the dashboard before its first computation), nothing is loaded."""
    inference = sys.modules.get("core.inference")
    return inference is not None and inference.is_loaded(run_dir)


def _device_kind(summary: dict[str, Any]) -> str:
    return "cuda" if str(summary.get("device", "cpu")).startswith("cuda") else "cpu"


def first_load(run_dir: Path, summary: dict[str, Any], loaded: bool | None = None) -> tuple[float, str]:
    """(seconds, words) the estimate adds for loading the model first: nothing when it is in memory
    (`loaded`, default: asked of this process), else the time measured for this run and device, or
    a note that it is not measured yet. An explanation in the worker loads it in that process, which
    this one cannot see, so the page counts the load whenever it has not loaded the model itself."""
    if model_in_memory(run_dir) if loaded is None else loaded:
        return 0.0, ""
    s = load_seconds(run_dir, _device_kind(summary))
    if s is None:
        return 0.0, "plus loading the model first (not yet measured)"
    shown = f"{s:.1f} s" if s >= 0.1 else f"{s * 1000:.0f} ms"
    return s, f"including ~{shown} to load the model"


def estimate(run_dir: Path, method: str, params: dict[str, Any] | None, *, task: str, size: int,
             n_features: int, total_params: int | None, device: str = "cpu",
             faithfulness: bool = True) -> tuple[float, bool, str]:
    """(seconds, measured?, sentence) for `method` on an input of `size` tokens (text) or pixels
    per side (image) with `n_features` words or patches, including the faithfulness check's
    forward passes unless `faithfulness` is off."""
    units = _units(task, size)
    entry = read_timings(run_dir).get(device)
    forward = overhead = None
    if entry and entry.get("task") == task and "per_pass" in entry:
        measured_units = float(entry["units"])
        own = (entry.get("methods") or {}).get(method)  # this method's own passes, when measured
        per_pass = scale(float(entry["per_pass"] if own is None else own), measured_units, units)
        if "forward_s" in entry:
            forward = scale(float(entry["forward_s"]), measured_units, units)
        overhead, measured = entry.get("overhead_s"), True
    else:
        ref_s, ref_units, ref_params = _TEXT_REF if task == "text" else _IMAGE_REF
        size_factor = float(total_params or ref_params) / ref_params
        per_pass, measured = scale(ref_s, ref_units, units) * size_factor, False
    seconds = estimate_seconds(method, params, per_pass, n_features) + float(overhead or 0.0)
    forward = per_pass * FORWARD_SHARE if forward is None else forward
    check = faithfulness_forwards(task) * forward if faithfulness else 0.0
    seconds += check
    sentence = describe_cost(method, params, seconds, device)
    if check:
        sentence += f" (with ~{check:.1f} s for its faithfulness check)"
    return seconds, measured, sentence + ("" if measured else " (rough: not yet measured on this machine)")


def image_size(run_dir: Path, summary: dict[str, Any]) -> int | None:
    """The side the run's model sees images at: the summary's, else what training resolved (config.json),
    else None (the estimate then assumes 224)."""
    if summary.get("image_size"):
        return int(summary["image_size"])
    try:
        resolved = json.loads((Path(run_dir) / "config.json").read_text()).get("resolved") or {}
    except (OSError, ValueError):
        return None
    return int(resolved["image_size"]) if resolved.get("image_size") else None


def input_size(value: Any, task: str, image_size: int | None = None, patch: int = 16) -> tuple[int, int]:
    """(size, features) an estimate assumes for `value` before it is tokenized or opened: about two
    tokens a word plus [CLS] and [SEP] (at most 512) and one feature a word for text; the run's
    image size (224 when unknown) and its grid of `patch`-pixel cells for images (14 × 14 at 224)."""
    if task == "text":
        return min(len(str(value).split()) * 2 + 2, 512), max(1, len(str(value).split()))
    size = int(image_size or 224)
    cells = -(-size // max(1, min(patch, size)))  # a partial cell at the edge is a cell
    return size, cells * cells


def estimate_methods(run_dir: Path, summary: dict[str, Any], methods: Sequence[str], form: dict[str, Any],
                     value: Any, task: str) -> tuple[float, list[str]]:
    """(total seconds, one sentence per method) for explaining `value` with each of `methods`
    under the Explain form's settings `form`, on the device the run trained on."""
    side = image_size(run_dir, summary) if task == "image" else None
    device = _device_kind(summary)
    total, lines = 0.0, []
    for m in methods:
        p = method_params(m, form)
        size, feats = input_size(value, task, side, int(p.get("patch", 16)))
        s, _, sentence = estimate(run_dir, m, p, task=task, size=size, n_features=feats,
                                  total_params=summary.get("total_params"), device=device)
        total += s
        lines.append(sentence)
    return total, lines
