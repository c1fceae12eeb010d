"""Hugging Face image backbones pooled the way each architecture pools: [CLS] for ViT-like models,
the model's own pooled output (Swin, ConvNeXt, SigLIP, ...), a mean otherwise; and runs saved before
tunescope recorded the pooling keep predicting exactly as they were trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from core.models import build_model, load_bundle, save_bundle

# One stage-2 window of this Swin covers exactly one quarter of a 64 px image, so its token 0 never
# sees the other three quarters: the shape of the bug, not an artefact of the tiny size.
SWIN = {"image_size": 64, "patch_size": 4, "embed_dim": 16, "depths": [1, 1], "num_heads": [1, 2],
        "window_size": 4}


def write_tiny_backbone(d: Path, config: object, size: int) -> Path:
    """A random backbone from `config` plus an image processor, saved as a local model folder."""
    from transformers import AutoModel, ViTImageProcessor

    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(d)
    ViTImageProcessor(size={"height": size, "width": size}).save_pretrained(d)
    return d


def write_tiny_swin(d: Path) -> Path:
    from transformers import SwinConfig

    return write_tiny_backbone(d, SwinConfig(**SWIN), 64)


@pytest.fixture(scope="module")
def tiny_swin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_swin(tmp_path_factory.mktemp("tiny-swin"))


def _image_pair(size: int) -> tuple[Image.Image, Image.Image]:
    """A random image and the same image with its bottom-right quarter inverted."""
    a = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    b = a.copy()
    b[size // 2:, size // 2:] = 255 - b[size // 2:, size // 2:]
    return Image.fromarray(a), Image.fromarray(b)


def _features_and_outputs(bundle, images: list[Image.Image]) -> tuple[torch.Tensor, object]:
    batch = bundle.preprocessor.collate(images)
    with torch.no_grad():
        return bundle.model.eval().features(**batch), bundle.model.backbone(**batch)


def test_swin_uses_its_pooled_output_and_sees_the_whole_image(tiny_swin_dir: Path) -> None:
    bundle = build_model(str(tiny_swin_dir), "image", 3)
    feats, out = _features_and_outputs(bundle, list(_image_pair(64)))
    assert (feats[0] - feats[1]).abs().max() > 1e-3  # token 0 alone changed by exactly 0.0 here
    torch.testing.assert_close(feats, out.pooler_output, rtol=0, atol=0)
    assert bundle.model.pooling == "pooler"
    assert bundle.model.classifier.in_features == feats.shape[1] == 32


def test_vit_keeps_its_cls_token(tiny_vit_dir: Path) -> None:
    bundle = build_model(str(tiny_vit_dir), "image", 2)
    feats, out = _features_and_outputs(bundle, list(_image_pair(32)))
    torch.testing.assert_close(feats, out.last_hidden_state[:, 0], rtol=0, atol=0)
    assert (feats[0] - feats[1]).abs().max() > 1e-3
    assert bundle.model.pooling == "cls"


@pytest.mark.parametrize("kind", ["convnext", "siglip", "ijepa"])
def test_other_backbones_pool_their_own_way(kind: str, tmp_path: Path) -> None:
    import transformers as T

    vit_like = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 64}
    config = {"convnext": lambda: T.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2),
              "siglip": lambda: T.SiglipVisionConfig(**vit_like),
              "ijepa": lambda: T.IJepaConfig(**vit_like)}[kind]()
    bundle = build_model(str(write_tiny_backbone(tmp_path, config, 32)), "image", 2)
    feats, out = _features_and_outputs(bundle, list(_image_pair(32)))
    # ConvNeXt: its final LayerNorm over the spatial mean; SigLIP: its attention-pooling head;
    # I-JEPA has no [CLS] token and no pooled output: the mean over its patch tokens.
    want = out.last_hidden_state.mean(dim=1) if kind == "ijepa" else out.pooler_output
    torch.testing.assert_close(feats, want, rtol=0, atol=0)
    assert (feats[0] - feats[1]).abs().max() > 1e-4
    assert bundle.model.pooling == ("mean" if kind == "ijepa" else "pooler")


def test_a_full_siglip_checkpoint_is_used_through_its_vision_tower(tmp_path: Path) -> None:
    """Dual encoders (SigLIP, CLIP) need text for their full forward; the image side is the tower."""
    import transformers as T

    tower = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 1,
             "num_attention_heads": 2, "intermediate_size": 64}
    text = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 64}
    folder = write_tiny_backbone(tmp_path / "siglip", T.SiglipConfig(vision_config=tower, text_config=text), 32)
    full = T.SiglipModel.from_pretrained(folder).eval()
    bundle = build_model(str(folder), "image", 2)
    assert type(bundle.model.backbone).__name__ == "SiglipVisionModel" and bundle.model.pooling == "pooler"
    images = list(_image_pair(32))
    feats, _ = _features_and_outputs(bundle, images)
    with torch.no_grad():
        want = full.vision_model(**bundle.preprocessor.collate(images)).pooler_output
    torch.testing.assert_close(feats, want, rtol=0, atol=0)

    save_bundle(bundle, tmp_path / "saved", ["a", "b"], {})
    again, _ = load_bundle(tmp_path / "saved")
    torch.testing.assert_close(_features_and_outputs(again, images)[0], feats, rtol=0, atol=0)


def test_a_model_saved_without_a_pooling_keeps_its_token_0_features(tiny_swin_dir: Path, tmp_path: Path) -> None:
    """Swin runs trained before the fix learned their head on token 0; reloading must not change that."""
    bundle = build_model(str(tiny_swin_dir), "image", 2)
    save_bundle(bundle, tmp_path, ["a", "b"], {})
    spec = json.loads((tmp_path / "tunescope_model.json").read_text())
    assert spec["arch"]["pooling"] == "pooler"
    spec["arch"] = {"family": "hf-image", "num_labels": 2}  # exactly what older versions wrote
    (tmp_path / "tunescope_model.json").write_text(json.dumps(spec))
    old, _ = load_bundle(tmp_path)
    feats, out = _features_and_outputs(old, list(_image_pair(64)))
    torch.testing.assert_close(feats, out.last_hidden_state[:, 0], rtol=0, atol=0)
    assert "pooling" not in old.model.arch_spec()  # saved again, it still reads as an old model


def test_tiny_swin_fits_saves_and_reloads_with_identical_predictions(tiny_swin_dir: Path, shapes_zip: Path,
                                                                      tmp_path: Path) -> None:
    from core import api
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    cfg = RunConfig(data=DataConfig(source=str(shapes_zip)),
                    model=ModelConfig(name=str(tiny_swin_dir), pretrained=False, image_size=32),
                    train=TrainConfig(method="full", epochs=2, batch_size=8, lr=5e-3, device="cpu"))
    run = api.train(cfg, runs_dir=tmp_path / "runs", run_id="tiny-swin")
    spec = json.loads((run / "model" / "tunescope_model.json").read_text())
    assert spec["arch"]["pooling"] == "pooler"
    saved = pd.read_parquet(run / "predictions.parquet")
    probs = np.array([[p[c] for c in spec["labels"]]
                      for p in (r["probabilities"] for r in api.predict(run, saved["input"].tolist()))])
    np.testing.assert_allclose(probs, saved[[f"prob_{c}" for c in spec["labels"]]].to_numpy(dtype=float), atol=1e-5)
