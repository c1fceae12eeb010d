"""Explanations: attention maps, Captum attributions, and how far to trust them.

What lives where:
- `catalog`: the table of methods, one `MethodInfo` entry each (name, title, help, tasks, parameters,
  gradient-based / noise tunnel, grouped, cost in passes), and the settings shared by the form.
- `attributions`: one compute function per catalog entry (`COMPUTE`) and `attribute`, the one call.
- `targets`: a model plus one input as what Captum needs (tensor, forward, baselines, word groups).
- `model_access`: which run is meant, the lock around the shared model, the model's cache stamp,
  and `load_target` (the run's model with an input prepared for it).
- `explainer`: `explain`, the pipeline behind the page, the CLI and the jobs (predict, attribute,
  words, faithfulness, cache); `record`: the cached `Explanation` and cache keys.
- `faithfulness`, `sanity`, `agreement`: how far to trust a picture; `attention`: attention maps;
  `dataset_view`: the per-class view over many test examples.
- `timing`: cost estimates before anything runs; `jobs`: the `explain` job kind (configs built and
  read in one place, and when work is long enough for the worker); `render`: HTML and images.

`catalog`, `model_access`, `timing`, `jobs`, `render` and `dataset_view`'s readers are torch-free so
the dashboard can import them while browsing; the rest import torch.

May import: core.errors, core.runs, core.models, core.data, core.inference (to load a run's model) and
core.train (devices), core.jobs.context (what a job runner sees). Never the worker, the CLI or the dashboard.
"""
