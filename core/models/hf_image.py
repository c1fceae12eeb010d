"""The Hugging Face image family: any `AutoModel` vision backbone (ViT, DeiT, Swin, ConvNeXt,
DINOv2, the vision tower of CLIP or SigLIP, ...) with a linear head on one pooled vector.

How a backbone pools is decided once, when it is built, and saved with the run: the [CLS] token
where the architecture classifies from it, else the model's own pooled output, else the mean.
ViT-like runs export as `AutoModelForImageClassification` when that class predicts identically.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import ModelError, RunError
from core.models.base import (
    Classifier,
    ModelBundle,
    conv_targets,
    get_attr,
    label_maps,
    linear_names,
    open_image,
    saved_image_preprocessor,
)
from core.models.catalog import ModelCard
from core.models.hub import hf_load
from core.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, ImagePreprocessor, ImageSpec

# Architectures whose own classification head reads the [CLS] token: their `pooler_output`, where
# there is one, is an untrained dense + tanh layer (ViT, DeiT) or that same token (DINOv2).
CLS_TOKEN_IMAGE_TYPES = frozenset({"vit", "deit", "vit_msn", "vit_hybrid", "dinov2", "dinov2_with_registers",
                                   "dinov3_vit", "pvt"})
# "legacy" is how runs saved before the pooling was recorded were trained (token 0 of any token
# sequence, which for Swin or SigLIP is one patch); only their specs, which lack the key, get it.
IMAGE_POOLINGS = ("cls", "pooler", "mean", "legacy")


def _pooled_output(out: Any) -> torch.Tensor | None:
    """The model's own pooled image vector, if its output has one."""
    for key in ("image_embeds", "pooler_output"):
        value = getattr(out, key, None)
        if isinstance(value, torch.Tensor):
            return value
    return None


def _config_width(config: Any) -> int | None:
    width = getattr(config, "hidden_size", None) or (config.hidden_sizes[-1] if getattr(config, "hidden_sizes", None)
                                                      else None)
    return int(width) if width else None


def _probe_image_backbone(backbone: nn.Module) -> Any:
    """One forward pass on a blank image of the configured size, to see what the backbone returns."""
    cfg = backbone.config
    size = getattr(cfg, "image_size", None) or 224
    h, w = (int(size[0]), int(size[-1])) if isinstance(size, (list, tuple)) else (int(size), int(size))
    param = next(backbone.parameters())
    pixels = torch.zeros(1, int(getattr(cfg, "num_channels", 3) or 3), h, w, dtype=param.dtype, device=param.device)
    was_training = backbone.training
    backbone.eval()  # BatchNorm in training mode would fold the blank image into its statistics
    try:
        with torch.no_grad():
            return backbone(pixel_values=pixels)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ModelError(f"{type(backbone).__name__} does not run on a {h}x{w} image "
                         f"({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}); "
                         "it cannot be used as an image backbone.") from None
    finally:
        backbone.train(was_training)


def choose_image_pooling(backbone: nn.Module) -> tuple[str, int | None]:
    """How a Hugging Face image backbone's output becomes one feature vector, and that vector's size:
    the [CLS] token where the architecture classifies from it, else the model's own pooled output,
    else the mean over tokens or spatial positions."""
    if getattr(backbone.config, "model_type", "") in CLS_TOKEN_IMAGE_TYPES:
        return "cls", _config_width(backbone.config)
    out = _probe_image_backbone(backbone)
    pooled = _pooled_output(out)
    if pooled is not None:
        return "pooler", int(pooled.flatten(1).shape[1])
    hidden = out.last_hidden_state
    return "mean", int(hidden.shape[-1] if hidden.dim() == 3 else hidden.shape[1])


def _is_vit_like(backbone: nn.Module) -> bool:
    """Patches, not feature maps: no GradCAM layer, and a Hugging Face image head may fit."""
    return hasattr(getattr(backbone, "embeddings", None), "patch_embeddings")


class HFImageClassifier(Classifier):
    task = "image"
    family = "hf-image"
    LORA_SUFFIXES = ("query", "value", "q_proj", "v_proj", "qkv")
    LAYER_PATHS = ("encoder.layer", "encoder.layers", "encoder.stages", "stages", "layers", "blocks")

    def __init__(self, backbone: nn.Module, num_labels: int, dropout: float = 0.0, pooling: str = "auto",
                 width: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        if pooling == "auto":
            pooling, width = choose_image_pooling(backbone)
        if pooling not in IMAGE_POOLINGS:
            raise ModelError(f"Unknown image pooling {pooling!r}; expected one of {', '.join(IMAGE_POOLINGS)}.")
        self.pooling = pooling
        hidden = width or _config_width(backbone.config)
        if hidden is None:
            raise ModelError(f"Cannot tell the feature size of {type(backbone).__name__}.")
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_labels)

    def features(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.pool(self.backbone(pixel_values=batch["pixel_values"]))

    def pool(self, out: Any) -> torch.Tensor:
        """The backbone's output (a transformers ModelOutput) as one vector per image."""
        hidden = out.last_hidden_state
        if self.pooling == "cls" or (self.pooling == "legacy" and hidden.dim() == 3):
            return hidden[:, 0]
        if self.pooling == "mean":
            return hidden.mean(dim=1) if hidden.dim() == 3 else hidden.mean(dim=(2, 3))
        pooled = _pooled_output(out) if self.pooling == "pooler" else getattr(out, "pooler_output", None)
        if pooled is None:
            if self.pooling == "pooler":
                raise ModelError(f"{type(self.backbone).__name__} returned no pooled output, which this "
                                 "model was trained on.")
            return hidden.mean(dim=(2, 3))
        return pooled.flatten(1)

    def head_forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(feats))

    def blocks(self) -> list[nn.Module]:
        for path in self.LAYER_PATHS:
            with contextlib.suppress(AttributeError, IndexError, ValueError):
                layers = get_attr(self.backbone, path)
                if isinstance(layers, nn.ModuleList) and len(layers):
                    return list(layers)
        raise ModelError(f"Cannot find the blocks of {type(self.backbone).__name__} for top-k.")

    def cam_layer(self) -> nn.Module | None:
        if _is_vit_like(self.backbone):
            return None
        with contextlib.suppress(ModelError):
            return self.blocks()[-1]
        return None

    def head_modules(self) -> list[nn.Module]:
        return [self.classifier]

    def lora_targets(self) -> list[str]:
        names = [f"backbone.{n}" for n in linear_names(self.backbone, self.LORA_SUFFIXES)]
        return names or conv_targets(self, "backbone")

    def arch_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"family": self.family, "num_labels": self.classifier.out_features}
        if self.pooling != "legacy":  # an old model saved again must still read as one
            spec.update(pooling=self.pooling, width=self.classifier.in_features)
        return spec


def _image_spec_from_processor(processor: Any, image_size: int | None) -> ImageSpec:
    size = image_size
    if size is None:
        s = getattr(processor, "size", None) or {}
        if isinstance(s, int):
            size = s
        else:  # a dict or transformers' SizeDict (attributes, not keys)
            def pick(key: str) -> Any:
                return s.get(key) if isinstance(s, dict) else getattr(s, key, None)

            size = pick("height") or pick("shortest_edge") or 224
    mean = tuple(getattr(processor, "image_mean", None) or IMAGENET_MEAN)
    std = tuple(getattr(processor, "image_std", None) or IMAGENET_STD)
    return ImageSpec(int(size), mean, std)  # type: ignore[arg-type]


def build(name: str, num_labels: int, *, pretrained: bool, image_size: int | None, **_: Any) -> ModelBundle:
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    processor = hf_load(AutoImageProcessor.from_pretrained, name)
    config = hf_load(AutoConfig.from_pretrained, name)
    vision = getattr(config, "vision_config", None)
    if vision is not None and getattr(config, "text_config", None) is not None:
        # Dual encoders (CLIP, SigLIP) only run their full forward with text as well; the image side
        # is their vision tower, which loads from the same checkpoint and saves as a plain backbone.
        from transformers.models.auto.modeling_auto import MODEL_MAPPING

        if type(vision) not in MODEL_MAPPING:
            raise ModelError(f"{name!r} is a {config.model_type} model whose vision tower transformers cannot "
                             "load on its own; use an image model.")
        tower = MODEL_MAPPING[type(vision)]
        backbone = hf_load(tower.from_pretrained, name) if pretrained else AutoModel.from_config(vision)
    elif pretrained:
        backbone = hf_load(AutoModel.from_pretrained, name)
    else:
        backbone = AutoModel.from_config(config)
    model = HFImageClassifier(backbone, num_labels)
    card = ModelCard(name, "image", HFImageClassifier.family, name, f"Hugging Face: {name}", "see the model's card")
    spec = _image_spec_from_processor(processor, image_size)
    return ModelBundle(model, ImagePreprocessor(spec, open_image), "image", name, card)


def save_parts(bundle: ModelBundle, directory: Path, spec: dict[str, Any]) -> None:
    """The backbone's config: with the weights, all a reload needs offline."""
    bundle.model.backbone.config.save_pretrained(directory / "backbone")


def load(directory: Path, spec: dict[str, Any], num_labels: int,
         attn_implementation: str | None = None) -> tuple[Classifier, ImagePreprocessor]:
    from transformers import AutoConfig, AutoModel

    arch = spec["arch"]
    pre = saved_image_preprocessor(spec)
    backbone = AutoModel.from_config(AutoConfig.from_pretrained(directory / "backbone"))
    model = HFImageClassifier(backbone, num_labels, pooling=arch.get("pooling", "legacy"), width=arch.get("width"))
    return model, pre


# -- export ----------------------------------------------------------------------------------------

def export_hf(model: HFImageClassifier, bundle: ModelBundle, labels: list[str], out: Path) -> str | None:
    """ViT-like runs as `AutoModelForImageClassification`; None (tunescope's own format) for others."""
    if not _is_vit_like(model.backbone):
        return None
    return _export_vit(model, bundle, labels, out)


def _export_vit(model: Any, bundle: Any, labels: list[str], out: Path) -> str:
    from transformers import AutoModelForImageClassification, ViTImageProcessor

    config = model.backbone.config.__class__.from_dict(model.backbone.config.to_dict())
    config.num_labels = len(labels)
    for k, v in label_maps(labels).items():
        setattr(config, k, v)
    hf = AutoModelForImageClassification.from_config(config)
    base = getattr(hf, hf.base_model_prefix)
    state = {k: v for k, v in model.backbone.state_dict().items() if not k.startswith("pooler.")}
    missing, unexpected = base.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RunError(f"{type(hf).__name__} does not match this run's backbone; export failed.")
    hf.classifier.load_state_dict(model.classifier.state_dict())
    hf.save_pretrained(out)
    spec = bundle.preprocessor.spec
    ViTImageProcessor(size={"height": spec.size, "width": spec.size}, image_mean=list(spec.mean),
                      image_std=list(spec.std), resample=2).save_pretrained(out)  # 2 = bilinear, as in training
    reloaded = AutoModelForImageClassification.from_pretrained(out).eval()
    pixels = torch.randn(2, 3, spec.size, spec.size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # e.g. Swin and DINOv2 heads pool differently from tunescope's [CLS] head
        if not torch.allclose(reloaded(pixel_values=pixels).logits, model.eval()(pixel_values=pixels), atol=1e-4):
            raise RunError("The exported model's predictions differ from the run's.")
    return f"Hugging Face {type(hf).__name__} (AutoModelForImageClassification)"
