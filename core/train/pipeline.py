"""The training pipeline: from a RunConfig to a finished run directory (what `tunescope train`, the
worker's train jobs and `core.api.train` run).

`train` validates everything it can before it writes anything: a bad dataset or model name leaves
the runs directory exactly as it was. It loads the data, builds the model, lets the fine-tune method
choose what trains, runs the engine with checkpoints (resuming from the newest intact one when asked),
then saves the model, the test predictions and summary.json.
May import: base modules (config, data, models, runs, metrics, finetune) and core.train; never jobs,
explain, cli or the dashboard.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from core import models
from core.access import LOCAL_OWNER, Access, write_access
from core.config import RunConfig
from core.data import load_for_config, open_image
from core.data.dataset import LabeledData
from core.errors import ConfigError, RunError
from core.finetune import count_params, get_method
from core.metrics import classification_report, softmax
from core.models import build_model, resolve_model_name
from core.models.catalog import auto_image_size as image_size_rule
from core.models.catalog import shrinks_small_images
from core.runs import RunWriter, atomic_dir, check_run_id, default_runs_dir, new_run_id, write_model_manifest
from core.train.callbacks import Callback, MetricsFile
from core.train.checkpoint import Checkpointer
from core.train.engine import Engine, TrainingCancelled, seed_everything

__all__ = ["auto_image_size", "config_fingerprint", "load_data", "train"]

log = logging.getLogger(__name__)


load_data = load_for_config  # the loader `train` uses, by the name the worker and core.api callers know


def auto_image_size(data: LabeledData, model_name: str, full: int = 224) -> int | None:
    """`core.models.catalog.auto_image_size` for the median shorter side of the first training images."""
    if not shrinks_small_images(model_name):  # decided by the model alone: no image needs opening
        return None
    sides = sorted(min(open_image(r).size) for r in data.split("train")["input"].tolist()[:32])
    return image_size_rule(model_name, sides[len(sides) // 2] if sides else None, full)


def config_fingerprint(cfg: RunConfig) -> str:
    """Hash of everything that shapes the result; the device may change between attempts."""
    d = cfg.to_dict()
    d["train"].pop("device", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _prediction_frame(data: pd.DataFrame, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
    pred = probs.argmax(axis=1)
    df = pd.DataFrame({
        "input": data["input"].astype(str).to_numpy(),
        "label": data["label"].to_numpy(),
        "label_id": data["label_id"].to_numpy(),
        "pred": [labels[i] for i in pred],
        "pred_id": pred,
        "confidence": probs.max(axis=1),
        "correct": pred == data["label_id"].to_numpy(),
    })
    for i, name in enumerate(labels):
        df[f"prob_{name}"] = probs[:, i]
    return df


def _say_where_it_resumes(latest: Path | None, rejected: list[tuple[str, str]]) -> None:
    """Put in the log (the job's log, for the worker) what a resume found, above all a silent
    restart from scratch."""
    for name, why in rejected:
        log.warning("checkpoint %s rejected (%s)", name, why)
    if latest is not None:
        if rejected:
            log.warning("resuming from the older checkpoint %s instead", latest.name)
    elif rejected:
        log.warning("no intact checkpoint is left (%d rejected), so training restarts at step 0", len(rejected))
    else:
        log.warning("no checkpoint was saved before the interruption, so training restarts at step 0")


def train(cfg: RunConfig, runs_dir: str | Path | None = None, callbacks: Sequence[Callback] = (),
          run_id: str | None = None, resume: bool = False, owner: str = LOCAL_OWNER) -> Path:
    """Fine-tune, evaluate on the test split, save the run; return its directory.

    `owner` (a user name) is recorded in the new run folder's owner record (see core.access).

    With `resume=True` and an existing `run_id` directory, training continues from that run's newest
    intact checkpoint (or restarts it from scratch when it has none)."""
    runs_root = Path(runs_dir) if runs_dir else default_runs_dir()
    existing = runs_root / check_run_id(run_id) if run_id else None
    if existing is not None and existing.exists():
        if not resume:
            raise RunError(f"Run {run_id!r} already exists in {runs_root}; choose another run id (or resume it).")
        done = RunWriter(existing)
        if done.status().get("state") == "succeeded" and (done.path / "summary.json").is_file():
            return done.path  # finished already (e.g. its worker died just after); never retrain it
    data = load_data(cfg)
    seed_everything(cfg.train.seed)
    method = get_method(cfg.train.method)
    m = cfg.model
    model_name = resolve_model_name(m.name, data.task)
    image_size = m.image_size
    if data.task == "image" and image_size is None:
        image_size = auto_image_size(data, model_name)
    bundle = build_model(m.name, data.task, data.num_labels, pretrained=m.pretrained,
                         max_length=m.max_length, image_size=image_size, pooling=m.pooling)
    method.apply(bundle.model, cfg.train)
    trainable, total = count_params(bundle.model)
    engine = Engine(bundle, cfg.train, method)  # picks and checks the device before any write

    fingerprint = config_fingerprint(cfg)
    if resume and existing is not None and existing.is_dir():
        run = RunWriter(existing)
    else:
        run = RunWriter.create(runs_root, run_id or new_run_id(data.name, Path(model_name).name, cfg.train.method))
        write_access(run.path, Access(owner=owner))  # before anything lists it as someone's
    checkpointer = Checkpointer(run.path / "checkpoints")
    latest, rejected = checkpointer.scan()
    if resume and existing is not None and run.path == existing:
        _say_where_it_resumes(latest, rejected)
    if latest is None:  # nothing to resume from: start this run afresh
        (run.path / "metrics.jsonl").unlink(missing_ok=True)
    elif run.config().get("fingerprint") not in (None, fingerprint):
        # A checkpoint's batch position, schedule and weights only fit the settings that made it.
        raise ConfigError(f"Run {run.id} has checkpoints from a different configuration; resume it with "
                          "the same settings, or start a new run.")
    metrics_file = MetricsFile(run)
    engine.callbacks = [*callbacks, metrics_file]
    run.write_json("config.json", {
        **cfg.to_dict(), "fingerprint": fingerprint, "task": data.task, "model_name": model_name,
        "dataset_name": data.name,
        "resolved": {"lr": engine.lr, "device": str(engine.device),
                     "precision": engine.precision, "pooling": getattr(bundle.model, "pooling", None),
                     "image_size": getattr(bundle.preprocessor, "spec", None) and bundle.preprocessor.spec.size},
    })
    run.set_status("running")
    try:
        fit = engine.fit(data, checkpointer=checkpointer, extra_state=metrics_file.offset)
        bundle.model = method.finalize(bundle.model)
        engine.model = bundle.model
        test = data.split("test")
        # Saved test predictions must equal what a reloaded (fp32) model predicts.
        engine.precision = "fp32"
        probs = softmax(engine.predict_logits(test["input"].tolist(), split="test"))
        report = classification_report(probs, test["label_id"].to_numpy(), data.labels)

        def write_model(d: Path) -> None:
            # Looked up on core.models at call time (its facade reads core.models.build on every access).
            models.save_bundle(bundle, d, data.labels, {"method": cfg.train.method, "seed": cfg.train.seed})
            write_model_manifest(d)  # load_run_model refuses a model whose files no longer match

        weights = sum(t.numel() * t.element_size() for t in bundle.model.state_dict().values())
        atomic_dir(run.model_dir, write_model, need_bytes=int(1.1 * weights) + (4 << 20))  # + tokenizer, configs
        run.write_predictions(_prediction_frame(test, probs, data.labels))
        summary = {
            "run_id": run.id, "task": data.task, "model": model_name, "model_source": bundle.card.source,
            "model_licence": bundle.card.licence, "method": cfg.train.method,
            "dataset": {"name": data.name, "source": data.source, "sizes": data.sizes(),
                        "warnings": data.warnings, "fingerprint": data.fingerprint},
            "num_labels": data.num_labels, "labels": data.labels,
            "trainable_params": trainable, "total_params": total,
            "epochs": fit.epochs, "epochs_run": len(fit.history), "best_epoch": fit.best_epoch,
            "steps": fit.steps, "stopped_early": fit.stopped_early,
            "train_seconds": fit.train_seconds, "train_samples_per_second": fit.samples_per_second,
            "device": fit.device, "precision": fit.precision, "peak_memory_mb": fit.peak_memory_mb,
            "seed": cfg.train.seed, "lr": engine.lr, "model_manifest": True,  # hashes in model/manifest.json
            "host": platform.node(), "finished": time.time(),
            "validation": {k: v for k, v in fit.best_val.items() if k != "per_class"},
            "test": report,
        }
        run.write_json("summary.json", summary)
        run.set_status("succeeded")
        checkpointer.clear()  # a finished run needs no resume state; it can be large
    except TrainingCancelled:
        run.set_status("cancelled", "Cancelled by request.")
        raise
    except KeyboardInterrupt:
        run.set_status("interrupted", "Interrupted; resume it to continue from the last checkpoint.")
        raise
    except BaseException as exc:
        # A failed run is never resumed: its checkpoints only take space, often on a disk that is full.
        checkpointer.clear()
        with contextlib.suppress(OSError):  # the job row still records the failure if this cannot
            run.set_status("failed", f"{type(exc).__name__}: {exc}")
        raise
    return run.path
