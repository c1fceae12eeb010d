"""A damaged jobs database (item 20): found at open (`PRAGMA quick_check`, and an emptied file next to
runs made by jobs), one clear message with the recovery step in every command and in the dashboard,
and `tunescope db rebuild`, which moves the file aside and rebuilds the job history from the run
folders (the source of truth)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from run_factory import write_fake_run

from core import jobs
from core.errors import JobStoreDamagedError
from core.jobs import store as job_store


def _forget_stores() -> None:
    """Drop this process's open store objects, as a new process would start without them."""
    for store in job_store._STORES.values():
        conn = getattr(store._local, "conn", None)
        if conn is not None:
            conn.close()
    job_store._STORES.clear()


def _job_run(root: Path, run_id: str, job_id: str, state: str, *, accuracy: float = 0.8, group: str | None = None,
             config: dict | None = None, via: str = "job.json") -> Path:
    """A run folder as the worker leaves it: the run's files plus job.json (or only the job log)."""
    path = write_fake_run(root, run_id, accuracy=accuracy, state=state if state != "interrupted" else "running")
    if config is not None:
        cfg = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**cfg, **config}))
    if state == "interrupted":
        (path / "status.json").write_text(json.dumps({"state": "interrupted", "message": "", "updated": 1.0}))
    if via == "job.json":
        (path / "job.json").write_text(json.dumps({
            "job_id": job_id, "group_id": group, "owner": "ana", "kind": "train", "state": state,
            "error": "DataError: bad row" if state == "failed" else None, "attempts": 2, "crashes": 1,
            "tags": {"seed": 1} if group else {}, "oom_retries": [], "created": time.time() - 100,
            "finished": time.time() - 50}))
    else:
        (path / "job.log").write_text(f"=== 2025-01-01 10:00:00 job {job_id} attempt 1 (train) on host cpu, worker "
                                      f"w-abc ===\nstep 1/10\n=== 2025-01-01 10:05:00 job {job_id} attempt 2 (train) "
                                      "on host cpu, worker w-def ===\n")
    return path


@pytest.fixture
def queue(home: Path) -> Path:
    """A jobs.db with history (200 finished noop jobs, so it spans many pages) and runs made by jobs."""
    from core.config import RunConfig

    store = jobs.open_store()
    now = time.time()
    store.add([jobs.Job(id=f"j-{i:06x}", kind="noop", config={"seconds": 0}, state="succeeded", created=now + i,
                        error="x" * 200) for i in range(200)])
    root = home / "runs"
    _job_run(root, "run-ok", "j-aaaaa1", "succeeded", accuracy=0.9, group="g-000001")
    _job_run(root, "run-bad", "j-aaaaa2", "failed")
    _job_run(root, "run-stopped", "j-aaaaa3", "interrupted", config=RunConfig().to_dict())
    _job_run(root, "run-logonly", "j-aaaaa4", "interrupted", config=RunConfig().to_dict(), via="job.log")
    write_fake_run(root, "run-cli")  # trained with `tunescope train`: never a job
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _forget_stores()
    yield home / "jobs.db"
    _forget_stores()


def _damage(db: Path, how: str) -> None:
    data = bytearray(db.read_bytes())
    if how == "header":
        data[:100] = b"\x13" * 100
    elif how == "pages":
        for i in range(8192, min(len(data), 8192 + 6 * 4096)):
            data[i] = (i * 131) % 256
    elif how == "truncated":
        data = data[: len(data) // 3]
    elif how == "emptied":
        data = bytearray()
    db.write_bytes(bytes(data))


DAMAGE = ["header", "pages", "truncated", "emptied"]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_database_is_one_clear_message_in_every_command(how, queue, capsys):
    from core.cli import main

    _damage(queue, how)
    with pytest.raises(JobStoreDamagedError) as info:
        jobs.open_store()
    message = str(info.value)
    assert str(queue) in message and "tunescope db rebuild" in message
    for argv in (["jobs"], ["status", "j-aaaaa1"], ["cancel", "j-aaaaa1"], ["worker", "--exit-when-idle"],
                 ["submit", "--data", "demo:sentiment"], ["db", "check"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.strip() == f"tunescope: error: {message}", (argv, err)


def test_new_database_next_to_runs_made_by_cli_is_fine(home):
    write_fake_run(home / "runs", "run-cli")
    (home / "jobs.db").parent.mkdir(parents=True, exist_ok=True)
    (home / "jobs.db").write_bytes(b"")  # an empty file with no job history to lose
    assert jobs.open_store().counts() == {}


def test_rebuild_moves_the_damaged_file_aside_and_restores_history_from_runs(queue, capsys):
    from core.cli import main
    from core.config import RunConfig

    _damage(queue, "pages")
    damaged = queue.read_bytes()
    assert main(["db", "rebuild"]) == 0
    out = capsys.readouterr()
    (aside,) = queue.parent.glob("jobs.db.damaged-*")
    assert aside.read_bytes() == damaged  # kept as it was, for a closer look
    assert "4 jobs" in out.out and "run-cli" not in out.out and str(aside) in out.out
    _forget_stores()
    rows = {j.id: j for j in jobs.list_jobs(limit=None)}
    assert sorted(rows) == ["j-aaaaa1", "j-aaaaa2", "j-aaaaa3", "j-aaaaa4"]
    ok = rows["j-aaaaa1"]
    summary = json.loads((queue.parent / "runs" / "run-ok" / "summary.json").read_text())
    assert ok.state == "succeeded" and ok.result["test"]["accuracy"] == summary["test"]["accuracy"]
    assert ok.group_id == "g-000001" and ok.owner == "ana" and ok.run_dir == queue.parent / "runs" / "run-ok"
    assert jobs.group_status("g-000001")["test"]["accuracy"]["n"] == 1
    assert rows["j-aaaaa2"].state == "failed" and "bad row" in rows["j-aaaaa2"].error
    # jobs that were interrupted are queued to resume, with a configuration a worker can run
    for jid in ("j-aaaaa3", "j-aaaaa4"):
        assert rows[jid].state == "interrupted"
        RunConfig.from_dict(rows[jid].config)
    assert rows["j-aaaaa4"].attempts == 2
    claimed = jobs.open_store().claim("w-x", "h", 1, "cpu")
    assert claimed is not None and claimed.id in ("j-aaaaa3", "j-aaaaa4")
    assert main(["jobs"]) == 0 and "j-aaaaa1" in capsys.readouterr().out


def test_rebuild_refuses_an_intact_database_without_force(queue, capsys):
    from core.cli import main

    assert main(["db", "check"]) == 0 and "intact" in capsys.readouterr().out
    assert main(["db", "rebuild"]) == 2
    assert "intact" in capsys.readouterr().err
    assert len(jobs.list_jobs(limit=None)) == 200  # untouched
    _forget_stores()
    assert main(["db", "rebuild", "--force"]) == 0
    _forget_stores()
    assert len(jobs.list_jobs(limit=None)) == 4
    assert list(queue.parent.glob("jobs.db.damaged-*")) == [] and list(queue.parent.glob("jobs.db.replaced-*"))


def test_database_damaged_while_open_gives_the_same_message(queue):
    store = jobs.open_store()
    assert store.counts()["succeeded"] == 200
    _damage(queue, "pages")
    conn = store._conn
    conn.execute("PRAGMA cache_size = 0")  # read from the file again, not from the page cache
    with pytest.raises(JobStoreDamagedError, match="tunescope db rebuild"):
        store.list(limit=None)
        store.counts()


def test_dashboard_shows_the_recovery_step_instead_of_a_traceback(queue):
    from apptest_support import open_app_page

    _damage(queue, "header")
    at = open_app_page(None)
    assert any("tunescope db rebuild" in e.value for e in at.error)
    at = open_app_page("runs")  # runs do not need the queue: they still list
    assert "run-ok" in set(at.dataframe[0].value["run_id"])
    at = open_app_page("train")
    assert any("tunescope db rebuild" in e.value for e in at.error)


def test_sqlite_error_text_is_what_quick_check_reports(tmp_path):
    """Guard for the detection itself: quick_check on a page-damaged file does not say "ok"."""
    db = tmp_path / "x.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (a TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("y" * 500,) for _ in range(200)])
    conn.commit()
    conn.close()
    _damage(db, "pages")
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        assert rows != [("ok",)]
    except sqlite3.DatabaseError:
        pass
