"""The sanity check's cascade ends with every weight re-drawn (review item 14): a CNN's stem
(ResNet conv1/bn1, EfficientNet-Lite _conv_stem/_bn0), a ViT's patch and position embeddings and a
text model's position/type embeddings and embedding LayerNorm included, not only blocks and head."""

from __future__ import annotations

import pytest
import torch

from core.explain.sanity import cascade, randomise
from core.models import build_model


def run_cascade(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], list[str]]:
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    stages = cascade(model)
    gen = torch.Generator().manual_seed(0)
    for _, modules in stages:
        randomise(modules, gen)
    return before, [name for name, _ in stages]


def assert_all_redrawn(model: torch.nn.Module, before: dict[str, torch.Tensor], explicit: list[str]) -> None:
    after = dict(model.named_parameters())
    kept = [n for n, p in after.items() if torch.equal(p.detach(), before[n])]
    assert not kept, f"still the trained weights after the last stage: {kept}"
    for name in explicit:
        assert name in after, name
        # Element by element: a partly re-drawn tensor would still carry trained values.
        assert not (after[name].detach() == before[name]).any(), name


def test_resnet_stem_is_randomised_at_the_last_stage():
    model = build_model("resnet18", "image", 2, pretrained=False, image_size=32).model
    before, names = run_cascade(model)
    assert names == ["head", "block 4", "block 3", "block 2", "block 1", "stem"]
    assert_all_redrawn(model, before, ["backbone.conv1.weight", "backbone.bn1.weight", "backbone.bn1.bias"])
    for bn in (model.backbone.bn1, model.backbone.layer2[0].bn1):  # the stem's, and one in a block
        assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))


def test_efficientnet_lite_stem_is_randomised_at_the_last_stage():
    model = build_model("efficientnet_lite0", "image", 2, pretrained=False, image_size=32).model
    before, names = run_cascade(model)
    assert names[0] == "head" and names[-1] == "stem"
    assert_all_redrawn(model, before, ["net._conv_stem.weight", "net._bn0.weight", "net._bn0.bias"])


@pytest.mark.parametrize("pooling", ["mean", "pooler"])
def test_text_position_type_embeddings_and_layernorm_are_randomised(tiny_bert_dir, pooling):
    model = build_model(str(tiny_bert_dir), "text", 2, pretrained=False, max_length=32, pooling=pooling).model
    before, names = run_cascade(model)
    assert names == ["head", "block 2", "block 1", "embeddings"]
    emb = "encoder.embeddings."
    assert_all_redrawn(model, before, [emb + "word_embeddings.weight", emb + "position_embeddings.weight",
                                       emb + "token_type_embeddings.weight", emb + "LayerNorm.weight",
                                       emb + "LayerNorm.bias"])


def test_vit_patch_and_position_embeddings_are_randomised(tiny_vit_dir):
    model = build_model(str(tiny_vit_dir), "image", 2, pretrained=False).model
    before, names = run_cascade(model)
    assert names == ["head", "block 2", "block 1", "stem"]
    assert_all_redrawn(model, before, ["backbone.embeddings.cls_token", "backbone.embeddings.position_embeddings",
                                       "backbone.embeddings.patch_embeddings.projection.weight",
                                       "backbone.layernorm.weight"])


def test_each_weight_is_redrawn_once_and_earlier_stages_are_left_as_they_are(tiny_bert_dir):
    model = build_model(str(tiny_bert_dir), "text", 2, pretrained=False, max_length=32, pooling="mean").model
    stages = cascade(model)
    seen: list[int] = []
    for _, modules in stages:
        for m in modules:
            seen += [id(p) for p in ([m] if isinstance(m, torch.nn.Parameter) else m.parameters())]
    assert len(seen) == len(set(seen)) == len(list(model.parameters()))
    gen = torch.Generator().manual_seed(0)
    randomise(stages[0][1], gen)
    block = {n: p.detach().clone() for n, p in model.named_parameters() if ".layer." in n}
    randomise(stages[-1][1], gen)  # the last stage leaves the blocks to their own stages
    assert all(torch.equal(p, block[n]) for n, p in model.named_parameters() if n in block)
