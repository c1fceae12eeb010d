"""Background jobs: training (and explanations, and anything a runner is written for) runs as a queued
job that a `tunescope worker` process executes, so it survives the browser, the UI server and a crash
of the worker itself.

Where things live (lowest first; each module imports only those above it in this list):

- `fairshare` — pure rules of the shared queue: which waiting job goes next (`pick_next`: priority,
              then the owner with the least weighted decayed usage, FIFO), the per-owner `Limits` and
              their `LimitTable`, the display order `fair_order`, the quota messages.
- `store`   — the `Job` record, the `JobStore` interface and its SQLite implementation, `open_store`.
              The only module that talks SQL. Also the job life cycle (its docstring).
- `context` — all a runner sees: `JobContext`, `JobStopped`, `JobFailed`, `LogLines`, `cancel_note`.
- `kinds`   — the one table of job kinds (kind -> "module:function" of its runner) and `run_noop`.
- `reaper`  — `reap`, `judge_interruption` (what an interruption costs a job), `mark_run`.
- `queue`   — the API of the CLI and the dashboard: `submit`/`enqueue` (which enforce the waiting-jobs
              and daily limits), `get`, `list_jobs`, `cancel`, `status`, `poll`, `group_status`,
              `live_workers`, `read_log`, `limits_for`, `use_classroom_limits`.
- `listing` — the job list as people read it (`snapshot`, `build_listing`: order, queue places in the
              fair order, seed group cards, the sidebar counts), `queue_places` (one owner's places and
              expected starts) and the ETA rule `eta_seconds`.
- `rebuild` — `rebuild_store`: the job table rebuilt from the run folders (`tunescope db rebuild`).
- `worker`  — the worker process loop, its slots, and the child process that runs one job.

The queue never imports features (core.data, core.models, core.train, core.explain, core.report):
training jobs are checked and expanded by `core.train.submit.submit_training` before they reach it.
Runners (`core.train.runner`, `core.explain.jobs`) import `core.jobs.context`, never the worker.

This package re-exports the names that callers use as `jobs.X` (`from core import jobs`); it does
not import the worker. May import: core.errors, core.runs, core.config (a stored job's RunConfig) and
the standard library; runner modules only by name, through `kinds`.
"""

from core.errors import JobError, QuotaError
from core.jobs.context import cancel_note
from core.jobs.fairshare import (
    CLASSROOM_LIMITS,
    DEFAULT_HALF_LIFE_S,
    EVERYONE,
    LIMIT_KEYS,
    UNLIMITED,
    Limits,
    LimitTable,
)
from core.jobs.kinds import KINDS
from core.jobs.listing import queue_places
from core.jobs.queue import (
    MAX_JOBS_PER_SUBMIT,
    JobSpec,
    cancel,
    enqueue,
    get,
    group_status,
    limits_for,
    list_jobs,
    live_workers,
    new_group_id,
    new_job_id,
    poll,
    read_log,
    status,
    submit,
    use_classroom_limits,
)
from core.jobs.rebuild import rebuild_store
from core.jobs.store import (
    BUSY_TIMEOUT_S,
    CLAIMABLE,
    DEFAULT_MAX_ATTEMPTS,
    FINAL_STATES,
    STALE_AFTER_S,
    STATES,
    STORE_BACKENDS,
    IdCollision,
    Job,
    JobStore,
    SQLiteJobStore,
    crash_ceiling,
    jobs_dir,
    log_path,
    open_store,
    sqlite_path,
    store_problem,
    store_url,
)

__all__ = [
    "BUSY_TIMEOUT_S", "CLAIMABLE", "CLASSROOM_LIMITS", "DEFAULT_HALF_LIFE_S", "DEFAULT_MAX_ATTEMPTS", "EVERYONE",
    "FINAL_STATES", "KINDS", "LIMIT_KEYS", "MAX_JOBS_PER_SUBMIT", "STALE_AFTER_S", "STATES", "STORE_BACKENDS",
    "UNLIMITED", "IdCollision", "Job", "JobError", "JobSpec", "JobStore", "LimitTable", "Limits", "QuotaError",
    "SQLiteJobStore", "cancel", "cancel_note", "crash_ceiling", "enqueue", "get", "group_status", "jobs_dir",
    "limits_for", "list_jobs", "live_workers", "log_path", "new_group_id", "new_job_id", "open_store", "poll",
    "queue_places", "read_log", "rebuild_store", "sqlite_path", "status", "store_problem", "store_url", "submit",
    "use_classroom_limits",
]
