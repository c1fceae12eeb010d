"""tunescope core: the headless library behind the CLI and the dashboard, importable without Streamlit.

Packages by concern: `data` (loading and validating datasets), `models` (model families and their
catalog), `train` (pipeline, engine, checkpoints, estimates, training jobs), `jobs` (the queue and the
worker), `explain` (attributions, attention, sanity checks), `cli` (the `tunescope` command); flat
modules for single concerns (`config`, `finetune`, `inference`, `compare`, `report`, `runs` ...).
ARCHITECTURE.md has the map. May import: nothing above it; `core` never imports the dashboard, and
the import rules between its packages are the contracts in pyproject.toml.
"""

__version__ = "0.1.0"
