"""metrics.jsonl's resume rule, both sides: MetricsFile cuts the file back on a 'resume' row, and a
reader that already held the rows past the cut (the dashboard polling a live job) drops them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.runs import Run, RunWriter
from core.train.callbacks import MetricsFile, merge_metric_rows


def _points(rows: list[dict]) -> list[tuple]:
    return [(r["type"], r["step"], r.get("loss")) for r in rows if r["type"] != "resume"]


def test_the_writer_and_a_live_reader_agree_after_a_resume(tmp_path: Path) -> None:
    run = RunWriter.create(tmp_path, "r")
    log = MetricsFile(run)
    for step in (10, 20):
        log.on_log({"type": "step", "step": step, "loss": 1.0})
    at_checkpoint = log.offset()["metrics_offset"]
    log.on_log({"type": "step", "step": 30, "loss": 1.0})  # logged after the checkpoint, then interrupted
    seen, _ = Run(run.path).metrics()
    live = merge_metric_rows([], seen)

    log.on_log({"type": "resume", "step": 20, "metrics_offset": at_checkpoint})
    log.on_log({"type": "step", "step": 30, "loss": 0.5})

    whole, _ = Run(run.path).metrics()
    assert _points(whole) == [("step", 10, 1.0), ("step", 20, 1.0), ("step", 30, 0.5)]  # no row twice
    rest, _ = Run(run.path).metrics(at_checkpoint)  # where a poller restarts after the cut
    assert _points(merge_metric_rows(live, rest)) == _points(whole)
    assert _points(merge_metric_rows(merge_metric_rows([], whole), whole)) == _points(whole)  # re-read


def test_the_rule_loads_without_torch() -> None:
    code = "import sys, core.train.callbacks; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
