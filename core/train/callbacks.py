"""What the training engine tells the outside world: the `Callback` hooks and the `TrainState` they see,
and the one callback every run has, `MetricsFile`, which writes the run's metrics.jsonl, together with
`merge_metric_rows`, the reader's side of that file's resume rule.

Torch-free, so that the dashboard (which polls metrics.jsonl) and the job context can use the same
interface and rule as the engine. May import: core.runs (and the standard library).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.runs import RunWriter

__all__ = ["Callback", "MetricsFile", "TrainState", "merge_metric_rows"]


@dataclass
class TrainState:
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    epochs: int = 0
    samples_seen: int = 0
    elapsed_s: float = 0.0
    loss: float = float("nan")
    lr: float = 0.0
    samples_per_second: float = 0.0
    phase: str = "starting"
    best_epoch: int | None = None
    best_metric: float | None = None
    # The work ahead, set before on_start, so a job's ETA can count the evaluations and the feature
    # caching still to come and not only the training steps.
    split_sizes: dict[str, int] = field(default_factory=dict)
    steps_per_epoch: int = 0
    samples_per_step: int = 0
    feature_cache: bool = False
    # What a pass over each encoded split costs at the evaluation batch size (in tokens, see
    # core.train.engine.batch_costs), and how far the counted phase under way is in them: its batches
    # are sorted by length, so the examples get dearer as a split goes on and a count of examples
    # would time the rest too short.
    split_costs: dict[str, int] = field(default_factory=dict)
    phase_work: tuple[int, int] | None = None


class Callback:
    """Hooks the engine calls; the CLI shows a bar, the job system writes progress and cancels."""

    def on_start(self, state: TrainState) -> None: ...

    def on_step(self, state: TrainState) -> None: ...

    def on_log(self, row: dict[str, Any]) -> None: ...

    def on_phase(self, state: TrainState, phase: str, done: int, total: int) -> None: ...

    def on_end(self, state: TrainState) -> None: ...

    def should_stop(self) -> bool:
        return False


# -- metrics.jsonl: one row per logged step and epoch ---------------------------------------------
# The resume rule: a resumed attempt logs a row of type "resume" with the step of its checkpoint and
# re-logs every row after that step. The writer (MetricsFile) first cuts the file back to the byte
# offset saved with the checkpoint; a reader that already holds rows past the cut (the dashboard
# polling a live job) drops them on seeing the "resume" row (merge_metric_rows).


class MetricsFile(Callback):
    """Appends every logged row to the run's metrics.jsonl; on resume, first cuts the file back to
    where it stood at the checkpoint, so no row is logged twice."""

    def __init__(self, run: RunWriter) -> None:
        self.run = run

    def offset(self) -> dict[str, int]:
        p = self.run.path / "metrics.jsonl"
        return {"metrics_offset": p.stat().st_size if p.exists() else 0}

    def on_log(self, row: dict[str, Any]) -> None:
        if row.get("type") == "resume":
            p = self.run.path / "metrics.jsonl"
            if p.exists():
                with open(p, "r+b") as f:
                    f.truncate(int(row.get("metrics_offset", 0)))
        self.run.append_metrics({**row, "time": time.time()})


def merge_metric_rows(rows: list[dict[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Append polled metric rows. A 'resume' row drops the rows after its step (a resumed attempt
    re-logs them from its checkpoint); a row re-read for the same (type, step) replaces the old one,
    so reading a file again from the start never duplicates points."""
    out = {(r.get("type"), r.get("step")): r for r in rows}
    for r in new:
        if r.get("type") == "resume":
            step = r.get("step") or 0
            out = {k: x for k, x in out.items() if (x.get("step") or 0) <= step}
            continue
        key = (r.get("type"), r.get("step"))
        out.pop(key, None)
        out[key] = dict(r)
    return list(out.values())
