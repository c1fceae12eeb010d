"""The one road from a model name or a saved folder to a classifier: `build_model` picks the family
from the catalog and lets its module build; `save_bundle` and `load_bundle` write and read the
saved form (an architecture spec plus safetensors weights), each family adding what it needs.

Reloading never needs the hub, never unpickles, and never runs remote code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import ModelError
from core.models.base import ModelBundle
from core.models.catalog import FAMILIES, ModelCard, family_module, family_of, resolve_model_name
from core.models.preprocess import ImagePreprocessor

MODEL_FILE = "model.safetensors"
SPEC_FILE = "tunescope_model.json"


def build_model(name: str | None, task: str, num_labels: int, *, pretrained: bool = True,
                max_length: int = 128, image_size: int | None = None, pooling: str = "auto",
                attn_implementation: str | None = None) -> ModelBundle:
    """Build a fresh classifier with a new `num_labels`-way head on a (pretrained) backbone."""
    name = resolve_model_name(name, task)
    return family_module(family_of(name, task)).build(
        name, num_labels, pretrained=pretrained, max_length=max_length, image_size=image_size,
        pooling=pooling, attn_implementation=attn_implementation)


def save_bundle(bundle: ModelBundle, directory: Path, labels: list[str], extra: dict[str, Any]) -> None:
    """Write weights + everything needed to rebuild the architecture offline into `directory`."""
    from safetensors.torch import save_model

    directory.mkdir(parents=True, exist_ok=True)
    model = bundle.model
    spec = {"task": bundle.task, "base_model": bundle.base_model, "labels": labels,
            "arch": model.arch_spec(), "card": bundle.card.__dict__, **extra}
    family_module(model.family).save_parts(bundle, directory, spec)
    if isinstance(bundle.preprocessor, ImagePreprocessor):
        spec["image_spec"] = json.loads(bundle.preprocessor.spec.to_json())
    save_model(model, str(directory / MODEL_FILE))
    (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2))


def load_bundle(directory: Path, attn_implementation: str | None = None) -> tuple[ModelBundle, list[str]]:
    """Rebuild a saved classifier from its spec and safetensors weights (no hub, no pickle)."""
    from safetensors.torch import load_model

    spec_path = directory / SPEC_FILE
    if not spec_path.is_file():
        raise ModelError(f"{directory} is not a saved tunescope model (no {SPEC_FILE}).")
    spec = json.loads(spec_path.read_text())
    labels = spec["labels"]
    card = ModelCard(**spec["card"])
    family = spec["arch"]["family"]
    if family not in FAMILIES:
        raise ModelError(f"Unknown model family {family!r} in {spec_path}.")
    model, pre = family_module(family).load(directory, spec, len(labels), attn_implementation)
    missing, unexpected = load_model(model, str(directory / MODEL_FILE), strict=False)
    if missing or unexpected:
        raise ModelError(f"The weights in {directory / MODEL_FILE} do not match the saved architecture "
                         f"(missing {len(missing)}, unexpected {len(unexpected)} tensors).")
    model.eval()
    return ModelBundle(model, pre, spec["task"], spec["base_model"], card), labels
