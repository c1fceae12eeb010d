"""Pure helpers behind the Train and Runs pages and the live job list: building a RunConfig from form
values, the memory/time estimate text, progress text of a job, and safe downloads.

No Streamlit calls and no torch here, so everything is unit-testable on its own (tests/test_page_train.py).
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.config import METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig
from core.data.splits import TOKENS_PER_WORD  # the truncation warning's count, so both agree
from core.errors import ConfigError, ModelError
from core.explain.jobs import explain_title
from core.finetune import get_method
from core.jobs.listing import eta_seconds
from core.models.catalog import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, describe_source
from core.models.catalog import auto_image_size as catalog_auto_image_size
from core.tables import neutralise_cell, safe_csv  # noqa: F401 - re-exported for the pages
from dashboard.ui import fmt_count, fmt_seconds

OTHER_MODEL = "Other (Hugging Face id or local folder)"
MAX_SEEDS = 10



# -- form values -> RunConfig ------------------------------------------------------------------------

def default_model(task: str) -> str:
    return DEFAULT_TEXT_MODEL if task == "text" else DEFAULT_IMAGE_MODEL


def model_options(task: str) -> list[str]:
    """The built-in model of the task first, then the free-text choice."""
    return [default_model(task), OTHER_MODEL]


def chosen_model(option: str, other: str | None) -> str:
    """The model name a selectbox choice (and the free-text field of "Other") stands for."""
    if option != OTHER_MODEL:
        return option
    name = (other or "").strip()
    if not name:
        raise ConfigError("Type a Hugging Face model id (e.g. prajjwal1/bert-tiny) or a local model folder, "
                          "or pick the built-in model.")
    return name


def seeds_for(n: int) -> list[int] | None:
    """Seeds for `submit`: None for a single run, else 1..n (one job per seed, in one group)."""
    n = int(n)
    if not 1 <= n <= MAX_SEEDS:
        raise ConfigError(f"Seeds must be between 1 and {MAX_SEEDS}, got {n}.")
    return None if n == 1 else list(range(1, n + 1))


def build_config(*, source: str, task: str, model: str, method: str = "head", max_examples: int = 0,
                 epochs: int = 0, batch_size: int = 32, lr: float = 0.0, max_length: int = 128,
                 image_size: int = 0, text_column: str | None = None,
                 label_column: str | None = None) -> RunConfig:
    """The RunConfig the form describes; 0 means "all" / "auto" / "default". Raises ConfigError with a
    message in the form's own words."""
    if not str(source or "").strip():
        raise ConfigError("Choose a dataset first.")
    model = str(model or "").strip()
    if not model:
        raise ConfigError("Choose a model.")
    if method not in METHODS:
        raise ConfigError(f"Method must be one of {', '.join(METHODS)}, got {method!r}.")
    max_examples, epochs, image_size = int(max_examples or 0), int(epochs or 0), int(image_size or 0)
    if max_examples < 0 or 0 < max_examples < 10:
        raise ConfigError(f"Max examples must be 0 (all) or at least 10, got {max_examples}.")
    if epochs < 0:
        raise ConfigError(f"Epochs must be 0 (auto) or more, got {epochs}.")
    if lr is None or lr < 0:
        raise ConfigError(f"Learning rate must be 0 (default) or more, got {lr}.")
    if image_size < 0 or 0 < image_size < 8:
        raise ConfigError(f"Image size must be 0 (auto) or at least 8 pixels, got {image_size}.")
    data = DataConfig(source=str(source), text_column=text_column, label_column=label_column,
                      max_samples=max_examples or None)
    model_cfg = ModelConfig(name=model, max_length=int(max_length),
                            image_size=(image_size or None) if task == "image" else None)
    train = TrainConfig(method=method, epochs=epochs or None, batch_size=int(batch_size),
                        lr=float(lr) if lr else None)
    return RunConfig(data=data, model=model_cfg, train=train)


# -- sizes and estimates -----------------------------------------------------------------------------

def scaled_sizes(sizes: Mapping[str, int], max_examples: int | None) -> dict[str, int]:
    """Split sizes after a stratified subset of `max_examples` (the split shares stay the same)."""
    total = sum(sizes.values())
    if not max_examples or max_examples >= total or total == 0:
        return dict(sizes)
    return {k: max(1, round(v * max_examples / total)) for k, v in sizes.items()}


def mean_tokens(mean_words: float | None, max_length: int) -> float:
    """Tokens per text fed to the model: words x subwords per word + [CLS]/[SEP], truncated."""
    words = mean_words if mean_words else 24.0
    return float(min(max_length, words * TOKENS_PER_WORD + 2))


def auto_image_size(model: str, median_side: int | None) -> int | None:
    """What the trainer will pick for image_size=auto (the same rule, torch-free)."""
    try:
        return catalog_auto_image_size(model, median_side)
    except ModelError:  # a wrong-task model is reported at submit time
        return None


def estimate(model: str, task: str, method: str, *, batch_size: int, max_length: int, image_size: int | None,
             num_labels: int, sizes: Mapping[str, int], epochs: int, mean_words: float | None = None,
             device: str = "cpu", threads: int = 2) -> tuple[Any, Any]:
    """(MemoryEstimate | None, TimeEstimate | None) of one run; never raises."""
    from core.train.resources import estimate_train_memory, estimate_train_time

    try:
        mem = estimate_train_memory(model, task, method=method, batch_size=batch_size,
                                    max_length=max_length, image_size=image_size, num_labels=num_labels)
    except Exception:  # noqa: BLE001 - an estimate is a courtesy, never a blocker
        mem = None
    try:
        n_train = int(sizes.get("train", 0))
        n_eval = int(sizes.get("validation", 0)) + int(sizes.get("test", 0))
        tim = estimate_train_time(mem, task=task, model_name=model, method=method, n_train=n_train,
                                  n_eval=n_eval, epochs=epochs, mean_tokens=mean_tokens(mean_words, max_length),
                                  image_size=image_size, device=device, threads=threads)
    except Exception:  # noqa: BLE001
        tim = None
    return mem, tim


def rough_duration(seconds: float) -> str:
    """'under a minute', 'about 3 min', 'about 1 h 20 min': an estimate should not look precise."""
    if seconds < 45:
        return "under a minute"
    if seconds < 3600:
        return f"about {max(1, round(seconds / 60))} min"
    h, m = divmod(round(seconds / 60), 60)
    return f"about {h} h {m:02d} min"


def device_label(device: Mapping[str, Any]) -> str:
    if device.get("kind") == "cuda" and device.get("gpus"):
        return f"on GPU ({device['gpus'][0]['name']})"
    return f"on CPU ({device.get('cpu_cores', '?')} cores)"


def estimate_text(mem: Any, tim: Any, device: Mapping[str, Any], n_runs: int = 1) -> str:
    """One line such as 'about 0.8 GiB memory · about 2 min on CPU (2 cores)'."""
    parts = [f"about {mem.gib:.1f} GiB memory" if mem is not None else "memory unknown (model size not known offline)"]
    if tim is not None:
        parts.append(f"{rough_duration(tim.seconds)} {device_label(device)}")
    else:
        parts.append("time unknown")
    text = " · ".join(parts)
    if n_runs > 1:
        text += f" per run; {n_runs} runs one after another on one worker"
    return text


def model_card_text(model: str, params: int | None) -> str:
    """Where a model comes from, its licence and size, in one line."""
    size = f"{fmt_count(params)} parameters" if params else "size unknown until loaded"
    return f"{describe_source(model)} · {size}"


def method_help(method: str) -> str:
    """The line under a method on the Train page, from the method table."""
    return get_method(method).help


def method_when(method: str) -> str:
    """When to pick `method`: the sentence under the method choice while it is chosen."""
    return get_method(method).when


def default_lr(task: str, method: str) -> float:
    lr = get_method(method).lr
    return lr.get(task, lr["text"])


# -- the job list ------------------------------------------------------------------------------------

def source_label(source: str | None) -> str:
    """A short dataset name for a job row: demo:NAME, a saved dataset's name, or the file name."""
    if not source:
        return "?"
    if source.startswith("demo:"):
        return source
    p = Path(source)
    if p.parent.parent.name == "datasets":  # $TUNESCOPE_HOME/datasets/<name>/<file>
        return p.parent.name
    return p.name


def job_title(config: Mapping[str, Any], *, kind: str = "train", seed: bool = True) -> str:
    """'demo:sentiment · minilm · head · seed 2' from a job's RunConfig dict (without the seed for a
    seed group's card); an explain job says what it explains ('IG on run r-1, text "…"')."""
    if kind == "explain":
        return explain_title(config)
    data, model, train = (config.get(k) or {} for k in ("data", "model", "train"))
    name = model.get("name") or "default model"
    if "/" in name and Path(name).is_absolute():
        name = Path(name).name
    parts = [source_label(data.get("source")), name, train.get("method") or "full"]
    if data.get("max_samples"):
        parts.append(f"{data['max_samples']:,} examples")
    if seed and train.get("seed"):
        parts.append(f"seed {train['seed']}")
    return " · ".join(parts)


def _phase_name(phase: str) -> str:
    kind, _, split = phase.partition(":")
    names = {"features": "caching features", "predict": "predicting", "eval": "evaluating",
             "finishing": "saving the model", "starting": "starting", "done": "finishing"}
    base = names.get(kind, kind.replace("_", " "))
    return f"{base} ({split})" if split else base


def progress_view(state: str, progress: Mapping[str, Any] | None, error: str | None = None
                  ) -> tuple[float | None, str]:
    """(bar fraction 0..1 or None for no bar, text) of a job, e.g.
    (0.3, 'step 120/400 · epoch 1/2 · 45 samples/s · ETA 1 min 10 s')."""
    p = dict(progress or {})
    if state == "queued":
        return 0.0, "queued: waiting for a worker"
    if state == "succeeded":
        return 1.0, "done"
    if state in ("failed", "cancelled"):
        return None, error or state
    if state == "interrupted":
        step = p.get("step")
        where = f" at step {step}" if step else ""
        return _fraction(p.get("step"), p.get("total_steps")), f"interrupted{where}: resumes when a worker is free"
    phase = p.get("phase") or "starting"
    if phase == "train" and p.get("total_steps"):
        step, total = int(p.get("step") or 0), int(p["total_steps"])
        parts = [f"step {step}/{total}"]
        if p.get("epochs"):
            epoch = min(int(p["epochs"]), max(1, math.ceil(float(p.get("epoch") or 0))))
            parts.append(f"epoch {epoch}/{p['epochs']}")
        if p.get("samples_per_second"):
            parts.append(f"{p['samples_per_second']:.0f} samples/s")
        if p.get("loss") is not None:
            parts.append(f"loss {p['loss']:.3f}")
        eta = eta_seconds(p)
        if eta is not None:
            parts.append(f"ETA {fmt_seconds(eta)}")
        return _fraction(step, total), " · ".join(parts)
    if p.get("phase_total"):
        done, total = int(p.get("phase_done") or 0), int(p["phase_total"])
        eta = eta_seconds(p)
        tail = f" · ETA {fmt_seconds(eta)}" if eta is not None else ""
        return _fraction(done, total), f"{_phase_name(phase)} {done:,}/{total:,}{tail}"
    if phase == "starting":
        return 0.0, "starting: loading the data and the model"
    return _fraction(p.get("step"), p.get("total_steps")), _phase_name(phase)


# A finished job's bar: green when it succeeded, neutral grey when cancelled, red only when it failed
# (st.progress draws in the theme's primary colour, which is red by default).
BAR_COLOURS = {"succeeded": "#2e9e5b", "cancelled": "#9aa0a6", "failed": "#d93025"}


def finished_bar(state: str, progress: Mapping[str, Any] | None) -> tuple[float, str] | None:
    """(fraction, colour) of the bar of a finished job, None for any other state. A succeeded job is
    full; a cancelled or failed one shows how far it got."""
    if state not in BAR_COLOURS:
        return None
    p = dict(progress or {})
    if state == "succeeded":
        fraction = 1.0
    elif p.get("phase") == "train" or not p.get("phase_total"):
        fraction = _fraction(p.get("step"), p.get("total_steps"))
    else:
        fraction = _fraction(p.get("phase_done"), p.get("phase_total"))
    return fraction, BAR_COLOURS[state]


def bar_html(fraction: float, colour: str) -> str:
    """A thin bar in a fixed colour (no user text in it)."""
    pct = round(100 * max(0.0, min(1.0, float(fraction))), 1)
    return ('<div style="background:#e8eaed;border-radius:4px;height:6px;margin:2px 0 6px 0">'
            f'<div style="width:{pct}%;background:{colour};height:6px;border-radius:4px"></div></div>')


def _fraction(done: Any, total: Any) -> float:
    try:
        return max(0.0, min(1.0, float(done) / float(total)))
    except (TypeError, ValueError, ZeroDivisionError):
        return 0.0


# -- downloads ---------------------------------------------------------------------------------------

def zip_folder(folder: Path, arcroot: str = "model") -> bytes:
    """A ZIP of the regular files under `folder` (symbolic links are skipped, never followed)."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for root, dirs, files in os.walk(folder, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                p = Path(root) / name
                if p.is_symlink() or not p.is_file():
                    continue
                zf.write(p, f"{arcroot}/{p.relative_to(folder).as_posix()}")
    return buf.getvalue()
