"""The fine-tune method table: one `Method` entry per method, and every other place reads it.

An entry holds what the rest of tunescope needs to know about a method: its name, title and the help
shown on the Train page, the default learning rate per task, whether it freezes the backbone (so the
engine computes features once), the `TrainConfig` parameters it reads with their defaults, what it
trains for the memory and time estimates, and `apply`/`finalize`, which choose the weights that train
and fold the result back into a plain model for saving. Config validation (`core.config.METHODS`,
`DEFAULT_LR`), the CLI's `--method` choices, the Train form and `core.train.resources` all read
`METHODS`, so adding a method means adding one entry here (and its `apply`).

Torch-free at import: `core.config` and the dashboard read this table, so torch, peft and the model
classes are imported inside `apply`/`finalize`, the only code that needs them.
May import: core.errors (and, inside apply/finalize only, torch, peft and core.models).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from core.config import TrainConfig
    from core.models import Classifier

__all__ = ["METHODS", "Footprint", "Method", "count_params", "get_method", "param_default"]


@dataclass(frozen=True)
class Footprint:
    """A model's size as `core.train.resources` estimates it before anything is built, at one run's
    settings (batch size, topk_layers, lora_r, train_embeddings); each method picks what it trains."""

    params: int            # every weight of the model
    head: int              # the new classifier
    frozen_embeddings: int  # weights full fine-tuning leaves frozen at these settings (text token tables)
    top_blocks: int        # weights of the top `topk_layers` blocks
    adapters: int          # weights LoRA adds at rank `lora_r`
    activations: int       # bytes kept for the backward pass when every block trains
    top_activations: int   # bytes kept when only the top blocks train


def _freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def _unfreeze(modules: list[nn.Module]) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(True)


def _read_only(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True, eq=False)  # entries are singletons: identity is equality
class Method:
    name: str
    title: str
    summary: str  # a few words for the --method flag's help: "full: all weights; head: ..."
    help: str     # one line under the method choice on the Train page
    lr: Mapping[str, float]  # default learning rate per task ("text", "image")
    when: str = ""  # when to pick it: shown under the method choice while it is the one chosen
    # True when nothing before the head trains, so backbone features can be computed once.
    frozen_backbone: bool = False
    # Wide encoders moved as a whole want smaller steps: the default text lr shrinks above MiniLM's width.
    lr_shrinks_with_width: bool = False
    # TrainConfig fields this method reads, with their defaults (TrainConfig takes its defaults from here).
    params: Mapping[str, Any] = field(default_factory=dict)
    # Share of the backward pass skipped on frozen layers, for the time estimate.
    backward_skipped: float = 0.0
    # The params a model card lists next to the common hyperparameters (the ones that shape the model).
    card_params: tuple[str, ...] = ()
    # What an exported model's README adds about how the method's weights were folded in.
    export_note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _read_only(self.lr))
        object.__setattr__(self, "params", _read_only(self.params))

    def memory(self, fp: Footprint) -> tuple[int, int]:
        """(trainable weights, activation bytes kept for backward) of training `fp`'s model this way."""
        return fp.params - fp.frozen_embeddings, fp.activations

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
    def memory(self, fp: Footprint) -> tuple[int, int]:
        return fp.head, 0

    def apply(self, model: Classifier, cfg: TrainConfig) -> Classifier:
        _freeze(model)
        _unfreeze(model.head_modules())
        return model


class TopKMethod(Method):
    def memory(self, fp: Footprint) -> tuple[int, int]:
        return fp.head + fp.top_blocks, fp.top_activations

    def apply(self, model: Classifier, cfg: TrainConfig) -> Classifier:
        blocks = model.blocks()
        if cfg.topk_layers > len(blocks):
            raise ConfigError(f"topk_layers is {cfg.topk_layers} but this model has only {len(blocks)} "
                              f"blocks; choose 1 to {len(blocks)}.")
        _freeze(model)
        _unfreeze(blocks[-cfg.topk_layers:] + model.head_modules())
        return model


class LoraMethod(Method):
    def memory(self, fp: Footprint) -> tuple[int, int]:
        return fp.head + fp.adapters, fp.activations

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


# The learning rates worked on the demos here; a method that trains few parameters wants a larger
# step than one that moves the whole pretrained network. The order is the order shown everywhere.
_ENTRIES: tuple[Method, ...] = (
    FullMethod("full", "Full fine-tuning", "all weights",
               "trains every weight: usually the most accurate, and the slowest",
               when="Pick **full** when accuracy matters most and there is time (or a GPU): it is usually a "
                    "few points better than head, and it is the library's default.",
               lr={"text": 1.5e-4, "image": 5e-4}, lr_shrinks_with_width=True,
               params={"train_embeddings": False}),
    HeadMethod("head", "Head only (linear probe)", "only the new classifier",
               "trains only a new classifier on frozen features (computed once): the fastest",
               when="Pick **head** for a first result within minutes (that is why it is preselected): the "
                    "frozen model reads each example once and only a small classifier learns.",
               lr={"text": 2e-3, "image": 5e-3}, frozen_backbone=True),
    TopKMethod("topk", "Top-k blocks", "top-k blocks + head",
               "trains the top blocks and the classifier: a middle ground",
               when="Pick **topk** when head is not accurate enough but full is too slow: only the top "
                    "blocks (2 by default) and the classifier learn.",
               lr={"text": 2e-4, "image": 1e-3}, lr_shrinks_with_width=True,
               params={"topk_layers": 2}, backward_skipped=0.6, card_params=("topk_layers",)),
    LoraMethod("lora", "LoRA adapters", "low-rank adapters + head",
               "trains small low-rank adapters and the classifier: close to full, few weights",
               when="Pick **lora** for accuracy close to full with little memory and a small file to keep "
                    "per run; each step still runs the whole model, so it is not much faster than full.",
               lr={"text": 5e-4, "image": 2e-3},
               params={"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.1}, backward_skipped=0.3,
               card_params=("lora_r", "lora_alpha"), export_note="LoRA adapters merged into the weights"),
)
METHODS: Mapping[str, Method] = MappingProxyType({m.name: m for m in _ENTRIES})


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"Unknown method {name!r}; choose one of {', '.join(METHODS)}.")
    return METHODS[name]


def param_default(name: str) -> Any:
    """The default of the TrainConfig field `name`, from the method that declares it."""
    for m in _ENTRIES:
        if name in m.params:
            return m.params[name]
    raise KeyError(f"No fine-tune method declares the parameter {name!r}.")


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total); LoRA adapter weights count as trainable, not in the total."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    return trainable, total
