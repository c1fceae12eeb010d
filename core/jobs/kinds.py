"""The table of job kinds: what a worker can run. Adding a kind is one line here plus its runner.

A runner is named as "module:function" rather than imported, so the queue (which only needs the
names) and this table stay free of feature imports; the worker resolves every entry when it starts
and refuses to start if one does not resolve. A runner takes the `core.jobs.context.JobContext` and
returns a JSON-able result dict; it raises `JobFailed` / `JobStopped` from `core.jobs.context` and never
imports the worker.

Test and extension hook: `$TUNESCOPE_JOB_RUNNERS` names modules whose `RUNNERS` dict (kind -> callable)
adds or replaces kinds in the job processes of a worker.

May import: core.jobs.context, core.errors, the standard library (runner modules only by name).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from typing import Any

from core.errors import JobError
from core.jobs.context import JobContext, JobStopped

Runner = Callable[[JobContext], dict[str, Any]]

KINDS: dict[str, str] = {
    "train": "core.train.runner:run_train",
    "noop": "core.jobs.kinds:run_noop",
    "explain": "core.explain.jobs:run_explain_job",
}


def resolve(target: str, kind: str = "?") -> Runner:
    """The callable that a "module:function" entry names; a JobError that says which entry and why if
    it does not resolve."""
    module, sep, name = target.partition(":")
    if not sep or not module or not name:
        raise JobError(f"The runner {target!r} of job kind {kind!r} is not written as 'module:function'.")
    try:
        runner = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise JobError(f"The runner {target!r} of job kind {kind!r} does not resolve "
                       f"({type(exc).__name__}: {exc}).") from exc
    if not callable(runner):
        raise JobError(f"The runner {target!r} of job kind {kind!r} is not callable.")
    return runner


def builtin_runners() -> dict[str, Runner]:
    """Every kind of the table, resolved (raises on the first that does not resolve)."""
    return {kind: resolve(target, kind) for kind, target in KINDS.items()}


def runners() -> dict[str, Runner]:
    """The built-in kinds plus those of the `$TUNESCOPE_JOB_RUNNERS` modules."""
    out = builtin_runners()
    for name in filter(None, (os.environ.get("TUNESCOPE_JOB_RUNNERS") or "").split(",")):
        out.update(getattr(importlib.import_module(name.strip()), "RUNNERS", {}))
    return out


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
