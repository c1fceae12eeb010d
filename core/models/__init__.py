"""Models: the pretrained classifier families tunescope fine-tunes, behind one catalog.

`catalog` (torch-free) names the built-in models and which family serves a name; `classifiers` holds
the torch classifiers and their save/load driver; `preprocess` turns texts and images into tensors.

Importing `core.models` never imports torch: the classifier names below load on first use (PEP 562),
so torch-free callers (the dashboard, config validation) can read the catalog through this package.
May import: core.errors, core.runs, core.data (image reading); never train/jobs/explain/cli/dashboard.
"""

from __future__ import annotations

import importlib
from typing import Any

from core.models.catalog import (
    BUILTIN_CARDS,
    DEFAULT_IMAGE_MODEL,
    DEFAULT_TEXT_MODEL,
    TORCHVISION_HEADS,
    ModelCard,
    family_of,
    list_builtin_models,
    minilm_dir,
    resolve_model_name,
)

__all__ = ["BUILTIN_CARDS", "DEFAULT_IMAGE_MODEL", "DEFAULT_TEXT_MODEL", "TORCHVISION_HEADS", "ModelCard",
           "family_of", "list_builtin_models", "minilm_dir", "resolve_model_name"]


def __getattr__(name: str) -> Any:
    # Everything else (classes, build/load/save) lives with torch in `classifiers`.
    module = importlib.import_module("core.models.classifiers")
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module 'core.models' has no attribute {name!r}") from None
