"""The job table: the `Job` record, the `JobStore` interface, its SQLite implementation (schema,
migrations, damage checks) and `open_store`. The only module in tunescope that talks SQL.

The table indexes jobs; the run directory stays the source of truth for results. The store sits
behind `JobStore` so a server database can replace the embedded SQLite one without touching callers
(register its factory in `STORE_BACKENDS`).

Job life cycle::

    queued ──claim──► running ──► succeeded | failed | cancelled
       │                 │
       └──cancel──► cancelled   └──worker lost / job killed──► interrupted ──claim (resume)──► running

A claim takes the waiting job that `core.jobs.fairshare.pick_next` picks (priority first, then the owner
who used the slots least lately, FIFO among equals; owners at their running limit are skipped), reading
the candidates, the recent usage and the limits in the same write transaction, so two workers never
take the same job or both take an owner past their limit. A running job's `error` holds the reason it
was asked to stop (its per-job time limit); a plain cancel leaves it empty.

The `limits` table holds per-owner limits (owner or "*" for everyone, key, value; see
`core.jobs.fairshare.LimitTable`). `add(..., enforce_limits=True)` refuses a submission over its owner's
waiting-jobs or daily limit in the transaction that would insert it.

An `interrupted` job is claimable like a queued one: the next worker resumes it from its newest intact
checkpoint. Each claim counts as an attempt. An unplanned interruption (`crashes`) counts against
`max_attempts` (`strikes`) only when the job itself failed (its process died while its worker lived)
or it made no progress past its checkpoint; being killed with its worker during start-up, or after it
got further, does not. Once strikes reach `max_attempts`, or crashes of any kind reach
`crash_ceiling(max_attempts)` (a job that keeps crashing its worker), the job fails instead (the rules
live in `core.jobs.reaper`).

May import: core.errors, core.runs (paths), core.jobs.fairshare (pure rules), the standard library.
Nothing else in core.jobs, and no feature package.

Why this module is long: most of it is `SQLiteJobStore`, one class whose methods share the
transaction and damage rules; splitting it would scatter them.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfigError, JobError, JobStoreDamagedError, QuotaError
from core.jobs.fairshare import (
    USAGE_WINDOW_S,
    LimitTable,
    Span,
    Waiting,
    check_limit,
    owner_key,
    pick_from_spans,
    quota_problem,
    window_usage,
)
from core.runs import default_runs_dir, tunescope_home

STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINAL_STATES = ("succeeded", "failed", "cancelled")
CLAIMABLE = ("queued", "interrupted")
DEFAULT_MAX_ATTEMPTS = 3
CRASH_CEILING = 10  # unplanned interruptions of any kind after which a job fails (at least)
BUSY_TIMEOUT_S = 30.0  # how long one SQLite statement waits for a lock held by another process
# A running job whose heartbeat is older than this belongs to a dead worker. A live worker's heartbeat
# can be held up by a lock for a whole busy timeout (plus its own interval), so the limit must be
# clearly longer than that, or a worker stuck on a lock would have its own live job reaped.
STALE_AFTER_S = 3 * BUSY_TIMEOUT_S


class IdCollision(JobError):
    """A freshly drawn job or group id is taken already (submit draws new ones and retries)."""


# --------------------------------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------------------------------

_JSON_FIELDS = ("config", "progress", "oom_retries", "result", "tags")


@dataclasses.dataclass
class Job:
    id: str
    kind: str = "train"
    owner: str = ""
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    state: str = "queued"
    priority: int = 0
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    updated: float | None = None
    worker_id: str | None = None
    host: str | None = None
    worker_pid: int | None = None
    pid: int | None = None  # the job's own (child) process
    device: str | None = None
    heartbeat: float | None = None
    progress: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    runs_dir: str | None = None
    run_id: str | None = None
    group_id: str | None = None
    tags: dict[str, Any] = dataclasses.field(default_factory=dict)
    attempts: int = 0  # claims so far; also the token that proves which process owns the job
    crashes: int = 0  # unplanned interruptions (worker or job process died); planned stops don't count
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # fail instead of resuming once strikes reach this
    cancel_requested: float | None = None
    oom_retries: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    result: dict[str, Any] = dataclasses.field(default_factory=dict)
    strikes: int = 0  # the crashes that count against max_attempts (see core.jobs.reaper.judge_interruption)

    @property
    def run_dir(self) -> Path | None:
        return Path(self.runs_dir) / self.run_id if self.runs_dir and self.run_id else None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def log_path(self) -> Path:
        return log_path(self.id)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["run_dir"] = str(self.run_dir) if self.run_dir else None
        return d


_COLUMNS = tuple(f.name for f in dataclasses.fields(Job))


def _to_row(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (json.dumps(v) if k in _JSON_FIELDS else v) for k, v in values.items()}


def _from_row(row: sqlite3.Row) -> Job:
    names = row.keys()  # iterating a Row yields values, not names
    d = {k: row[k] for k in names if k in _COLUMNS}
    for k in _JSON_FIELDS:
        if k in d:
            d[k] = json.loads(d[k]) if d[k] else ({} if k != "oom_retries" else [])
    return Job(**d)


def crash_ceiling(max_attempts: int) -> int:
    """Unplanned interruptions after which a job fails even if none counted against it: the hard
    limit for a job that keeps taking its worker down with it."""
    return max(CRASH_CEILING, 3 * max_attempts)



def jobs_dir() -> Path:
    return tunescope_home() / "jobs"


def log_path(job_id: str) -> Path:
    """Where a job's process writes stdout/stderr (every attempt appends; hard-linked as the run
    directory's job.log once that exists)."""
    return jobs_dir() / f"{job_id}.log"


# --------------------------------------------------------------------------------------------------
# The store interface
# --------------------------------------------------------------------------------------------------


class JobStore(abc.ABC):
    """What the worker, the CLI and the dashboard need from a job table.

    Every state change is conditional (`expect_state`, `expect_attempt`) so a process that lost its
    job (reaped, cancelled, re-claimed elsewhere) can never overwrite the newer truth.
    """

    @abc.abstractmethod
    def add(self, jobs: Sequence[Job], *, enforce_limits: bool = False) -> None:
        """Insert jobs atomically (all or none). Raises JobError if an id or run directory is taken, and
        with `enforce_limits` a QuotaError if an owner would go over their waiting-jobs limit or has used
        their GPU hours of the last 24 h (checked in the same transaction as the insert)."""

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def get_many(self, job_ids: Sequence[str]) -> list[Job]: ...

    @abc.abstractmethod
    def list(self, state: str | Sequence[str] | None = None, group: str | None = None,
             owner: str | None = None, limit: int | None = 100) -> list[Job]:
        """Newest first."""

    @abc.abstractmethod
    def counts(self, group: str | None = None) -> dict[str, int]: ...

    @abc.abstractmethod
    def claim(self, worker_id: str, host: str, worker_pid: int, device: str,
              kinds: Sequence[str] | None = None) -> Job | None:
        """Atomically take the claimable job that fair share picks (priority, then the owner with the
        least weighted decayed usage, FIFO among equals; owners at their running limit skipped) and mark
        it running. None when nothing is claimable for `kinds`."""

    @abc.abstractmethod
    def usage_spans(self, since: float) -> list[Span]:
        """Each job attempt that held a slot after `since` (running ones without an end), for fair share
        and the daily limit."""

    @abc.abstractmethod
    def get_limits(self) -> LimitTable:
        """Every row of the limits table."""

    @abc.abstractmethod
    def set_limit(self, owner: str, key: str, value: float | None) -> None:
        """Set one limit of `owner` (or of everyone, "*"); None means no limit (for an owner, this
        overrides everyone's). Raises ConfigError for an unknown key or a bad value."""

    @abc.abstractmethod
    def clear_limit(self, owner: str, key: str) -> None:
        """Remove one limit row: the owner falls back to everyone's limit, everyone to no limit."""

    @abc.abstractmethod
    def update(self, job_id: str, *, expect_state: str | Sequence[str] | None = None,
               expect_attempt: int | None = None, expect_stale_before: float | None = None, **fields: Any) -> bool:
        """Set fields if the job still is in `expect_state` / at `expect_attempt` / without a heartbeat
        since `expect_stale_before` (checked in the same transaction as the write); True if it was."""

    @abc.abstractmethod
    def report_progress(self, job_id: str, attempt: int, progress: dict[str, Any]) -> str | None:
        """Store the latest progress of a running attempt. Returns None if that attempt no longer owns
        the job (it must stop), "cancel" if cancellation was requested, else "ok"."""

    @abc.abstractmethod
    def heartbeat(self, worker_id: str, job_ids: Sequence[str]) -> set[str]:
        """Refresh the heartbeat of the worker and of its running jobs; return those of `job_ids` that
        are still assigned to this worker (running or just ended), so it can kill the others."""

    @abc.abstractmethod
    def request_cancel(self, job_id: str) -> Job:
        """queued/interrupted -> cancelled at once; running -> flag for the worker. Returns the job."""

    @abc.abstractmethod
    def register_worker(self, worker_id: str, info: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def remove_worker(self, worker_id: str) -> None: ...

    @abc.abstractmethod
    def workers(self) -> list[dict[str, Any]]: ...


# --------------------------------------------------------------------------------------------------
# SQLite implementation
# --------------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    updated REAL,
    worker_id TEXT,
    host TEXT,
    worker_pid INTEGER,
    pid INTEGER,
    device TEXT,
    heartbeat REAL,
    progress TEXT,
    error TEXT,
    runs_dir TEXT,
    run_id TEXT,
    group_id TEXT,
    tags TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    cancel_requested REAL,
    oom_retries TEXT,
    result TEXT,
    strikes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, priority DESC, seq);
CREATE INDEX IF NOT EXISTS jobs_group ON jobs (group_id, seq);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, seq);
CREATE INDEX IF NOT EXISTS jobs_run ON jobs (runs_dir, run_id);
CREATE TABLE IF NOT EXISTS limits (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (owner, key)
);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    host TEXT,
    pid INTEGER,
    started REAL,
    heartbeat REAL,
    info TEXT
);
"""
_BUSY_TIMEOUT_MS = int(BUSY_TIMEOUT_S * 1000)
_LOCK_RETRIES = 5
# Columns added after the first release, with the statement that fills them in an existing file.
_MIGRATIONS = {"strikes": "UPDATE jobs SET strikes = crashes"}  # old crashes all counted


class SQLiteJobStore(JobStore):
    """SQLite in WAL mode: one connection per thread and process, a busy timeout, and every write in
    a `BEGIN IMMEDIATE` transaction (a write lock taken up front, so concurrent writers queue on the
    busy handler instead of failing with "database is locked" on a read-to-write upgrade)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._init_schema()

    # -- connections and transactions -----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=True)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: safe against process crashes
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # never share a connection across a fork
            local.conn, local.pid = self._connect(), os.getpid()
        return local.conn

    def _damaged(self, detail: str) -> JobStoreDamagedError:
        return JobStoreDamagedError(
            f"The job database {self.path} is damaged ({detail}); stop any running worker, then run "
            "`tunescope db rebuild` to move it aside and rebuild the job history from the run folders.")

    def close(self) -> None:
        """Close this thread's connection (the next use opens a new one)."""
        conn = getattr(self._local, "conn", None)
        self._local.__dict__.clear()
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _check_integrity(self, conn: sqlite3.Connection, existed: bool) -> None:
        """Refuse a damaged file at open, before anything reads it as a (wrong) queue."""
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:
            raise self._damaged(f"integrity check: {rows[0] if rows else 'no answer'}")
        has_jobs = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
        if not has_jobs and existed:
            # An empty file is also what a brand-new database looks like; it is only suspicious when
            # run folders show that jobs were recorded somewhere.
            made_by_jobs = _runs_made_by_jobs()
            if made_by_jobs:
                raise self._damaged(f"it has no job table although {made_by_jobs} holds runs made by jobs, so the "
                                    "file was emptied or replaced")

    def _init_schema(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Switching to WAL needs an exclusive moment; several processes opening a fresh database at
        # once serialise on a file lock here rather than racing on the journal mode.
        lock_path = self.path.with_name(self.path.name + ".init-lock")
        with open(lock_path, "a+") as lock:
            with contextlib.suppress(ImportError, OSError):
                import fcntl

                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            existed = self.path.exists()
            try:
                self._open_checked(existed)
            except BaseException:
                self.close()  # a refused file is not kept open
                raise

    def _open_checked(self, existed: bool) -> None:
        try:
            conn = self._conn
            self._check_integrity(conn, existed)
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            raise self._damaged(str(exc)) from exc
        with contextlib.suppress(OSError):  # password hashes and the audit log live here too
            os.chmod(self.path, 0o600)  # SQLite gives the -wal and -shm files the same mode
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        with self._tx() as c:
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                c.execute(stmt)
            have = {r["name"] for r in c.execute("PRAGMA table_info(jobs)")}
            for column, fill in _MIGRATIONS.items():
                if column not in have:
                    c.execute(f"ALTER TABLE jobs ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
                    c.execute(fill)

    @contextlib.contextmanager
    def _tx(self, retries: int = _LOCK_RETRIES) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        for attempt in range(retries):
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:  # busy handler gave up: back off and retry
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == retries - 1:
                    self._reraise(exc)
                time.sleep(0.05 * 2**attempt)
            except sqlite3.DatabaseError as exc:
                self._reraise(exc)
        try:
            yield conn
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):  # keep the first error, not the rollback's
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                self._reraise(exc)
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._reraise(exc)

    def _reraise(self, exc: sqlite3.DatabaseError) -> None:
        """A damaged file found while in use gets the same message as one found at open."""
        if _is_damage(exc):
            raise self._damaged(str(exc)) from exc
        raise exc

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction on this database, for other tables kept in the same file (accounts)."""
        return self._tx()

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A read on this database, with the same damage handling as the job table's."""
        return self._select(sql, params)

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            self._reraise(exc)
            raise  # not reached

    # -- jobs ------------------------------------------------------------------------------------

    def add(self, jobs: Sequence[Job], *, enforce_limits: bool = False) -> None:
        rows = [_to_row({k: v for k, v in dataclasses.asdict(j).items()}) for j in jobs]
        if not rows:
            return
        cols = [c for c in _COLUMNS]
        sql = f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        with self._tx() as c:
            for j in jobs:
                if j.runs_dir and j.run_id:
                    clash = c.execute(
                        "SELECT id FROM jobs WHERE runs_dir = ? AND run_id = ? AND state NOT IN (?, ?)",
                        (j.runs_dir, j.run_id, "cancelled", "failed")).fetchone()
                    if clash:
                        raise JobError(f"Job {clash['id']} already writes run {j.run_id!r}; choose another "
                                       "run id.")
            for g in {j.group_id for j in jobs if j.group_id}:
                if c.execute("SELECT 1 FROM jobs WHERE group_id = ? LIMIT 1", (g,)).fetchone():
                    raise IdCollision(f"Group id {g} is taken.")
            if enforce_limits:
                self._check_quota(c, jobs)
            try:
                c.executemany(sql, [[r[k] for k in cols] for r in rows])
            except sqlite3.IntegrityError as exc:
                raise IdCollision(f"Job id collision ({exc}).") from exc

    def get(self, job_id: str) -> Job | None:
        rows = self._select("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _from_row(rows[0]) if rows else None

    def get_many(self, job_ids: Sequence[str]) -> list[Job]:
        if not job_ids:
            return []
        marks = ", ".join("?" for _ in job_ids)
        return [_from_row(r) for r in self._select(f"SELECT * FROM jobs WHERE id IN ({marks})", list(job_ids))]

    def list(self, state: str | Sequence[str] | None = None, group: str | None = None,
             owner: str | None = None, limit: int | None = 100) -> list[Job]:
        where, params = _filters(state, group, owner)
        sql = f"SELECT * FROM jobs {where} ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_from_row(r) for r in self._select(sql, params)]

    def counts(self, group: str | None = None) -> dict[str, int]:
        where, params = _filters(None, group, None)
        rows = self._select(f"SELECT state, COUNT(*) AS n FROM jobs {where} GROUP BY state", params)
        return {r["state"]: r["n"] for r in rows}

    def claim(self, worker_id: str, host: str, worker_pid: int, device: str,
              kinds: Sequence[str] | None = None) -> Job | None:
        kind_sql, params = "", list(CLAIMABLE)
        if kinds:
            kind_sql = f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params += list(kinds)
        now = time.time()
        with self._tx() as c:
            # Only the columns the rule reads: a claim holds the write lock while it decides.
            waiting = [Waiting(r["id"], owner_key(r["owner"]), int(r["priority"] or 0), float(r["seq"]))
                       for r in c.execute(f"SELECT id, owner, priority, seq FROM jobs WHERE state IN (?, ?)"
                                          f"{kind_sql}", params)]
            if not waiting:
                return None
            pick = pick_from_spans(waiting, self._spans(c, now - USAGE_WINDOW_S), now, self._limits(c))
            if pick is None:  # every owner who waits is at their running limit
                return None
            c.execute(
                "UPDATE jobs SET state = 'running', worker_id = ?, host = ?, worker_pid = ?, device = ?, "
                "started = ?, heartbeat = ?, updated = ?, attempts = attempts + 1, pid = NULL, error = NULL, "
                "finished = NULL WHERE id = ?",
                (worker_id, host, worker_pid, device, now, now, now, pick.id))
            job = _from_row(c.execute("SELECT * FROM jobs WHERE id = ?", (pick.id,)).fetchone())
        return job

    # -- fair share and limits ---------------------------------------------------------------------

    @staticmethod
    def _spans(c: sqlite3.Connection, since: float) -> list[Span]:
        rows = c.execute(
            "SELECT owner, state, started, finished, heartbeat, updated FROM jobs WHERE started IS NOT NULL "
            "AND (state = 'running' OR COALESCE(finished, heartbeat, updated, started) >= ?)", (since,))
        return [_span(r) for r in rows]

    @staticmethod
    def _limits(c: sqlite3.Connection) -> LimitTable:
        return LimitTable(tuple((r["owner"], r["key"], r["value"])
                                for r in c.execute("SELECT owner, key, value FROM limits ORDER BY owner, key")))

    def _check_quota(self, c: sqlite3.Connection, jobs: Sequence[Job]) -> None:
        now = time.time()
        limits = self._limits(c)
        adding: dict[str, int] = {}
        for j in jobs:
            adding[owner_key(j.owner)] = adding.get(owner_key(j.owner), 0) + 1
        used = window_usage(self._spans(c, now - USAGE_WINDOW_S), now)
        for owner, n in adding.items():
            lim = limits.for_owner(owner)
            if lim.max_queued is None and lim.gpu_hours_per_day is None:
                continue
            waiting = c.execute("SELECT COUNT(*) FROM jobs WHERE owner = ? AND state IN (?, ?)",
                                (owner, *CLAIMABLE)).fetchone()[0]
            problem = quota_problem(owner, adding=n, waiting=waiting, used_today_s=used.get(owner, 0.0), limits=lim)
            if problem:
                raise QuotaError(problem)

    def usage_spans(self, since: float) -> list[Span]:
        try:
            return self._spans(self._conn, since)
        except sqlite3.DatabaseError as exc:
            self._reraise(exc)
            raise  # not reached

    def get_limits(self) -> LimitTable:
        try:
            return self._limits(self._conn)
        except sqlite3.DatabaseError as exc:
            self._reraise(exc)
            raise  # not reached

    def set_limit(self, owner: str, key: str, value: float | None) -> None:
        value = check_limit(key, value)
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO limits (owner, key, value) VALUES (?, ?, ?)",
                      (owner_key(owner), key, value))

    def clear_limit(self, owner: str, key: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM limits WHERE owner = ? AND key = ?", (owner_key(owner), key))

    def update(self, job_id: str, *, expect_state: str | Sequence[str] | None = None,
               expect_attempt: int | None = None, expect_stale_before: float | None = None, **fields: Any) -> bool:
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job fields: {sorted(unknown)}")
        fields.setdefault("updated", time.time())
        values = _to_row(fields)
        sql = f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?"
        params = [*values.values(), job_id]
        if expect_state is not None:
            states = [expect_state] if isinstance(expect_state, str) else list(expect_state)
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            params += states
        if expect_attempt is not None:
            sql += " AND attempts = ?"
            params.append(expect_attempt)
        if expect_stale_before is not None:
            sql += " AND COALESCE(heartbeat, started, created) < ?"
            params.append(expect_stale_before)
        with self._tx() as c:
            return c.execute(sql, params).rowcount == 1

    def report_progress(self, job_id: str, attempt: int, progress: dict[str, Any]) -> str | None:
        with self._tx() as c:
            row = c.execute(
                "UPDATE jobs SET progress = ?, updated = ? WHERE id = ? AND state = 'running' AND attempts = ? "
                "RETURNING cancel_requested", (json.dumps(progress), time.time(), job_id, attempt)).fetchone()
        if row is None:
            return None
        return "cancel" if row[0] is not None else "ok"

    def heartbeat(self, worker_id: str, job_ids: Sequence[str]) -> set[str]:
        now = time.time()
        # One try (one busy timeout at most): the next beat follows in seconds, while retrying here
        # could hold a beat back for longer than the stale limit.
        with self._tx(retries=1) as c:
            c.execute("UPDATE workers SET heartbeat = ? WHERE id = ?", (now, worker_id))
            if not job_ids:
                return set()
            marks = ", ".join("?" for _ in job_ids)
            c.execute(f"UPDATE jobs SET heartbeat = ? WHERE worker_id = ? AND state = 'running' AND id IN ({marks})",
                      (now, worker_id, *job_ids))
            rows = c.execute(f"SELECT id FROM jobs WHERE worker_id = ? AND id IN ({marks})",
                             (worker_id, *job_ids)).fetchall()
        return {r[0] for r in rows}

    def request_cancel(self, job_id: str) -> Job:
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobError(f"No job {job_id!r}; list jobs with `tunescope jobs`.")
            if row["state"] in CLAIMABLE:
                msg = ("Cancelled before it started." if row["state"] == "queued"
                       else "Cancelled while waiting to resume.")
                c.execute("UPDATE jobs SET state = 'cancelled', finished = ?, updated = ?, cancel_requested = ?, "
                          "error = ? WHERE id = ?", (now, now, now, msg, job_id))
            elif row["state"] == "running":
                c.execute("UPDATE jobs SET cancel_requested = COALESCE(cancel_requested, ?), updated = ? "
                          "WHERE id = ?", (now, now, job_id))
            job = _from_row(c.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
        return job

    # -- workers ---------------------------------------------------------------------------------

    def register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        now = time.time()
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO workers (id, host, pid, started, heartbeat, info) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
                      (worker_id, info.get("host"), info.get("pid"), now, now, json.dumps(info)))

    def remove_worker(self, worker_id: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def workers(self) -> list[dict[str, Any]]:
        return [{**json.loads(r["info"] or "{}"), "id": r["id"], "host": r["host"], "pid": r["pid"],
                 "started": r["started"], "heartbeat": r["heartbeat"]}
                for r in self._select("SELECT * FROM workers ORDER BY started")]


def _span(row: sqlite3.Row) -> Span:
    """The slot time of a job's latest attempt, from its row."""
    if row["state"] == "running":
        return Span(row["owner"], row["started"])
    end = row["finished"] or row["heartbeat"] or row["updated"] or row["started"]
    if row["finished"] and row["heartbeat"] and row["finished"] - row["heartbeat"] > STALE_AFTER_S:
        # No heartbeat for a long while before it ended: it waited to resume (interrupted, then
        # cancelled), and that wait held no slot.
        end = row["heartbeat"]
    return Span(row["owner"], row["started"], max(end, row["started"]))


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file, as opposed to a busy lock or a constraint (which callers handle)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return False
    text = str(exc).lower()
    return (type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text
            or "disk image" in text)


def _runs_made_by_jobs() -> Path | None:
    """The runs folder if it holds a run that a job made (its job.json or job.log), else None."""
    root = default_runs_dir()
    try:
        for p in root.iterdir():
            if (p / "job.json").is_file() or (p / "job.log").is_file():
                return root
    except OSError:
        pass
    return None


def _filters(state: str | Sequence[str] | None, group: str | None, owner: str | None
             ) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if state:
        states = [state] if isinstance(state, str) else list(state)
        bad = sorted(set(states) - set(STATES))
        if bad:
            raise JobError(f"Unknown job state(s) {', '.join(bad)}; use one of {', '.join(STATES)}.")
        clauses.append(f"state IN ({', '.join('?' for _ in states)})")
        params += states
    if group:
        clauses.append("group_id = ?")
        params.append(group)
    if owner:
        clauses.append("owner = ?")
        params.append(owner)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


# --------------------------------------------------------------------------------------------------
# Opening the store
# --------------------------------------------------------------------------------------------------

_STORES: dict[tuple[int, str], JobStore] = {}
_STORES_LOCK = threading.Lock()


def _sqlite_file(location: str) -> Path:
    # sqlite:/// + an absolute path has one slash too many ("//home/..."): the same file, but the
    # messages that name it should read normally.
    return Path("/" + location.lstrip("/")) if location.startswith("//") else Path(location)


def _sqlite_backend(location: str) -> JobStore:
    return SQLiteJobStore(_sqlite_file(location))


# scheme -> factory(location). A server database registers itself here (e.g. "postgresql").
STORE_BACKENDS = {"sqlite": _sqlite_backend}


def store_url() -> str:
    return os.environ.get("TUNESCOPE_JOBS_DB") or f"sqlite:///{tunescope_home() / 'jobs.db'}"


def open_store(url: str | None = None) -> JobStore:
    """The job store named by `url`, `$TUNESCOPE_JOBS_DB`, or SQLite at `$TUNESCOPE_HOME/jobs.db`.

    One store object per process and location (it keeps one connection per thread)."""
    url = url or store_url()
    scheme, sep, location = url.partition("://")
    if not sep:  # a bare path
        scheme, location = "sqlite", url
    if scheme not in STORE_BACKENDS:
        raise ConfigError(f"No job store backend for {scheme!r} in this install; use sqlite:///PATH "
                          f"(known: {', '.join(sorted(STORE_BACKENDS))}).")
    key = (os.getpid(), f"{scheme}:{location}")
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = STORE_BACKENDS[scheme](location)
        return _STORES[key]


def store_problem(url: str | None = None) -> str | None:
    """The damaged-database message (with its recovery step) if the job store fails its check at open,
    else None: for the dashboard, which shows it instead of a traceback."""
    try:
        open_store(url)
    except JobStoreDamagedError as exc:
        return str(exc)
    return None


def sqlite_path(url: str | None = None) -> Path:
    """The file of the SQLite job store named by `url` (or the default one); `tunescope db` works on it."""
    url = url or store_url()
    scheme, sep, location = url.partition("://")
    if not sep:
        scheme, location = "sqlite", url
    if scheme != "sqlite":
        raise ConfigError(f"`tunescope db` works on the SQLite job store only, not on {scheme!r}.")
    return _sqlite_file(location)


def forget_store(path: Path) -> None:
    """Close and drop this process's store objects for `path` (before the file is moved aside)."""
    with _STORES_LOCK:
        for key in [k for k, v in _STORES.items() if isinstance(v, SQLiteJobStore) and v.path == path]:
            _STORES.pop(key).close()  # type: ignore[attr-defined]
