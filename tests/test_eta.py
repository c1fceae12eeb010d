"""The training ETA against the time jobs really took.

tests/data/train_timings.json holds the progress reports of tiny full and head text jobs, run through
the real runner and JobContext by bench/record_train_timings.py (re-record it with that script when
what the context reports changes). Replayed through the ETA rule, every report after the first 10 %
of a job must give an ETA within 2x of the time the job really had left.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest

from core.jobs.context import JobContext
from core.jobs.listing import HEAD_STEP_PRIOR, MIN_ETA_S, eta_seconds
from core.jobs.store import Job

TIMINGS = Path(__file__).parent / "data" / "train_timings.json"
# The job list shows whole seconds, at least MIN_ETA_S, and a report is up to half a second old: in a
# job's last second a ratio says nothing, so an ETA within this of the truth passes as well.
SLACK_S = 1.0


def _jobs() -> list[dict[str, Any]]:
    return json.loads(TIMINGS.read_text())["jobs"]


def _replayed(job: dict[str, Any]) -> list[tuple[dict[str, Any], float | None, float]]:
    """(report, ETA by the current rule, seconds the job really had left) per report."""
    out = []
    for r in job["reports"]:
        eta = eta_seconds({**r, "eta_plan": job["eta_plan"]})
        out.append((r, eta, job["final_elapsed"] - r["elapsed"]))
    return out


def test_the_recorded_traces_cover_both_methods_and_the_caching_phase() -> None:
    jobs = _jobs()
    assert {j["method"] for j in jobs} == {"full", "head"}
    late_caching = [r for j in jobs for r in j["reports"]
                    if r["phase"].startswith("features:") and r["elapsed"] >= 0.1 * j["final_elapsed"]]
    assert late_caching, "no head job reports caching after its first 10 %: the check below would miss it"


@pytest.mark.parametrize("job", _jobs(), ids=lambda j: j["name"])
def test_eta_is_within_2x_of_the_time_left_after_the_first_10_percent(job: dict[str, Any]) -> None:
    bad = []
    for r, eta, left in _replayed(job):
        if r["elapsed"] < 0.1 * job["final_elapsed"]:
            continue
        if eta is None:
            # only before anything is timed (data and model still loading) may the ETA be unknown
            if r["phase"] != "starting":
                bad.append((r["elapsed"], r["phase"], None, round(left, 2)))
            continue
        if not (0.5 <= eta / left <= 2.0 or abs(eta - left) <= SLACK_S):
            bad.append((r["elapsed"], r["phase"], round(eta, 2), round(left, 2)))
    assert not bad, f"(elapsed, phase, eta, really left) off by more than 2x: {bad}"


@pytest.mark.parametrize("job", _jobs(), ids=lambda j: j["name"])
def test_a_replayed_eta_never_reads_zero(job: dict[str, Any]) -> None:
    for _, eta, _ in _replayed(job):
        assert eta is None or eta >= MIN_ETA_S


# -- the head method's caching phase -----------------------------------------------------------------

def _head_progress(phase: str, done: int, total: int, work: dict[str, list[float]], step: int = 0) -> dict:
    plan = {"sizes": {"train": 1000, "validation": 200, "test": 300}, "steps_per_epoch": 32,
            "samples_per_step": 32, "feature_cache": True}
    return {"phase": phase, "phase_done": done, "phase_total": total, "step": step, "total_steps": 96,
            "eta_plan": plan, "eta_work": work, "eta_s": 0.0}  # the stale training ETA of before


@pytest.mark.parametrize(("phase", "done", "total"), [
    ("features:train", 100, 1000), ("features:train", 1000, 1000), ("features:validation", 50, 200),
    ("features:validation", 200, 200),  # caching done, no step timed yet: training is still ahead
])
def test_head_caching_never_yields_zero_while_work_remains(phase: str, done: int, total: int) -> None:
    work = {"features": [1.0, 100]}  # 10 ms an example
    eta = eta_seconds(_head_progress(phase, done, total, work))
    assert eta is not None
    left_to_cache = (total - done) + (200 if phase == "features:train" else 0) + 300
    # the caching still to do (test features after training included) and the training steps on top
    assert eta > left_to_cache * 0.01 + 96 * 0.001


def test_head_eta_prices_training_at_its_own_pace_once_steps_are_timed() -> None:
    work = {"features": [12.0, 1200], "train": [0.5, 10]}  # 10 ms an example, 50 ms a step
    eta = eta_seconds(_head_progress("train", 1200, 1200, work, step=10) | {"phase": "train"})
    assert eta == pytest.approx(86 * 0.05 + 300 * 0.01)  # the steps left, then caching the test split
    eta = eta_seconds(_head_progress("finishing", 1200, 1200, work, step=96))
    assert eta == pytest.approx(300 * 0.01)
    eta = eta_seconds(_head_progress("features:test", 300, 300, work, step=96))
    assert eta == MIN_ETA_S  # only saving is left: never "0 s"


def test_caching_is_priced_by_the_engines_token_cost() -> None:
    # batches come sorted by length: the first 10 % of the examples may be far less than 10 % of the work
    from core.train.engine import EXAMPLE_TOKENS, batch_costs

    assert batch_costs([3, 5, 9], [[0, 1], [2]]) == [2 * (5 + EXAMPLE_TOKENS), 9 + EXAMPLE_TOKENS]
    plan = {"sizes": {"train": 100, "validation": 20, "test": 30}, "costs": {"train": 1000, "validation": 200},
            "steps_per_epoch": 4, "samples_per_step": 32, "feature_cache": True}
    p = {"phase": "features:train", "phase_done": 50, "phase_total": 100, "eta_phase_work": [100, 1000],
         "step": 0, "total_steps": 4, "eta_plan": plan, "eta_work": {"features": [1.0, 100]}}
    # half the examples, a tenth of the cost: 900 left of train, 200 of validation, 300 (10 an example)
    # of test, at 10 ms a unit; each step guessed from the caching pace of its 32 examples
    assert eta_seconds(p) == pytest.approx(14.0 + 4 * HEAD_STEP_PRIOR * 32 * 10 * 0.01)


def test_no_eta_until_a_pace_is_measured() -> None:
    assert eta_seconds(_head_progress("starting", 0, 0, {})) is None
    assert eta_seconds(_head_progress("features:train", 32, 1000, {})) is None


def test_a_full_job_counts_the_evaluations_still_to_come() -> None:
    plan = {"sizes": {"train": 640, "validation": 100, "test": 200}, "steps_per_epoch": 20,
            "samples_per_step": 32, "feature_cache": False}
    work = {"train": [10.0, 10], "predict": [1.0, 100]}  # 1 s a step, 10 ms an example predicted
    p = {"phase": "train", "step": 10, "total_steps": 60, "eta_plan": plan, "eta_work": work}
    # 50 steps, the evaluations after epochs 1 to 3 and the test predictions
    assert eta_seconds(p) == pytest.approx(50 * 1.0 + 3 * 100 * 0.01 + 200 * 0.01)
    p = {**p, "step": 20}  # epoch 1's last step: its evaluation is still ahead
    assert eta_seconds(p) == pytest.approx(40 * 1.0 + 3 * 100 * 0.01 + 200 * 0.01)
    p = {**p, "phase": "predict:validation", "phase_done": 40, "phase_total": 100}
    assert eta_seconds(p) == pytest.approx(40 * 1.0 + (60 + 2 * 100) * 0.01 + 200 * 0.01)
    before_eval = {**p, "phase": "train", "step": 10, "eta_work": {"train": [10.0, 10]}}
    # no evaluation timed yet: a forward pass is priced at what a step spends per example
    assert eta_seconds(before_eval) == pytest.approx(50 * 1.0 + (3 * 100 + 200) / 32)


class _FakeState:
    def __init__(self, **kw: Any) -> None:
        self.phase, self.step, self.total_steps, self.epochs = "starting", 0, 96, 3
        self.split_sizes = {"train": 1000, "validation": 200, "test": 300}
        self.steps_per_epoch, self.samples_per_step, self.feature_cache = 32, 32, True
        self.epoch, self.samples_seen, self.loss, self.lr = 0.0, 0, 0.0, 0.0
        self.samples_per_second, self.elapsed_s, self.best_epoch, self.best_metric = 0.0, 0.0, None, None
        self.__dict__.update(kw)


def test_the_job_context_times_caching_and_steps_for_the_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.jobs import context

    now = [100.0]
    monkeypatch.setattr(context.time, "monotonic", lambda: now[0])
    ctx = JobContext(store=None, job=Job(id="j", state="running", attempts=1))  # type: ignore[arg-type]
    state = _FakeState()
    ctx.on_start(state)
    seen = []
    for done in range(100, 1001, 100):
        now[0] += 3.0 if done == 100 else 1.0  # the first batch pays for warm-up
        ctx.on_phase(state, "features:train", done, 1000)
        seen.append(eta_seconds(ctx.progress))
    assert ctx.progress["eta_work"]["features"] == [9.0, 900]  # the warm-up batch left out
    for done in (100, 200):
        now[0] += 1.0
        ctx.on_phase(state, "features:validation", done, 200)
        seen.append(eta_seconds(ctx.progress))
    assert all(e is not None and e >= 300 * 0.01 + MIN_ETA_S for e in seen), seen
    for step in range(1, 4):
        now[0] += 0.05
        state.step, state.phase = step, "train"
        ctx.on_step(state)
    assert ctx.progress["eta_work"]["train"] == [pytest.approx(0.1), 2]
    assert eta_seconds(ctx.progress) == pytest.approx(93 * 0.05 + 300 * 0.01)
    ctx.on_start(_FakeState(samples_per_step=16))  # an out-of-memory retry at half the batch: time it anew
    now[0] += 1.0
    ctx.on_phase(state, "features:train", 100, 1000)
    assert ctx.progress["eta_work"] == {"features": [1.0, 100]}


# -- a live head job through the real callbacks ------------------------------------------------------

class _Store:
    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    def report_progress(self, job_id: str, attempt: int, progress: dict[str, Any]) -> str:
        self.reports.append(dict(progress))
        return "ok"


class _EveryHook:
    """Reads the context's progress at every engine hook (the store only sees some of them)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx, self.seen = ctx, []

    def _look(self, *_: Any) -> None:
        p = {**self.ctx.progress, "updated": time.time()}
        self.seen.append((str(p.get("phase")), eta_seconds(p), p))

    on_start = on_step = on_phase = on_end = _look

    def on_log(self, row: dict[str, Any]) -> None: ...

    def should_stop(self) -> bool:
        return False


def test_a_live_head_job_never_shows_zero_while_work_remains(tmp_path: Path, tiny_bert_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import make_sentiment_rows

    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from core.train.runner import run_train

    monkeypatch.setenv("TUNESCOPE_HOME", str(tmp_path / "home"))
    src = tmp_path / "reviews.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(make_sentiment_rows(600))
    cfg = RunConfig(data=DataConfig(source=str(src)), model=ModelConfig(name=str(tiny_bert_dir), max_length=32),
                    train=TrainConfig(method="head", epochs=2, batch_size=16, eval_batch_size=16, device="cpu"))
    store = _Store()
    job = Job(id="live", state="running", attempts=1, config=cfg.to_dict(), runs_dir=str(tmp_path / "runs"),
              run_id="live")
    ctx = JobContext(store, job, min_interval=0.05)  # type: ignore[arg-type]
    hooks = _EveryHook(ctx)
    ctx.start()
    try:
        run_train(ctx, extra_callbacks=[hooks])
    finally:
        ctx.close()
    caching = [(phase, eta) for phase, eta, p in hooks.seen
               if phase.startswith("features:") and p["phase_done"] < p["phase_total"]]
    assert {phase for phase, _ in caching} >= {"features:train", "features:validation", "features:test"}
    # after its first timed batch, every caching report has an ETA, and it is never "0 s"
    assert all(eta is not None and eta >= MIN_ETA_S for _, eta in caching[2:]), caching
    for phase, eta, _ in hooks.seen:
        assert eta is None or eta >= MIN_ETA_S
        assert eta is not None or phase in ("starting", "features:train"), (phase, eta)
    for p in store.reports:  # what the job list reads
        eta = eta_seconds(p)
        assert eta is None or eta >= MIN_ETA_S
