"""tunescope core: data, models, fine-tuning, training, evaluation and the run store.

Headless and importable without Streamlit; the CLI (`core.cli`) and the dashboard call into it.
"""

__version__ = "0.1.0"
