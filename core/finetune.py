"""Fine-tuning methods behind one registry: each decides which weights train, and how the result
is folded back into a plain model for saving.

Adding a method means adding a class with `apply` and `finalize` and registering it in `METHODS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from core.config import TrainConfig
from core.errors import ConfigError
from core.models import Classifier


def _freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def _unfreeze(modules: list[nn.Module]) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(True)


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    description: str
    # True when nothing before the head trains, so backbone features can be computed once.
    frozen_backbone: bool = False

    def apply(self, model: Classifier, cfg: TrainConfig) -> Classifier:
        raise NotImplementedError

    def finalize(self, model: Classifier) -> Classifier:
        return model


class FullMethod(Method):
    def apply(self, model: Classifier, cfg: TrainConfig) -> Classifier:
        _unfreeze([model])
        if not cfg.train_embeddings:
            # The token table is half of a small BERT's weights but barely moves in fine-tuning;
            # freezing it saves its dense gradient and AdamW update on every step.
            for module in model.embedding_modules():
                _freeze(module)
        return model


class HeadMethod(Method):
    def apply(self, model: Classifier, cfg: TrainConfig) -> Classifier:
        _freeze(model)
        _unfreeze(model.head_modules())
        return model


class TopKMethod(Method):
    def apply(self, model: Classifier, cfg: TrainConfig) -> Classifier:
        blocks = model.blocks()
        if cfg.topk_layers > len(blocks):
            raise ConfigError(f"topk_layers is {cfg.topk_layers} but this model has only {len(blocks)} "
                              f"blocks; choose 1 to {len(blocks)}.")
        _freeze(model)
        _unfreeze(blocks[-cfg.topk_layers:] + model.head_modules())
        return model


class LoraMethod(Method):
    def apply(self, model: Classifier, cfg: TrainConfig) -> Classifier:
        from peft import LoraConfig, inject_adapter_in_model

        targets = model.lora_targets()
        config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                            target_modules=targets, bias="none")
        _freeze(model)
        inject_adapter_in_model(config, model)
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.requires_grad_(True)
        # The new head must learn; BatchNorm statistics and affine terms must follow the new data
        # or the adapted CNN's features drift from what the head saw.
        _unfreeze(model.head_modules() + model.always_trainable())
        return model

    def finalize(self, model: Classifier) -> Classifier:
        """Merge each adapter into its base layer and put the plain layer back."""
        from peft.tuners.lora import LoraLayer

        for name, module in list(model.named_modules()):
            if isinstance(module, LoraLayer):
                module.merge()
                parent_name, _, child = name.rpartition(".")
                parent = model.get_submodule(parent_name) if parent_name else model
                setattr(parent, child, module.get_base_layer())
        return model


METHODS: dict[str, Method] = {
    "full": FullMethod("full", "Full fine-tuning",
                       "Every layer adapts to your data (the token-embedding table only with --train-embeddings): "
                       "most accurate, slowest, most memory."),
    "head": HeadMethod("head", "Head only (linear probe)",
                       "Only a new classifier on frozen pretrained features trains: seconds, not minutes.",
                       frozen_backbone=True),
    "topk": TopKMethod("topk", "Top-k blocks",
                       "The last k blocks and the head train; the lower layers keep general features."),
    "lora": LoraMethod("lora", "LoRA adapters",
                       "Small low-rank updates on attention/conv layers plus the head: ~1% of the weights."),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"Unknown method {name!r}; choose one of {', '.join(METHODS)}.")
    return METHODS[name]


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total); LoRA adapter weights count as trainable, not in the total."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    return trainable, total
