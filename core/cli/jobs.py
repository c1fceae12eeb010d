"""`tunescope` commands for background jobs: submit, jobs, status, cancel, logs, worker, db.

Job ids go to stdout (one per line) so scripts can capture them; notes go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from core import jobs
from core.cli.common import Parser, add_command, add_train_args, config_from_args, table
from core.errors import ConfigError
from core.jobs import BUSY_TIMEOUT_S, STALE_AFTER_S
from core.jobs.listing import eta_seconds


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated integers like 1,2,3; got {text!r}.") from None


def _float_list(text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated numbers like 1e-4,5e-5; got {text!r}.") from None


def _str_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_commands(sub: Any) -> None:
    p = add_command(sub, "submit", cmd_submit,
                    help="Queue a training job (same arguments as train); prints the job id(s).")
    add_train_args(p)
    p.add_argument("--seeds", help="Run once per seed, e.g. 1,2,3 (one job group).")
    p.add_argument("--grid-method", help="Also vary the method, e.g. full,lora,head.")
    p.add_argument("--grid-lr", help="Also vary the learning rate, e.g. 1e-4,5e-5.")
    p.add_argument("--grid-model", help="Also vary the model, e.g. minilm,/path/to/model.")
    p.add_argument("--priority", type=int, default=0, help="Higher runs first (default 0); FIFO within a priority.")
    p.add_argument("--owner", help="Who the job belongs to (default: $TUNESCOPE_USER or the login name).")
    p.add_argument("--max-attempts", type=int, default=3,
                   help="Give up after this many interruptions that are the job's fault: its own process died, "
                        "or it got no further than its checkpoint (default 3). Being killed with its worker while "
                        "starting or after making progress does not count; 10 interruptions of any kind (or 3 "
                        "times this number) always end it.")
    p.add_argument("--json", action="store_true", help="Print {group_id, jobs} as JSON.")

    p = add_command(sub, "jobs", cmd_jobs, help="List jobs, newest first.")
    p.add_argument("--state", help="Only jobs in these states (comma-separated).")
    p.add_argument("--group", help="Only the jobs of one group.")
    p.add_argument("--owner", help="Only one owner's jobs.")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")

    p = add_command(sub, "status", cmd_status, help="A job's (or a job group's) state and progress as JSON.")
    p.add_argument("id", help="Job id (j-...) or group id (g-...).")

    p = add_command(sub, "cancel", cmd_cancel, help="Cancel jobs: queued ones leave the queue, running ones stop.")
    p.add_argument("ids", nargs="+", help="Job ids (or a group id: cancels all its jobs).")
    p.add_argument("--no-wait", action="store_true", help="Return at once instead of waiting for the stop.")
    p.add_argument("--timeout", type=float, default=45.0, help="Seconds to wait for running jobs to stop.")

    p = add_command(sub, "logs", cmd_logs, help="Print a job's log; --follow until the job ends.")
    p.add_argument("id")
    p.add_argument("--follow", "-f", action="store_true",
                   help="Keep printing until the job ends; exit 0 if it succeeded, 1 otherwise.")
    p.add_argument("--poll", type=float, default=0.5, help=argparse.SUPPRESS)

    p = add_command(sub, "worker", cmd_worker,
                    help="Run queued jobs, each in its own process (one per GPU, or one on CPU).")
    p.add_argument("--gpus", default="auto", help="auto (all visible GPUs, else CPU), cpu, or indices like 0,1.")
    p.add_argument("--threads", type=int, help="Torch threads per job (default: CPU cores - 1 on CPU).")
    p.add_argument("--exit-when-idle", action="store_true", help="Exit once nothing is queued or running.")
    p.add_argument("--max-jobs", type=int, help="Exit after running this many jobs.")
    p.add_argument("--poll", type=float, default=0.5, help="Seconds between looks at the queue (default 0.5).")
    p.add_argument("--heartbeat", type=float, default=2.0, help="Seconds between heartbeats (default 2).")
    p.add_argument("--stale-after", type=float, default=STALE_AFTER_S,
                   help="A running job without heartbeat this long is interrupted and resumed (default "
                        f"{STALE_AFTER_S:.0f}: well above the {BUSY_TIMEOUT_S:.0f} s a heartbeat may wait for a "
                        "database lock).")
    p.add_argument("--reap-every", type=float, default=10.0, help="Seconds between reaper passes (default 10).")
    p.add_argument("--cancel-grace", type=float, default=10.0,
                   help="SIGTERM a cancelled job still running after this many seconds (default 10).")
    p.add_argument("--cancel-kill", type=float, default=35.0,
                   help="SIGKILL a cancelled job still running after this many seconds (default 35).")

    p = add_command(sub, "db", cmd_db,
                    help="Check the job database, or rebuild it from the run folders if it is damaged.")
    dbsub = p.add_subparsers(dest="db_command", required=True, parser_class=Parser)  # one-line errors here too
    dbsub.add_parser("check", help="Say whether the job database is intact.")
    r = dbsub.add_parser("rebuild", help="Move a damaged job database aside and rebuild the job history from "
                                         "the run folders (stop every worker first).")
    r.add_argument("--runs-dir", action="append",
                   help="Run folders to read (repeatable; default $TUNESCOPE_HOME/runs).")
    r.add_argument("--force", action="store_true",
                   help="Rebuild an intact database too (jobs that have not started yet are dropped).")


# -- handlers ------------------------------------------------------------------------------------


def _no_worker_hint() -> None:
    if not jobs.live_workers():
        print("note: no worker is running; start one with `tunescope worker`.", file=sys.stderr)


def _actor() -> Any:
    from core.accounts import cli_actor

    return cli_actor()


def cmd_submit(a: argparse.Namespace) -> int:
    from core import workspace as ws
    from core.train.submit import submit_training

    cfg = config_from_args(a)
    grid: dict[str, list[Any]] = {}
    if a.grid_method:
        grid["method"] = _str_list(a.grid_method)
    if a.grid_lr:
        grid["lr"] = _float_list(a.grid_lr, "--grid-lr")
    if a.grid_model:
        grid["model"] = _str_list(a.grid_model)
    seeds = _int_list(a.seeds, "--seeds") if a.seeds is not None else None
    actor = _actor()
    common = {"priority": a.priority, "seeds": seeds, "grid": grid or None, "runs_dir": a.runs_dir,
              "run_id": a.run_id, "max_attempts": a.max_attempts}
    if actor.is_instructor:  # the server's own account or an instructor may queue for someone else
        ids = submit_training(cfg, owner=a.owner or (None if actor.local else actor.name), **common)
    else:
        if a.owner and a.owner != actor.name:
            raise ws.AccessDenied(f"Only an instructor can queue jobs for someone else ({a.owner}).")
        ids = ws.submit_training(actor, cfg, **common)
    group = jobs.get(ids[0]).group_id
    if a.json:
        print(json.dumps({"group_id": group, "jobs": ids}))
    else:
        if group:
            print(f"group {group}: {len(ids)} jobs (follow with `tunescope status {group}`)", file=sys.stderr)
        for i in ids:
            print(i)
    _no_worker_hint()
    return 0


def _age(t: float | None) -> str:
    if not t:
        return ""
    s = max(0.0, time.time() - t)
    return f"{s:.0f}s" if s < 90 else f"{s / 60:.0f}m" if s < 5400 else f"{s / 3600:.1f}h"


def _eta(progress: dict[str, Any]) -> float | None:
    """The job list's ETA (the whole job left, caching and evaluations too), rounded like its display."""
    eta = eta_seconds(progress)
    return round(eta, 1) if eta is not None else None


def _job_row(j: Any) -> dict[str, Any]:
    p = j.progress or {}
    step, total = p.get("step"), p.get("total_steps")
    prog = f"{step}/{total}" if step is not None and total else (p.get("phase") or "")
    loss = p.get("loss")
    acc = (j.result.get("test") or {}).get("accuracy")
    return {"id": j.id, "state": j.state, "kind": j.kind, "owner": j.owner, "group": j.group_id or "",
            "progress": prog, "epoch": p.get("epoch"), "loss": loss if isinstance(loss, float) else None,
            "eta_s": _eta(p) if j.state == "running" else None, "test_acc": acc,
            "age": _age(j.created), "run_id": j.run_id or "", "error": (j.error or "")[:60]}


def cmd_jobs(a: argparse.Namespace) -> int:
    states = [s.strip() for s in a.state.split(",")] if a.state else None
    from core import workspace as ws

    rows = [j for j in ws.list_jobs(_actor(), state=states, group=a.group, limit=a.limit)
            if not a.owner or j.owner == a.owner]
    if a.json:
        print(json.dumps([j.to_dict() for j in rows], indent=2))
        return 0
    if not rows:
        print("No jobs. Queue one with: tunescope submit --data demo:sentiment")
        return 0
    print(table([_job_row(j) for j in rows], ["id", "state", "kind", "owner", "group", "progress", "epoch",
                                              "loss", "eta_s", "test_acc", "age", "run_id", "error"]))
    if any(j.state in ("queued", "interrupted") for j in rows):
        _no_worker_hint()
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    from core import workspace as ws

    if a.id.startswith("g-"):
        if not ws.list_jobs(_actor(), group=a.id, limit=1):
            raise jobs.JobError(f"No job group {a.id!r}.")
    else:
        ws.get_job(_actor(), a.id)  # someone else's job reads like one that does not exist
    out = jobs.group_status(a.id) if a.id.startswith("g-") else jobs.status(a.id)
    print(json.dumps(out, indent=2, default=str))
    return 0


def cmd_cancel(a: argparse.Namespace) -> int:
    from core import workspace as ws

    actor = _actor()
    ids: list[str] = []
    for given in a.ids:
        if given.startswith("g-"):
            members = ws.list_jobs(actor, group=given, limit=None)
            if not members:
                raise jobs.JobError(f"No job group {given!r}.")
            ids += [j.id for j in members if not j.is_final]
        else:
            ids.append(given)
    before = {i: ws.get_job(actor, i) for i in ids}  # unknown ids fail before anything is cancelled
    for i in ids:
        if not before[i].is_final:
            ws.cancel_job(actor, i)
    deadline = time.monotonic() + (0 if a.no_wait else a.timeout)
    for i in ids:
        job = jobs.get(i)
        while not job.is_final and job.state != "interrupted" and time.monotonic() < deadline:
            time.sleep(0.1)
            job = jobs.get(i)
        if before[i].is_final:
            print(f"{i} already {job.state}; nothing to cancel")
        elif job.state == "cancelled":
            print(f"{i} cancelled")
        elif job.is_final:
            print(f"{i} {job.state} before the cancel took effect")
        else:
            note = jobs.cancel_note(job.progress or {}) if job.state == "running" else "it will not run again"
            print(f"{i} cancel requested (now {job.state}); {note}")
    return 0


def cmd_logs(a: argparse.Namespace) -> int:
    from core import workspace as ws

    job = ws.get_job(_actor(), a.id)
    text, offset = jobs.read_log(a.id)
    sys.stdout.write(text)
    sys.stdout.flush()
    if not a.follow:
        return 0
    while True:
        job = jobs.get(a.id)
        text, offset = jobs.read_log(a.id, offset)
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
        elif job.is_final:
            break
        else:
            time.sleep(a.poll)
    return 0 if job.state == "succeeded" else 1


def cmd_worker(a: argparse.Namespace) -> int:
    from core.jobs.worker import Worker, WorkerOptions

    for flag, value in (("--poll", a.poll), ("--heartbeat", a.heartbeat), ("--stale-after", a.stale_after),
                        ("--reap-every", a.reap_every), ("--cancel-grace", a.cancel_grace),
                        ("--cancel-kill", a.cancel_kill)):
        if not value > 0:
            raise ConfigError(f"{flag} must be a positive number of seconds, got {value}.")
    if a.stale_after <= a.heartbeat:
        raise ConfigError("--stale-after must be longer than --heartbeat, or live jobs would be reaped.")
    if a.cancel_kill < a.cancel_grace:
        raise ConfigError("--cancel-kill must not be shorter than --cancel-grace.")
    if a.threads is not None and a.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {a.threads}.")
    opts = WorkerOptions(gpus=a.gpus, poll_s=a.poll, heartbeat_s=a.heartbeat, stale_after_s=a.stale_after,
                         reap_every_s=a.reap_every, cancel_grace_s=a.cancel_grace, cancel_kill_s=a.cancel_kill,
                         threads=a.threads, exit_when_idle=a.exit_when_idle, max_jobs=a.max_jobs)
    return Worker(opts).run()


def cmd_db(a: argparse.Namespace) -> int:
    if a.db_command == "check":
        store = jobs.open_store()  # raises the damaged-database message, with its recovery step
        total = sum(store.counts().values())
        print(f"The job database {jobs.sqlite_path(None)} is intact ({total} jobs).")
        return 0
    out = jobs.rebuild_store(a.runs_dir, force=a.force)
    if out["moved_to"]:
        what = "damaged" if out["problem"] else "old"
        print(f"moved the {what} job database to {out['moved_to']}")
    states = ", ".join(f"{n} {state}" for state, n in sorted(out["by_state"].items())) or "none"
    print(f"rebuilt {out['jobs']} jobs from the run folders in {', '.join(out['runs_dirs'])}: {states}")
    if out["by_state"].get("interrupted"):
        print("interrupted jobs resume from their last checkpoint when a worker runs")
    if out["not_jobs"]:
        print(f"{len(out['not_jobs'])} run folder(s) without a job record were left out (trained with "
              "`tunescope train`)")
    print("jobs that had not started yet, and jobs without a run folder (explanations), are not in the run "
          "folders: submit them again if you still need them")
    return 0
