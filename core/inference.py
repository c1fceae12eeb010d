"""Using a trained run: load its model (checked against its manifest, a few kept in memory),
predict class probabilities for texts or images, evaluate it on a labelled file.

A feature module: explanations, the report and the CLI (through `core.api`) load models here.
May import: base modules (data, models, runs, metrics, errors) and `core.train.engine` for devices
and batched prediction; never core.api, core.jobs, core.explain, core.cli or the dashboard.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DataError, RunError
from core.metrics import classification_report, softmax
from core.models import ModelBundle, load_bundle
from core.runs import default_runs_dir, resolve_run, verify_model
from core.train.engine import pick_device, predict_logits

__all__ = ["MAX_LOADED_MODELS", "evaluate", "is_loaded", "load_run_model", "predict"]


_LOADED: OrderedDict[str, tuple[ModelBundle, list[str]]] = OrderedDict()
MAX_LOADED_MODELS = 4


def is_loaded(run_dir: str | Path) -> bool:
    """Whether the model of the run in `run_dir` is held in this process (the next load is free)."""
    return str(Path(run_dir).resolve()) in _LOADED


def load_run_model(run: str | Path, runs_dir: str | Path | None = None) -> tuple[ModelBundle, list[str]]:
    """Load a run's model once per process; keep the few most recently used (memory bound).

    The files are checked against the hashes recorded at save (`core.runs.verify_model`; a file is
    hashed once per size and mtime), so a damaged model is refused with the run and file named instead
    of predicting something else. Runs saved before hashes were recorded load unchecked."""
    r = resolve_run(run, Path(runs_dir) if runs_dir else default_runs_dir())
    key = str(r.path.resolve())
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    if not (r.model_dir / "tunescope_model.json").is_file():
        state = r.status().get("state", "unknown")

        raise RunError(f"Run {r.id} has no saved model (state: {state}); only finished runs can predict.")
    verify_model(r)
    try:
        loaded = load_bundle(r.model_dir)
    except Exception as exc:  # noqa: BLE001 - truncated or edited files fail deep inside the loaders
        raise RunError(f"Run {r.id}: the model in {r.model_dir} cannot be loaded ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else 'no details'}); its files may be damaged, "
                       "retrain the run or restore the model folder from a backup.") from exc
    if loaded[0].task == "image":
        import torch

        loaded[0].model.to(memory_format=torch.channels_last)
    _LOADED[key] = loaded
    while len(_LOADED) > MAX_LOADED_MODELS:
        _LOADED.popitem(last=False)
    return loaded


def _probabilities(bundle: ModelBundle, inputs: Sequence[Any], device: str, batch_size: int = 64) -> np.ndarray:
    dev = pick_device(device)
    bundle.model.to(dev)
    return softmax(predict_logits(bundle, bundle.preprocessor.encode(list(inputs)), batch_size, dev))


def predict(run: str | Path, inputs: Sequence[Any], runs_dir: str | Path | None = None,
            device: str = "cpu", kind: str | None = None) -> list[dict[str, Any]]:
    """Label and class probabilities for each text (or image path / PIL image). `kind` ("text" or
    "image") says what the caller is giving, so a mismatch is an error rather than nonsense."""
    bundle, labels = load_run_model(run, runs_dir)
    if kind is not None and kind != bundle.task:
        want = "text" if bundle.task == "text" else "an image"
        raise DataError(f"Run {Path(str(run)).name} is a {bundle.task} model but {kind} input was given; "
                        f"give it {want}.")
    if bundle.task == "image":
        missing = [x for x in inputs if isinstance(x, (str, Path)) and not str(x).startswith("zip://")
                   and not Path(x).is_file()]
        if missing:
            raise DataError(f"Image file {str(missing[0])!r} does not exist.")
    if not inputs:
        return []
    probs = _probabilities(bundle, inputs, device)
    out = []
    for p in probs:
        i = int(p.argmax())
        out.append({"label": labels[i], "confidence": float(p[i]),
                    "probabilities": {name: float(p[j]) for j, name in enumerate(labels)}})
    return out


def evaluate(run: str | Path, source: str | Path, runs_dir: str | Path | None = None,
             text_column: str | None = None, label_column: str | None = None,
             device: str = "cpu") -> dict[str, Any]:
    """Metrics of a trained run on another labelled file (every row is test data)."""
    from core.data import load_labeled_file

    bundle, labels = load_run_model(run, runs_dir)
    data = load_labeled_file(source, labels=labels, text_column=text_column, label_column=label_column)
    if data.task != bundle.task:
        raise DataError(f"{source} is {data.task} data but run {Path(str(run)).name} is a {bundle.task} model.")
    test = data.split("test")
    probs = _probabilities(bundle, test["input"].tolist(), device)
    # load_labeled_file indexes labels against the run's own label list, so ids line up.
    return classification_report(probs, test["label_id"].to_numpy(), labels)
