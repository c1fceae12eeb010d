"""The reaper: settles running jobs whose worker is gone, and the rules for what an unplanned
interruption costs a job.

`reap` runs on worker start, periodically, and on cancel: a running job whose worker is gone (stale
heartbeat, or a dead worker pid on this host) becomes `interrupted` and is claimed again for resume, or
`failed` once its counted interruptions reach `max_attempts` (see `judge_interruption`), or
`cancelled` if cancellation was asked for. `mark_run` makes a run directory's status.json agree with
a job that its own process could not record.

May import: core.jobs.store, core.jobs.context (the log line), core.runs, the standard library.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.jobs.context import log as _log
from core.jobs.store import STALE_AFTER_S, Job, JobStore, crash_ceiling
from core.runs import RunWriter


def mark_run(job: Job, state: str, message: str, replace: bool = False) -> None:
    """Make the run directory's status.json agree with the job when the job's process cannot. With
    `replace`, a status already in `state` gets `message` too (a more specific reason)."""
    run_dir = job.run_dir
    if run_dir is None or not (run_dir / "status.json").is_file():
        return
    try:
        current = json.loads((run_dir / "status.json").read_text()).get("state")
    except (OSError, ValueError):
        current = None
    if current == "succeeded" or (current == state and not replace):
        return
    RunWriter(run_dir).set_status(state, message, job_id=job.id)


def pid_alive(pid: int | None) -> bool:
    """Whether a process lives (a zombie counts as dead; one we may not signal counts as alive)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] != "Z"
    except (OSError, IndexError):
        return True


def kill_group(pid: int, sig: int) -> None:
    """Signal a job process and its process group (it runs as a session leader: pgid == pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # children run as session leaders: pgid == pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _kill_orphan(job: Job, host: str) -> None:
    """Kill a job process that outlived its worker (only ours: same host, and its command line names
    the job), and wait a moment for it to go."""
    if job.host != host or not job.pid or not pid_alive(job.pid):
        return
    try:
        cmdline = Path(f"/proc/{job.pid}/cmdline").read_bytes()
    except OSError:
        return
    if job.id.encode() not in cmdline:
        return
    kill_group(job.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(job.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _made_progress(job: Job) -> bool | None:
    """Whether the attempt now ending got past the checkpoint it started from: None when it never
    reported (it died in start-up), else True once it completed a training step after that point."""
    p = job.progress or {}
    if p.get("attempt") != job.attempts or p.get("phase") in (None, "starting"):
        return None  # what is there is the previous attempt's, or it was still loading
    if str(p.get("phase")).startswith(("features:", "predict:")):
        # Caching a frozen backbone's features (most of a head job's work) or predicting comes before or
        # after the steps; moving through it is progress, and a job killed there is not at fault.
        return True if (p.get("phase_done") or 0) > 0 else None
    step = p.get("step")
    start = p.get("resumed_from_step") or 0
    return isinstance(step, (int, float)) and step > start


def judge_interruption(job: Job, reason: str, died_alone: bool) -> tuple[str, str, dict[str, Any]]:
    """(state, message, fields) for a running job that was interrupted without a plan.

    It counts against `max_attempts` (a strike) when the job itself failed (`died_alone`: its process
    died while its worker lived) or when the attempt was under way and got no further than its
    checkpoint. Being killed along with its worker during start-up, or after it made progress, is not
    the job's fault. Every interruption still counts towards `crash_ceiling`, so a job that keeps
    taking its worker down with it stops all the same."""
    crashes = job.crashes + 1
    progressed = _made_progress(job)
    counted = died_alone or progressed is False
    strikes = job.strikes + counted
    fields: dict[str, Any] = {"crashes": crashes, "strikes": strikes}
    ceiling = crash_ceiling(job.max_attempts)
    if counted:
        why = "its process died while its worker ran" if died_alone else "it got no further than its checkpoint"
        tally = f"counted against the job ({why}): {strikes} of {job.max_attempts}"
    else:
        why = "it was still starting" if progressed is None else "it had made progress"
        tally = f"not counted against the job ({why}); {crashes} of at most {ceiling} interruptions"
    if counted and strikes >= job.max_attempts:
        return "failed", (f"Interrupted {crashes} times, the last because {reason}; {tally}, so giving up. "
                          f"See `tunescope logs {job.id}`."), fields
    if crashes >= ceiling:
        return "failed", (f"Interrupted {crashes} times, the last because {reason}; it keeps crashing or losing "
                          f"its worker, so giving up. See `tunescope logs {job.id}`."), fields
    return "interrupted", (f"Interrupted because {reason}, {tally}; it resumes from its last checkpoint when "
                           "a worker is free."), fields


def reap(store: JobStore, stale_after_s: float = STALE_AFTER_S, only: Sequence[str] | None = None,
         log: Callable[[str], None] | None = None) -> list[tuple[str, str]]:
    """Settle running jobs whose worker is gone; returns (job id, new state) pairs."""
    host = socket.gethostname()
    now = time.time()
    jobs = store.get_many(list(only)) if only is not None else store.list(state="running", limit=None)
    out = []
    for job in jobs:
        if job.state != "running":
            continue
        age = now - (job.heartbeat or job.started or job.created)
        worker_gone = job.host == host and job.worker_pid is not None and not pid_alive(job.worker_pid)
        if age <= stale_after_s and not worker_gone:
            continue
        _kill_orphan(job, host)
        reason = (f"its worker (pid {job.worker_pid}) is gone" if worker_gone
                  else f"no heartbeat from its worker for {age:.0f} s")
        if job.cancel_requested is not None:
            state, msg = "cancelled", f"Cancelled ({reason})."
            fields: dict[str, Any] = {"crashes": job.crashes + 1, "pid": None}
        else:
            state, msg, fields = judge_interruption(job, reason, died_alone=False)
            fields["pid"] = None
        if state != "interrupted":
            fields["finished"] = now
        # A dead worker's pid stays dead; a stale heartbeat must still be stale when the write lands
        # (a heartbeat that got in after this pass looked means the worker is alive after all).
        fresh_limit = None if worker_gone else now - stale_after_s
        if store.update(job.id, expect_state="running", expect_attempt=job.attempts,
                        expect_stale_before=fresh_limit, state=state, error=msg, **fields):
            mark_run(job, state, msg)
            out.append((job.id, state))
            (log or _log)(f"reaped job {job.id}: {state} ({reason})")
    # forget workers that are gone
    for w in store.workers():
        gone = w.get("host") == host and w.get("pid") and not pid_alive(w["pid"])
        if gone or now - (w.get("heartbeat") or 0) > max(stale_after_s, 60.0) * 4:
            store.remove_worker(w["id"])
    return out
