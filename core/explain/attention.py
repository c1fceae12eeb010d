"""Attention maps: every layer × head for one input, and attention rollout (Abnar & Zuidema 2020).

Text models are switched to eager attention (SDPA kernels return no weights); the view is capped
at `max_tokens` tokens with a note when the text was longer. The rollout shown is the one the
prediction rests on: the [CLS] row for cls/pooler classifiers, the mean of the tokens' rows for
mean pooling (`AttentionMaps.pooled_rollout`). ViT-style image models give per-layer
[CLS] attention and rollout over the patch grid, shaped for an overlay on the image. Convolutional
models have no attention and say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import ModelError
from core.explain.catalog import DEFAULT_MAX_TOKENS
from core.explain.model_access import COMPUTE_LOCK, as_run, load_target
from core.explain.targets import ImageTarget, TextTarget
from core.runs import Run


@dataclass
class AttentionMaps:
    task: str
    attentions: np.ndarray  # (layers, heads, T, T); rows attend to columns
    rollout: np.ndarray  # (T, T)
    tokens: list[str]
    truncated: bool = False
    n_tokens: int = 0
    max_tokens: int = DEFAULT_MAX_TOKENS
    grid: int = 0  # image: patches per side
    image: np.ndarray | None = None  # image: (S, S, 3) uint8
    pooling: str = "cls"  # how the classifier reads the sequence: "mean", "cls" or "pooler" (also [CLS])
    real: np.ndarray | None = None  # (T,) bool: the tokens that are not padding; None = all

    @property
    def rollout_row(self) -> str:
        """Which rollout the model's prediction rests on: "mean" (the average over the real tokens'
        rows, for a mean-pooling classifier) or "cls" (the [CLS] row, for cls and pooler)."""
        return "mean" if self.pooling == "mean" else "cls"

    @property
    def layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def heads(self) -> int:
        return int(self.attentions.shape[1])

    def cls_rollout(self) -> np.ndarray:
        """How much the [CLS] position draws on each token (or patch) through all layers."""
        return self.rollout[0]

    def pooled_rollout(self) -> np.ndarray:
        """How much what the classifier reads draws on each token through all layers: the [CLS]
        row, or for mean pooling the mean of the real (non-padding) tokens' rows, as pooling does."""
        if self.rollout_row == "cls":
            return self.cls_rollout()
        real = np.ones(self.rollout.shape[0], dtype=bool) if self.real is None else np.asarray(self.real, bool)
        return self.rollout[real].mean(axis=0)

    def cls_patch_maps(self) -> np.ndarray:
        """Image models: (layers + 1, grid, grid): each layer's head-averaged [CLS] attention to the
        patches, then the rollout; scaled to sum to 1 per map."""
        g = self.grid
        # Patches are the last g² tokens: [CLS] comes first, then any distillation/register tokens.
        first = self.attentions.mean(axis=1)[:, 0, -g * g:]
        maps = np.concatenate([first, self.rollout[0:1, -g * g:]], axis=0)
        maps = maps / np.clip(maps.sum(axis=1, keepdims=True), 1e-12, None)
        return maps.reshape(-1, g, g)


def rollout(attentions: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout: average heads, add the residual path, renormalise rows, multiply up the
    layers. `attentions`: (layers, heads, T, T)."""
    n = attentions.shape[-1]
    out = np.eye(n)
    for layer in attentions:
        a = residual * np.eye(n) + (1 - residual) * layer.mean(axis=0)
        a = a / a.sum(axis=-1, keepdims=True)
        out = a @ out
    return out


def _text_attention(target: TextTarget, max_tokens: int) -> AttentionMaps:
    model = target.model
    encoder = model.encoder
    if getattr(encoder.config, "_attn_implementation", "eager") != "eager":
        encoder.set_attn_implementation("eager")  # same outputs as SDPA, and it returns the weights
    with torch.no_grad():
        out = model.encode(input_ids=target.input_ids, attention_mask=target.attention_mask,
                           token_type_ids=target.token_type_ids, output_attentions=True)
    atts = getattr(out, "attentions", None)
    if not atts:
        raise ModelError(f"{type(encoder).__name__} does not return attention weights; use attributions.")
    a = torch.stack([x[0] for x in atts]).float().cpu().numpy()
    real = target.attention_mask[0].bool().cpu().numpy()
    return AttentionMaps("text", a, rollout(a), target.tokens, target.truncated, target.n_tokens_total, max_tokens,
                         pooling=str(getattr(model, "pooling", "cls")), real=real)


def _image_attention(target: ImageTarget) -> AttentionMaps:
    backbone = getattr(target.model, "backbone", None)
    config = getattr(backbone, "config", None)
    if getattr(target.model, "_blocks_kind", None) == "vit":
        raise ModelError("torchvision's ViT does not return its attention weights; use a Hugging Face ViT for "
                         "attention maps, or attributions (Integrated Gradients, Saliency) for this model.")
    embeddings = getattr(backbone, "embeddings", None)
    patches = hasattr(embeddings, "patch_embeddings") or hasattr(embeddings, "patch_embedding")  # ViT / SigLIP
    if backbone is None or config is None or not patches:
        raise ModelError("This image model is convolutional: it has no attention to show. Use GradCAM or "
                         "another attribution method instead.")
    if getattr(config, "_attn_implementation", "eager") != "eager":
        backbone.set_attn_implementation("eager")
    with torch.no_grad():
        out = backbone(pixel_values=target.pixels, output_attentions=True)
    atts = getattr(out, "attentions", None)
    if not atts:
        raise ModelError(f"{type(backbone).__name__} does not return attention weights; use attributions.")
    if len({tuple(x.shape) for x in atts}) > 1:  # Swin and friends attend within (shifting) windows
        raise ModelError(f"{type(backbone).__name__} attends within local windows, so it has no whole-image "
                         "attention map; use attributions (Integrated Gradients, Saliency, Occlusion) instead.")
    if getattr(target.model, "pooling", "cls") not in ("cls", "legacy"):
        # Patch maps and rollout are read from a [CLS] row; this model decides from pooled patches instead.
        raise ModelError(f"{type(backbone).__name__} does not decide from a [CLS] token, so a [CLS] attention map "
                         "would show something it does not use; use attributions for this model instead.")
    a = torch.stack([x[0] for x in atts]).float().cpu().numpy()
    n_patches = a.shape[-1] - 1
    grid = int(round(n_patches ** 0.5))
    if grid * grid != n_patches:  # extra tokens (distillation / registers) before the patches
        grid = int(np.floor(n_patches ** 0.5))
    tokens = ["[CLS]", *(f"patch {i}" for i in range(a.shape[-1] - 1))]
    return AttentionMaps("image", a, rollout(a), tokens, grid=grid, image=target.image)


def attention(run: str | Path | Run, value: Any, *, runs_dir: str | Path | None = None,
              max_tokens: int = DEFAULT_MAX_TOKENS, device: str = "auto") -> AttentionMaps:
    """All layers × heads of attention for `value` under `run`'s model."""
    r = as_run(run, runs_dir)
    with COMPUTE_LOCK:
        target, _, _ = load_target(r, value, max_tokens=max_tokens, device=device)
        if isinstance(target, TextTarget):
            return _text_attention(target, max_tokens)
        return _image_attention(target)
