"""The job store and job API, in process (no worker): submit-time validation, queue order, groups,
cancel, polling, reaping, out-of-memory retries, concurrency of many submitting processes, and the
device-memory estimate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core import jobs
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.errors import ConfigError, DataError, ModelError, RunError
from core.jobs import queue
from core.jobs import store as job_store
from core.train.submit import submit_training

ROOT = Path(__file__).resolve().parents[1]


def cfg_for(source: Path, model_dir: Path, **train) -> RunConfig:
    train = {"method": "full", "epochs": 2, "batch_size": 16, "lr": 3e-3, "device": "cpu", **train}
    return RunConfig(data=DataConfig(source=str(source)),
                     model=ModelConfig(name=str(model_dir), max_length=32, pooling="mean"),
                     train=TrainConfig(**train))


def noop(n: int = 1, **kw) -> list[str]:
    return [jobs.submit({"seconds": 0}, kind="noop", **kw)[0] for _ in range(n)]


def claim(store, worker="w-test", pid=None):
    return store.claim(worker, "test-host", pid or os.getpid(), "cpu")


# -- submit ---------------------------------------------------------------------------------------


def test_submit_validates_like_train_and_queues_nothing_on_error(home, sentiment_csv, tiny_bert_dir, tmp_path):
    with pytest.raises(DataError, match="missing.csv"):
        submit_training(cfg_for(tmp_path / "missing.csv", tiny_bert_dir))
    with pytest.raises(ModelError, match="image model"):
        submit_training(RunConfig(data=DataConfig(source=str(sentiment_csv)), model=ModelConfig(name="resnet18")))
    # (a missing model folder is refused by ModelConfig itself since cb51dc8, before submit looks)
    with pytest.raises((ModelError, ConfigError), match="does not exist|not an existing folder"):
        submit_training(cfg_for(sentiment_csv, tmp_path / "no-such-model"))
    if not _has_cuda():
        with pytest.raises(ConfigError, match="CUDA"):
            submit_training(cfg_for(sentiment_csv, tiny_bert_dir, device="cuda"))
    with pytest.raises(ConfigError, match="lr must be"):  # an invalid grid point rejects the whole grid
        submit_training(cfg_for(sentiment_csv, tiny_bert_dir), grid={"lr": [1e-3, 5.0]})
    with pytest.raises(ConfigError, match="Cannot vary"):
        submit_training(cfg_for(sentiment_csv, tiny_bert_dir), grid={"colour": ["red"]})
    assert jobs.list_jobs() == []
    assert not (home / "runs").exists()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_cli_submit_rejects_invalid_config_with_exit_2(home, sentiment_csv, tiny_bert_dir, capsys):
    from core.cli import main

    rc = main(["submit", "--data", str(sentiment_csv), "--model", str(tiny_bert_dir), "--epochs", "0"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    rc = main(["submit", "--data", str(sentiment_csv), "--seeds", "1,x"])
    assert rc == 2 and "--seeds" in capsys.readouterr().err
    assert jobs.list_jobs() == []


def test_submit_seeds_and_grid_make_one_group(home, sentiment_csv, tiny_bert_dir, capsys):
    from core.cli import main

    cfg = cfg_for(sentiment_csv, tiny_bert_dir)
    ids = submit_training(cfg, seeds=[1, 2], grid={"method": ["full", "lora"], "lr": [1e-3]}, owner="ana", priority=3)
    assert len(ids) == 4 and len(set(ids)) == 4
    rows = [jobs.get(i) for i in ids]
    (group,) = {r.group_id for r in rows}
    assert group.startswith("g-")
    assert {(r.tags["method"], r.tags["seed"]) for r in rows} == {("full", 1), ("full", 2), ("lora", 1), ("lora", 2)}
    for r in rows:
        c = RunConfig.from_dict(r.config)
        assert (c.train.method, c.train.seed, c.train.lr) == (r.tags["method"], r.tags["seed"], 1e-3)
        assert r.state == "queued" and r.owner == "ana" and r.priority == 3 and r.kind == "train"
        assert Path(c.data.source).is_absolute() and r.run_dir.parent == (home / "runs").resolve()
    assert len({r.run_id for r in rows}) == 4
    g = jobs.group_status(group)
    assert g["total"] == 4 and g["counts"] == {"queued": 4} and not g["done"]
    # the CLI: ids on stdout, one per line; the group note on stderr
    assert main(["submit", "--data", str(sentiment_csv), "--model", str(tiny_bert_dir), "--seeds", "4,5,6",
                 "--grid-method", "head"]) == 0
    out = capsys.readouterr()
    new = out.out.split()
    assert len(new) == 3 and all(i.startswith("j-") for i in new) and "group g-" in out.err
    assert main(["status", jobs.get(new[0]).group_id]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 3


def test_run_id_is_reserved(home, sentiment_csv, tiny_bert_dir):
    cfg = cfg_for(sentiment_csv, tiny_bert_dir)
    submit_training(cfg, run_id="mine")
    with pytest.raises(jobs.JobError, match="mine"):
        submit_training(cfg, run_id="mine")
    (home / "runs" / "taken").mkdir(parents=True)
    with pytest.raises(RunError, match="already exists"):
        submit_training(cfg, run_id="taken")
    assert len(jobs.list_jobs()) == 1


# -- queue ----------------------------------------------------------------------------------------


def test_claim_order_is_priority_then_fifo(home):
    store = jobs.open_store()
    low = noop(3)
    high = noop(2, priority=5)
    order = [claim(store).id for _ in range(5)]
    assert order == high + low
    assert claim(store) is None
    job = store.get(order[0])
    assert job.state == "running" and job.attempts == 1 and job.worker_id == "w-test" and job.started


def test_cancel_queued_job_leaves_the_queue(home, capsys):
    from core.cli import main

    store = jobs.open_store()
    a, b = noop(2)
    assert jobs.cancel(a).state == "cancelled"
    assert claim(store).id == b
    assert claim(store) is None
    assert "already cancelled" not in capsys.readouterr().out
    assert main(["cancel", a]) == 0 and "already cancelled" in capsys.readouterr().out
    assert main(["cancel", "j-000000"]) == 2


def test_submit_draws_new_ids_when_one_is_taken(home, monkeypatch):
    (first,) = noop(1)
    real = jobs.new_job_id
    draws = iter([first, first])
    monkeypatch.setattr(queue, "new_job_id", lambda: next(draws, None) or real())
    (second,) = noop(1)
    assert second != first and len(jobs.list_jobs()) == 2


def test_running_job_with_live_worker_only_gets_the_flag(home):
    store = jobs.open_store()
    (a,) = noop(1)
    claim(store)
    job = jobs.cancel(a)  # this process is the "worker": alive, so only the flag is set
    assert job.state == "running" and job.cancel_requested is not None
    assert store.report_progress(a, 1, {"step": 1}) == "cancel"
    assert store.report_progress(a, 2, {"step": 1}) is None  # a stale attempt learns it lost the job


def test_many_processes_submit_and_claim_at_once(home):
    """10 processes × 20 submissions while 3 processes claim: every job exists once, is claimed once,
    and nobody sees 'database is locked'."""
    submitter = textwrap.dedent("""
        import sys, time
        from core import jobs
        time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
        ids = [jobs.submit({"seconds": 0}, kind="noop", owner=sys.argv[2])[0] for _ in range(20)]
        print("\\n".join(ids))
    """)
    claimer = textwrap.dedent("""
        import os, sys, time
        from core import jobs
        store = jobs.open_store()
        time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
        got, idle_since = [], None
        while True:
            j = store.claim("w-" + sys.argv[2], "h", os.getpid(), "cpu")
            if j is not None:
                got.append(j.id)
                store.update(j.id, expect_attempt=j.attempts, state="succeeded")
                idle_since = None
            else:
                idle_since = idle_since or time.time()
                if time.time() - idle_since > 2:
                    break
                time.sleep(0.01)
        print("\\n".join(got))
    """)
    jobs.open_store()  # the schema exists before the race (also tested: see below)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = str(time.time() + 2.5)
    procs = [subprocess.Popen([sys.executable, "-c", submitter, start, f"u{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(10)]
    procs += [subprocess.Popen([sys.executable, "-c", claimer, start, str(i)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env) for i in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
    submitted = [i for out, _ in outs[:10] for i in out.split()]
    claimed = [i for out, _ in outs[10:] for i in out.split()]
    assert len(submitted) == len(set(submitted)) == 200
    assert sorted(claimed) == sorted(submitted)  # each exactly once
    rows = jobs.list_jobs(limit=None)
    assert len(rows) == 200 and {r.state for r in rows} == {"succeeded"} and {r.attempts for r in rows} == {1}


def test_fresh_database_opened_by_many_processes_at_once(tmp_path):
    code = "import sys; from core.jobs import SQLiteJobStore as S; S(sys.argv[1]).counts(); print('ok')"
    db = tmp_path / "fresh" / "jobs.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(8)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.strip() == "ok", err


# -- status, poll, reaper -------------------------------------------------------------------------


def test_poll_returns_only_new_rows_and_follows_a_resume_cut(home, sentiment_csv, tiny_bert_dir):
    store = jobs.open_store()
    (jid,) = submit_training(cfg_for(sentiment_csv, tiny_bert_dir), run_id="polled")
    job = claim(store)
    run = Path(job.run_dir)
    run.mkdir(parents=True)
    metrics = run / "metrics.jsonl"

    def append(*rows):
        with open(metrics, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    st, rows, off = jobs.poll(jid, 0)
    assert rows == [] and off == 0 and st["state"] == "running"
    append({"type": "step", "step": 1}, {"type": "step", "step": 2})
    with open(metrics, "a") as f:
        f.write('{"type": "step", "st')  # half-written line: waits for the next poll
    st, rows, off = jobs.poll(jid, 0)
    assert [r["step"] for r in rows] == [1, 2]
    assert jobs.poll(jid, off)[1] == []
    with open(metrics, "a") as f:
        f.write('ep": 3}\n')
    st, rows, off = jobs.poll(jid, off)
    assert [r["step"] for r in rows] == [3] and off == metrics.stat().st_size
    # a resumed attempt cuts the file back to its checkpoint and continues
    cut = len(metrics.read_bytes().split(b"\n")[0]) + 1
    with open(metrics, "r+b") as f:
        f.truncate(cut)
    append({"type": "resume", "step": 1, "metrics_offset": cut}, {"type": "step", "step": 2, "x": "longer row"})
    store.update(jid, attempts=2, progress={"metrics_reset": {"offset": cut, "step": 1, "attempt": 2}})
    st, rows, off2 = jobs.poll(jid, off, attempt=1)
    assert [r["type"] for r in rows] == ["resume", "step"] and off2 == metrics.stat().st_size
    assert st["attempts"] == 2 and st["progress"]["metrics_reset"]["offset"] == cut


def test_status_poll_is_cheap_with_1000_jobs(home):
    store = jobs.open_store()
    from core.jobs import Job

    now = time.time()
    store.add([Job(id=f"j-{i:06x}", kind="noop", config={}, created=now + i) for i in range(1000)])
    target = store.list(limit=1)[0].id
    jobs.status(target)
    t0 = time.perf_counter()
    for _ in range(200):
        jobs.status(target)
    per_poll = (time.perf_counter() - t0) / 200
    assert per_poll < 0.005, f"{per_poll * 1000:.2f} ms per status poll"


def stuck(attempt: int, step: int = 0) -> dict:
    """Progress of an attempt that was under way (past start-up) but got no step past its checkpoint."""
    return {"phase": "train", "attempt": attempt, "step": step, **({"resumed_from_step": step} if step else {})}


def test_reaper_interrupts_stale_jobs_then_gives_up(home):
    from core.jobs.reaper import reap

    store = jobs.open_store()
    (a,) = jobs.submit({"seconds": 0}, kind="noop", max_attempts=2)
    claim(store, pid=2**22 + 12345)  # a worker pid that does not exist (above pid_max)
    store.update(a, host="elsewhere", progress=stuck(1))  # not this host: only the heartbeat can tell
    assert reap(store, stale_after_s=30) == []
    store.update(a, heartbeat=time.time() - 60)
    assert reap(store, stale_after_s=30) == [(a, "interrupted")]
    job = store.get(a)
    assert job.crashes == 1 and job.strikes == 1 and "heartbeat" in job.error and job.finished is None
    dead = 2**22 + 12345
    assert claim(store, pid=dead).id == a  # interrupted jobs are claimed again (to resume)
    assert store.get(a).attempts == 2
    # same host, dead worker pid: reaped at once, without waiting for the heartbeat to go stale
    store.update(a, host=__import__("socket").gethostname(), progress=stuck(2, step=6))
    assert reap(store, stale_after_s=30) == [(a, "failed")]
    job = store.get(a)
    assert job.state == "failed" and "giving up" in job.error and job.finished


def _kill_with_worker(store, job_id: str, progress: dict | None) -> jobs.Job:
    """Claim the job for a worker that then dies (its pid is gone) with the job at `progress`."""
    from core.jobs.reaper import reap

    job = store.claim("w-dead", __import__("socket").gethostname(), 2**22 + 4321, "cpu")
    assert job.id == job_id
    if progress is not None:
        store.update(job_id, progress={**progress, "attempt": job.attempts})
    reap(store)
    return store.get(job_id)


def test_killed_with_its_worker_during_start_up_does_not_count(home):
    """Item 22: three worker deaths during the job's start-up are not the job's fault."""
    store = jobs.open_store()
    (a,) = jobs.submit({"seconds": 0}, kind="noop", max_attempts=3)
    for n in range(1, 5):
        # the child had not reported yet (progress from the previous attempt), or reported "starting"
        job = _kill_with_worker(store, a, None if n % 2 else {"phase": "starting"})
        assert job.state == "interrupted", (n, job.error)
        assert job.crashes == n and job.strikes == 0
        assert "not counted" in job.error
    # and it still runs to the end
    assert claim(store).id == a


def test_killed_with_its_worker_after_progress_does_not_count_but_stuck_does(home):
    store = jobs.open_store()
    (a,) = jobs.submit({"seconds": 0}, kind="noop", max_attempts=2)
    job = _kill_with_worker(store, a, {"phase": "train", "step": 7})  # got past its (absent) checkpoint
    assert job.state == "interrupted" and (job.crashes, job.strikes) == (1, 0)
    job = _kill_with_worker(store, a, {"phase": "train", "step": 9, "resumed_from_step": 6})
    assert job.state == "interrupted" and (job.crashes, job.strikes) == (2, 0)
    # resumed at step 6 and died before getting any further: that counts
    job = _kill_with_worker(store, a, {"phase": "train", "step": 6, "resumed_from_step": 6})
    assert job.state == "interrupted" and (job.crashes, job.strikes) == (3, 1)
    assert "counted" in job.error and "1 of 2" in job.error
    # killed with its worker while caching features (a head job's main work): not the job's fault
    job = _kill_with_worker(store, a, {"phase": "features:train", "phase_done": 300, "phase_total": 2000,
                                       "step": 6, "resumed_from_step": 6})
    assert job.state == "interrupted" and (job.crashes, job.strikes) == (4, 1)
    job = _kill_with_worker(store, a, {"phase": "train", "step": 6, "resumed_from_step": 6})
    assert job.state == "failed" and (job.crashes, job.strikes) == (5, 2) and "giving up" in job.error


def test_a_job_that_keeps_crashing_its_worker_hits_the_hard_ceiling(home):
    store = jobs.open_store()
    (a,) = jobs.submit({"seconds": 0}, kind="noop", max_attempts=1)
    ceiling = jobs.crash_ceiling(1)
    assert ceiling >= 10
    for n in range(1, ceiling + 1):
        job = _kill_with_worker(store, a, {"phase": "train", "step": n})  # "progress" every time
        if n < ceiling:
            assert job.state == "interrupted" and job.strikes == 0, (n, job.error)
    assert job.state == "failed" and job.crashes == ceiling and "keeps" in job.error


def test_job_process_dying_while_its_worker_lives_counts(home):
    """The job itself failed (killed on its own, e.g. out of host memory): counted, as before."""
    import subprocess as sp

    from core.jobs.worker import Worker, WorkerOptions, _Slot

    store = jobs.open_store()
    (a,) = jobs.submit({"seconds": 0}, kind="noop", max_attempts=2)
    w = Worker(WorkerOptions(gpus="cpu"))
    for n, want in ((1, "interrupted"), (2, "failed")):
        job = store.claim(w.id, w.host, os.getpid(), "cpu")
        store.update(a, progress={"phase": "train", "step": 50, "attempt": job.attempts})
        proc = sp.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
        slot = _Slot("cpu", {}, proc=proc, job=job)
        w._finished(slot)
        job = store.get(a)
        assert job.state == want and job.strikes == n and job.crashes == n, job.error


def test_old_database_gets_the_strikes_column(tmp_path):
    """A jobs.db written before `strikes` existed opens, keeps its rows, and counts old crashes."""
    import sqlite3

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    schema = job_store._SCHEMA.replace(",\n    strikes INTEGER NOT NULL DEFAULT 0", "")
    assert "strikes" not in schema
    conn.executescript(schema)
    conn.execute("INSERT INTO jobs (id, kind, config, state, created, crashes) VALUES "
                 "('j-old001', 'noop', '{}', 'interrupted', 1.0, 2)")
    conn.commit()
    conn.close()
    store = jobs.SQLiteJobStore(db)
    job = store.get("j-old001")
    assert job.state == "interrupted" and job.crashes == 2 and job.strikes == 2


# -- 16 (part): the stale-heartbeat limit is clearly longer than a lock wait -----------------------


def test_stale_limit_is_clearly_longer_than_the_busy_timeout():
    from core.cli import build_parser
    from core.jobs.worker import WorkerOptions

    assert jobs.STALE_AFTER_S >= 3 * jobs.BUSY_TIMEOUT_S
    assert WorkerOptions().stale_after_s == jobs.STALE_AFTER_S
    assert build_parser().parse_args(["worker"]).stale_after == jobs.STALE_AFTER_S


def test_heartbeat_held_up_by_a_lock_for_the_whole_busy_timeout_is_not_reaped(home):
    """A worker whose heartbeat waited out a full busy timeout (plus its interval) is alive."""
    from core.jobs.reaper import reap

    store = jobs.open_store()
    (a,) = noop(1)
    claim(store)  # this process is the worker: alive
    store.update(a, heartbeat=time.time() - jobs.BUSY_TIMEOUT_S - 2.5)
    assert reap(store) == []
    assert store.get(a).state == "running"


def test_reaper_does_not_reap_a_job_whose_heartbeat_arrived_after_it_looked(home, monkeypatch):
    """The reaper reads, then writes: a heartbeat landing in between must win."""
    from core.jobs.reaper import reap

    store = jobs.open_store()
    (a,) = noop(1)
    claim(store, pid=2**22 + 999)
    store.update(a, host="elsewhere", heartbeat=time.time() - 10 * jobs.STALE_AFTER_S)
    seen = store.list(state="running", limit=None)  # what the reaper saw: stale
    store.heartbeat("w-test", [a])  # ...and then the worker's heartbeat got through
    monkeypatch.setattr(store, "list", lambda **kw: seen)
    assert reap(store) == []
    assert store.get(a).state == "running"


def test_cancel_note_says_what_happens_in_each_phase(home, capsys):
    from core.cli import main

    assert "training step" in jobs.cancel_note({"phase": "train"})
    assert "feature" in jobs.cancel_note({"phase": "features:train"})
    assert "prediction" in jobs.cancel_note({"phase": "predict:test"})
    for phase in ("features:train", "predict:validation", "starting", "finishing", None):
        note = jobs.cancel_note({"phase": phase} if phase else {})
        assert "between training steps" not in note and "kill" in note, (phase, note)
    store = jobs.open_store()
    (a,) = noop(1)
    claim(store)
    store.update(a, progress={"phase": "features:train", "phase_done": 64, "phase_total": 640})
    assert main(["cancel", a, "--no-wait"]) == 0
    out = capsys.readouterr().out
    assert "feature" in out and "between training steps" not in out


def test_cancel_of_job_whose_worker_is_dead_settles_it(home):
    store = jobs.open_store()
    (a,) = noop(1)
    store.claim("w-gone", __import__("socket").gethostname(), 2**22 + 54321, "cpu")
    job = jobs.cancel(a)
    assert job.state == "cancelled"


# -- the job runner (in process, fake training) ---------------------------------------------------


def _oom():
    import torch

    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_oom_retries_halve_batch_and_record_it(home, sentiment_csv, tiny_bert_dir):
    from core.jobs.worker import execute
    from core.train.runner import run_train

    store = jobs.open_store()
    (jid,) = submit_training(cfg_for(sentiment_csv, tiny_bert_dir, batch_size=16, grad_accum=1))
    job = claim(store)
    seen = []

    def fake_train(cfg, runs_dir, callbacks, run_id, resume, owner):
        seen.append((cfg.train.batch_size, cfg.train.grad_accum, resume))
        run = Path(runs_dir) / run_id
        run.mkdir(parents=True, exist_ok=True)
        (run / "checkpoints").mkdir(exist_ok=True)
        if cfg.train.batch_size > 4:
            raise _oom()
        (run / "summary.json").write_text(json.dumps({"test": {"accuracy": 0.9}, "steps": 3}))
        return run

    assert execute(store, job, {"train": lambda ctx: run_train(ctx, train=fake_train)}) == "succeeded"
    assert seen == [(16, 1, False), (8, 2, True), (4, 4, True)]  # same effective batch each time
    job = store.get(jid)
    assert [(r["from"]["batch_size"], r["to"]["batch_size"], r["to"]["grad_accum"]) for r in job.oom_retries] == [
        (16, 8, 2), (8, 4, 4)]
    assert job.config["train"]["batch_size"] == 4 and job.config["train"]["grad_accum"] == 4
    assert job.result["test"]["accuracy"] == 0.9 and job.result["oom_retries"] == 2
    assert len(json.loads((job.run_dir / "oom_retries.json").read_text())) == 2
    assert json.loads((job.run_dir / "job.json").read_text())["state"] == "succeeded"


def test_oom_at_batch_1_fails_with_a_clear_message(home, sentiment_csv, tiny_bert_dir):
    from core.jobs.worker import execute
    from core.train.runner import run_train

    store = jobs.open_store()
    (jid,) = submit_training(cfg_for(sentiment_csv, tiny_bert_dir, batch_size=2))

    def always_oom(cfg, **kw):
        raise _oom()

    assert execute(store, claim(store), {"train": lambda ctx: run_train(ctx, train=always_oom)}) == "failed"
    job = store.get(jid)
    assert job.state == "failed" and "even at batch size 1" in job.error and len(job.oom_retries) == 1


def test_runner_exception_fails_the_job_with_its_message(home):
    from core.jobs.worker import execute

    store = jobs.open_store()
    (jid,) = jobs.submit({}, kind="boom")

    def boom(ctx):
        raise ValueError("the data went away")

    assert execute(store, claim(store), {"boom": boom}) == "failed"
    assert store.get(jid).error == "ValueError: the data went away"
    (other,) = jobs.submit({}, kind="nosuchkind")
    assert execute(store, claim(store), {}) == "failed"
    assert "No runner for job kind 'nosuchkind'" in store.get(other).error


# -- memory estimate ------------------------------------------------------------------------------


def test_memory_check_says_clearly_when_it_will_not_fit(tiny_bert_dir):
    from core.train.resources import GIB, check_memory, estimate_train_memory

    cfg = RunConfig(model=ModelConfig(name=str(tiny_bert_dir), max_length=64), train=TrainConfig(batch_size=64))
    small = estimate_train_memory(str(tiny_bert_dir), "text", batch_size=64, max_length=64)
    big = estimate_train_memory("minilm", "text", batch_size=64, max_length=256)
    assert 0 < small.total_bytes < big.total_bytes
    assert estimate_train_memory("minilm", "text", method="head").trainable < 10_000
    assert estimate_train_memory("resnet50", "image", batch_size=64).total_bytes > 4 * GIB
    assert estimate_train_memory("no/such-model-here", "text") is None  # unknown offline: no guess
    ok = check_memory(cfg, "text", free_total=(40 * GIB, 80 * GIB))
    assert ok.fits and "GiB" in ok.message
    one = estimate_train_memory(str(tiny_bert_dir), "text", batch_size=1, max_length=64)
    middle = check_memory(cfg, "text", free_total=((one.total_bytes + small.total_bytes) // 2, 8 * GIB))
    assert not middle.fits and middle.fits_at_batch_1 and 1 <= middle.suggested_batch_size < 64
    assert "will not fit at batch 64" in middle.message
    tight = check_memory(cfg, "text", free_total=(one.total_bytes - 1, 8 * GIB))
    assert not tight.fits_at_batch_1 and "will not fit" in tight.message and "batch size 1" in tight.message
    assert check_memory(cfg, "text") is None or _has_cuda()  # no CUDA here: nothing to check


def test_gpu_slots_from_the_gpus_flag(monkeypatch):
    from core.jobs.worker import gpu_slots

    assert gpu_slots("cpu") == [("cpu", {"CUDA_VISIBLE_DEVICES": ""})]
    assert gpu_slots("0,2") == [("cuda:0", {"CUDA_VISIBLE_DEVICES": "0"}), ("cuda:2", {"CUDA_VISIBLE_DEVICES": "2"})]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert gpu_slots("auto") == [("cuda:3", {"CUDA_VISIBLE_DEVICES": "3"})]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_slots("auto") == [("cpu", {})]
    for bad in ("0,0", "gpu1", ","):
        with pytest.raises(ConfigError, match="--gpus"):
            gpu_slots(bad)


def test_worker_flags_are_checked(home, capsys):
    from core.cli import main

    assert main(["worker", "--stale-after", "1", "--heartbeat", "2"]) == 2
    assert "--stale-after" in capsys.readouterr().err
    assert main(["worker", "--gpus", "x"]) == 2
    assert "--gpus" in capsys.readouterr().err


# -- the package's shape: one table of kinds, a queue free of features -----------------------------


def test_every_job_kind_resolves_and_the_queue_names_exactly_the_table(home, monkeypatch):
    from core.errors import JobError
    from core.jobs import kinds
    from core.jobs.worker import Worker, WorkerOptions

    resolved = kinds.builtin_runners()
    assert set(resolved) == set(kinds.KINDS) and all(callable(r) for r in resolved.values())
    with pytest.raises(ConfigError) as refused:
        jobs.submit({}, kind="Not A Kind")
    assert str(refused.value).endswith(f"built-in kinds: {', '.join(kinds.KINDS)}.")
    assert tuple(jobs.KINDS) == tuple(kinds.KINDS)
    # an entry that does not resolve is a loud error, and a worker refuses to start with it
    for broken in ("core.no_such_module:run", "core.jobs.kinds:no_such_runner", "no-colon"):
        with pytest.raises(JobError, match="runner"):
            kinds.resolve(broken, "broken")
    monkeypatch.setitem(kinds.KINDS, "broken", kinds.JobKind("core.no_such_module:run"))
    with pytest.raises(JobError, match="'broken' does not resolve"):
        Worker(WorkerOptions(gpus="cpu", exit_when_idle=True)).run()
    assert jobs.live_workers() == []


def test_the_job_store_and_queue_import_no_feature_package():
    code = ("import sys, core.jobs.store, core.jobs.queue; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('core.'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.split()
    features = ("core.data", "core.models", "core.train", "core.explain", "core.report")
    assert "core.jobs.queue" in loaded
    assert not [m for m in loaded if m.startswith(features)], loaded


def test_a_training_job_cannot_skip_its_checks_through_the_plain_queue(home):
    from core.config import RunConfig

    with pytest.raises(ConfigError, match=r"core\.train\.submit\.submit_training\(\)"):
        jobs.submit(RunConfig(), kind="train")
    assert jobs.list_jobs() == []


def test_a_worker_checks_the_kinds_table_without_importing_the_runners():
    """The table check at worker start finds every module but imports none: a worker that only runs
    noop jobs stays free of pandas and torch, and a job process loads only its own kind's runner."""
    code = ("import sys; from core.jobs import kinds; kinds.check_table(); r = kinds.runners(); "
            "assert sorted(r) == sorted(kinds.KINDS), list(r); r['noop']; "
            "print(' '.join(m for m in ('pandas', 'torch', 'core.train.runner', 'core.explain.jobs') "
            "if m in sys.modules) or 'none')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["none"]
