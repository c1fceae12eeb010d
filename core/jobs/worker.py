"""The worker: claims queued jobs and runs each in its own child process.

Parent (`tunescope worker`)
    One slot per GPU (each child sees only its GPU through CUDA_VISIBLE_DEVICES), or one CPU slot.
    A heartbeat thread refreshes the rows of the jobs it runs, so a child stuck in a long step still
    counts as alive while a dead worker does not. It turns cancel requests into SIGTERM after
    `cancel_grace_s` and SIGKILL of the job's process group after `cancel_kill_s`, and on SIGTERM /
    Ctrl-C stops its jobs as `interrupted` (resumed by the next worker) before exiting. It resolves the
    table of job kinds (`core.jobs.kinds`) when it starts and runs the reaper (`core.jobs.reaper`).

Child (`python -m core.jobs.worker run-job ID --attempt N --parent PID`)
    Dies with its worker (PR_SET_PDEATHSIG on Linux), runs the job kind's runner, writes progress
    into the job row from a thread (at most every 0.5 s, at least every 2 s), polls the cancel flag on
    the same write, and records the final state itself.

A job whose current attempt runs longer than its owner's `job_wall_clock_s` limit is stopped like a
cancel, with that reason as its error (`Worker._enforce_wall_clock`).

May import: core.jobs.store, fairshare, context, kinds, reaper; core.runs, core.errors. Runners (named in the
kinds table) never import this module.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.jobs import kinds
from core.jobs.context import EXIT_LOST, JobContext, JobFailed, is_stop
from core.jobs.context import log as _log
from core.jobs.fairshare import wall_clock_message
from core.jobs.kinds import Runner
from core.jobs.reaper import judge_interruption, kill_group, mark_run, reap
from core.jobs.store import STALE_AFTER_S, Job, JobStore, jobs_dir, log_path, open_store, store_url
from core.runs import atomic_write_json, tunescope_home

_FATAL_SIGNALS = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
REPO_ROOT = Path(__file__).resolve().parents[2]



# ==================================================================================================
# Child side: running one job
# ==================================================================================================


def _die_with_parent(parent_pid: int | None) -> None:
    """Make the kernel SIGKILL this process when its worker dies (Linux), so a killed worker never
    leaves a job training on that nobody watches."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if parent_pid and os.getppid() != parent_pid:  # the worker died before the line above ran
        os._exit(EXIT_LOST)


def write_job_file(job: Job, state: str, error: str | None) -> None:
    run_dir = job.run_dir
    if run_dir is None or not run_dir.is_dir():
        return
    with contextlib.suppress(OSError):
        atomic_write_json(run_dir / "job.json", {
            "job_id": job.id, "group_id": job.group_id, "owner": job.owner, "kind": job.kind, "state": state,
            "error": error, "attempts": job.attempts, "crashes": job.crashes, "strikes": job.strikes, "tags": job.tags,
            "oom_retries": job.oom_retries, "created": job.created, "finished": time.time()})


def execute(store: JobStore, job: Job, runners: Mapping[str, Runner] | None = None,
            min_interval: float = 0.5, max_quiet: float = 2.0) -> str:
    """Run one claimed job in this process and record its final state; returns that state."""
    runners = runners if runners is not None else kinds.runners()
    ctx = JobContext(store, job, min_interval=min_interval, max_quiet=max_quiet)
    in_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, ctx.on_sigterm) if in_main else None
    ctx.start()
    state, error, result = "failed", None, {}
    try:
        runner = runners.get(job.kind)
        if runner is None:
            raise JobFailed(f"No runner for job kind {job.kind!r} on this worker "
                            f"(known: {', '.join(sorted(runners))}).")
        result = runner(ctx) or {}
        ctx.finishing = True  # from here on a late SIGTERM must not turn success into a stop
        state = "succeeded"
    except BaseException as exc:  # noqa: BLE001 - every ending is recorded, then the process exits
        ctx.finishing = True
        if is_stop(exc) or isinstance(exc, KeyboardInterrupt):
            row = store.get(job.id) or job
            cancelled = ctx.cancel_requested or row.cancel_requested is not None
            state = "cancelled" if cancelled else "interrupted"
            # A running job's error is the reason its stop was asked for (its time limit), if any.
            error = ((row.error or "Cancelled by request.") if cancelled
                     else "Stopped by its worker; it resumes from its last checkpoint.")
        elif isinstance(exc, JobFailed):
            error = str(exc)
        else:
            traceback.print_exc()
            error = f"{type(exc).__name__}: {exc}"
        print(f"job {job.id} {state}: {error}", flush=True)
    finally:
        ctx.finishing = True
        if in_main:
            signal.signal(signal.SIGTERM, old)
        ctx.close()
    ctx.progress["phase"] = state
    fields: dict[str, Any] = {"state": state, "error": error, "progress": {**ctx.progress, "updated": time.time()}}
    if state != "interrupted":
        fields.update(finished=time.time(), result=result)
    fresh = store.get(job.id) or job
    if not store.update(job.id, expect_state="running", expect_attempt=job.attempts, **fields):
        return "lost"
    if state in ("cancelled", "interrupted"):
        # The pipeline wrote its own "Cancelled by request."; a stop at a time limit says why instead.
        mark_run(fresh, state, error or "", replace=bool(fresh.error))
    write_job_file(fresh, state, error)
    if state == "succeeded":
        print(f"job {job.id} succeeded: {json.dumps(result.get('test', result))}", flush=True)
    return state


def child_main(job_id: str, attempt: int, parent_pid: int | None) -> int:
    _die_with_parent(parent_pid)
    # Library warnings (e.g. which checkpoints a resume rejected) belong in the job's log, plainly.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    store = open_store()
    job = store.get(job_id)
    if job is None or job.state != "running" or job.attempts != attempt:
        _log(f"job {job_id} attempt {attempt} is not ours to run (now: "
             f"{job.state if job else 'missing'}, attempt {job.attempts if job else '-'})")
        return EXIT_LOST
    state = execute(store, job)
    return EXIT_LOST if state == "lost" else 0



# ==================================================================================================
# Parent side: the worker loop
# ==================================================================================================


@dataclass
class WorkerOptions:
    gpus: str = "auto"              # "auto", "cpu", or GPU indices "0,1"
    poll_s: float = 0.5             # how often an idle worker looks for jobs
    heartbeat_s: float = 2.0
    stale_after_s: float = STALE_AFTER_S
    reap_every_s: float = 10.0
    cancel_grace_s: float = 10.0    # SIGTERM a cancelled job still running this long after the request
    cancel_kill_s: float = 35.0     # SIGKILL its process group after this long
    threads: int | None = None      # torch threads per job (default: CPU cores - 1 on CPU)
    exit_when_idle: bool = False    # exit once nothing is queued or running (scripts, tests)
    max_jobs: int | None = None     # exit after starting this many jobs
    store_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class _Slot:
    name: str                       # "cpu" or "cuda:<index>"
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    job: Job | None = None
    log: Any = None
    term_sent: float | None = None
    kill_sent: float | None = None
    ended_at: float | None = None   # when the job row showed that the process recorded its ending
    lost: bool = False


def gpu_slots(spec: str) -> list[tuple[str, dict[str, str]]]:
    """Slots for `--gpus`: one per GPU, each child seeing only its GPU; or one CPU slot."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            ids = [x.strip() for x in visible.split(",") if x.strip() and x.strip() != "-1"]
        else:
            ids = _nvidia_gpus()
        if not ids:
            return [("cpu", {})]
        return [(f"cuda:{i}", {"CUDA_VISIBLE_DEVICES": i}) for i in ids]
    if spec in ("cpu", "none", ""):
        return [("cpu", {"CUDA_VISIBLE_DEVICES": ""})]
    ids = [x.strip() for x in spec.split(",") if x.strip()]
    if not ids or len(set(ids)) != len(ids) or not all(i.isdigit() or i.startswith(("GPU-", "MIG-")) for i in ids):
        raise ConfigError(f"--gpus takes 'auto', 'cpu' or GPU indices like 0,1; got {spec!r}.")
    return [(f"cuda:{i}", {"CUDA_VISIBLE_DEVICES": i}) for i in ids]


def _nvidia_gpus() -> list[str]:
    """GPU indices from nvidia-smi (no CUDA context in the worker process itself)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip().isdigit()]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Worker:
    def __init__(self, opts: WorkerOptions | None = None) -> None:
        self.opts = opts or WorkerOptions()
        self.url = self.opts.store_url or store_url()
        self.store = open_store(self.url)
        self.host = socket.gethostname()
        self.id = f"w-{secrets.token_hex(3)}"
        slots = gpu_slots(self.opts.gpus)
        cores = _cpu_count()
        on_cpu = slots[0][0] == "cpu"
        self.threads = self.opts.threads or (max(1, cores - 1) if on_cpu else max(1, cores // len(slots)))
        self.slots = [_Slot(name, env) for name, env in slots]
        self.stopping = False
        self.started_jobs = 0
        self._wake = threading.Event()
        self._hb_stop = threading.Event()
        self._interrupts = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self) -> int:
        kinds.check_table()  # a table entry that does not resolve stops the worker here, not each job
        jobs_dir().mkdir(parents=True, exist_ok=True)
        self.store.register_worker(self.id, {"host": self.host, "pid": os.getpid(),
                                             "slots": [s.name for s in self.slots], "threads": self.threads})
        _log(f"worker {self.id} (pid {os.getpid()}) serving {self.url}: slots {[s.name for s in self.slots]}, "
             f"{self.threads} torch thread(s) per job")
        reap(self.store, self.opts.stale_after_s)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        hb = threading.Thread(target=self._heartbeats, name="worker-heartbeat", daemon=True)
        hb.start()
        try:
            self._loop()
        finally:
            self._shutdown_children()
            self._hb_stop.set()
            hb.join(timeout=5)
            with contextlib.suppress(Exception):
                self.store.remove_worker(self.id)
            _log(f"worker {self.id} stopped")
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._interrupts += 1
        if self._interrupts == 1:
            _log(f"worker {self.id}: {signal.Signals(signum).name}, stopping running jobs (they resume later)")
        self.stopping = True
        self._wake.set()

    def _heartbeats(self) -> None:
        while not self._hb_stop.wait(self.opts.heartbeat_s):
            ids = [s.job.id for s in self.slots if s.job is not None]
            try:
                owned = self.store.heartbeat(self.id, ids)
            except Exception as exc:  # noqa: BLE001 - keep beating; the next one may get through
                _log(f"heartbeat failed: {type(exc).__name__}: {exc}")
                continue
            for s in self.slots:
                if s.job is not None and s.job.id not in owned:
                    s.lost = True
                    self._wake.set()

    def _loop(self) -> None:
        next_reap = time.monotonic() + self.opts.reap_every_s
        while True:
            for slot in self.slots:
                if slot.proc is not None and slot.proc.poll() is not None:
                    self._finished(slot)
            self._police()
            if time.monotonic() >= next_reap:
                reap(self.store, self.opts.stale_after_s)
                next_reap = time.monotonic() + self.opts.reap_every_s
            busy = [s for s in self.slots if s.proc is not None]
            if self.stopping:
                if not busy:
                    return
                self._stop_all(busy)
            else:
                for slot in self.slots:
                    if slot.proc is not None:
                        continue
                    if self.opts.max_jobs is not None and self.started_jobs >= self.opts.max_jobs:
                        break
                    job = self.store.claim(self.id, self.host, os.getpid(), slot.name)
                    if job is None:
                        break
                    self._start(slot, job)
                busy = [s for s in self.slots if s.proc is not None]
                done_all = self.opts.max_jobs is not None and self.started_jobs >= self.opts.max_jobs
                if not busy and (done_all or self.opts.exit_when_idle):
                    return
            self._wake.wait(self.opts.poll_s)
            self._wake.clear()

    # -- one job -----------------------------------------------------------------------------------

    def _start(self, slot: _Slot, job: Job) -> None:
        path = log_path(job.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        log = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in _finished
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} job {job.id} attempt {job.attempts} ({job.kind}) on "
                  f"{self.host} {slot.name}, worker {self.id} ===\n".encode())
        env = {**os.environ, **self.opts.extra_env, **slot.env,
               "TUNESCOPE_HOME": str(tunescope_home()), "TUNESCOPE_JOBS_DB": self.url,
               "TUNESCOPE_JOB_THREADS": str(self.threads), "TUNESCOPE_JOB_SLOT": slot.name,
               "OMP_NUM_THREADS": str(self.threads),
               "MKL_NUM_THREADS": str(self.threads), "OMP_WAIT_POLICY": "PASSIVE",
               "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "core.jobs.worker", "run-job", job.id, "--attempt", str(job.attempts),
               "--parent", str(os.getpid())]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, close_fds=True)
        except OSError as exc:
            log.close()
            self.store.update(job.id, expect_state="running", expect_attempt=job.attempts, state="failed",
                              finished=time.time(), error=f"Could not start the job process: {exc}")
            return
        self.store.update(job.id, expect_attempt=job.attempts, pid=proc.pid)
        slot.proc, slot.job, slot.log = proc, job, log
        slot.term_sent = slot.kill_sent = slot.ended_at = None
        slot.lost = False
        self.started_jobs += 1
        resumed = " (resuming)" if job.attempts > 1 else ""
        _log(f"job {job.id} ({job.kind}) started{resumed} on {slot.name}, pid {proc.pid}, attempt {job.attempts}")

    def _police(self) -> None:
        """Stop jobs past their owner's time limit per job, escalate cancels that the job did not honour,
        and kill jobs this worker no longer owns."""
        running = [s for s in self.slots if s.proc is not None and s.job is not None]
        if not running:
            return
        rows = {j.id: j for j in self.store.get_many([s.job.id for s in running])}  # type: ignore[union-attr]
        limits = self.store.get_limits()
        now = time.time()
        for slot in running:
            job = rows.get(slot.job.id)  # type: ignore[union-attr]
            ours = (job is not None and job.attempts == slot.job.attempts  # type: ignore[union-attr]
                    and job.worker_id == self.id and not slot.lost)
            if not ours:
                if slot.kill_sent is None:
                    _log(f"job {slot.job.id} is no longer this worker's; killing its process")  # type: ignore[union-attr]
                    kill_group(slot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                    slot.kill_sent = now
                continue
            if job.state != "running":  # type: ignore[union-attr]
                # It recorded its ending and is exiting; only a process hung in teardown is killed.
                if slot.ended_at is None:
                    slot.ended_at = now
                elif now - slot.ended_at > self.opts.cancel_grace_s and slot.kill_sent is None:
                    kill_group(slot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                    slot.kill_sent = now
                continue
            if job.cancel_requested is None:  # type: ignore[union-attr]
                self._enforce_wall_clock(job, limits.for_owner(job.owner).job_wall_clock_s, now)  # type: ignore[union-attr,arg-type]
                continue
            waited = now - job.cancel_requested  # type: ignore[union-attr,operator]
            if waited >= self.opts.cancel_kill_s and slot.kill_sent is None:
                _log(f"job {job.id} did not stop {waited:.0f} s after cancel; killing it")  # type: ignore[union-attr]
                kill_group(slot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                slot.kill_sent = now
            elif waited >= self.opts.cancel_grace_s and slot.term_sent is None:
                _log(f"job {job.id} still running {waited:.0f} s after cancel; sending SIGTERM")  # type: ignore[union-attr]
                kill_group(slot.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
                slot.term_sent = now

    def _enforce_wall_clock(self, job: Job, limit_s: float | None, now: float) -> None:
        """Ask a job whose current attempt ran past `limit_s` to stop, the way a cancel does: it stops at
        its next stopping point and keeps its checkpoints, and the escalation to SIGTERM and SIGKILL
        follows as for any cancel. It ends `cancelled` rather than `failed` because nothing went wrong
        with it and its checkpoint stays usable (a failed run's checkpoints are deleted), and not
        `interrupted`, which a worker would resume at once for another full attempt. The reason goes
        into the row's error, where the job process reads it when it records its ending."""
        if limit_s is None or job.started is None or now - job.started <= limit_s:
            return
        message = wall_clock_message(limit_s)
        if self.store.update(job.id, expect_state="running", expect_attempt=job.attempts, cancel_requested=now,
                             error=message):
            _log(f"job {job.id} ran {now - job.started:.0f} s, over its owner's limit of {limit_s:g} s; stopping it")

    def _stop_all(self, busy: list[_Slot]) -> None:
        now = time.time()
        for slot in busy:
            if slot.term_sent is None:
                kill_group(slot.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
                slot.term_sent = now
            elif slot.kill_sent is None and (self._interrupts > 1 or now - slot.term_sent > self.opts.cancel_grace_s):
                kill_group(slot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                slot.kill_sent = now

    def _shutdown_children(self) -> None:
        busy = [s for s in self.slots if s.proc is not None]
        if not busy:
            return
        self.stopping = True
        deadline = time.monotonic() + self.opts.cancel_grace_s + 5
        while busy and time.monotonic() < deadline:
            self._stop_all(busy)
            for s in busy:
                if s.proc.poll() is not None:  # type: ignore[union-attr]
                    self._finished(s)
            busy = [s for s in self.slots if s.proc is not None]
            time.sleep(0.05)
        for s in busy:
            kill_group(s.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            s.proc.wait()  # type: ignore[union-attr]
            self._finished(s)

    def _finished(self, slot: _Slot) -> None:
        proc, started = slot.proc, slot.job
        assert proc is not None and started is not None
        rc = proc.wait()
        job = self.store.get(started.id)
        if job is not None and job.state == "running" and job.attempts == started.attempts and not slot.lost:
            self._settle(job, rc, slot)
            job = self.store.get(started.id)
        if job is not None and job.run_dir is not None and job.run_dir.is_dir():
            target = job.run_dir / "job.log"
            if not target.exists():
                with contextlib.suppress(OSError):
                    shutil.copyfile(log_path(job.id), target)
        if slot.log is not None:
            slot.log.close()
        _log(f"job {started.id} ended: {job.state if job else 'missing'} (exit {rc})"
             + (f" - {job.error}" if job is not None and job.error else ""))
        slot.proc, slot.job, slot.log = None, None, None
        slot.term_sent = slot.kill_sent = slot.ended_at = None
        slot.lost = False

    def _settle(self, job: Job, rc: int, slot: _Slot) -> None:
        """The job process ended without recording a final state: decide it here."""
        now = time.time()
        fields: dict[str, Any] = {"pid": None}
        sig = -rc if rc < 0 else None
        sig_name = signal.Signals(sig).name if sig else None
        if job.cancel_requested is not None:
            forced = " (killed: it did not stop in time)" if slot.kill_sent else ""
            reason = (job.error or "Cancelled by request").rstrip(".")  # a time limit's stop says so
            state, msg = "cancelled", f"{reason}{forced}."
        elif self.stopping and slot.term_sent is not None:
            state, msg = "interrupted", "Stopped by its worker; it resumes from its last checkpoint."
        elif sig in _FATAL_SIGNALS or rc == EXIT_LOST:
            why = f"its process was killed ({sig_name}, e.g. out of host memory)" if sig else "its process was lost"
            state, msg, judged = judge_interruption(job, why, died_alone=True)
            fields.update(judged)
        else:
            how = f"crashed with {sig_name}" if sig else f"exited with code {rc}"
            state, msg = "failed", f"The job process {how} without reporting a result; see `tunescope logs {job.id}`."
        if state != "interrupted":
            fields["finished"] = now
        if self.store.update(job.id, expect_state="running", expect_attempt=job.attempts, state=state, error=msg,
                             **fields):
            mark_run(job, state, msg)
            write_job_file(job, state, msg)


# ==================================================================================================
# Entry point for job processes
# ==================================================================================================


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.jobs.worker", description="Internal: run one claimed job.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run-job")
    r.add_argument("job_id")
    r.add_argument("--attempt", type=int, required=True)
    r.add_argument("--parent", type=int)
    a = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return child_main(a.job_id, a.attempt, a.parent)


if __name__ == "__main__":
    sys.exit(main())
