"""The job store and the job API: training (and later eval/explain/report) runs as a queued job that
a `tunescope worker` process executes, so it survives the browser, the UI server and a crash of the
worker itself.

The table indexes jobs; the run directory stays the source of truth for results. The store sits
behind `JobStore` so a server database can replace the embedded SQLite one without touching callers;
everything else goes through `open_store()` and the module-level functions below.

Job life cycle::

    queued ──claim──► running ──► succeeded | failed | cancelled
       │                 │
       └──cancel──► cancelled   └──worker lost / job killed──► interrupted ──claim (resume)──► running

An `interrupted` job is claimable like a queued one: the next worker resumes it from its newest intact
checkpoint. Each claim counts as an attempt. An unplanned interruption (`crashes`) counts against
`max_attempts` (`strikes`) only when the job itself failed (its process died while its worker lived)
or it made no progress past its checkpoint; being killed with its worker during start-up, or after it
got further, does not. Once strikes reach `max_attempts`, or crashes of any kind reach
`crash_ceiling(max_attempts)` (a job that keeps crashing its worker), the job fails instead.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import getpass
import itertools
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfigError, JobError, JobStoreDamagedError, RunError
from core.runs import tunescope_home

STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINAL_STATES = ("succeeded", "failed", "cancelled")
CLAIMABLE = ("queued", "interrupted")
KINDS = ("train", "noop", "explain")  # built-in runners (core.jobs.worker.RUNNERS)
DEFAULT_MAX_ATTEMPTS = 3
MAX_JOBS_PER_SUBMIT = 256
CRASH_CEILING = 10  # unplanned interruptions of any kind after which a job fails (at least)
BUSY_TIMEOUT_S = 30.0  # how long one SQLite statement waits for a lock held by another process
# A running job whose heartbeat is older than this belongs to a dead worker. A live worker's heartbeat
# can be held up by a lock for a whole busy timeout (plus its own interval), so the limit must be
# clearly longer than that, or a worker stuck on a lock would have its own live job reaped.
STALE_AFTER_S = 3 * BUSY_TIMEOUT_S

# Grid axes a submission may vary: short name -> (RunConfig section, field).
GRID_AXES = {"method": ("train", "method"), "lr": ("train", "lr"), "model": ("model", "name"),
             "seed": ("train", "seed"), "batch_size": ("train", "batch_size"), "epochs": ("train", "epochs"),
             "max_length": ("model", "max_length")}


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
    strikes: int = 0  # the crashes that count against max_attempts (see core.jobs.worker.judge_interruption)

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


def cancel_note(progress: Mapping[str, Any]) -> str:
    """What a cancel does to a running job, by the phase it reported last (for the CLI and the log)."""
    phase = str(progress.get("phase") or "")
    kill = "its worker kills it if it has not stopped in time"
    if phase == "train":
        return f"it stops before its next training step (within about a second); {kill}"
    if phase.startswith("features:"):
        return (f"it stops after the current batch of feature caching on the {phase.split(':', 1)[1]} split "
                f"(the features are not kept); {kill}")
    if phase.startswith("predict:"):
        return (f"it stops after the current batch of predictions on the {phase.split(':', 1)[1]} split; "
                f"{kill}")
    what = f"'{phase}'" if phase else "its current phase"
    return (f"{what} has no stopping point, so it is interrupted a few seconds after it sees the request; "
            f"{kill}")


def new_job_id() -> str:
    return f"j-{secrets.token_hex(3)}"


def new_group_id() -> str:
    return f"g-{secrets.token_hex(3)}"


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
    def add(self, jobs: Sequence[Job]) -> None:
        """Insert jobs atomically (all or none). Raises JobError if an id or run directory is taken."""

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
        """Atomically take the best claimable job (priority, then FIFO) and mark it running."""

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

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            self._reraise(exc)
            raise  # not reached

    # -- jobs ------------------------------------------------------------------------------------

    def add(self, jobs: Sequence[Job]) -> None:
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
                                       "--run-id.")
            for g in {j.group_id for j in jobs if j.group_id}:
                if c.execute("SELECT 1 FROM jobs WHERE group_id = ? LIMIT 1", (g,)).fetchone():
                    raise IdCollision(f"Group id {g} is taken.")
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
            row = c.execute(
                f"SELECT id FROM jobs WHERE state IN (?, ?){kind_sql} ORDER BY priority DESC, seq LIMIT 1",
                params).fetchone()
            if row is None:
                return None
            c.execute(
                "UPDATE jobs SET state = 'running', worker_id = ?, host = ?, worker_pid = ?, device = ?, "
                "started = ?, heartbeat = ?, updated = ?, attempts = attempts + 1, pid = NULL, error = NULL, "
                "finished = NULL WHERE id = ?",
                (worker_id, host, worker_pid, device, now, now, now, row["id"]))
            job = _from_row(c.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())
        return job

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


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file, as opposed to a busy lock or a constraint (which callers handle)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return False
    text = str(exc).lower()
    return (type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text
            or "disk image" in text)


def _runs_made_by_jobs() -> Path | None:
    """The runs folder if it holds a run that a job made (its job.json or job.log), else None."""
    from core.runs import default_runs_dir

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


def _sqlite_path(url: str | None) -> Path:
    url = url or store_url()
    scheme, sep, location = url.partition("://")
    if not sep:
        scheme, location = "sqlite", url
    if scheme != "sqlite":
        raise ConfigError(f"`tunescope db` works on the SQLite job store only, not on {scheme!r}.")
    return _sqlite_file(location)


def _forget_store(path: Path) -> None:
    with _STORES_LOCK:
        for key in [k for k, v in _STORES.items() if isinstance(v, SQLiteJobStore) and v.path == path]:
            _STORES.pop(key).close()  # type: ignore[attr-defined]


_LOG_HEADER = re.compile(r"^=== .* job (j-[0-9a-f]+) attempt (\d+) \(([a-z][a-z0-9_-]*)\)", re.MULTILINE)


def _job_from_run(run_dir: Path) -> Job | None:
    """The job that made a run folder, from its job.json (or the headers of its job.log), its status
    and summary; None when no job made it (`tunescope train`). A job caught running or interrupted
    comes back `interrupted`, so a worker resumes it from its checkpoint."""
    from core.config import RunConfig
    from core.runs import Run

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
    from core.runs import default_runs_dir

    path = _sqlite_path(url)
    _forget_store(path)
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


# --------------------------------------------------------------------------------------------------
# The job API (CLI and dashboard)
# --------------------------------------------------------------------------------------------------


def _owner(owner: str | None) -> str:
    if owner:
        return owner
    try:
        return os.environ.get("TUNESCOPE_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def expand_grid(cfg: Any, seeds: Sequence[int] | None = None,
                grid: Mapping[str, Sequence[Any]] | None = None) -> list[tuple[Any, dict[str, Any]]]:
    """One (RunConfig, tags) per point of grid × seeds; tags name the varied values."""
    from core.config import RunConfig

    axes: list[tuple[str, tuple[str, str], list[Any]]] = []
    for name, values in (grid or {}).items():
        if name in GRID_AXES:
            where = GRID_AXES[name]
        elif name.count(".") == 1 and name.split(".")[0] in ("data", "model", "train"):
            where = tuple(name.split("."))  # type: ignore[assignment]
        else:
            raise ConfigError(f"Cannot vary {name!r} in a grid; use one of {', '.join(GRID_AXES)} or "
                              "section.field (e.g. train.weight_decay).")
        values = list(values)
        if not values:
            raise ConfigError(f"The grid axis {name!r} has no values.")
        axes.append((name, where, values))
    if seeds is not None:
        seeds = list(seeds)
        if not seeds:
            raise ConfigError("--seeds is empty; give e.g. --seeds 1,2,3.")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"--seeds repeats a seed: {seeds}.")
        axes.append(("seed", GRID_AXES["seed"], seeds))
    n = 1
    for _, _, values in axes:
        n *= len(values)
    if n > MAX_JOBS_PER_SUBMIT:
        raise ConfigError(f"This submission would create {n} jobs; the limit is {MAX_JOBS_PER_SUBMIT}.")
    base = cfg.to_dict()
    out = []
    for combo in itertools.product(*[values for _, _, values in axes]):
        d = json.loads(json.dumps(base))
        tags = {}
        for (name, (section, fld), _), value in zip(axes, combo, strict=True):
            d[section][fld] = value
            tags[name] = value
        out.append((RunConfig.from_dict(d), tags))
    return out


def absolute_paths(cfg: Any) -> Any:
    """The same config with a local dataset path and model folder made absolute: a worker may run in
    another directory than the one the job was submitted from."""
    from core.config import RunConfig
    from core.models.catalog import BUILTIN_CARDS, TORCHVISION_HEADS

    d = cfg.to_dict()
    src = str(d["data"]["source"])
    if not src.startswith("demo:") and Path(src).expanduser().exists():
        d["data"]["source"] = str(Path(src).expanduser().resolve())
    name = d["model"]["name"]
    if name and name not in BUILTIN_CARDS and name not in TORCHVISION_HEADS and Path(name).expanduser().is_dir():
        d["model"]["name"] = str(Path(name).expanduser().resolve())
    return RunConfig.from_dict(d)


def validate_config(cfg: Any, check_device: bool = True, _cache: dict[str, Any] | None = None) -> Any:
    """Everything `api.train` checks before it writes, without building the model: the dataset
    (loaded and split), the model family against the task, the method, and the device. Returns the
    loaded data. Raises the same TunescopeError subclasses as `tunescope train`."""
    from core.data import load_for_config
    from core.errors import ModelUnavailableError
    from core.models.catalog import family_of, resolve_model_name

    cache = _cache if _cache is not None else {}
    key = json.dumps([cfg.data.__dict__, cfg.model.max_length], sort_keys=True, default=str)
    if key not in cache:
        cache[key] = load_for_config(cfg)
    data = cache[key]
    name = resolve_model_name(cfg.model.name, data.task)
    family_of(name, data.task)
    looks_like_path = name.startswith((".", "/", "~")) or os.sep in name and name.count("/") != 1
    if looks_like_path and not Path(name).expanduser().is_dir():
        raise ModelUnavailableError(f"Model folder {name!r} does not exist; give an existing folder, a "
                                    "Hugging Face id, or minilm / efficientnet_lite0.")
    if check_device:
        from core.finetune import get_method

        get_method(cfg.train.method)
        from core.train.engine import pick_device, pick_precision

        pick_precision(pick_device(cfg.train.device), cfg.train.precision)
    return data


def submit(cfg: Any, *, kind: str = "train", owner: str | None = None, priority: int = 0,
           seeds: Sequence[int] | None = None, grid: Mapping[str, Sequence[Any]] | None = None,
           runs_dir: str | Path | None = None, run_id: str | None = None, validate: bool = True,
           check_device: bool = True, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
           store: JobStore | None = None) -> list[str]:
    """Queue one job per point of `grid` × `seeds` (one group when more than one); return the ids.

    Invalid configurations raise before anything is queued."""
    from core.runs import default_runs_dir, new_run_id

    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", kind):
        raise ConfigError(f"Job kind {kind!r} is not a valid name; built-in kinds: {', '.join(KINDS)}.")
    if not 1 <= max_attempts <= 100:
        raise ConfigError(f"max_attempts must be between 1 and 100, got {max_attempts}.")
    if kind == "train":
        points = expand_grid(cfg, seeds, grid)
    elif seeds or grid:
        raise ConfigError(f"Seeds and grids apply to training jobs, not to {kind!r} jobs.")
    else:
        points = [(cfg, {})]
    store = store or open_store()  # a damaged queue is said before the (slower) data checks
    root = Path(runs_dir).expanduser().resolve() if runs_dir else default_runs_dir().resolve()
    cache: dict[str, Any] = {}
    now = time.time()
    group = new_group_id() if len(points) > 1 else None
    jobs = []
    for i, (c, tags) in enumerate(points):
        rid = None
        if kind == "train":
            c = absolute_paths(c)
            data = validate_config(c, check_device=check_device, _cache=cache) if validate else None
            model = Path(c.model.name or ("minilm" if data is None or data.task == "text" else
                                          "efficientnet_lite0")).name
            if run_id:
                rid = run_id if len(points) == 1 else f"{run_id}-{i + 1}"
            else:
                rid = new_run_id(data.name if data is not None else Path(c.data.source).stem, model,
                                 c.train.method, *(f"s{c.train.seed}",) * ("seed" in tags))
            if (root / rid).exists():
                raise RunError(f"Run directory {root / rid} already exists; choose another --run-id.")
        config = c.to_dict() if hasattr(c, "to_dict") else dict(c)
        jobs.append(Job(id=new_job_id(), kind=kind, owner=_owner(owner), config=config, priority=int(priority),
                        created=now, updated=now, runs_dir=str(root) if rid else None, run_id=rid,
                        group_id=group, tags=tags, max_attempts=max_attempts))
    for attempt in range(5):
        try:
            store.add(jobs)
            break
        except IdCollision:  # 16M ids: rare, but a long-lived table makes it happen now and then
            if attempt == 4:
                raise
            group = new_group_id() if group else None
            jobs = [dataclasses.replace(j, id=new_job_id(), group_id=group) for j in jobs]
    return [j.id for j in jobs]


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
        _mark_run(job, "cancelled", job.error or "Cancelled by request.")
    if job.state == "running":
        from core.jobs.worker import reap

        reap(store, only=[job_id])  # the worker is dead: nobody else would finish the cancel
    deadline = time.monotonic() + timeout
    job = get(job_id, store)
    while wait and not job.is_final and job.state != "interrupted" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = get(job_id, store)
    return job


def _mark_run(job: Job, state: str, message: str) -> None:
    """Make the run directory's status.json agree with the job when the job's process cannot."""
    from core.runs import RunWriter

    run_dir = job.run_dir
    if run_dir is None or not (run_dir / "status.json").is_file():
        return
    try:
        current = json.loads((run_dir / "status.json").read_text()).get("state")
    except (OSError, ValueError):
        current = None
    if current in ("succeeded", state):
        return
    RunWriter(run_dir).set_status(state, message, job_id=job.id)


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
    from core.runs import Run

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
    import statistics

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

