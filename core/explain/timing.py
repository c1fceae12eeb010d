"""Cost estimates before an explanation runs: passes the method needs × measured seconds per pass.

Each computed explanation records its time per forward/backward pass in
`<run>/explanations/timing.json`, per device kind; until one exists the estimate falls back to a
rough figure from the model's size (and says so). Torch-free, so the dashboard can show it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from core.explain.catalog import describe_cost, estimate_seconds

TIMING_FILE = "timing.json"
# Fallbacks measured on a 2-core CPU (DESIGN.md §3): MiniLM (22.7M params) ≈ 0.05 s per
# forward+backward of 128 tokens; EfficientNet-Lite0 (4.65M) ≈ 0.1 s per 224² image.
_TEXT_S_PER_TOKEN_PARAM = 0.05 / (128 * 22.7e6)
_IMAGE_S_PER_PIXEL_PARAM = 0.1 / (224 * 224 * 4.65e6)


def _path(run_dir: Path) -> Path:
    return Path(run_dir) / "explanations" / TIMING_FILE


def read_timings(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads(_path(run_dir).read_text())
    except (OSError, ValueError):
        return {}


def record_pass_time(run_dir: Path, device: str, task: str, seconds_per_pass: float, size: int) -> None:
    """Keep a running median-ish figure: the newest measurement, smoothed with the previous one."""
    data = read_timings(run_dir)
    old = data.get(device)
    per_unit = seconds_per_pass / max(1, size if task == "text" else size * size)
    if old and old.get("task") == task:
        per_unit = 0.5 * per_unit + 0.5 * float(old["seconds_per_unit"])
    data[device] = {"task": task, "seconds_per_unit": per_unit, "unit": "token" if task == "text" else "pixel"}
    p = _path(run_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, p)


def estimate(run_dir: Path, method: str, params: dict[str, Any] | None, *, task: str, size: int,
             n_features: int, total_params: int | None, device: str = "cpu") -> tuple[float, bool, str]:
    """(seconds, measured?, sentence) for `method` on an input of `size` tokens (text) or pixels
    per side (image) with `n_features` words or patches."""
    units = size if task == "text" else size * size
    entry = read_timings(run_dir).get(device)
    if entry and entry.get("task") == task:
        per_pass, measured = float(entry["seconds_per_unit"]) * units, True
    else:
        rate = _TEXT_S_PER_TOKEN_PARAM if task == "text" else _IMAGE_S_PER_PIXEL_PARAM
        per_pass, measured = rate * units * float(total_params or (22.7e6 if task == "text" else 4.65e6)), False
    seconds = estimate_seconds(method, params, per_pass, n_features)
    sentence = describe_cost(method, params, seconds, device)
    return seconds, measured, sentence + ("" if measured else " (rough: not yet measured on this machine)")
