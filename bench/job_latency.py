"""Job system latency: submit-to-start with an idle worker, and the cost of a status poll.

    python bench/job_latency.py [--jobs 20] [--poll 0.5] [--table 1000] [--polls 2000]

1. Submit-to-start (target < 1 s): starts `tunescope worker` (default poll interval 0.5 s) in a
   fresh $TUNESCOPE_HOME, then submits `--jobs` no-op jobs one at a time, at random moments of the
   worker's poll cycle, each after the previous one finished. For each job it reports
   - claimed:  submit() called -> the worker marked the job running and spawned its process,
   - in job:   submit() called -> the job process's first progress write (Python started, job loaded).
   A training job then also imports torch/transformers and builds its model; that cost belongs to
   the job, not to the queue, and is reported by `--train-data` if given (first training step).
2. Status-poll cost (target < 5 ms): with `--table` jobs in the table (rows carrying realistic
   progress JSON), times `jobs.status(id)`, `jobs.poll(id, offset)` on a run with 500 metric rows
   and no new ones, and `jobs.list_jobs(limit=50)` (the jobs page).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _stats(xs: list[float], scale: float = 1.0) -> dict[str, float]:
    xs = sorted(x * scale for x in xs)
    q = lambda f: xs[min(len(xs) - 1, int(round(f * (len(xs) - 1))))]  # noqa: E731
    return {"mean": round(statistics.fmean(xs), 4), "p50": round(q(0.5), 4), "p95": round(q(0.95), 4),
            "max": round(xs[-1], 4), "n": len(xs)}


def _wait(pred, timeout: float, every: float = 0.005):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise TimeoutError("benchmark wait timed out")


def submit_to_start(home: Path, n: int, poll: float, train_data: str | None, train_model: str | None) -> dict:
    from core import jobs

    env = {**os.environ, "TUNESCOPE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    log = open(home / "worker.log", "ab")  # noqa: SIM115
    worker = subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--gpus", "cpu", "--poll", str(poll)],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    try:
        _wait(lambda: jobs.live_workers(), 60)
        rng = random.Random(0)
        claimed, in_job = [], []
        for _ in range(n):
            time.sleep(rng.uniform(0, poll))  # land anywhere in the worker's poll cycle
            t0 = time.time()
            (jid,) = jobs.submit({"seconds": 0}, kind="noop")
            job = _wait(lambda: (j := jobs.get(jid)).is_final and j, 60)  # noqa: B023
            claimed.append(job.started - t0)
            first = job.progress.get("updated")
            log_text = job.log_path().read_text()
            in_job.append((first - t0) if first else float("nan"))
            assert job.state == "succeeded", (job.state, job.error, log_text)
        out = {"claimed_s": _stats(claimed), "in_job_process_s": _stats(in_job)}
        if train_data:
            from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
            from core.train.submit import submit_training

            cfg = RunConfig(data=DataConfig(source=train_data), model=ModelConfig(name=train_model),
                            train=TrainConfig(epochs=1, max_steps=3, device="cpu"))
            t0 = time.time()
            (jid,) = submit_training(cfg)
            t_submitted = time.time()
            job = _wait(lambda: (j := jobs.get(jid)).progress.get("step") and j, 600, every=0.02)  # noqa: B023
            out["train_first_step_s"] = {"submit_call": round(t_submitted - t0, 3),
                                         "claimed": round(job.started - t0, 3),
                                         "first_step_seen": round(time.time() - t0, 3)}
            jobs.cancel(jid, wait=True)
        return out
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        log.close()


def poll_cost(home: Path, table: int, polls: int) -> dict:
    from core import jobs
    from core.jobs import Job

    store = jobs.open_store()
    progress = {"phase": "train", "step": 1234, "total_steps": 5000, "epoch": 1.23, "epochs": 3, "loss": 0.4321,
                "lr": 4.2e-5, "samples_per_second": 31.5, "eta_s": 812.0, "elapsed_s": 400.1,
                "memory": {"device": "cuda:0", "allocated_mb": 2048.0, "reserved_mb": 3072.0, "peak_mb": 2500.0},
                "last_epoch": {"epoch": 1, "val_accuracy": 0.81, "val_macro_f1": 0.80, "val_loss": 0.44}}
    cfg = {"data": {"source": "/data/reviews.csv"}, "model": {"name": "minilm"}, "train": {"method": "full"}}
    now = time.time()
    runs = home / "runs"
    rows = [Job(id=f"j-{i:06x}", kind="train", owner=f"user{i % 7}", config=cfg, created=now + i,
                state=random.Random(i).choice(["succeeded", "failed", "queued", "running", "cancelled"]),
                progress=progress, runs_dir=str(runs), run_id=f"run-{i:04d}") for i in range(table)]
    for i in range(0, table, 200):
        store.add(rows[i:i + 200])
    target = rows[table // 2]
    run = runs / target.run_id
    run.mkdir(parents=True)
    with open(run / "metrics.jsonl", "w") as f:
        for s in range(500):
            f.write(json.dumps({"type": "step", "step": s, "loss": 0.5, "lr": 1e-4, "epoch": s / 100,
                                "samples_per_second": 30.0, "elapsed_s": s * 1.0, "time": now}) + "\n")
    _, _, offset = jobs.poll(target.id, 0)

    def timed(fn, k: int) -> list[float]:  # type: ignore[no-untyped-def]
        fn()
        out = []
        for _ in range(k):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out

    return {
        "jobs_in_table": len(store.list(limit=None)),
        "status_ms": _stats(timed(lambda: jobs.status(target.id), polls), 1000),
        "poll_no_new_rows_ms": _stats(timed(lambda: jobs.poll(target.id, offset), polls), 1000),
        "poll_from_start_500_rows_ms": _stats(timed(lambda: jobs.poll(target.id, 0), max(50, polls // 20)), 1000),
        "list_jobs_50_ms": _stats(timed(lambda: jobs.list_jobs(limit=50), max(50, polls // 10)), 1000),
        "counts_by_state_ms": _stats(timed(lambda: store.counts(), max(50, polls // 10)), 1000),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--poll", type=float, default=0.5, help="the worker's --poll (its default is 0.5)")
    p.add_argument("--table", type=int, default=1000)
    p.add_argument("--polls", type=int, default=2000)
    p.add_argument("--train-data", help="also time a real training job to its first step (e.g. demo:sentiment)")
    p.add_argument("--train-model", help="model for --train-data (default: minilm)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["TUNESCOPE_HOME"] = str(home)
        os.environ.pop("TUNESCOPE_JOBS_DB", None)
        latency = submit_to_start(home, a.jobs, a.poll, a.train_data, a.train_model)
        home2 = Path(tmp) / "home2"
        home2.mkdir()
        os.environ["TUNESCOPE_HOME"] = str(home2)
        cost = poll_cost(home2, a.table, a.polls)
    result = {"submit_to_start": latency, "status_poll": cost}
    print(json.dumps(result, indent=2))
    claimed = latency["claimed_s"]
    print(f"\nsubmit -> start (claimed, process spawned): mean {claimed['mean']:.3f} s, p95 {claimed['p95']:.3f} s "
          f"(target < 1 s); status poll with {cost['jobs_in_table']} jobs: mean {cost['status_ms']['mean']:.3f} ms, "
          f"p95 {cost['status_ms']['p95']:.3f} ms (target < 5 ms)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
