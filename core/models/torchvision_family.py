"""The torchvision family: ResNet, EfficientNet-B, MobileNetV3 and ViT-B from `torchvision.models`,
their ImageNet head swapped for a new linear one. The supported names and where each keeps its
head are in `catalog.TORCHVISION_HEADS`. No Hugging Face class exists for them, so they export
in tunescope's own format. (Not named `torchvision.py`: that would shadow the package.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import ModelError, ModelUnavailableError
from core.models.base import (
    Classifier,
    ModelBundle,
    conv_targets,
    get_attr,
    open_image,
    saved_image_preprocessor,
    set_attr,
)
from core.models.catalog import TORCHVISION_HEADS, ModelCard
from core.models.hub import NETWORK_TIMEOUT_S, network_timeout
from core.models.preprocess import ImagePreprocessor, ImageSpec


class TorchvisionClassifier(Classifier):
    task = "image"
    family = "torchvision"

    def __init__(self, name: str, net: nn.Module, num_labels: int) -> None:
        super().__init__()
        head_path, self._blocks_kind = TORCHVISION_HEADS.get(name, (None, None)) or (None, None)
        if head_path is None:
            raise ModelError(f"torchvision model {name!r} is not supported; choose one of "
                             f"{', '.join(sorted(TORCHVISION_HEADS))}.")
        self.name = name
        old = get_attr(net, head_path)
        set_attr(net, head_path, nn.Identity())
        self.backbone = net
        self.classifier = nn.Linear(old.in_features, num_labels)

    def features(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.backbone(batch["pixel_values"])

    def head_forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.classifier(feats)

    def blocks(self) -> list[nn.Module]:
        b = self.backbone
        if self._blocks_kind == "resnet":
            return [b.layer1, b.layer2, b.layer3, b.layer4]
        if self._blocks_kind == "vit":
            return list(b.encoder.layers)
        return list(b.features)

    def cam_layer(self) -> nn.Module | None:
        if self._blocks_kind == "vit":
            return None
        return self.backbone.layer4 if self._blocks_kind == "resnet" else self.backbone.features[-1]

    def head_modules(self) -> list[nn.Module]:
        return [self.classifier]

    def lora_targets(self) -> list[str]:
        if self._blocks_kind == "vit":
            return [f"backbone.{n}" for n, m in self.backbone.named_modules()
                    if isinstance(m, nn.Linear) and ".mlp." in n]
        return conv_targets(self, "backbone")

    def arch_spec(self) -> dict[str, Any]:
        return {"family": self.family, "name": self.name, "num_labels": self.classifier.out_features}


def _torchvision(name: str, pretrained: bool) -> nn.Module:
    import torchvision

    if name not in TORCHVISION_HEADS:
        raise ModelError(f"torchvision model {name!r} is not supported; choose one of "
                         f"{', '.join(sorted(TORCHVISION_HEADS))}.")
    if not pretrained:
        return torchvision.models.get_model(name, weights=None)
    try:
        with network_timeout(NETWORK_TIMEOUT_S):
            return torchvision.models.get_model(name, weights="DEFAULT")
    except (OSError, RuntimeError) as exc:
        raise ModelUnavailableError(
            f"The pretrained torchvision weights for {name!r} are not on this machine and could not be "
            f"downloaded ({type(exc).__name__}). Put the weight file in {torch.hub.get_dir()}/checkpoints, "
            "or use the offline default model efficientnet_lite0.") from exc


def build(name: str, num_labels: int, *, pretrained: bool, image_size: int | None, **_: Any) -> ModelBundle:
    tv_name = name.removeprefix("torchvision:")
    net = _torchvision(tv_name, pretrained)
    model = TorchvisionClassifier(tv_name, net, num_labels)
    card = ModelCard(name, "image", TorchvisionClassifier.family, tv_name, f"torchvision: {tv_name}",
                     "BSD-3-Clause (torchvision)")
    spec = ImageSpec(image_size or 224)
    return ModelBundle(model, ImagePreprocessor(spec, open_image), "image", name, card)


def save_parts(bundle: ModelBundle, directory: Path, spec: dict[str, Any]) -> None:
    """Nothing beyond the weights: the architecture is torchvision's, named in the spec."""


def load(directory: Path, spec: dict[str, Any], num_labels: int,
         attn_implementation: str | None = None) -> tuple[Classifier, ImagePreprocessor]:
    pre = saved_image_preprocessor(spec)
    name = spec["arch"]["name"]
    return TorchvisionClassifier(name, _torchvision(name, False), num_labels), pre


def export_hf(model: Classifier, bundle: ModelBundle, labels: list[str], out: Path) -> None:
    """No Hugging Face class exists: tunescope's own format."""
    return None
