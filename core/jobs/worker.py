"""The worker: claims queued jobs and runs each in its own child process; plus the reaper.

Parent (`tunescope worker`)
    One slot per GPU (each child sees only its GPU through CUDA_VISIBLE_DEVICES), or one CPU slot.
    A heartbeat thread refreshes the rows of the jobs it runs, so a child stuck in a long step still
    counts as alive while a dead worker does not. It turns cancel requests into SIGTERM after
    `cancel_grace_s` and SIGKILL of the job's process group after `cancel_kill_s`, and on SIGTERM /
    Ctrl-C stops its jobs as `interrupted` (resumed by the next worker) before exiting.

Child (`python -m core.jobs.worker run-job ID --attempt N --parent PID`)
    Dies with its worker (PR_SET_PDEATHSIG on Linux), runs the job kind's runner, writes progress
    into the job row from a thread (at most every 0.5 s, at least every 2 s), polls the cancel flag on
    the same write, and records the final state itself. Training halves the batch (doubling gradient
    accumulation) on CUDA out-of-memory and records each retry.

Reaper (`reap`)
    On worker start, periodically, and on cancel: a running job whose worker is gone (stale heartbeat,
    or a dead worker pid on this host) becomes `interrupted` and is claimed again for resume, or
    `failed` once its counted interruptions reach `max_attempts` (see `judge_interruption`), or
    `cancelled` if cancellation was asked for.

Test and extension hook: `$TUNESCOPE_JOB_RUNNERS` names modules whose `RUNNERS` dict adds job kinds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.jobs import (
    STALE_AFTER_S,
    Job,
    JobStore,
    _mark_run,
    crash_ceiling,
    jobs_dir,
    log_path,
    open_store,
    store_url,
)
from core.jobs.context import EXIT_LOST, JobContext, JobFailed, JobStopped, LogLines, is_stop
from core.jobs.context import log as _log
from core.runs import atomic_write_json, tunescope_home

_FATAL_SIGNALS = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
REPO_ROOT = Path(__file__).resolve().parents[2]



# ==================================================================================================
# Child side: running one job
# ==================================================================================================


def _is_oom(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and "out of memory" in text and ("cuda" in text or "hip" in text)


def _free_device_memory() -> None:
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_train(ctx: JobContext, train: Callable[..., Path] | None = None,
              extra_callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Fine-tune per the job's RunConfig into the job's run directory; resume it if it exists."""
    import dataclasses

    import torch

    from core import api
    from core.config import RunConfig

    train = train or api.train
    job = ctx.job
    threads = int(os.environ.get("TUNESCOPE_JOB_THREADS", "0") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    cfg = RunConfig.from_dict(job.config)
    slot = os.environ.get("TUNESCOPE_JOB_SLOT", "")
    if slot.startswith("cuda") and cfg.train.device.startswith("cuda:"):
        # The worker places jobs: this process sees only its slot's GPU, as cuda:0.
        print(f"device {cfg.train.device} -> this worker slot's GPU ({slot})", flush=True)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cuda"))
    runs_dir, run_id = Path(job.runs_dir or ""), job.run_id
    run_dir = runs_dir / run_id if run_id else None
    _memory_check(ctx, cfg)
    callbacks = [ctx, LogLines(), *extra_callbacks]
    retries = list(job.oom_retries)
    while True:
        resume = run_dir is not None and run_dir.is_dir()
        print(("resuming" if resume else "starting") + f" run {run_dir} (batch {cfg.train.batch_size}, "
              f"grad_accum {cfg.train.grad_accum})", flush=True)
        oom: BaseException | None = None
        try:
            path = train(cfg, runs_dir=runs_dir, callbacks=callbacks, run_id=run_id, resume=resume)
            ctx.finishing = True
            break
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled here
            if not _is_oom(exc):
                raise
            oom = exc
        b, a = cfg.train.batch_size, cfg.train.grad_accum
        message = f"{type(oom).__name__}: {str(oom).splitlines()[0] if str(oom) else ''}"[:500]
        oom = None  # drop the traceback's frames (and their tensors) before freeing memory
        _free_device_memory()
        if b <= 1:
            raise JobFailed(f"Out of device memory even at batch size 1 ({message}). Use a smaller model, a "
                            "shorter --max-length, --method lora or head, or a GPU with more free memory.")
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=b // 2, grad_accum=a * 2))
        retries.append({"time": time.time(), "from": {"batch_size": b, "grad_accum": a},
                        "to": {"batch_size": b // 2, "grad_accum": a * 2}, "error": message})
        print(f"out of memory at batch {b}: retrying with batch {b // 2} and grad_accum {a * 2} "
              "(same effective batch), from the start", flush=True)
        if not ctx.store.update(job.id, expect_state="running", expect_attempt=job.attempts,
                                config=cfg.to_dict(), oom_retries=retries):
            os._exit(EXIT_LOST)
        ctx.update(oom_retries=len(retries))
        if run_dir is not None and run_dir.is_dir():
            # Checkpoints hold the batch position of the old batch size: this retry starts over.
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
            atomic_write_json(run_dir / "oom_retries.json", retries)
    summary = json.loads((path / "summary.json").read_text())
    from core.tracking import maybe_log

    try:
        maybe_log(path)  # $TUNESCOPE_MLFLOW_URI, when set
    except Exception as exc:  # noqa: BLE001 - MLflow missing: the run itself succeeded
        print(f"MLflow logging skipped: {exc}", flush=True)
    test = {k: v for k, v in (summary.get("test") or {}).items() if isinstance(v, (int, float))}
    return {"test": test, "best_epoch": summary.get("best_epoch"), "steps": summary.get("steps"),
            "train_seconds": summary.get("train_seconds"), "device": summary.get("device"),
            "run_dir": str(path), "oom_retries": len(retries)}


def _memory_check(ctx: JobContext, cfg: Any) -> None:
    """On CUDA, compare the estimate with the free memory before loading anything heavy."""
    import torch

    from core.train.engine import pick_device, pick_precision

    device = pick_device(cfg.train.device)
    if device.type != "cuda":
        return
    from core import api
    from core.train.resources import check_memory

    data = api.load_data(cfg)
    check = check_memory(cfg, data.task, data.num_labels, device=device,
                         precision=pick_precision(device, cfg.train.precision))
    torch.cuda.empty_cache()
    if check is None:
        return
    print(f"memory check: {check.message}", flush=True)
    ctx.update(memory_check=check.to_dict())
    if not check.fits_at_batch_1:
        raise JobFailed(check.message)


def run_noop(ctx: JobContext) -> dict[str, Any]:
    """Does nothing for `seconds`, reporting progress and honouring cancel: for health checks and the
    queue-latency benchmark."""
    seconds = float(ctx.job.config.get("seconds", 0))
    steps = max(1, int(seconds / 0.05))
    t0 = time.monotonic()
    for i in range(steps):
        if ctx.should_stop():
            raise JobStopped("Cancelled.")
        if seconds:
            time.sleep(seconds / steps)
        ctx.update(phase="noop", step=i + 1, total_steps=steps)
    return {"seconds": round(time.monotonic() - t0, 3)}


def run_explain(ctx: JobContext) -> dict[str, Any]:
    from core.explain.jobs import run_explain_job

    return run_explain_job(ctx)


RUNNERS: dict[str, Callable[[JobContext], dict[str, Any]]] = {"train": run_train, "noop": run_noop,
                                                               "explain": run_explain}


def _runners() -> dict[str, Callable[[JobContext], dict[str, Any]]]:
    runners = dict(RUNNERS)
    for name in filter(None, (os.environ.get("TUNESCOPE_JOB_RUNNERS") or "").split(",")):
        runners.update(getattr(importlib.import_module(name.strip()), "RUNNERS", {}))
    return runners


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


def execute(store: JobStore, job: Job, runners: dict[str, Callable[[JobContext], dict[str, Any]]] | None = None,
            min_interval: float = 0.5, max_quiet: float = 2.0) -> str:
    """Run one claimed job in this process and record its final state; returns that state."""
    runners = runners if runners is not None else _runners()
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
            cancelled = ctx.cancel_requested or (store.get(job.id) or job).cancel_requested is not None
            state = "cancelled" if cancelled else "interrupted"
            error = ("Cancelled by request." if cancelled
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
        _mark_run(fresh, state, error or "")
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
# Reaper
# ==================================================================================================


def _pid_alive(pid: int | None) -> bool:
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


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # children run as session leaders: pgid == pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _kill_orphan(job: Job, host: str) -> None:
    """Kill a job process that outlived its worker (only ours: same host, and its command line names
    the job), and wait a moment for it to go."""
    if job.host != host or not job.pid or not _pid_alive(job.pid):
        return
    try:
        cmdline = Path(f"/proc/{job.pid}/cmdline").read_bytes()
    except OSError:
        return
    if job.id.encode() not in cmdline:
        return
    _kill_group(job.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _pid_alive(job.pid) and time.monotonic() < deadline:
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
        worker_gone = job.host == host and job.worker_pid is not None and not _pid_alive(job.worker_pid)
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
            _mark_run(job, state, msg)
            out.append((job.id, state))
            (log or _log)(f"reaped job {job.id}: {state} ({reason})")
    # forget workers that are gone
    for w in store.workers():
        gone = w.get("host") == host and w.get("pid") and not _pid_alive(w["pid"])
        if gone or now - (w.get("heartbeat") or 0) > max(stale_after_s, 60.0) * 4:
            store.remove_worker(w["id"])
    return out


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
    from core.errors import ConfigError

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
        """Escalate cancels that the job did not honour, and kill jobs this worker no longer owns."""
        running = [s for s in self.slots if s.proc is not None and s.job is not None]
        if not running:
            return
        rows = {j.id: j for j in self.store.get_many([s.job.id for s in running])}  # type: ignore[union-attr]
        now = time.time()
        for slot in running:
            job = rows.get(slot.job.id)  # type: ignore[union-attr]
            ours = (job is not None and job.attempts == slot.job.attempts  # type: ignore[union-attr]
                    and job.worker_id == self.id and not slot.lost)
            if not ours:
                if slot.kill_sent is None:
                    _log(f"job {slot.job.id} is no longer this worker's; killing its process")  # type: ignore[union-attr]
                    _kill_group(slot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                    slot.kill_sent = now
                continue
            if job.state != "running":  # type: ignore[union-attr]
                # It recorded its ending and is exiting; only a process hung in teardown is killed.
                if slot.ended_at is None:
                    slot.ended_at = now
                elif now - slot.ended_at > self.opts.cancel_grace_s and slot.kill_sent is None:
                    _kill_group(slot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                    slot.kill_sent = now
                continue
            if job.cancel_requested is None:  # type: ignore[union-attr]
                continue
            waited = now - job.cancel_requested  # type: ignore[union-attr,operator]
            if waited >= self.opts.cancel_kill_s and slot.kill_sent is None:
                _log(f"job {job.id} did not stop {waited:.0f} s after cancel; killing it")  # type: ignore[union-attr]
                _kill_group(slot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                slot.kill_sent = now
            elif waited >= self.opts.cancel_grace_s and slot.term_sent is None:
                _log(f"job {job.id} still running {waited:.0f} s after cancel; sending SIGTERM")  # type: ignore[union-attr]
                _kill_group(slot.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
                slot.term_sent = now

    def _stop_all(self, busy: list[_Slot]) -> None:
        now = time.time()
        for slot in busy:
            if slot.term_sent is None:
                _kill_group(slot.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
                slot.term_sent = now
            elif slot.kill_sent is None and (self._interrupts > 1 or now - slot.term_sent > self.opts.cancel_grace_s):
                _kill_group(slot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
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
            _kill_group(s.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
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
            state, msg = "cancelled", f"Cancelled by request{forced}."
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
            _mark_run(job, state, msg)
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
