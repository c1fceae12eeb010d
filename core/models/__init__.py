"""Models: the pretrained classifier families tunescope fine-tunes, behind one catalog.

- `catalog` (torch-free): the built-in model cards, the torchvision names, the table of families
  (`FAMILIES`: one line each) and which family serves a name.
- `base`: the classifier interface (`Classifier`), `ModelBundle`, helpers the families share.
- one module per family: `hf_text`, `hf_image`, `torchvision_family`, `efficientnet_lite`; each
  builds, saves the extra parts of, reloads and exports its own classifiers.
- `build`: `build_model`, `save_bundle`, `load_bundle`, which dispatch through the catalog.
- `hub` (torch-free): loading from a local folder, the Hugging Face cache or the network.
- `preprocess`: texts and images into tensors.

Importing `core.models` never imports torch: the names below other than the catalog's load on first
use (PEP 562), so torch-free callers (the dashboard, config validation) can read the catalog here.
May import: core.errors, core.runs, core.data (image reading); never train/jobs/explain/cli/dashboard.
"""

from __future__ import annotations

import importlib
from typing import Any

from core.models.catalog import (
    BUILTIN_CARDS,
    DEFAULT_IMAGE_MODEL,
    DEFAULT_TEXT_MODEL,
    FAMILIES,
    TORCHVISION_HEADS,
    ModelCard,
    family_of,
    list_builtin_models,
    minilm_dir,
    resolve_model_name,
)

# name -> module it lives in; read on every access (not cached), so monkeypatching the module works.
_LAZY = {
    "Classifier": "core.models.base",
    "ModelBundle": "core.models.base",
    "TextClassifier": "core.models.hf_text",
    "HFImageClassifier": "core.models.hf_image",
    "CLS_TOKEN_IMAGE_TYPES": "core.models.hf_image",
    "IMAGE_POOLINGS": "core.models.hf_image",
    "choose_image_pooling": "core.models.hf_image",
    "TorchvisionClassifier": "core.models.torchvision_family",
    "EfficientNetLiteClassifier": "core.models.efficientnet_lite",
    "build_model": "core.models.build",
    "save_bundle": "core.models.build",
    "load_bundle": "core.models.build",
    "MODEL_FILE": "core.models.build",
    "SPEC_FILE": "core.models.build",
    "NETWORK_TIMEOUT_S": "core.models.hub",
    "IMAGENET_MEAN": "core.models.preprocess",
    "IMAGENET_STD": "core.models.preprocess",
    "ImagePreprocessor": "core.models.preprocess",
    "ImageSpec": "core.models.preprocess",
    "TextPreprocessor": "core.models.preprocess",
}

__all__ = ["BUILTIN_CARDS", "DEFAULT_IMAGE_MODEL", "DEFAULT_TEXT_MODEL", "FAMILIES", "TORCHVISION_HEADS",
           "ModelCard", "family_of", "list_builtin_models", "minilm_dir", "resolve_model_name", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'core.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
