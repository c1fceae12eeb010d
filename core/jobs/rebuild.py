"""Rebuilding the job table from the run folders (`tunescope db rebuild`): the recovery path for a
damaged or lost jobs.db. Run folders are the truth; a job's row is recomputed from its job.json (or
the headers of its job.log), status.json and summary.json.

May import: core.jobs.store, core.config (to check that a config can run again), core.runs, core.errors.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.errors import JobError, JobStoreDamagedError, RunError
from core.jobs.store import FINAL_STATES, Job, SQLiteJobStore, forget_store, sqlite_path
from core.runs import Run, default_runs_dir

_LOG_HEADER = re.compile(r"^=== .* job (j-[0-9a-f]+) attempt (\d+) \(([a-z][a-z0-9_-]*)\)", re.MULTILINE)


def _job_from_run(run_dir: Path) -> Job | None:
    """The job that made a run folder, from its job.json (or the headers of its job.log), its status
    and summary; None when no job made it (`tunescope train`). A job caught running or interrupted
    comes back `interrupted`, so a worker resumes it from its checkpoint."""
    run = Run(run_dir)
    try:
        record = run._json("job.json")
    except RunError:
        record = {}
    if not record.get("job_id") and (run_dir / "job.log").is_file():
        with open(run_dir / "job.log", "rb") as f:
            head = f.read(1 << 20).decode("utf-8", errors="replace")
        found = _LOG_HEADER.findall(head)
        if found:
            job_id, attempts, kind = found[-1]
            record = {"job_id": job_id, "attempts": int(attempts), "kind": kind}
    job_id = str(record.get("job_id") or "")
    if not re.fullmatch(r"j-[0-9a-f]{1,32}", job_id):
        return None
    try:
        status = run.status()
    except RunError:
        status = {}
    try:
        cfg = run.config()
    except RunError:
        cfg = {}
    config = {k: cfg[k] for k in ("data", "model", "train") if isinstance(cfg.get(k), dict)}
    succeeded = status.get("state") == "succeeded" and (run_dir / "summary.json").is_file()
    state = ("succeeded" if succeeded else record.get("state") if record.get("state") in FINAL_STATES
             else status.get("state") if status.get("state") in FINAL_STATES else "interrupted")
    error = record.get("error") or (status.get("message") if state != "succeeded" else None) or None
    if state == "interrupted":
        try:
            RunConfig.from_dict(config)
        except Exception as exc:  # noqa: BLE001 - any reason it cannot run again
            state = "failed"
            error = f"Cannot be resumed after `tunescope db rebuild`: its config.json is unusable ({exc})."
    result: dict[str, Any] = {}
    if state == "succeeded":
        try:
            summary = run.summary()
        except RunError:
            summary = {}
        test = summary.get("test") if isinstance(summary.get("test"), dict) else {}
        result = {"test": {k: v for k, v in test.items() if isinstance(v, (int, float))},
                  **{k: summary.get(k) for k in ("best_epoch", "steps", "train_seconds", "device")},
                  "run_dir": str(run_dir)}
    try:
        created = float(record.get("created") or (run_dir / "config.json").stat().st_mtime)
    except (OSError, TypeError, ValueError):
        created = time.time()
    finished = record.get("finished") if state in FINAL_STATES else None
    return Job(id=job_id, kind=str(record.get("kind") or "train"), owner=str(record.get("owner") or "unknown"),
               config=config, state=state, created=created, updated=time.time(),
               finished=float(finished) if isinstance(finished, (int, float)) else None,
               runs_dir=str(run_dir.parent), run_id=run_dir.name,
               group_id=record.get("group_id") if isinstance(record.get("group_id"), str) else None,
               tags=record.get("tags") if isinstance(record.get("tags"), dict) else {},
               attempts=int(record.get("attempts") or 0), crashes=int(record.get("crashes") or 0),
               strikes=int(record.get("strikes") or 0), error=error,
               oom_retries=record.get("oom_retries") if isinstance(record.get("oom_retries"), list) else [],
               result=result)


def rebuild_store(runs_dirs: Sequence[str | Path] | None = None, force: bool = False,
                  url: str | None = None) -> dict[str, Any]:
    """Move the job database aside and rebuild its history from the run folders (the truth).

    Refuses an intact database unless `force` (its queued jobs, which have no run folder yet, would be
    lost). Returns what was done: where the old file went, the jobs rebuilt by state, and the run
    folders that no job made."""
    path = sqlite_path(url)
    forget_store(path)
    problem = None
    if path.exists():
        try:
            SQLiteJobStore(path).close()
        except JobStoreDamagedError as exc:
            problem = str(exc)
    if problem is None and not force:
        raise JobError(f"The job database {path} is intact; nothing to rebuild (`tunescope db rebuild --force` "
                       "rebuilds it from the run folders anyway, dropping jobs that have not started).")
    moved = None
    if path.exists():
        moved = path.with_name(f"{path.name}.{'damaged' if problem else 'replaced'}-{time.strftime('%Y%m%d-%H%M%S')}")
        with open(path.with_name(path.name + ".init-lock"), "a+") as lock:
            with contextlib.suppress(ImportError, OSError):
                import fcntl

                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(path) + suffix)
                if src.exists():
                    os.replace(src, Path(str(moved) + suffix))
    roots = [Path(r).expanduser().resolve() for r in (runs_dirs or [default_runs_dir()])]
    found: dict[str, Job] = {}
    not_jobs: list[str] = []
    for root in dict.fromkeys(roots):
        if not root.is_dir():
            continue
        for run_dir in sorted(root.iterdir()):
            if not run_dir.is_dir() or run_dir.name.startswith(".") or not (run_dir / "config.json").is_file():
                continue
            job = _job_from_run(run_dir)
            if job is None:
                not_jobs.append(str(run_dir))
            elif job.id not in found:  # a copied run folder names the same job: keep the first
                found[job.id] = job
    store = SQLiteJobStore(path)
    rebuilt = sorted(found.values(), key=lambda j: j.created)
    store.add(rebuilt)
    by_state: dict[str, int] = {}
    for j in rebuilt:
        by_state[j.state] = by_state.get(j.state, 0) + 1
    return {"path": str(path), "moved_to": str(moved) if moved else None, "problem": problem,
            "runs_dirs": [str(r) for r in roots], "jobs": len(rebuilt), "by_state": by_state, "not_jobs": not_jobs}
