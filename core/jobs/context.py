"""What a job runner sees: its `JobContext` (the job, progress reporting, stop/cancel state), the
exceptions that end a job (`JobStopped`, `JobFailed`) and the `LogLines` callback for readable logs.

A runner imports this module, never the worker. May import: core.jobs.store, the standard library;
torch and the engine only through `sys.modules` (a runner may not have imported them).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.jobs.store import Job, JobStore, log_path

EXIT_LOST = 3  # the child found (or learned) that its job belongs to someone else now


def log(msg: str) -> None:
    """One timestamped line on stderr (the job log's own lines)."""
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


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


class JobStopped(Exception):
    """Raised in the job process when it must stop (cancel, or its worker shutting down)."""


class JobFailed(Exception):
    """A job failed with a message meant for its user (no traceback needed)."""


def _stop_exception(message: str) -> BaseException:
    engine = sys.modules.get("core.train.engine")  # the pipeline handles the engine's own cancel exception
    return engine.TrainingCancelled(message) if engine is not None else JobStopped(message)


def is_stop(exc: BaseException) -> bool:
    engine = sys.modules.get("core.train.engine")
    return isinstance(exc, JobStopped) or (engine is not None and isinstance(exc, engine.TrainingCancelled))


def _memory() -> dict[str, Any]:
    torch = sys.modules.get("torch")
    try:  # torch may be half-imported by the main thread right now
        on_cuda = torch is not None and torch.cuda.is_initialized()
    except Exception:  # noqa: BLE001
        on_cuda = False
    if on_cuda:
        mb = 1 << 20
        out = {"device": f"cuda:{torch.cuda.current_device()}",
               "allocated_mb": round(torch.cuda.memory_allocated() / mb, 1),
               "reserved_mb": round(torch.cuda.memory_reserved() / mb, 1),
               "peak_mb": round(torch.cuda.max_memory_allocated() / mb, 1)}
        with contextlib.suppress(Exception):
            free, total = torch.cuda.mem_get_info()
            out.update(free_mb=round(free / mb, 1), total_mb=round(total / mb, 1))
        return out
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return {"device": "cpu", "rss_mb": round(pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20), 1)}
    except (OSError, ValueError, IndexError):
        import resource

        return {"device": "cpu", "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


class JobContext:
    """What a runner gets: the job, a place to report progress, and the stop/cancel state.

    Also an engine callback (duck-typed: the job layer may not import core.train): the train runner
    passes the context itself to `core.train.pipeline.train`."""

    def __init__(self, store: JobStore, job: Job, min_interval: float = 0.5, max_quiet: float = 2.0,
                 self_term_after: float = 3.0) -> None:
        self.store, self.job = store, job
        self.min_interval, self.max_quiet, self.self_term_after = min_interval, max_quiet, self_term_after
        self.progress: dict[str, Any] = {"phase": "starting", "attempt": job.attempts}
        if job.progress.get("metrics_reset"):
            self.progress["metrics_reset"] = job.progress["metrics_reset"]
        self.cancel_requested = False
        self.stop_requested = False  # SIGTERM: worker shutdown or forced cancel
        self.finishing = False
        self._cancel_seen: float | None = None
        self._dirty = True
        self._last_write = 0.0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="job-progress", daemon=True)
        self._t0: tuple[float, int] | None = None
        self._last_phase: str | None = None
        # Seconds and units of work per kind (train steps, cached examples, predicted examples) in this
        # attempt: the whole-job ETA (core.jobs.listing.eta_seconds) prices the work left with them.
        self._work: dict[str, list[float]] = {}
        self._warmup: dict[str, list[float]] = {}  # each kind's first unit: it pays one-off costs
        self._last_hook: float | None = None
        self._last_step: int | None = None
        self._last_done: tuple[str, int] | None = None

    # -- progress thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def update(self, **values: Any) -> None:
        with self._lock:
            phase = values.get("phase")
            if phase is not None and phase != self.progress.get("phase_timed"):
                # when a phase began and how far it was at its first report: its ETA
                # (core.jobs.listing.eta_seconds) comes from its own pace, not the training rate
                values = {**values, "phase_timed": phase, "phase_started": time.time(),
                          "phase_done0": values.get("phase_done", 0)}
            self.progress.update(values)
            self._dirty = True

    def _loop(self) -> None:
        while not self._done.wait(self.min_interval):
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - a failed progress write must not kill the job
                log(f"progress write failed: {type(exc).__name__}: {exc}")

    def flush(self, force: bool = False) -> None:
        now = time.time()
        with self._lock:
            if not (force or self._dirty or now - self._last_write >= self.max_quiet):
                return
            snapshot = {**self.progress, "memory": _memory(), "updated": now}
            self._dirty = False
        answer = self.store.report_progress(self.job.id, self.job.attempts, snapshot)
        self._last_write = now
        if answer is None and not self.finishing:
            # The job was reaped or re-claimed elsewhere: another process may already be resuming it.
            log(f"job {self.job.id} attempt {self.job.attempts} no longer owns the job; stopping now")
            os._exit(EXIT_LOST)
        if answer == "cancel" and not self.cancel_requested:
            self.cancel_requested, self._cancel_seen = True, time.monotonic()
            with self._lock:
                progress = dict(self.progress)
            print(f"cancel requested for job {self.job.id}; {cancel_note(progress)}", flush=True)
        if (self._cancel_seen is not None and not self.finishing and not self.stop_requested
                and time.monotonic() - self._cancel_seen > self.self_term_after):
            # Not at a step boundary for a while (loading, building, long evaluation): interrupt.
            os.kill(os.getpid(), signal.SIGTERM)

    def on_sigterm(self, signum: int, frame: Any) -> None:
        if self.finishing or self.stop_requested:
            return
        self.stop_requested = True
        raise _stop_exception("Stopped by signal.")

    # -- engine callback hooks --------------------------------------------------------------------

    def should_stop(self) -> bool:
        return self.cancel_requested or self.stop_requested

    def _clock(self, kind: str, units: int) -> dict[str, Any]:
        """Count the time since the previous engine hook as `units` of `kind` work; the progress
        fields the ETA reads."""
        now = time.monotonic()
        if self._last_hook is not None and units > 0:
            if kind not in self._warmup:
                self._warmup[kind] = [now - self._last_hook, units]
            else:
                seconds, done = self._work.get(kind, [0.0, 0])
                self._work[kind] = [seconds + now - self._last_hook, done + units]
        self._last_hook = now
        # The first unit (the first step, the first batch cached) carries warm-up and setup time that
        # later ones do not: it prices the rest only until a second one is timed.
        work = {k: self._work.get(k) or v for k, v in self._warmup.items()}
        return {"eta_work": {k: [round(v[0], 4), int(v[1])] for k, v in work.items()}}

    def on_start(self, state: Any) -> None:
        plan = {"sizes": dict(getattr(state, "split_sizes", None) or {}),
                "steps_per_epoch": getattr(state, "steps_per_epoch", 0),
                "samples_per_step": getattr(state, "samples_per_step", 0),
                "feature_cache": bool(getattr(state, "feature_cache", False)),
                "costs": dict(getattr(state, "split_costs", None) or {})}
        # a retry after running out of memory starts over at another batch size: old paces no longer hold
        self._work, self._warmup, self._last_step, self._last_done = {}, {}, None, None
        self._last_hook = time.monotonic()
        self.update(phase=state.phase, total_steps=state.total_steps, epochs=state.epochs, step=state.step,
                    eta_plan=plan)
        self._link_log()

    def on_step(self, state: Any) -> None:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = (now, state.step - 1)
        t0, s0 = self._t0
        rate = (state.step - s0) / (now - t0) if now > t0 else 0.0
        eta = (state.total_steps - state.step) / rate if rate > 0 else None
        # a resumed attempt's first step follows a jump in the step count: it is one step of work
        units = state.step - self._last_step if self._last_step is not None else 1
        self._last_step = state.step
        self._last_done = None  # the next evaluation is a new pass over its split
        work = self._clock("train", units)
        self.update(**work, phase="train", step=state.step, total_steps=state.total_steps, epoch=round(state.epoch, 4),
                    epochs=state.epochs, samples_seen=state.samples_seen, loss=state.loss, lr=state.lr,
                    samples_per_second=round(state.samples_per_second, 3), elapsed_s=round(state.elapsed_s, 3),
                    eta_s=round(eta, 1) if eta is not None else None, best_epoch=state.best_epoch,
                    best_metric=state.best_metric)

    def on_log(self, row: dict[str, Any]) -> None:
        if row.get("type") == "epoch":
            keep = {k: v for k, v in row.items() if k.startswith("val_") or k in ("epoch", "train_loss")}
            self.update(last_epoch=keep)
            if row.get("is_best"):
                self.update(best_epoch=row.get("epoch"))
        elif row.get("type") == "resume":
            self.update(resumed_from_step=row.get("step"),
                        metrics_reset={"offset": int(row.get("metrics_offset", 0)), "step": row.get("step"),
                                       "attempt": self.job.attempts})

    def on_phase(self, state: Any, phase: str, done: int, total: int) -> None:
        if self.should_stop():
            raise _stop_exception("Training was cancelled.")
        # timed in the engine's token cost when it says it (later batches of a split are longer)
        cost_done, cost_total = getattr(state, "phase_work", None) or (done, total)
        prev = self._last_done[1] if self._last_done and self._last_done[0] == phase else 0
        self._last_done = (phase, cost_done)
        work = self._clock("features" if phase.startswith("features:") else "predict", cost_done - prev)
        self.update(**work, phase=phase, phase_done=done, phase_total=total, eta_phase_work=[cost_done, cost_total])
        if phase != self._last_phase:
            self._last_phase = phase
            print(f"phase {phase}: {total} examples", flush=True)

    def on_end(self, state: Any) -> None:
        self.update(phase="finishing", step=state.step)

    # -- files -------------------------------------------------------------------------------------

    def run_dir(self) -> Path | None:
        return self.job.run_dir

    def _link_log(self) -> None:
        """Make the job log visible as <run_dir>/job.log (same inode: the child keeps appending)."""
        run_dir = self.run_dir()
        if run_dir is None or not run_dir.is_dir() or (run_dir / "job.log").exists():
            return
        with contextlib.suppress(OSError):
            os.link(log_path(self.job.id), run_dir / "job.log")


class LogLines:
    """Engine callback that writes a readable line per logged row into the job log."""

    def __init__(self) -> None:
        self.total = 0

    def on_start(self, state: Any) -> None:
        self.total = state.total_steps
        print(f"training: {state.total_steps} steps over {state.epochs} epoch(s)", flush=True)

    def on_step(self, state: Any) -> None:
        self.total = state.total_steps

    def on_log(self, row: dict[str, Any]) -> None:
        kind = row.get("type")
        if kind == "step":
            print(f"step {row['step']}/{self.total}  epoch {row['epoch']:.2f}  loss {row['loss']:.4f}  "
                  f"lr {row['lr']:.2e}  {row['samples_per_second']:.1f} samples/s", flush=True)
        elif kind == "epoch":
            print(f"epoch {row['epoch']}: train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
                  f"val_accuracy {row['val_accuracy']:.4f}  val_macro_f1 {row['val_macro_f1']:.4f}"
                  f"{'  *best*' if row.get('is_best') else ''}", flush=True)
        elif kind == "resume":
            print(f"resumed from the checkpoint at step {row.get('step')} (epoch {row.get('epoch')})", flush=True)

    def on_phase(self, state: Any, phase: str, done: int, total: int) -> None: ...

    def on_end(self, state: Any) -> None: ...

    def should_stop(self) -> bool:
        return False
