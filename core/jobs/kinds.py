"""The table of job kinds: what a worker can run. Adding a kind is one line here plus its runner.

A runner is named as "module:function" rather than imported, so the queue (which only needs the
names) and this table stay free of feature imports. A worker checks at start that every entry's
module exists (without importing it, so a worker that only runs noop jobs never loads pandas or
torch) and refuses to start if one does not; a job process imports only its own kind's runner.
A runner takes the `core.jobs.context.JobContext` and returns a JSON-able result dict; it raises
`JobFailed` / `JobStopped` from `core.jobs.context` and never imports the worker.

Test and extension hook: `$TUNESCOPE_JOB_RUNNERS` names modules whose `RUNNERS` dict (kind -> callable)
adds or replaces kinds in the job processes of a worker.

May import: core.jobs.context, core.errors, the standard library (runner modules only by name).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import JobError
from core.jobs.context import JobContext, JobStopped

Runner = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    runner: str  # "module:function" of the runner
    # For kinds whose configs must be checked before they are queued: the function that checks and
    # queues them (the queue's plain `submit` refuses the kind and names it).
    submitted_by: str | None = None


KINDS: dict[str, JobKind] = {
    "train": JobKind("core.train.runner:run_train", submitted_by="core.train.submit.submit_training"),
    "noop": JobKind("core.jobs.kinds:run_noop"),
    "explain": JobKind("core.explain.jobs:run_explain_job"),
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


def check_table() -> None:
    """Every entry is written as "module:function" and its module exists; raises a JobError naming the
    first that is not. Imports nothing but the packages above each module."""
    for kind, entry in KINDS.items():
        target = entry.runner
        module, sep, name = target.partition(":")
        if not sep or not module or not name:
            raise JobError(f"The runner {target!r} of job kind {kind!r} is not written as 'module:function'.")
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError) as exc:
            raise JobError(f"The runner {target!r} of job kind {kind!r} does not resolve "
                           f"({type(exc).__name__}: {exc}).") from exc
        if not found:
            raise JobError(f"The runner {target!r} of job kind {kind!r} does not resolve "
                           f"(no module named {module!r}).")


def builtin_runners() -> dict[str, Runner]:
    """Every kind of the table, resolved (raises on the first that does not resolve)."""
    return {kind: resolve(entry.runner, kind) for kind, entry in KINDS.items()}


class Runners(Mapping[str, Runner]):
    """The kinds a job process can run: the table's, each imported when first asked for, plus those of
    the `$TUNESCOPE_JOB_RUNNERS` modules (imported at once: they are test and extension hooks)."""

    def __init__(self) -> None:
        self._plugins: dict[str, Runner] = {}
        for name in filter(None, (os.environ.get("TUNESCOPE_JOB_RUNNERS") or "").split(",")):
            self._plugins.update(getattr(importlib.import_module(name.strip()), "RUNNERS", {}))

    def __getitem__(self, kind: str) -> Runner:
        if kind in self._plugins:
            return self._plugins[kind]
        return resolve(KINDS[kind].runner, kind)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*KINDS, *self._plugins]))

    def __len__(self) -> int:
        return len(set(KINDS) | set(self._plugins))


def runners() -> Runners:
    """The built-in kinds plus those of the `$TUNESCOPE_JOB_RUNNERS` modules, resolved on use."""
    return Runners()


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
