"""What one user can see and do: every call that lists, opens, changes, shares or deletes a run, a saved
dataset or a job takes the acting user (`core.access.Actor`) and applies `core.access.allowed`, so
the CLI, the dashboard and any later API share one rule.

Someone else's private object answers exactly like one that does not exist: the same error text,
the same None. Shares, unshares, cancels of other people's jobs and deletions go to the audit log.

The unguarded building blocks (`core.runs.list_runs`, `core.data.store`, `core.jobs`) stay for
internal use (the worker, rebuilds, tests); the dashboard calls these instead (a test checks it).

May import: core.access, core.accounts (the audit log), core.runs, core.data, core.jobs, core.errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.access import Access, Actor, allowed, read_access, write_access
from core.accounts.store import open_accounts
from core.data import store as datastore
from core.data.locations import NAME, datasets_dir, uploads_dir
from core.errors import DataError, JobError, RunError, TunescopeError
from core.jobs import queue
from core.jobs.store import Job, JobStore, open_store
from core.runs import RUN_ID, Run, default_runs_dir
from core.runs import list_runs as _all_runs


class AccessDenied(TunescopeError):
    """The user may see the object but not do this to it (e.g. a viewer starting a job)."""


def _audit(actor: Actor, action: str, target: str, detail: str = "", client: str = "") -> None:
    open_accounts().audit(actor.name, action, target, detail, client)


def _need_write(actor: Actor, what: str) -> None:
    if not actor.can_write:
        raise AccessDenied(f"Your account ({actor.role}) can look at shared work but not {what}; ask your "
                           "instructor for a student account.")


# -- runs --------------------------------------------------------------------------------------------


def _not_found(run_id: str) -> RunError:
    return RunError(f"Run {str(run_id)[:130]!r} not found: give a run id from the runs list.")


def list_runs(actor: Actor, runs_dir: Path | None = None) -> list[dict[str, Any]]:
    """`core.runs.list_runs` rows the actor may read, each with its `owner` and `shared`."""
    rows = []
    for row in _all_runs(runs_dir):
        access = read_access(Path(row["path"]))
        if allowed(actor, "read", access):
            rows.append({**row, "owner": access.owner, "shared": access.shared})
    return rows


def find_run(actor: Actor, run_id: str, runs_dir: Path | None = None) -> Run | None:
    """The run `run_id` if it exists and the actor may read it, else None. Only a plain run id is
    accepted, never a path, so a crafted link cannot reach folders outside the runs directory."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
        return None
    path = Path(runs_dir or default_runs_dir()) / run_id
    if not path.is_dir() or not (path / "config.json").is_file():
        return None
    return Run(path) if allowed(actor, "read", read_access(path)) else None


def open_run(actor: Actor, run: str | Path, runs_dir: Path | None = None) -> Run:
    """A run named by id, or by folder for callers that were given one (the CLI): RunError "not
    found" when it does not exist or the actor may not read it."""
    p = Path(str(run)).expanduser()
    if isinstance(run, str) and RUN_ID.fullmatch(run) and not p.is_dir():
        found = find_run(actor, run, runs_dir)
        if found is None:
            raise _not_found(run)
        return found
    if not p.is_dir() or not (p / "config.json").is_file() or not allowed(actor, "read", read_access(p)):
        raise _not_found(str(run))
    return Run(p)


def run_access(actor: Actor, run_id: str, runs_dir: Path | None = None) -> Access:
    run = find_run(actor, run_id, runs_dir)
    if run is None:
        raise _not_found(run_id)
    return read_access(run.path)


def share_run(actor: Actor, run_id: str, shared: bool = True, *, runs_dir: Path | None = None,
              client: str = "") -> Access:
    """Make a run visible to the class (or private again)."""
    run = find_run(actor, run_id, runs_dir)
    if run is None:
        raise _not_found(run_id)
    access = read_access(run.path)
    if not allowed(actor, "share", access):
        raise AccessDenied(f"Only {access.owner} or an instructor can share run {run_id}.")
    new = Access(owner=access.owner, shared=bool(shared))
    write_access(run.path, new)
    _audit(actor, "share" if shared else "unshare", f"run:{run_id}", "", client)
    return new


def can_change_run(actor: Actor, run_id: str, runs_dir: Path | None = None) -> bool:
    run = find_run(actor, run_id, runs_dir)
    return run is not None and allowed(actor, "change", read_access(run.path))


# -- saved datasets ----------------------------------------------------------------------------------


def _dataset_access(name: str) -> Access | None:
    folder = datasets_dir() / name
    if not NAME.fullmatch(name or "") or not (folder / datastore.META).is_file():
        return None
    return read_access(folder)


def _dataset_not_found(name: str) -> DataError:
    return DataError(f"No saved dataset {str(name)[:60]!r}; saved datasets are listed on the Data page.")


def list_datasets(actor: Actor) -> list[datastore.SavedDataset]:
    out = []
    for d in datastore.list_datasets():
        access = _dataset_access(d.name)
        if access is not None and allowed(actor, "read", access):
            out.append(d)
    return out


def dataset_access(actor: Actor, name: str) -> Access:
    access = _dataset_access(name)
    if access is None or not allowed(actor, "read", access):
        raise _dataset_not_found(name)
    return access


def get_dataset(actor: Actor, name: str) -> datastore.SavedDataset:
    dataset_access(actor, name)
    return datastore.get_dataset(name)


def save_dataset(actor: Actor, name: str, source: str | Path, **kw: Any) -> datastore.SavedDataset:
    """Save an upload as the actor's dataset (private until shared)."""
    _need_write(actor, "save datasets")
    _check_source(actor, str(source))
    return datastore.save_dataset(name, source, owner=actor.name, **kw)


def delete_dataset(actor: Actor, name: str, *, client: str = "") -> None:
    access = dataset_access(actor, name)
    if not allowed(actor, "delete", access):
        raise AccessDenied(f"Only {access.owner} or an instructor can delete the dataset {name}.")
    datastore.delete_dataset(name)
    _audit(actor, "delete", f"dataset:{name}", "", client)


def share_dataset(actor: Actor, name: str, shared: bool = True, *, client: str = "") -> Access:
    """Share a dataset with the class (an instructor's shared dataset is a class dataset)."""
    access = dataset_access(actor, name)
    if not allowed(actor, "share", access):
        raise AccessDenied(f"Only {access.owner} or an instructor can share the dataset {name}.")
    new = Access(owner=access.owner, shared=bool(shared))
    write_access(datasets_dir() / name, new)
    _audit(actor, "share" if shared else "unshare", f"dataset:{name}", "", client)
    return new


def _check_source(actor: Actor, source: str) -> None:
    """A data source the actor may train on or save: a demo, a saved dataset they can read, their own
    staged upload, or (instructors, the local user) any file. Others get "not found"."""
    if actor.is_instructor or source.startswith("demo:"):
        return
    try:
        path = Path(source).expanduser().resolve()
    except (OSError, RuntimeError):
        raise DataError(f"{source[:80]!r} not found.") from None
    roots = {"datasets": datasets_dir().resolve(), "uploads": uploads_dir().resolve()}
    if path.is_relative_to(roots["datasets"]):
        parts = path.relative_to(roots["datasets"]).parts
        access = _dataset_access(parts[0]) if parts else None
        if access is not None and allowed(actor, "read", access):
            return
    elif path.is_relative_to(roots["uploads"]):
        parts = path.relative_to(roots["uploads"]).parts
        if parts and _own_upload(actor, parts[0]):
            return
    raise DataError(f"{source[:80]!r} not found; pick a demo, one of your saved datasets or one shared with the "
                    "class.")


def upload_folder(actor: Actor, browser_id: str) -> str:
    """The staging folder name of this user's uploads from one browser: the owner is part of the name,
    so a staged file's path says whose it is (and nobody else can train on or save it)."""
    return browser_id if actor.local else f"{browser_id}@{actor.name}"


def _own_upload(actor: Actor, folder: str) -> bool:
    return folder.rpartition("@")[2] == actor.name and "@" in folder


# -- jobs --------------------------------------------------------------------------------------------


def _job_not_found(job_id: str) -> JobError:
    return JobError(f"No job {str(job_id)[:40]!r}; the job list shows yours.")


def _job_access(job: Job) -> Access:
    return Access(owner=job.owner or "", shared=False)


def list_jobs(actor: Actor, state: str | Sequence[str] | None = None, group: str | None = None,
              limit: int | None = 100, store: JobStore | None = None) -> list[Job]:
    """The actor's jobs (an instructor's: everyone's)."""
    owner = None if actor.is_instructor else actor.name
    return queue.list_jobs(state=state, group=group, owner=owner, limit=limit, store=store)


def get_job(actor: Actor, job_id: str, store: JobStore | None = None) -> Job:
    job = (store or open_store()).get(str(job_id)) if isinstance(job_id, str) else None
    if job is None or not allowed(actor, "read", _job_access(job)):
        raise _job_not_found(job_id)
    return job


def cancel_job(actor: Actor, job_id: str, *, wait: bool = False, client: str = "",
               store: JobStore | None = None) -> Job:
    job = get_job(actor, job_id, store)
    if not allowed(actor, "change", _job_access(job)):
        raise AccessDenied(f"Only {job.owner} or an instructor can cancel job {job_id}.")
    done = queue.cancel(job.id, wait=wait, store=store)
    _audit(actor, "cancel", f"job:{job.id}", f"owner {job.owner}" if job.owner != actor.name else "", client)
    return done


def read_log(actor: Actor, job_id: str, offset: int = 0) -> tuple[str, int]:
    get_job(actor, job_id)
    return queue.read_log(job_id, offset)


def submit_training(actor: Actor, cfg: Any, **kw: Any) -> list[str]:
    """Queue training for the actor: they must be allowed to start work and to read the data; the
    owner of the job and its run is the actor, whatever the config or the caller says."""
    from core.train.submit import submit_training as submit

    _need_write(actor, "start training")
    _check_source(actor, str(cfg.data.source))
    _check_model(actor, str(cfg.model.name))
    kw.pop("owner", None)
    if not actor.is_instructor:  # where runs go is the server's choice: never into someone else's folder
        kw.pop("run_id", None)
        kw.pop("runs_dir", None)
    return submit(cfg, owner=actor.name, **kw)


def submit_job(actor: Actor, config: dict[str, Any], *, kind: str, **kw: Any) -> list[str]:
    """Queue a job of another kind (an explanation) for the actor; viewers start nothing."""
    _need_write(actor, "start jobs")
    kw.pop("owner", None)
    return queue.submit(config, kind=kind, owner=actor.name, **kw)


def _check_model(actor: Actor, name: str) -> None:
    """A model the actor may start from: a catalog name or a hub id, or (instructors, the local user)
    any folder. A folder is allowed to others only inside a run they may read; anything else reads
    "not found", whether it exists or not, so the check tells nobody what is on the server."""
    if actor.is_instructor:
        return
    looks_local = name.startswith(("/", ".", "~")) or "\\" in name or Path(name).expanduser().exists()
    if not looks_local:
        return
    try:
        path = Path(name).expanduser().resolve()
        root = Path(default_runs_dir()).resolve()
    except (OSError, RuntimeError):
        path, root = None, None
    if path is not None and root is not None and path.is_relative_to(root):
        parts = path.relative_to(root).parts
        if parts and find_run(actor, parts[0]) is not None:
            return
    from core.errors import ModelError
    from core.models.catalog import unknown_model_message

    raise ModelError(unknown_model_message(name.strip()))


# -- the class (instructors only) --------------------------------------------------------------------


def require_instructor(actor: Actor, what: str = "manage the class") -> None:
    if not actor.is_instructor:
        raise AccessDenied(f"Only an instructor can {what}.")


def list_users(actor: Actor) -> list[Any]:
    from core.accounts import list_users as users

    require_instructor(actor, "see the accounts")
    return users()


def add_user(actor: Actor, name: str, role: str, password: str | None = None) -> Any:
    from core.accounts import add_user as add

    require_instructor(actor, "create accounts")
    return add(name, role, password, by=actor.name)


def import_roster(actor: Actor, source: Any, *, role: str = "student") -> list[Any]:
    from core.accounts import import_roster as roster

    require_instructor(actor, "import a roster")
    return roster(source, role=role, by=actor.name)


def reset_user(actor: Actor, name: str, password: str | None = None) -> Any:
    from core.accounts import reset_password

    require_instructor(actor, "reset passwords")
    return reset_password(name, password, by=actor.name)


def disable_user(actor: Actor, name: str, disabled: bool = True) -> Any:
    from core.accounts import set_disabled

    require_instructor(actor, "disable accounts")
    if disabled and name == actor.name:
        raise AccessDenied("You cannot disable your own account; ask another instructor.")
    return set_disabled(name, disabled, by=actor.name)


def audit_log(actor: Actor, limit: int | None = 200, action: str | None = None) -> list[Any]:
    require_instructor(actor, "read the audit log")
    return open_accounts().audit_log(limit=limit, action=action)


def set_limit(actor: Actor, owner: str, key: str, value: float | None, *, client: str = "") -> None:
    """Set one fair-queue limit for `owner` (or "*" for everyone)."""
    from core.jobs.fairshare import check_limit

    require_instructor(actor, "change the queue's limits")
    open_store().set_limit(owner, key, check_limit(key, value))
    _audit(actor, "limit", owner, f"{key}={'none' if value is None else value}", client)


def limits_for(actor: Actor, owner: str | None = None) -> Any:
    """The limits that apply to `owner` (default: the actor); anyone may read their own."""
    if owner not in (None, actor.name):
        require_instructor(actor, "see other people's limits")
    return open_store().get_limits().for_owner(owner or actor.name)


def usage_by_user(actor: Actor, hours: float = 24.0, now: float | None = None) -> dict[str, float]:
    """GPU-slot seconds each user's jobs held in the last `hours` (running ones up to now)."""
    import time as _time

    from core.jobs.fairshare import window_usage

    require_instructor(actor, "see everyone's usage")
    now = _time.time() if now is None else now
    window = hours * 3600.0
    return window_usage(open_store().usage_spans(now - window), now, window_s=window)


def class_overview(actor: Actor, runs_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every run with its owner, for the instructor page: one row per run, newest first."""
    require_instructor(actor, "see the class overview")
    keep = ("owner", "run_id", "state", "dataset", "method", "seed", "accuracy", "shared")
    return [{k: r.get(k) for k in keep} for r in list_runs(actor, runs_dir)]
