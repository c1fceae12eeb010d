"""The job queue API for the CLI and the dashboard: queue jobs, read them, cancel them, follow their
progress, metrics and logs.

The queue stores configs as it is given them: it never imports a feature (data, models, train,
explain, report), so it does not validate them. A training job is validated, expanded over seeds and
grids and given its run directory by `core.train.submit.submit_training`, which then calls `enqueue`.

Per-owner limits live in the job store (`JobStore.get_limits`/`set_limit`); `enqueue` enforces the
waiting-jobs and daily limits, a claim the running limit, the worker the time limit per job.
`use_classroom_limits` makes `core.jobs.fairshare.CLASSROOM_LIMITS` everyone's limits.

May import: core.jobs.store, core.jobs.fairshare, core.jobs.reaper (a cancel settles a job whose
worker is gone), core.jobs.kinds (names only), core.runs, core.errors, the standard library.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
import secrets
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfigError, JobError
from core.jobs.fairshare import CLASSROOM_LIMITS, EVERYONE, LIMIT_KEYS, Limits, LimitTable
from core.jobs.kinds import KINDS
from core.jobs.reaper import mark_run, reap
from core.jobs.store import (
    DEFAULT_MAX_ATTEMPTS,
    STALE_AFTER_S,
    IdCollision,
    Job,
    JobStore,
    log_path,
    open_store,
)
from core.runs import Run

MAX_JOBS_PER_SUBMIT = 256


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """One job to queue: its (already checked) config, the tags that name what its group varies, and
    for a job that writes a run, where that run goes."""

    config: dict[str, Any]
    tags: dict[str, Any] = dataclasses.field(default_factory=dict)
    runs_dir: str | None = None
    run_id: str | None = None


def new_job_id() -> str:
    return f"j-{secrets.token_hex(3)}"


def new_group_id() -> str:
    return f"g-{secrets.token_hex(3)}"



def _owner(owner: str | None) -> str:
    if owner:
        return owner
    try:
        return os.environ.get("TUNESCOPE_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"



def check_request(kind: str, max_attempts: int) -> None:
    """Refuse a malformed kind name or attempt limit before anything else is looked at."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", kind):
        raise ConfigError(f"Job kind {kind!r} is not a valid name; built-in kinds: {', '.join(KINDS)}.")
    if not 1 <= max_attempts <= 100:
        raise ConfigError(f"max_attempts must be between 1 and 100, got {max_attempts}.")


def enqueue(specs: Sequence[JobSpec], *, kind: str, owner: str | None = None, priority: int = 0,
            max_attempts: int = DEFAULT_MAX_ATTEMPTS, store: JobStore | None = None) -> list[str]:
    """Queue all of `specs` at once (one group when more than one) or none; return the ids.

    Any kind with a well-formed name is accepted: a worker may run kinds beyond the built-in table
    (`$TUNESCOPE_JOB_RUNNERS`), and one that no worker knows fails there with a message.

    A submission that would take its owner over their waiting-jobs limit, or whose owner has used
    their GPU hours of the last 24 h, is refused with a `QuotaError` that says the limit, the count and
    what to do; nothing is stored (the check and the insert are one transaction)."""
    check_request(kind, max_attempts)
    store = store or open_store()
    now = time.time()
    group = new_group_id() if len(specs) > 1 else None
    jobs = [Job(id=new_job_id(), kind=kind, owner=_owner(owner), config=s.config, priority=int(priority),
                created=now, updated=now, runs_dir=s.runs_dir, run_id=s.run_id, group_id=group, tags=s.tags,
                max_attempts=max_attempts) for s in specs]
    for attempt in range(5):
        try:
            store.add(jobs, enforce_limits=True)  # over a waiting or daily limit: QuotaError, nothing stored
            break
        except IdCollision:  # 16M ids: rare, but a long-lived table makes it happen now and then
            if attempt == 4:
                raise
            group = new_group_id() if group else None
            jobs = [dataclasses.replace(j, id=new_job_id(), group_id=group) for j in jobs]
    return [j.id for j in jobs]


def submit(config: Any, *, kind: str, owner: str | None = None, priority: int = 0,
           max_attempts: int = DEFAULT_MAX_ATTEMPTS, store: JobStore | None = None) -> list[str]:
    """Queue one job of `kind` with `config` (a dict, or anything with `to_dict()`) stored as given;
    return its id in a list. Kinds whose configs must be checked first (training) are refused here:
    they are queued by the function their `KINDS` entry names, which checks them and calls `enqueue`."""
    via = KINDS[kind].submitted_by if kind in KINDS else None
    if via:
        raise ConfigError(f"{kind.capitalize()} jobs are queued with {via}(), which checks the config and its "
                          "data first; nothing was queued.")
    return enqueue([JobSpec(config.to_dict() if hasattr(config, "to_dict") else dict(config))], kind=kind,
                   owner=owner, priority=priority, max_attempts=max_attempts, store=store)


def limits_for(owner: str | None = None, store: JobStore | None = None) -> Limits:
    """The limits that apply to `owner` (the current user when None): their own rows over everyone's."""
    return (store or open_store()).get_limits().for_owner(_owner(owner))


def use_classroom_limits(store: JobStore | None = None, limits: Limits = CLASSROOM_LIMITS) -> LimitTable:
    """Make `limits` everyone's ("*" rows; an owner's own rows still win) and return the table. Until
    some limit is set, nobody is limited (a single user's own machine)."""
    store = store or open_store()
    for key in LIMIT_KEYS:
        store.set_limit(EVERYONE, key, getattr(limits, key))
    return store.get_limits()


def get(job_id: str, store: JobStore | None = None) -> Job:
    job = (store or open_store()).get(job_id)
    if job is None:
        raise JobError(f"No job {job_id!r}; list jobs with `tunescope jobs`.")
    return job


def list_jobs(state: str | Sequence[str] | None = None, group: str | None = None, owner: str | None = None,
              limit: int | None = 100, store: JobStore | None = None) -> list[Job]:
    return (store or open_store()).list(state=state, group=group, owner=owner, limit=limit)


def cancel(job_id: str, wait: bool = False, timeout: float = 45.0, store: JobStore | None = None) -> Job:
    """Cancel a job. A queued (or interrupted) job leaves the queue at once; a running one is asked to
    stop (`cancel_note` says when it does) and is force-killed by its worker if it does not. A running
    job whose worker is gone is cancelled directly. With `wait`, return once the job is final."""
    store = store or open_store()
    job = store.request_cancel(job_id)
    if job.state == "cancelled" and job.run_dir is not None:
        mark_run(job, "cancelled", job.error or "Cancelled by request.")
    if job.state == "running":
        reap(store, only=[job_id])  # the worker is dead: nobody else would finish the cancel
    deadline = time.monotonic() + timeout
    job = get(job_id, store)
    while wait and not job.is_final and job.state != "interrupted" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = get(job_id, store)
    return job



def status(job_id: str, store: JobStore | None = None) -> dict[str, Any]:
    """The job row with its latest progress, as plain JSON-able values (one indexed read)."""
    return _status_dict(get(job_id, store))


def _status_dict(job: Job) -> dict[str, Any]:
    d = job.to_dict()
    now = time.time()
    d["heartbeat_age_s"] = round(now - job.heartbeat, 3) if job.heartbeat and job.state == "running" else None
    d["stale"] = bool(d["heartbeat_age_s"] is not None and d["heartbeat_age_s"] > STALE_AFTER_S)
    d["log"] = str(log_path(job.id))
    if job.started and job.state == "running":
        d["running_s"] = round(now - job.started, 3)
    elif job.started and job.finished:
        d["running_s"] = round(job.finished - job.started, 3)
    return d


def poll(job_id: str, offset: int = 0, attempt: int | None = None, store: JobStore | None = None
         ) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """(status, metric rows appended since byte `offset`, new offset) — cheap enough to call every
    second: one indexed read plus a seek into metrics.jsonl.

    A resumed attempt cuts metrics.jsonl back to its checkpoint and continues (its first new row has
    type "resume"). Pass the `attempt` from the previous status: when it changed and `offset` lies
    beyond the cut, reading restarts at the cut, so rows after a "resume" row replace those with a
    larger step."""
    st = status(job_id, store)
    run_dir = st["run_dir"]
    if not run_dir:
        return st, [], offset
    reset = (st["progress"] or {}).get("metrics_reset")
    path = Path(run_dir) / "metrics.jsonl"
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if reset and attempt is not None and attempt != st["attempts"] and offset > reset["offset"]:
        offset = reset["offset"]
    if offset > size:
        offset = reset["offset"] if reset and reset["offset"] <= size else 0
    rows, new_offset = Run(Path(run_dir)).metrics(offset)
    return st, rows, new_offset


def group_status(group_id: str, store: JobStore | None = None) -> dict[str, Any]:
    """All jobs of one submission, their counts by state, and mean/std of the finished runs' test
    metrics."""
    jobs = list_jobs(group=group_id, limit=None, store=store)
    if not jobs:
        raise JobError(f"No job group {group_id!r}; group ids are printed by `tunescope submit`.")
    jobs.reverse()  # submission order
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j.state] = counts.get(j.state, 0) + 1
    metrics: dict[str, dict[str, float]] = {}
    for name in ("accuracy", "macro_f1", "weighted_f1"):
        values = [j.result["test"][name] for j in jobs
                  if j.state == "succeeded" and name in (j.result.get("test") or {})]
        if values:
            metrics[name] = {"mean": statistics.fmean(values), "n": len(values),
                             "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                             "min": min(values), "max": max(values)}
    return {
        "group_id": group_id, "counts": counts, "total": len(jobs),
        "done": all(j.is_final for j in jobs), "test": metrics,
        "jobs": [{"id": j.id, "state": j.state, "tags": j.tags, "run_id": j.run_id,
                  "run_dir": str(j.run_dir) if j.run_dir else None, "error": j.error,
                  "step": j.progress.get("step"), "total_steps": j.progress.get("total_steps"),
                  "test": (j.result.get("test") or {})} for j in jobs],
    }


def live_workers(store: JobStore | None = None, stale_after_s: float = STALE_AFTER_S) -> list[dict[str, Any]]:
    now = time.time()
    return [w for w in (store or open_store()).workers() if now - (w["heartbeat"] or 0) <= stale_after_s]


def read_log(job_id: str, offset: int = 0) -> tuple[str, int]:
    """Text appended to a job's log since byte `offset`, and the new offset."""
    path = log_path(job_id)
    if not path.is_file():
        job = get(job_id)
        alt = job.run_dir / "job.log" if job.run_dir else None
        if alt is None or not alt.is_file():
            return "", offset
        path = alt
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    return data.decode("utf-8", errors="replace"), offset + len(data)
