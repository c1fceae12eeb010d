"""The `train` job kind's runner: fine-tune per the job's RunConfig into the job's run directory,
resuming it when it exists; on CUDA, check the memory estimate first, and on out-of-memory halve the
batch (doubling gradient accumulation, so the effective batch stays) and retry from the start.

Named in `core.jobs.kinds.KINDS`; sees only `core.jobs.context` (never the worker). torch and the
training pipeline are imported when a job runs, so resolving the runner (the worker does that when it
starts) stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.access import LOCAL_OWNER
from core.config import RunConfig
from core.jobs.context import EXIT_LOST, JobContext, JobFailed, LogLines
from core.runs import atomic_write_json
from core.tracking import maybe_log
from core.train.resources import check_memory


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
    import torch

    from core.train import pipeline  # torch: only in the job process

    train = train or pipeline.train
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
            path = train(cfg, runs_dir=runs_dir, callbacks=callbacks, run_id=run_id, resume=resume,
                         owner=job.owner or LOCAL_OWNER)
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
                            "shorter max length, the method lora or head, or a GPU with more free memory.")
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
    from core.train import pipeline

    data = pipeline.load_data(cfg)
    check = check_memory(cfg, data.task, data.num_labels, device=device,
                         precision=pick_precision(device, cfg.train.precision))
    torch.cuda.empty_cache()
    if check is None:
        return
    print(f"memory check: {check.message}", flush=True)
    ctx.update(memory_check=check.to_dict())
    if not check.fits_at_batch_1:
        raise JobFailed(check.message)
