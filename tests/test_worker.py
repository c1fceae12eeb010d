"""The worker as a user runs it (`tunescope worker`, a real process tree) on tiny models: kill -9
mid-epoch and resume to the uninterrupted run's metrics, a corrupt checkpoint skipped, cancel timing
(graceful and forced), a failing job followed by a good one, and a restarted worker picking up its
queue.

This module doubles as a job-runner plugin for the workers it starts ($TUNESCOPE_JOB_RUNNERS):
`train` sleeps after each step so a test can act mid-epoch (it changes no computation), `stubborn`
ignores every polite stop, `boom` raises.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.train.submit import submit_training

ROOT = Path(__file__).resolve().parents[1]
STEP_SLEEP_S = 0.2


# -- plugin runners (imported by the job processes) -----------------------------------------------


def _slow_train(ctx: Any) -> dict[str, Any]:
    from core.train.engine import Callback
    from core.train.runner import run_train

    class Slow(Callback):
        def on_step(self, state: Any) -> None:
            time.sleep(float(os.environ.get("TEST_STEP_SLEEP_S", STEP_SLEEP_S)))

    return run_train(ctx, extra_callbacks=[Slow()])


def _stubborn(ctx: Any) -> dict[str, Any]:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx.update(phase="stubborn")
    while True:
        time.sleep(0.05)


def _boom(ctx: Any) -> dict[str, Any]:
    raise RuntimeError("boom: the job broke on purpose")


def _where(ctx: Any) -> dict[str, Any]:
    time.sleep(1.0)
    return {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "omp_threads": os.environ.get("OMP_NUM_THREADS")}


def _slow_start(ctx: Any) -> dict[str, Any]:
    # Stays in start-up (never reports another phase) for its first `kills` attempts, then finishes.
    if ctx.job.attempts <= int(ctx.job.config.get("kills", 0)):
        time.sleep(60)
    return {"attempt": ctx.job.attempts}


RUNNERS = {"train": _slow_train, "stubborn": _stubborn, "boom": _boom, "where": _where, "slowstart": _slow_start}


# -- helpers --------------------------------------------------------------------------------------


class WorkerProc:
    """`tunescope worker` in its own session, with short intervals; always killed at teardown."""

    def __init__(self, home: Path, log: Path, *flags: str) -> None:
        env = {**os.environ, "TUNESCOPE_HOME": str(home), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
               "TUNESCOPE_JOB_RUNNERS": "tests.test_worker"}
        env.pop("TUNESCOPE_JOBS_DB", None)
        self.log = open(log, "ab")  # noqa: SIM115 - closed in kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--gpus", "cpu", "--threads", "1", "--poll", "0.1",
             "--heartbeat", "0.5", "--stale-after", "5", "--reap-every", "1", "--cancel-grace", "1",
             "--cancel-kill", "2", *flags],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=60)
        self.log.close()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def start_worker(home, tmp_path) -> Callable[..., WorkerProc]:
    started: list[WorkerProc] = []

    def start(*flags: str) -> WorkerProc:
        w = WorkerProc(home, tmp_path / "worker.log", *flags)
        started.append(w)
        return w

    yield start
    from core import jobs

    for w in started:
        if w.alive():
            w.kill()
    for j in jobs.list_jobs(state="running", limit=None):  # belt and braces: no stray job processes
        if j.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(j.pid, signal.SIGKILL)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def pid_gone(pid: int) -> bool:
    from core.jobs.reaper import pid_alive as _pid_alive

    return not _pid_alive(pid)


def worker_log(tmp_path: Path) -> str:
    p = tmp_path / "worker.log"
    return p.read_text(errors="replace") if p.exists() else ""


def train_cfg(source: Path, model_dir: Path, **train: Any):
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    train = {"method": "full", "epochs": 3, "batch_size": 16, "lr": 3e-3, "train_embeddings": True,
             "device": "cpu", "checkpoint_every": 3, "log_every": 2, **train}
    return RunConfig(data=DataConfig(source=str(source)),
                     model=ModelConfig(name=str(model_dir), max_length=32, pooling="mean"),
                     train=TrainConfig(**train))


@pytest.fixture(scope="module")
def module_csv(tmp_path_factory) -> Path:
    import csv

    from conftest import make_sentiment_rows

    p = tmp_path_factory.mktemp("data") / "reviews.csv"
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(make_sentiment_rows())
    return p


@pytest.fixture(scope="module")
def reference(module_csv, tiny_bert_dir, tmp_path_factory) -> dict[str, Any]:
    """The uninterrupted run, trained in this process with the job processes' single thread."""
    import torch

    from core import api

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = api.train(train_cfg(module_csv, tiny_bert_dir), runs_dir=tmp_path_factory.mktemp("ref"),
                        run_id="reference")
    finally:
        torch.set_num_threads(threads)
    return json.loads((out / "summary.json").read_text())


def assert_same_metrics(a: dict[str, Any], b: dict[str, Any]) -> None:
    for split in ("test", "validation"):
        for k in ("accuracy", "macro_f1", "weighted_f1", "loss"):
            assert abs(a[split][k] - b[split][k]) < 1e-6, (split, k, a[split][k], b[split][k])
    assert a["test"]["confusion_matrix"] == b["test"]["confusion_matrix"]
    assert a["steps"] == b["steps"]


def metric_rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


# -- kill -9 and resume ---------------------------------------------------------------------------


@pytest.mark.parametrize("victim", ["job", "worker"])
def test_kill_9_mid_epoch_then_resume_matches_uninterrupted(victim, home, start_worker, module_csv, tiny_bert_dir,
                                                            reference, tmp_path):
    """victim=job: kill -9 of the job process; the live worker resumes it.
    victim=worker: kill -9 of the worker (its job dies with it), the newest checkpoint is then torn;
    a restarted worker resumes from the previous intact one."""
    from core import jobs
    from core.train.checkpoint import Checkpointer

    (jid,) = submit_training(train_cfg(module_csv, tiny_bert_dir))
    w = start_worker()
    # 11 steps per epoch, checkpoints every 3: at step 7 two checkpoints exist and the epoch is not over
    # (progress lags the engine by at most 0.5 s, i.e. under 3 steps of 0.2 s)
    job = wait_for(lambda: (j := jobs.get(jid)).progress.get("step", 0) >= 7 and j, 90, "step 7")
    child = job.pid
    run_dir = job.run_dir
    if victim == "job":
        os.killpg(child, signal.SIGKILL)
        wait_for(lambda: pid_gone(child), 10, "the killed job process to be gone")
        resumed_from = int(Checkpointer(run_dir / "checkpoints")._existing()[-1].name.split("-")[1])
    else:
        w.kill(signal.SIGKILL)  # only the worker: its job must die with it (parent-death signal)
        wait_for(lambda: pid_gone(child), 10, "the orphaned job process to die")
        assert jobs.get(jid).state == "running"  # nobody has noticed yet
        ck = Checkpointer(run_dir / "checkpoints")
        newest, previous = ck._existing()[-1], ck._existing()[-2]
        data = (newest / "tensors.safetensors").read_bytes()
        (newest / "tensors.safetensors").write_bytes(data[: len(data) // 2])  # a torn write
        resumed_from = int(previous.name.split("-")[1])
        w = start_worker("--exit-when-idle")
    assert 3 <= resumed_from < 11  # a mid-epoch checkpoint
    done = wait_for(lambda: (j := jobs.get(jid)).is_final and j, 120, "the job to finish", every=0.2)
    assert done.state == "succeeded", (done.error, worker_log(tmp_path))
    assert done.attempts == 2 and done.crashes == 1
    # the job's own death counts against it; dying with its worker after step 7 does not
    assert done.strikes == (1 if victim == "job" else 0)
    rows = metric_rows(run_dir)
    (resume,) = [r for r in rows if r["type"] == "resume"]
    assert resume["step"] == resumed_from
    steps = [r["step"] for r in rows if r["type"] == "step"]
    assert steps == sorted(set(steps))  # no step logged twice
    assert_same_metrics(json.loads((run_dir / "summary.json").read_text()), reference)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "succeeded"
    assert "resumed from the checkpoint" in (run_dir / "job.log").read_text()
    if victim == "worker":
        assert w.wait(30) == 0
        # the job log says which checkpoint the resume rejected, and from which it resumed instead
        log = (run_dir / "job.log").read_text()
        assert f"checkpoint {newest.name} rejected (tensors.safetensors" in log
        assert f"resuming from the older checkpoint {previous.name}" in log


def test_killed_with_its_worker_during_start_up_is_not_the_jobs_fault(home, start_worker, tmp_path):
    """Item 22: kill -9 of the worker while its job is still starting, as often as max_attempts: the
    job resumes every time and finally succeeds."""
    from core import jobs

    (jid,) = jobs.submit({"kills": 2}, kind="slowstart", max_attempts=2)
    for attempt in (1, 2):
        w = start_worker()
        job = wait_for(lambda a=attempt: (j := jobs.get(jid)).pid and j.progress.get("attempt") == a and j,
                       30, f"attempt {attempt} to report its start-up")
        assert job.progress["phase"] == "starting"
        w.kill(signal.SIGKILL)
        wait_for(lambda p=job.pid: pid_gone(p), 10, "the job process to die with its worker")
    w = start_worker("--exit-when-idle")
    assert w.wait(60) == 0, worker_log(tmp_path)
    done = jobs.get(jid)
    assert done.state == "succeeded", (done.error, worker_log(tmp_path))
    assert (done.attempts, done.crashes, done.strikes) == (3, 2, 0)


# -- cancel ---------------------------------------------------------------------------------------


def test_cancel_graceful_while_training_with_live_progress(home, start_worker, module_csv, tiny_bert_dir):
    from core import jobs

    (jid,) = submit_training(train_cfg(module_csv, tiny_bert_dir, epochs=20))
    (queued,) = submit_training(train_cfg(module_csv, tiny_bert_dir, epochs=1), priority=-1)
    start_worker()
    wait_for(lambda: jobs.get(jid).progress.get("step", 0) >= 1, 90, "training to start")
    # a queued job is removed from the queue without ever running
    assert jobs.cancel(queued).state == "cancelled"
    # live progress: written at least every 2 s with step/total, epoch, speed, ETA, loss, memory
    updates, offset, rows = [], 0, []
    t_end = time.monotonic() + 3
    while time.monotonic() < t_end:
        st, new, offset = jobs.poll(jid, offset)
        rows += new
        updates.append(st["progress"]["updated"])
        time.sleep(0.2)
    p = st["progress"]
    assert p["total_steps"] == 220 and p["step"] > 1 and p["eta_s"] > 0 and p["samples_per_second"] > 0
    assert p["loss"] > 0 and p["memory"]["rss_mb"] > 0 and 0 < p["epoch"] < 20
    distinct = sorted(set(updates))
    assert len(distinct) >= 3 and max(b - a for a, b in zip(distinct, distinct[1:], strict=False)) <= 2.1
    file_rows = metric_rows(Path(st["run_dir"]))
    assert rows == file_rows[: len(rows)] and rows and offset > 0  # incremental reads, nothing lost
    child = st["pid"]
    t0 = time.monotonic()
    job = jobs.cancel(jid, wait=True, timeout=20)
    took = time.monotonic() - t0
    assert job.state == "cancelled" and took < 5, (job.state, took)
    assert "Cancelled by request" in job.error and "killed" not in job.error
    wait_for(lambda: pid_gone(child), 10, "the job process to exit")
    assert json.loads((job.run_dir / "status.json").read_text())["state"] == "cancelled"
    assert (job.run_dir / "metrics.jsonl").is_file()  # what it wrote is kept
    time.sleep(0.5)
    q = jobs.get(queued)
    assert q.state == "cancelled" and q.attempts == 0 and q.started is None


def test_cancel_forced_kill_when_the_job_ignores_it(home, start_worker):
    from core import jobs

    (jid,) = jobs.submit({}, kind="stubborn")
    start_worker()
    job = wait_for(lambda: (j := jobs.get(jid)).progress.get("phase") == "stubborn" and j, 30, "stubborn job")
    child = job.pid
    t0 = time.monotonic()
    job = jobs.cancel(jid, wait=True, timeout=20)
    took = time.monotonic() - t0
    # the worker here sends SIGTERM after 1 s (ignored) and SIGKILL after 2 s
    assert job.state == "cancelled" and 1.9 < took < 5, (job.state, took)
    assert "killed" in job.error
    wait_for(lambda: pid_gone(child), 5, "the killed process to be gone")


# -- failures, restarts ---------------------------------------------------------------------------


def test_failing_job_is_recorded_and_the_worker_serves_the_next(home, start_worker, module_csv,
                                                                tiny_bert_dir, tmp_path):
    from core import jobs
    from core.cli import main

    gone = tmp_path / "gone.csv"
    gone.write_bytes(module_csv.read_bytes())
    (bad_data,) = submit_training(train_cfg(gone, tiny_bert_dir), priority=3)
    gone.unlink()  # valid at submit time, missing when it runs
    (boom,) = jobs.submit({}, kind="boom", priority=2)
    (good,) = jobs.submit({"seconds": 0.2}, kind="noop", priority=1)
    w = start_worker("--exit-when-idle")
    assert w.wait(120) == 0, worker_log(tmp_path)
    failed = jobs.get(bad_data)
    assert failed.state == "failed" and "gone.csv" in failed.error and failed.error.startswith("DataError")
    b = jobs.get(boom)
    assert b.state == "failed" and b.error == "RuntimeError: boom: the job broke on purpose"
    assert "Traceback" in jobs.read_log(boom)[0]  # the full story is in the job's log
    assert jobs.get(good).state == "succeeded"
    assert main(["logs", good, "--follow"]) == 0
    assert main(["logs", boom, "--follow"]) == 1


def test_restarted_worker_picks_up_queued_and_stopped_jobs(home, start_worker, tmp_path, capfd):
    from core import jobs
    from core.cli import main

    ids = [jobs.submit({"seconds": 1.5}, kind="noop")[0] for _ in range(3)]
    w = start_worker()
    wait_for(lambda: jobs.get(ids[0]).progress.get("step", 0) >= 2, 30, "the first job to run")
    w.kill(signal.SIGTERM)  # a polite stop: the running job is interrupted, not failed
    first = jobs.get(ids[0])
    assert first.state == "interrupted" and first.crashes == 0, (first.state, first.error)
    assert [jobs.get(i).state for i in ids[1:]] == ["queued", "queued"]
    assert main(["jobs"]) == 0
    out = capfd.readouterr()
    assert ids[0] in out.out and "interrupted" in out.out and "no worker is running" in out.err
    w = start_worker("--exit-when-idle")
    assert w.wait(60) == 0
    assert [jobs.get(i).state for i in ids] == ["succeeded"] * 3
    assert jobs.get(ids[0]).attempts == 2


def test_one_job_per_gpu_slot_at_the_same_time(home, start_worker, tmp_path):
    """Slots are what --gpus names: two GPUs run two jobs at once, each seeing only its own GPU.
    (No GPU is needed: the jobs here only report what they were given.)"""
    from core import jobs

    ids = [jobs.submit({}, kind="where")[0] for _ in range(3)]
    w = start_worker("--gpus", "0,1", "--exit-when-idle")
    assert w.wait(60) == 0, worker_log(tmp_path)
    rows = [jobs.get(i) for i in ids]
    assert [r.state for r in rows] == ["succeeded"] * 3
    first, second, third = rows
    assert {first.device, second.device} == {"cuda:0", "cuda:1"}
    assert first.started < second.finished and second.started < first.finished  # ran side by side
    assert third.started >= min(first.finished, second.finished) - 0.05  # waited for a free slot
    for r in rows:
        assert r.result["cuda_visible_devices"] == r.device.split(":")[1]
        assert r.result["omp_threads"] == "1"
