"""The Python calls behind every CLI command and dashboard action, in one place for library users:
`train` (core.train.pipeline), `submit_training` (core.train.submit) and the calls that use a
trained run, `load_run_model`, `predict` and `evaluate` (core.inference).

    from core import api
    run_dir = api.train(RunConfig(...))
    api.predict(run_dir, ["a sentence"])

The top of the library: nothing in `core` imports it except the CLI.
May import: the feature modules it re-exports; never core.cli or the dashboard.
"""

from __future__ import annotations

from core.inference import MAX_LOADED_MODELS, evaluate, load_run_model, predict
from core.train.callbacks import MetricsFile
from core.train.pipeline import auto_image_size, config_fingerprint, load_data, train
from core.train.submit import submit_training

__all__ = ["MAX_LOADED_MODELS", "MetricsFile", "auto_image_size", "config_fingerprint", "evaluate", "load_data",
           "load_run_model", "predict", "submit_training", "train"]
