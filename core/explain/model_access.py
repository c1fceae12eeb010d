"""Reaching a run's model for an explanation: which run is meant, the lock every computation on the
shared model holds, the stamp that ties a cached result to the model it came from, and the model
with an input prepared for it.

`explainer`, `sanity`, `attention` and `dataset_view` all go through here. Importing it is torch-free
(the dataset view's cached results are read by the page); `load_target` imports torch when called.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, DataError
from core.explain.catalog import DEFAULT_MAX_TOKENS
from core.runs import Run, default_runs_dir, resolve_run

if TYPE_CHECKING:
    import torch

    from core.explain.targets import ImageTarget, TextTarget

# Captum's DeepLift and GradCAM hook the shared model's modules: one computation at a time per
# process keeps a concurrent prediction (or a second session) from running through those hooks.
COMPUTE_LOCK = threading.RLock()


def as_run(run: str | Path | Run, runs_dir: str | Path | None = None) -> Run:
    """`run` itself, or the run a directory or id names (in `runs_dir`, default the runs folder)."""
    if isinstance(run, Run):
        return run
    return resolve_run(run, Path(runs_dir) if runs_dir else default_runs_dir())


def model_stamp(run: Run) -> str:
    """Changes when the run's model is replaced, so old explanations are never served for it."""
    f = run.path / "model" / "model.safetensors"
    return f"{f.stat().st_mtime_ns}-{f.stat().st_size}" if f.is_file() else "none"


def load_target(run: Run, value: Any, *, max_tokens: int = DEFAULT_MAX_TOKENS, device: str = "auto",
                model: Any = None) -> tuple[TextTarget | ImageTarget, list[str], torch.device]:
    """The run's model with `value` prepared for it; `model` replaces the run's own (sanity check)."""
    from core import inference
    from core.explain.targets import ImageTarget, TextTarget
    from core.train.engine import pick_device

    bundle, labels = inference.load_run_model(run.path)
    dev = pick_device(device)
    net = model if model is not None else bundle.model
    net.to(dev).eval()
    if bundle.task == "text":
        if not isinstance(value, str):
            raise DataError(f"Run {run.id} is a text model; give it text to explain, not an image.")
        if not 2 <= max_tokens <= 4096:
            raise ConfigError(f"max_tokens must be between 2 and 4096, got {max_tokens}.")
        limit = min(max_tokens, bundle.preprocessor.max_length)
        target: TextTarget | ImageTarget = TextTarget.build(net, bundle.preprocessor.tokenizer, value, limit)
    else:
        if isinstance(value, str) and not Path(value).is_file() and not value.startswith("zip://"):
            raise DataError(f"Image file {value!r} does not exist." if Path(value).suffix else
                            f"Run {run.id} is an image model; give it an image to explain, not text.")
        target = ImageTarget.build(net, bundle.preprocessor, value)
    return target.to(dev), labels, dev
