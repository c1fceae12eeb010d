"""Training: from a RunConfig to a finished run directory.

- `pipeline`: `train` (re-exported as `core.api.train`): load, build, apply the fine-tune method, fit,
  save the model, predictions and summary; resumes from checkpoints.
- `engine`: the training loop (`Engine`), device and precision choice, prediction batches.
- `callbacks`: the hooks the engine calls (`Callback`, `TrainState`), `MetricsFile` and the
  metrics.jsonl resume rule (`merge_metric_rows`); torch-free.
- `checkpoint`: resumable checkpoints of a run.
- `resources`: memory and time estimates, torch-free at import.
- `submit`: checking a training config against its data, model and device, expanding seeds and grids,
  and queueing the jobs (`submit_training`).
- `runner`: the `train` job kind: memory check, out-of-memory retry with a smaller batch, then
  `pipeline.train` with the job's context as its callback.

The fine-tune method table lives one level down, in `core.finetune`, because `core.config` (a base
module) validates method names against it.
May import: base modules (config, finetune, data, models, runs, metrics, errors); core.jobs for
`context` (a runner's view), `queue` and `store` (submitting); never the worker, core.explain, core.cli or
the dashboard. Importing this package imports no module.
"""
