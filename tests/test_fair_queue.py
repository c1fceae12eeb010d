"""The fair queue in the job store and with a real worker: claims follow fair share and the running
limit (with kinds filtering kept), submissions over the waiting-jobs or daily limit are refused with
nothing stored, the limits table, queue places in the fair order, and a real `tunescope worker` that
runs light users' jobs before a heavy user's third and stops a job at its owner's time limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import jobs
from core.errors import ConfigError
from core.jobs import JobSpec, QuotaError

ROOT = Path(__file__).resolve().parents[1]


def noop(owner: str, n: int = 1, seconds: float = 0.0, **kw) -> list[str]:
    return [jobs.submit({"seconds": seconds}, kind="noop", owner=owner, **kw)[0] for _ in range(n)]


def claim(store, kinds=None):
    return store.claim("w-test", "test-host", os.getpid(), "cpu", kinds=kinds)


def finish(store, job_id: str, ran_s: float) -> None:
    """End a claimed job as if it had held its slot for `ran_s` up to now."""
    now = time.time()
    assert store.update(job_id, expect_state="running", state="succeeded", started=now - ran_s, finished=now,
                        heartbeat=now)


# -- claims ---------------------------------------------------------------------------------------


def test_claim_takes_the_owner_who_used_least_then_fifo(home):
    store = jobs.open_store()
    heavy = noop("heavy", 3)
    light = noop("light", 1)
    first = claim(store)
    assert first.id == heavy[0]  # all at zero use: FIFO
    finish(store, first.id, 60)
    assert claim(store).id == light[0]  # heavy has used a minute, light nothing
    finish(store, light[0], 10)
    assert claim(store).id == heavy[1]  # only heavy waits now
    assert claim(store).id == heavy[2]
    assert claim(store) is None


def test_running_limit_skips_an_owner_and_kinds_still_filter(home):
    store = jobs.open_store()
    store.set_limit("*", "max_running", 1)
    a = noop("a", 2, priority=5)
    b = noop("b", 1)
    assert claim(store, kinds=["train"]) is None  # a worker that runs other kinds takes none of these
    assert claim(store).id == a[0]
    assert claim(store).id == b[0]  # a is at its limit though its next job has the higher priority
    assert claim(store) is None  # both at their limit
    store.update(a[0], state="succeeded", finished=time.time())
    assert claim(store).id == a[1]


def test_a_share_weight_of_two_halves_an_owners_usage(home):
    store = jobs.open_store()
    store.set_limit("prof", "share_weight", 2)
    p1, p2 = noop("prof", 2)
    s1, s2 = noop("student", 2)
    assert claim(store).id == p1  # all at zero use: FIFO
    finish(store, p1, 100)  # counts as 50 s
    assert claim(store).id == s1
    finish(store, s1, 60)
    assert claim(store).id == p2  # 50 s weighted is less than the student's 60 s


def test_jobs_without_an_owner_are_one_pseudo_owner(home):
    store = jobs.open_store()
    store.add([jobs.Job(id="j-n00001", kind="noop", owner="", created=1.0),
               jobs.Job(id="j-n00002", kind="noop", owner="", created=2.0)])
    (other,) = noop("someone")
    finish(store, claim(store).id, 30)
    assert claim(store).id == other


# -- limits at submit -----------------------------------------------------------------------------


def test_waiting_limit_refuses_a_submission_with_nothing_stored(home):
    store = jobs.open_store()
    store.set_limit("*", "max_queued", 3)
    store.set_limit("prof", "max_queued", None)  # an owner's own row wins over everyone's
    noop("ana", 2)
    with pytest.raises(QuotaError) as refused:
        jobs.enqueue([JobSpec({"seconds": 0}), JobSpec({"seconds": 0})], kind="noop", owner="ana")
    msg = str(refused.value)
    assert "ana has 2 jobs waiting" in msg and "limit is 3" in msg
    assert "cancel one" in msg and "instructor" in msg
    assert len(jobs.list_jobs(owner="ana")) == 2  # all or none: neither of the two was stored
    noop("ana", 1)
    with pytest.raises(QuotaError):
        noop("ana", 1)
    assert len(noop("prof", 5)) == 5
    # a job that starts leaves the waiting count
    claim(store)
    assert noop("ana", 1)


def test_daily_limit_refuses_an_owner_who_used_their_hours(home):
    store = jobs.open_store()
    store.set_limit("*", "gpu_hours_per_day", 0.01)  # 36 s
    (a,) = noop("ana")
    claim(store)
    finish(store, a, 40)
    with pytest.raises(QuotaError, match=r"used 0\.01 GPU hours in the last 24 hours.*0\.01 GPU hours a day"):
        noop("ana")
    assert len(jobs.list_jobs(owner="ana")) == 1
    assert noop("bob")  # others are not held back by ana's use
    # time outside the window does not count
    store.update(a, started=time.time() - 30 * 3600, finished=time.time() - 25 * 3600)
    assert noop("ana")


def test_the_limits_table(home):
    store = jobs.open_store()
    assert store.get_limits().for_owner("x") == jobs.UNLIMITED  # nobody is limited until a row says so
    table = jobs.use_classroom_limits(store)
    assert table.for_owner("anyone") == jobs.CLASSROOM_LIMITS
    store.set_limit("prof", "max_running", 3)
    assert jobs.limits_for("prof", store).max_running == 3
    assert jobs.limits_for("student", store).max_running == 1
    store.clear_limit("prof", "max_running")
    assert jobs.limits_for("prof", store).max_running == 1
    with pytest.raises(ConfigError, match="no limit called"):
        store.set_limit("*", "max_gpus", 1)
    # the table lives in the same database, also in one opened again
    reopened = jobs.SQLiteJobStore(store.path)
    assert reopened.get_limits().for_owner("s") == jobs.CLASSROOM_LIMITS


def test_a_wait_to_resume_before_a_cancel_holds_no_slot(home):
    store = jobs.open_store()
    now = time.time()
    store.add([jobs.Job(id="j-w00001", kind="noop", owner="ana", state="cancelled", created=now - 4000,
                        started=now - 3600, heartbeat=now - 3540, finished=now - 60)])
    (span,) = store.usage_spans(now - 24 * 3600)
    assert span.ended - span.started == pytest.approx(60)


# -- queue places ---------------------------------------------------------------------------------


def test_queue_places_follow_the_fair_order(home):
    store = jobs.open_store()
    heavy = noop("heavy", 3)
    (light,) = noop("light", 1)
    places = {j: p for j, p, _ in jobs.queue_places(store)}
    assert places == {heavy[0]: 1, light: 2, heavy[1]: 3, heavy[2]: 4}
    assert [(j, p) for j, p, _ in jobs.queue_places(store, "light")] == [(light, 2)]
    snap = jobs.listing.snapshot(store, owner="light")
    assert [c.positions for c in snap.cards] == [(2,)]


def test_expected_starts_come_from_the_durations_of_recent_jobs(home):
    store = jobs.open_store()
    for _ in range(2):  # ana's noop jobs take 30 s
        (done,) = noop("ana")
        claim(store)
        finish(store, done, 30)
    (running,) = noop("ana")
    claim(store)
    store.update(running, started=time.time() - 10)
    waiting = noop("ana", 2)
    got = jobs.queue_places(store, "ana")
    assert [j for j, _, _ in got] == waiting
    # the running one has no ETA, so the first waiting job's start is not known; the order still is
    assert [s for _, _, s in got] == [None, None]
    now = time.time()
    store.update(running, progress={"phase": "noop", "phase_done": 1, "phase_total": 2, "phase_started": now - 10,
                                    "phase_done0": 0, "updated": now})
    starts = [s for _, _, s in jobs.queue_places(store, "ana")]
    assert starts[0] == pytest.approx(10, abs=2) and starts[1] == pytest.approx(40, abs=2)


# -- with a real worker ---------------------------------------------------------------------------


def run_worker(home: Path, log: Path, timeout: float = 120) -> None:
    """`tunescope worker` on one CPU slot with short intervals, until the queue is empty."""
    env = {**os.environ, "TUNESCOPE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("TUNESCOPE_JOBS_DB", None)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--gpus", "cpu", "--threads", "1", "--poll", "0.1",
             "--heartbeat", "0.5", "--stale-after", "5", "--reap-every", "1", "--cancel-grace", "1",
             "--cancel-kill", "2", "--exit-when-idle"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            assert proc.wait(timeout=timeout) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()


def test_a_real_worker_runs_light_users_before_the_heavy_users_third_job(home, tmp_path):
    heavy = noop("heavy", 6, seconds=0.3)
    light = noop("light1", 1, seconds=0.3) + noop("light2", 1, seconds=0.3)
    run_worker(home, tmp_path / "worker.log")
    rows = {j.id: j for j in jobs.list_jobs(limit=None)}
    assert {j.state for j in rows.values()} == {"succeeded"}, (tmp_path / "worker.log").read_text()
    started = sorted(rows, key=lambda i: rows[i].started)
    assert max(started.index(j) for j in light) < started.index(heavy[2]), [rows[i].owner for i in started]
    assert [i for i in started if i in heavy] == heavy  # FIFO within an owner


def test_a_real_worker_stops_a_job_at_its_owners_time_limit(home, tmp_path):
    store = jobs.open_store()
    store.set_limit("*", "job_wall_clock_s", 2)
    store.set_limit("prof", "job_wall_clock_s", None)  # no limit for the instructor
    (long,) = noop("ana", seconds=30)
    (prof,) = noop("prof", seconds=3)
    run_worker(home, tmp_path / "worker.log")
    stopped, done = store.get(long), store.get(prof)
    assert stopped.state == "cancelled", (tmp_path / "worker.log").read_text()
    assert stopped.error == "Stopped: it ran longer than the 2 s limit per job; its last checkpoint is kept."
    assert 2 <= stopped.finished - stopped.started < 15
    assert stopped.crashes == 0 and stopped.strikes == 0  # a planned stop, not a crash
    assert done.state == "succeeded" and done.finished - done.started >= 3


def test_a_time_limit_stop_replaces_the_runs_generic_cancel_message(tmp_path):
    import json

    from core.jobs.reaper import mark_run

    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({"state": "cancelled", "message": "Cancelled by request."}))
    job = jobs.Job(id="j-t00001", runs_dir=str(run_dir.parent), run_id="r1")
    mark_run(job, "cancelled", "Other words.")  # without `replace` the run's own message stays
    assert json.loads((run_dir / "status.json").read_text())["message"] == "Cancelled by request."
    reason = "Stopped: it ran longer than the 2 h limit per job; its last checkpoint is kept."
    mark_run(job, "cancelled", reason, replace=True)
    assert json.loads((run_dir / "status.json").read_text())["message"] == reason
