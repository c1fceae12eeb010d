"""Queuing training jobs: check a RunConfig the way `tunescope train` would, expand it over seeds
and grid axes, give each point its run directory, then hand the lot to the job queue.

The queue (`core.jobs.queue`) stores configs without looking at them; everything that needs the data,
the model catalog or the device lives here. Heavy modules (the data loaders, torch through the
fine-tune methods and the engine) are imported only when a check needs them, so the dashboard can
submit without importing torch.

May import: core.config, core.data, core.models.catalog, core.finetune, core.train.engine,
core.jobs.queue / core.jobs.store, core.runs, core.errors.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.errors import ConfigError, ModelUnavailableError, RunError
from core.finetune import get_method
from core.jobs.queue import MAX_JOBS_PER_SUBMIT, JobSpec, check_request, enqueue
from core.jobs.store import DEFAULT_MAX_ATTEMPTS, JobStore, open_store
from core.models.catalog import family_of, is_catalog_name, resolve_model_name
from core.runs import default_runs_dir, new_run_id

# Grid axes a submission may vary: short name -> (RunConfig section, field).
GRID_AXES = {"method": ("train", "method"), "lr": ("train", "lr"), "model": ("model", "name"),
             "seed": ("train", "seed"), "batch_size": ("train", "batch_size"), "epochs": ("train", "epochs"),
             "max_length": ("model", "max_length")}


def expand_grid(cfg: Any, seeds: Sequence[int] | None = None,
                grid: Mapping[str, Sequence[Any]] | None = None) -> list[tuple[Any, dict[str, Any]]]:
    """One (RunConfig, tags) per point of grid × seeds; tags name the varied values."""
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
            raise ConfigError("The list of seeds is empty; give at least one, e.g. 1,2,3.")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"The seeds repeat one: {seeds}; give each seed once.")
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
    d = cfg.to_dict()
    src = str(d["data"]["source"])
    if not src.startswith("demo:") and Path(src).expanduser().exists():
        d["data"]["source"] = str(Path(src).expanduser().resolve())
    name = d["model"]["name"]
    if name and not is_catalog_name(name) and Path(name).expanduser().is_dir():
        d["model"]["name"] = str(Path(name).expanduser().resolve())
    return RunConfig.from_dict(d)


def validate_config(cfg: Any, check_device: bool = True, _cache: dict[str, Any] | None = None) -> Any:
    """Everything `api.train` checks before it writes, without building the model: the dataset
    (loaded and split), the model family against the task, the method, and the device. Returns the
    loaded data. Raises the same TunescopeError subclasses as `tunescope train`."""
    from core.data import load_for_config
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
        get_method(cfg.train.method)
        from core.train.engine import pick_device, pick_precision  # torch

        pick_precision(pick_device(cfg.train.device), cfg.train.precision)
    return data


def submit_training(cfg: RunConfig, *, owner: str | None = None, priority: int = 0,
                    seeds: Sequence[int] | None = None, grid: Mapping[str, Sequence[Any]] | None = None,
                    runs_dir: str | Path | None = None, run_id: str | None = None, validate: bool = True,
                    check_device: bool = True, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                    store: JobStore | None = None) -> list[str]:
    """Queue one training job per point of `grid` × `seeds` (one group when more than one); return
    the ids. Invalid configurations raise before anything is queued."""
    check_request("train", max_attempts)
    points = expand_grid(cfg, seeds, grid)
    store = store or open_store()  # a damaged queue is said before the (slower) data checks
    root = Path(runs_dir).expanduser().resolve() if runs_dir else default_runs_dir().resolve()
    cache: dict[str, Any] = {}
    specs = []
    for i, (c, tags) in enumerate(points):
        c = absolute_paths(c)
        data = validate_config(c, check_device=check_device, _cache=cache) if validate else None
        task = "text" if data is None else data.task
        model = Path(resolve_model_name(c.model.name, task)).name
        if run_id:
            rid = run_id if len(points) == 1 else f"{run_id}-{i + 1}"
        else:
            rid = new_run_id(data.name if data is not None else Path(c.data.source).stem, model,
                             c.train.method, *(f"s{c.train.seed}",) * ("seed" in tags))
        if (root / rid).exists():
            raise RunError(f"Run directory {root / rid} already exists; choose another run id.")
        specs.append(JobSpec(c.to_dict(), tags=tags, runs_dir=str(root), run_id=rid))
    return enqueue(specs, kind="train", owner=owner, priority=priority, max_attempts=max_attempts, store=store)
