"""The Hugging Face text family: any `AutoModel` encoder (BERT, MiniLM, DistilBERT, ...) with a
linear head on the [CLS] token, the mean over tokens, or the encoder's own pooler.

Exported as `AutoModelForSequenceClassification` when it pooled through the encoder's pooler
(that class pools the same way); otherwise as the encoder, the tokenizer and the linear head.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import ModelError, RunError
from core.models.base import Classifier, ModelBundle, get_attr, label_maps, linear_names
from core.models.catalog import BUILTIN_CARDS, ModelCard, minilm_dir
from core.models.hub import hf_load
from core.models.preprocess import TextPreprocessor

HEAD_FILE = "classifier.safetensors"
HEAD_SPEC = "tunescope_head.json"


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
                layers = get_attr(self.encoder, path)
                if isinstance(layers, nn.ModuleList) and len(layers):
                    return list(layers)
        raise ModelError(f"Cannot find the transformer layers of {type(self.encoder).__name__} "
                         "for top-k fine-tuning; use the method full, head or lora.")

    def head_modules(self) -> list[nn.Module]:
        mods: list[nn.Module] = [self.classifier]
        if self.pooling == "pooler":
            mods.append(self.encoder.pooler)
        return mods

    def embedding_modules(self) -> list[nn.Module]:
        emb = self.encoder.get_input_embeddings()
        return [emb] if emb is not None else []

    def lora_targets(self) -> list[str]:
        names = [f"encoder.{n}" for n in linear_names(self.encoder, self.LORA_SUFFIXES)]
        if not names:
            raise ModelError(f"No attention projections found in {type(self.encoder).__name__} for "
                             "LoRA; use the method full, head or topk.")
        return names

    def arch_spec(self) -> dict[str, Any]:
        return {"family": self.family, "pooling": self.pooling,
                "num_labels": self.classifier.out_features}


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


def build(name: str, num_labels: int, *, pretrained: bool, max_length: int, pooling: str,
          attn_implementation: str | None = None, **_: Any) -> ModelBundle:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = str(minilm_dir()) if name == "minilm" else name
    card = BUILTIN_CARDS.get(name) or ModelCard(name, "text", "hf-text", name, f"Hugging Face: {name}",
                                                "see the model's card")
    tokenizer = hf_load(AutoTokenizer.from_pretrained, path)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if pretrained:
        encoder = hf_load(AutoModel.from_pretrained, path, **extra)
    else:
        config = hf_load(AutoConfig.from_pretrained, path)
        encoder = AutoModel.from_config(config, **extra)
    local_dir = Path(path) if Path(path).is_dir() else None
    chosen = _detect_pooling(local_dir, encoder) if pooling == "auto" else pooling
    model = TextClassifier(encoder, num_labels, chosen)
    limit = getattr(encoder.config, "max_position_embeddings", None) or max_length
    return ModelBundle(model, TextPreprocessor(tokenizer, min(max_length, int(limit))), "text", name, card)


def save_parts(bundle: ModelBundle, directory: Path, spec: dict[str, Any]) -> None:
    """The encoder's config and the tokenizer: with the weights, all a reload needs offline."""
    bundle.model.encoder.config.save_pretrained(directory / "encoder")
    spec["max_length"] = bundle.preprocessor.max_length  # type: ignore[union-attr]
    bundle.preprocessor.save(directory / "tokenizer")


def load(directory: Path, spec: dict[str, Any], num_labels: int,
         attn_implementation: str | None = None) -> tuple[Classifier, TextPreprocessor]:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(directory / "encoder")
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    encoder = AutoModel.from_config(config, **extra)
    model = TextClassifier(encoder, num_labels, spec["arch"]["pooling"])
    tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer")
    return model, TextPreprocessor(tokenizer, int(spec["max_length"]))


# -- export ----------------------------------------------------------------------------------------

def export_hf(model: TextClassifier, bundle: ModelBundle, labels: list[str], out: Path) -> str:
    """Write the Hugging Face form of a text run into `out`; return its format line."""
    if model.pooling == "pooler":
        return _export_text_pooler(model, bundle, labels, out)
    return _export_text_encoder(model, bundle, labels, out)


def _export_text_pooler(model: Any, bundle: Any, labels: list[str], out: Path) -> str:
    from transformers import AutoModelForSequenceClassification

    config = model.encoder.config.__class__.from_dict(model.encoder.config.to_dict())
    config.num_labels = len(labels)
    config.problem_type = "single_label_classification"
    for k, v in label_maps(labels).items():
        setattr(config, k, v)
    hf = AutoModelForSequenceClassification.from_config(config)
    base = getattr(hf, hf.base_model_prefix)
    missing, unexpected = base.load_state_dict(model.encoder.state_dict(), strict=False)
    classifier = getattr(hf, "classifier", None)
    if missing or unexpected or classifier is None or not hasattr(classifier, "weight") \
            or tuple(classifier.weight.shape) != tuple(model.classifier.weight.shape):
        raise RunError(f"{type(hf).__name__} does not match this run's encoder and head; export failed.")
    classifier.load_state_dict(model.classifier.state_dict())
    hf.save_pretrained(out)
    _save_tokenizer(bundle, out)
    _verify_text(model, bundle, out, lambda d: AutoModelForSequenceClassification.from_pretrained(d))
    return f"Hugging Face {type(hf).__name__} (AutoModelForSequenceClassification)"


def _save_tokenizer(bundle: Any, out: Path) -> None:
    """With tunescope's own length limit, so `truncation=True` cuts where tunescope did."""
    tok = bundle.preprocessor.tokenizer
    old = tok.model_max_length
    tok.model_max_length = bundle.preprocessor.max_length
    try:
        tok.save_pretrained(out)
    finally:
        tok.model_max_length = old


VERIFY_TEXTS = ["a short example", "another, somewhat longer example sentence to check the export " * 40]


def _verify_text(model: Any, bundle: Any, out: Path, load: Any) -> None:
    """Reload the export and compare its logits with the run's on two texts (one past the limit)."""
    from transformers import AutoTokenizer

    hf = load(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        got = hf(**tok(VERIFY_TEXTS, padding=True, truncation=True, return_tensors="pt")).logits
        want = model.eval()(**bundle.preprocessor.collate(bundle.preprocessor.encode(VERIFY_TEXTS)))
    if not torch.allclose(got, want, atol=1e-4):
        raise RunError("The exported model's predictions differ from the run's.")


def _export_text_encoder(model: Any, bundle: Any, labels: list[str], out: Path) -> str:
    from safetensors.torch import save_file

    model.encoder.save_pretrained(out)
    _save_tokenizer(bundle, out)
    save_file({k: v.contiguous() for k, v in model.classifier.state_dict().items()}, str(out / HEAD_FILE))
    (out / HEAD_SPEC).write_text(json.dumps({"pooling": model.pooling, "labels": labels,
                                             "max_length": bundle.preprocessor.max_length}, indent=2))
    return f"Hugging Face AutoModel encoder + linear head ({model.pooling} pooling)"
