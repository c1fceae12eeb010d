"""The classifier interface every family implements, the bundle that pairs a classifier with its
preprocessor, and the small module-surgery helpers the families share.

Every classifier is split into `features(batch)` (the pretrained backbone plus pooling) and
`head_forward(features)` (what a linear probe trains), so a frozen backbone's features can be
computed once and the head trained on the cache. Each also names its `blocks()` in input→output
order (for top-k fine-tuning) and its `lora_targets()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.errors import ModelError
from core.models.catalog import ModelCard
from core.models.preprocess import ImagePreprocessor, ImageSpec, TextPreprocessor


class Classifier(nn.Module):
    """Common surface of every family."""

    task: str = ""
    family: str = ""

    def features(self, **batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def head_forward(self, feats: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def width(self) -> int:
        """Size of the feature vector the head sees (sets default learning rates)."""
        return int(self.head_modules()[0].in_features)

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.head_forward(self.features(**batch))

    def blocks(self) -> list[nn.Module]:
        raise NotImplementedError

    def head_modules(self) -> list[nn.Module]:
        raise NotImplementedError

    def lora_targets(self) -> list[str]:
        raise NotImplementedError

    def embedding_modules(self) -> list[nn.Module]:
        """Input token tables, which full fine-tuning leaves frozen unless asked (none for images)."""
        return []

    def cam_layer(self) -> nn.Module | None:
        """The last convolutional stage, whose maps GradCAM weighs; None for transformers."""
        return None

    def always_trainable(self) -> list[nn.Module]:
        """Modules kept trainable under LoRA besides the head (e.g. BatchNorm in CNNs)."""
        return [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def arch_spec(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class ModelBundle:
    """A classifier together with what turns raw inputs into its batches."""

    model: Classifier
    preprocessor: TextPreprocessor | ImagePreprocessor
    task: str
    base_model: str
    card: ModelCard

    def num_params(self) -> tuple[int, int]:
        total = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return trainable, total


def get_attr(obj: Any, path: str) -> Any:
    """`obj.a.0.b` for the dotted path "a.0.b" (digits index into lists)."""
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def set_attr(obj: Any, path: str, value: Any) -> None:
    parent_path, _, last = path.rpartition(".")
    parent = get_attr(obj, parent_path) if parent_path else obj
    if last.isdigit():
        parent[int(last)] = value
    else:
        setattr(parent, last, value)


def linear_names(module: nn.Module, suffixes: tuple[str, ...]) -> list[str]:
    return [name for name, m in module.named_modules()
            if isinstance(m, nn.Linear) and name.split(".")[-1] in suffixes]


def conv_targets(root: nn.Module, prefix: str) -> list[str]:
    """Dense (non-depthwise) plain convolutions: PEFT's LoRA clones the layer's class for its
    adapters, which works for `nn.Conv2d` itself but not for subclasses with extra arguments."""
    names = [n for n, m in root.named_modules()
             if type(m) is nn.Conv2d and m.groups == 1 and n.startswith(prefix)]
    if not names:
        raise ModelError("This model has no layers LoRA can adapt; use the method full, head or topk.")
    return names


def label_maps(labels: list[str]) -> dict[str, Any]:
    """The id2label/label2id pair a Hugging Face config carries (for exports)."""
    return {"id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)}}


def open_image(ref: Any) -> Any:
    from core.data import open_image as read  # lazy: models do not depend on the loaders at import time

    return read(ref)


def saved_image_preprocessor(spec: dict[str, Any]) -> ImagePreprocessor:
    """The image preprocessor a saved image model was trained with (every image family saves one)."""
    return ImagePreprocessor(ImageSpec.from_dict(spec["image_spec"]), open_image)
