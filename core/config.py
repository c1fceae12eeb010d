"""Run configuration: plain frozen dataclasses, validated on construction, JSON round-trippable.

Every field has a default and a help text (in `field(metadata={"help": ...})`) so the CLI, the
dashboard and the docs describe the same knobs the same way. Method names, default learning rates
and method parameter defaults come from the fine-tune method table (`core.finetune`).
May import: core.errors, core.finetune (torch-free), and core.models.catalog for model-name checks.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from core import finetune
from core.errors import ConfigError

METHODS = tuple(finetune.METHODS)  # the fine-tune method table's names, in its order
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")  # fp16 would need loss scaling; bf16 does not
SELECTION_METRICS = ("macro_f1", "accuracy", "loss")

REFERENCE_WIDTH = 384
AUTO_EPOCH_SAMPLES = 8000
AUTO_MAX_EPOCHS = 5

TASKS = ("text", "image")
# Per-method default learning rates, read from the method table (see core.finetune).
DEFAULT_LR = {task: {name: m.lr[task] for name, m in finetune.METHODS.items()} for task in TASKS}


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _in_range(name: str, value: float, lo: float, hi: float) -> None:
    _require(lo <= value <= hi, f"{name} must be between {lo} and {hi}, got {value}.")


@dataclass(frozen=True)
class DataConfig:
    source: str = _help("Dataset: a file, a folder, a ZIP, or demo:NAME.", default="demo:sentiment")
    text_column: str | None = _help("Column holding the text (auto-detected if empty).", default=None)
    label_column: str | None = _help("Column holding the label (auto-detected if empty).", default=None)
    split_column: str | None = _help("Column holding train/validation/test (optional).", default=None)
    val_fraction: float = _help("Share of examples held out for validation.", default=0.1)
    test_fraction: float = _help("Share of examples held out for the final test.", default=0.2)
    max_samples: int | None = _help("Use a stratified subset of this many examples.", default=None)
    split_seed: int = _help("Seed of the train/validation/test split; fixed by default so runs with "
                            "different training seeds are scored on the same test set.", default=0)

    def __post_init__(self) -> None:
        _require(bool(str(self.source).strip()), "The dataset source is empty; give a path or demo:NAME.")
        _in_range("val_fraction", self.val_fraction, 0.01, 0.5)
        _in_range("test_fraction", self.test_fraction, 0.01, 0.5)
        _require(self.val_fraction + self.test_fraction < 0.9,
                 "val_fraction + test_fraction must leave at least 10% for training.")
        if self.max_samples is not None:
            _require(self.max_samples >= 10, f"max_samples must be at least 10, got {self.max_samples}.")
        _in_range("split_seed", self.split_seed, 0, 2**32 - 1)


@dataclass(frozen=True)
class ModelConfig:
    name: str | None = _help(
        "Model: 'minilm' / 'efficientnet_lite0' (offline defaults), a Hugging Face id or folder, "
        "or a torchvision name (resnet18, resnet50, efficientnet_b0, mobilenet_v3_small, vit_b_16).",
        default=None,
    )
    pretrained: bool = _help("Start from pretrained weights (off = random init, for tests).", default=True)
    max_length: int = _help("Text: tokens kept per example (longer texts are truncated).", default=128)
    image_size: int | None = _help("Image: side length fed to the model (model default if empty).",
                                   default=None)
    pooling: str = _help("Text: sentence vector from 'auto', 'mean', 'cls' or 'pooler'.", default="auto")

    def __post_init__(self) -> None:
        if self.name is not None:
            from core.errors import ModelError
            from core.models.catalog import check_model_name

            try:
                check_model_name(self.name)
            except ModelError as exc:
                raise ConfigError(str(exc)) from None
        _in_range("max_length", self.max_length, 8, 8192)
        if self.image_size is not None:
            _in_range("image_size", self.image_size, 8, 2048)
        _require(self.pooling in ("auto", "mean", "cls", "pooler"),
                 f"pooling must be auto, mean, cls or pooler, got {self.pooling!r}.")


@dataclass(frozen=True)
class TrainConfig:
    method: str = _help("; ".join(f"{m.name}: {m.summary}" for m in finetune.METHODS.values()) + ".",
                        default="full")
    epochs: int | None = _help("Passes over the training set (empty = auto: about "
                               f"{AUTO_EPOCH_SAMPLES:,} examples seen, 1 to {AUTO_MAX_EPOCHS} epochs).",
                               default=None)
    batch_size: int = _help("Examples per optimisation step (before accumulation).", default=32)
    lr: float | None = _help("Peak learning rate (per-method default if empty).", default=None)
    weight_decay: float = _help("AdamW weight decay (not applied to biases and norms).", default=0.01)
    warmup_ratio: float = _help("Share of steps spent warming the learning rate up.", default=0.1)
    max_grad_norm: float = _help("Clip gradients to this norm (0 = off).", default=1.0)
    grad_accum: int = _help("Accumulate gradients over this many batches.", default=1)
    seed: int = _help("Seed for initialisation, dropout and batch order. The train/validation/test split does "
                      "not follow it (see split_seed), so runs with different seeds share one test set.", default=0)
    patience: int | None = _help("Stop after this many epochs without improvement (empty = off).",
                                 default=None)
    selection_metric: str = _help("Validation metric that picks the best epoch.", default="macro_f1")
    # Method parameters: their defaults live with their method in core.finetune.
    topk_layers: int = _help("topk: number of top blocks to train.", default=finetune.param_default("topk_layers"))
    lora_r: int = _help("lora: adapter rank.", default=finetune.param_default("lora_r"))
    lora_alpha: int = _help("lora: scaling numerator (scale = alpha / r).",
                            default=finetune.param_default("lora_alpha"))
    lora_dropout: float = _help("lora: dropout on the adapter input.", default=finetune.param_default("lora_dropout"))
    train_embeddings: bool = _help("full on text: also train the token embedding table (slower).",
                                   default=finetune.param_default("train_embeddings"))
    augment: bool = _help("Images: random flips and crops while training.", default=False)
    device: str = _help("auto picks cuda, then mps, then cpu.", default="auto")
    precision: str = _help("auto = bf16 autocast on CUDA, fp32 elsewhere.", default="auto")
    log_every: int = _help("Log training loss every this many steps.", default=10)
    max_steps: int | None = _help("Stop after this many optimisation steps (for smoke tests).",
                                  default=None)
    checkpoint_every: int = _help("Save a resumable checkpoint every this many steps (0 = only at "
                                  "epoch ends).", default=200)
    eval_batch_size: int = _help("Batch size for evaluation and prediction.", default=64)

    def __post_init__(self) -> None:
        _require(self.method in METHODS, f"method must be one of {', '.join(METHODS)}, got {self.method!r}.")
        if self.epochs is not None:
            _in_range("epochs", self.epochs, 1, 1000)
        _in_range("batch_size", self.batch_size, 1, 65536)
        if self.lr is not None:
            _require(0 < self.lr <= 1, f"lr must be in (0, 1], got {self.lr}.")
        _in_range("weight_decay", self.weight_decay, 0, 1)
        _in_range("warmup_ratio", self.warmup_ratio, 0, 0.5)
        _in_range("max_grad_norm", self.max_grad_norm, 0, 1e6)
        _in_range("grad_accum", self.grad_accum, 1, 4096)
        _in_range("seed", self.seed, 0, 2**32 - 1)
        if self.patience is not None:
            _in_range("patience", self.patience, 1, 1000)
        _require(self.selection_metric in SELECTION_METRICS,
                 f"selection_metric must be one of {', '.join(SELECTION_METRICS)}.")
        _in_range("topk_layers", self.topk_layers, 1, 1000)
        _in_range("lora_r", self.lora_r, 1, 1024)
        _in_range("lora_alpha", self.lora_alpha, 1, 4096)
        _in_range("lora_dropout", self.lora_dropout, 0, 0.9)
        _require(self.device in DEVICES or self.device.startswith("cuda:"),
                 f"device must be one of {', '.join(DEVICES)} or cuda:N, got {self.device!r}.")
        _require(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}.")
        _in_range("log_every", self.log_every, 1, 100000)
        if self.max_steps is not None:
            _in_range("max_steps", self.max_steps, 1, 10**9)
        _in_range("eval_batch_size", self.eval_batch_size, 1, 65536)
        _in_range("checkpoint_every", self.checkpoint_every, 0, 10**9)

    def epochs_for(self, train_size: int) -> int:
        """The epoch count to run: as given, or enough passes to see ~AUTO_EPOCH_SAMPLES examples, so
        the default run on a big set finishes in minutes and a small set still gets several passes."""
        if self.epochs is not None:
            return self.epochs
        return max(1, min(AUTO_MAX_EPOCHS, round(AUTO_EPOCH_SAMPLES / max(1, train_size))))

    def learning_rate(self, task: str, width: int | None = None) -> float:
        """The given lr, else the method's default; wide encoders moved as a whole want smaller steps,
        so full/top-k text defaults shrink in proportion above MiniLM's width of 384
        (BERT-base, 768 wide, gets half)."""
        if self.lr is not None:
            return self.lr
        method = finetune.get_method(self.method)
        lr = method.lr[task]
        if task == "text" and method.lr_shrinks_with_width and width:
            lr *= min(1.0, REFERENCE_WIDTH / width)
        return lr


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        # Other top-level keys are the extras a run's config.json records (task, fingerprint ...); these
        # would be read as a claim on who owns the work, which only the server decides.
        forged = sorted({"owner", "shared", "access", "user"} & set(d))
        _require(not forged, f"A configuration cannot say who owns the work ({', '.join(forged)}); remove it. "
                 "Jobs and runs belong to whoever submits them.")
        return cls(
            data=_build(DataConfig, d.get("data", {})),
            model=_build(ModelConfig, d.get("model", {})),
            train=_build(TrainConfig, d.get("train", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))


def _build(kind: type, values: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - names)
    _require(not unknown, f"Unknown {kind.__name__} field(s): {', '.join(unknown)}.")
    return kind(**values)


def field_help(kind: type) -> dict[str, str]:
    """Help text per field, for CLI flags and dashboard tooltips."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(kind)}
