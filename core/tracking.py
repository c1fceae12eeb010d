"""Optional experiment tracking: when MLflow is installed and a tracking URI is given
(`tunescope train --mlflow URI`, or `$TUNESCOPE_MLFLOW_URI` for the worker), each finished run also
logs its parameters, per-epoch and test metrics, and its small files (config, summary, metrics,
predictions) there. tunescope's own run directory stays the source of truth; a tracking failure
never fails the run."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.runs import Run

ENV = "TUNESCOPE_MLFLOW_URI"
ARTIFACTS = ("config.json", "summary.json", "metrics.jsonl", "predictions.parquet")


def tracking_uri(given: str | None = None) -> str | None:
    return given or os.environ.get(ENV) or None


def _flat(prefix: str, d: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flat(f"{key}.", v, out)
        elif v is not None:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def log_run(run_dir: str | Path, uri: str) -> str:
    """Log a finished run to MLflow at `uri`; returns the MLflow run id."""
    try:
        import mlflow
    except ImportError as exc:
        raise ConfigError("Logging to MLflow needs MLflow: run `pip install mlflow` (or turn MLflow logging "
                          "off).") from exc
    run = Run(Path(run_dir))
    cfg, summary = run.config(), run.summary()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(f"tunescope-{(summary.get('dataset') or {}).get('name') or 'runs'}")
    with mlflow.start_run(run_name=run.id) as active:
        params = _flat("", {k: cfg.get(k) for k in ("data", "model", "train")}, {})
        params.update({"method": summary.get("method"), "base_model": summary.get("model"),
                       "trainable_params": summary.get("trainable_params")})
        mlflow.log_params({k: v for k, v in params.items() if v is not None})
        for row in run.metrics()[0]:
            if row.get("type") == "epoch":
                mlflow.log_metrics({k: float(v) for k, v in row.items() if k.startswith(("val_", "train_"))
                                    and isinstance(v, (int, float))}, step=int(row.get("step", 0)))
        test = summary.get("test") or {}
        mlflow.log_metrics({f"test_{k}": float(test[k]) for k in ("accuracy", "macro_f1", "weighted_f1", "ece", "loss")
                            if isinstance(test.get(k), (int, float))})
        for name in ARTIFACTS:
            if (run.path / name).is_file():
                mlflow.log_artifact(str(run.path / name))
        mlflow.set_tags({"tunescope.run_id": run.id, "tunescope.task": str(summary.get("task"))})
        return active.info.run_id


def maybe_log(run_dir: Path, given: str | None = None) -> str | None:
    """Log to MLflow when a URI is configured; report (not raise) any tracking failure."""
    uri = tracking_uri(given)
    if not uri:
        return None
    try:
        mlflow_id = log_run(run_dir, uri)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a tracking server's trouble must not fail a finished run
        print(f"tunescope: warning: could not log run {Path(run_dir).name} to MLflow at {uri}: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    print(f"logged to MLflow ({uri}): run {mlflow_id}", file=sys.stderr)
    return mlflow_id
