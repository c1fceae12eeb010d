"""The run page's and the live curves (issue 14, item 5): loss and scores on two panels, scores on a
fixed 0–1 axis, markers on short lines, and a short run's curve shown from its first epoch."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from apptest_support import open_app_page

from core import jobs
from core.config import RunConfig
from core.train.submit import submit_training


def _check_panels(spec: dict) -> dict[str, dict]:
    layout = spec["layout"]
    assert not any(isinstance(v, dict) and v.get("overlaying") for v in layout.values())  # no twin axes
    assert layout["yaxis2"]["range"] == [0, 1]
    return {tr["name"]: tr for tr in spec["data"]}


def test_the_run_page_draws_two_panels_with_markers_on_a_short_run(fake_runs: Path) -> None:
    at = open_app_page("runs", run="reviews-full-s1")
    chart = next(c for c in at.get("plotly_chart") if c.proto.id and "runs_curves" in c.proto.id)
    traces = _check_panels(json.loads(chart.proto.spec))
    assert traces["train loss"]["yaxis"] == "y" and traces["val accuracy"]["yaxis"] == "y2"
    assert traces["train loss"]["mode"] == "lines+markers"  # the fake run logged 20 steps


def test_a_short_running_job_shows_its_live_curve_from_the_first_epoch(home: Path) -> None:
    (job_id,) = submit_training(RunConfig(), validate=False, check_device=False, owner="someone-else")
    store = jobs.open_store()
    job = store.claim("w-test", socket.gethostname(), os.getpid(), "cpu")
    assert job is not None and job.id == job_id
    store.report_progress(job.id, job.attempts, {"phase": "train", "step": 4, "total_steps": 8, "epoch": 1,
                                                 "epochs": 2})
    run_dir = jobs.get(job.id).run_dir
    run_dir.mkdir(parents=True)
    rows = [{"type": "epoch", "epoch": 1, "step": 4, "train_loss": 0.9, "val_loss": 0.8, "val_accuracy": 0.6,
             "val_macro_f1": 0.5}]  # fewer steps than log_every: no step row yet
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    at = open_app_page("train")
    at.segmented_control(key="train_curves").set_value("all").run()  # someone else's job
    charts = [c for c in at.get("plotly_chart") if c.proto.id and job.id in c.proto.id]
    assert len(charts) == 1
    traces = _check_panels(json.loads(charts[0].proto.spec))
    assert traces["train loss"]["y"] == [0.9] and "markers" in traces["train loss"]["mode"]
