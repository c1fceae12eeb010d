"""The training loop: our own, because it is small, measurably faster than `transformers.Trainer`
on CPU, and handles text and images the same way.

AdamW with warmup + linear decay, gradient clipping and accumulation, evaluation each epoch, best
epoch kept by a validation metric, early stopping, bf16 autocast on CUDA only, and callbacks for
progress, metric logging and cancellation. With a frozen backbone (linear probe) the backbone's
features are computed once and only the head trains on them.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from core.config import TrainConfig
from core.data.dataset import LabeledData
from core.errors import ConfigError, TunescopeError
from core.finetune import Method
from core.metrics import classification_report, softmax
from core.models import ModelBundle
from core.train.callbacks import Callback, TrainState
from core.train.checkpoint import Checkpointer


class TrainingCancelled(TunescopeError):
    """Raised between steps when a callback asks to stop."""


@dataclass
class _Progress:
    """Everything about where training stands that a checkpoint must carry to resume exactly."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    samples: int = 0
    epoch_loss: float = 0.0
    epoch_n: int = 0
    window_loss: float = 0.0
    window_n: int = 0
    bad_epochs: int = 0
    train_time: float = 0.0
    elapsed: float = 0.0
    epoch_rng: Any = None


def _jsonable(state: Any) -> Any:
    return [_jsonable(x) for x in state] if isinstance(state, (tuple, list)) else state


def _tuple_state(state: Any) -> Any:
    return tuple(_tuple_state(x) for x in state) if isinstance(state, list) else state


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_val: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    steps: int = 0
    stopped_early: bool = False
    device: str = "cpu"
    precision: str = "fp32"
    peak_memory_mb: float | None = None
    epochs: int = 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"Device {requested} was asked for but no CUDA GPU is visible; use the device cpu.")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("Device mps was asked for but Apple's MPS is not available; use the device cpu.")
    return torch.device(requested)


def pick_precision(device: torch.device, requested: str) -> str:
    if requested == "auto":
        # bf16 autocast is tens of times slower than fp32 on many CPUs; only CUDA gains from it.
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if requested == "bf16" and device.type != "cuda":
        raise ConfigError(f"Precision {requested} needs a CUDA GPU; use fp32 on {device.type}.")
    return requested


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def num_batches(n: int, batch_size: int) -> int:
    """Batches per epoch. BatchNorm cannot train on a batch of one, so a final straggler of one
    example joins the batch before it."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: random.Random,
                           group: bool) -> list[list[int]]:
    """Shuffle, then sort within windows of 50 batches by length so padding stays small while
    the batch order stays random."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    if group:
        window = batch_size * 50
        idx = [i for s in range(0, len(idx), window)
               for i in sorted(idx[s:s + window], key=lambda j: lengths[j])]
    batches = [idx[s:s + batch_size] for s in range(0, len(idx), batch_size)]
    if len(batches) > num_batches(len(idx), batch_size):
        batches[-2].extend(batches.pop())
    if group:
        rng.shuffle(batches)
    return batches


def accumulation_weights(sizes: Sequence[int], grad_accum: int) -> list[float]:
    """Each batch's loss weight: its examples over those of its accumulation group (`grad_accum`
    consecutive batches from the epoch's start, the last group possibly shorter). Summed over a
    group the weighted mean losses are the mean over all its examples, so the gradient equals one
    big batch's, also for a short final group and for batches of unequal size."""
    weights = []
    for start in range(0, len(sizes), grad_accum):
        group = sizes[start:start + grad_accum]
        total = sum(group)
        weights += [n / total for n in group]
    return weights


def _eval_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda j: lengths[j])
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


# What an example costs a forward pass beyond its padded tokens (the pooling, the head, its share of
# a batch's fixed costs), in tokens: fitted to caching on CPU (tiny BERTs, bench/record_train_timings.py
# with texts of 2 to 60 words) it was about 6; counting tokens alone made the short batches that come
# first look three times too dear.
EXAMPLE_TOKENS = 8


def batch_costs(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> list[int]:
    """What a forward pass over each batch costs, roughly: its padded tokens, plus EXAMPLE_TOKENS an
    example."""
    return [len(b) * (max((lengths[i] for i in b), default=0) + EXAMPLE_TOKENS) for b in batches]


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in batch.items():
        v = v.to(device, non_blocking=True)
        if v.dim() == 4:  # images: channels-last convolutions run ~1.6x faster on CPU, faster on GPU
            v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_linear(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


class Engine:
    """Trains one model on one dataset; predicts with it afterwards."""

    def __init__(self, bundle: ModelBundle, cfg: TrainConfig, method: Method,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.bundle = bundle
        self.cfg = cfg
        self.method = method
        self.callbacks = list(callbacks)
        self.device = pick_device(cfg.device)
        self.precision = pick_precision(self.device, cfg.precision)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.model = bundle.model.to(self.device)
        if bundle.task == "image":
            self.model.to(memory_format=torch.channels_last)
        self.lr = cfg.learning_rate(bundle.task, bundle.model.width())
        self.state = TrainState()
        self._items: dict[str, list[Any]] = {}
        self._features: dict[str, torch.Tensor] = {}
        self.use_feature_cache = method.frozen_backbone and not (bundle.task == "image" and cfg.augment)

    # -- plumbing -------------------------------------------------------------------------------

    def _emit(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def _check_cancel(self) -> None:
        if any(cb.should_stop() for cb in self.callbacks):
            raise TrainingCancelled("Training was cancelled.")

    def _encode(self, split: str, inputs: Sequence[Any]) -> list[Any]:
        if split not in self._items:
            self._items[split] = self.bundle.preprocessor.encode(list(inputs))
        return self._items[split]

    def _collate(self, items: Sequence[Any], augment: bool = False, rng: random.Random | None = None
                 ) -> dict[str, torch.Tensor]:
        pre = self.bundle.preprocessor
        if augment:
            return pre.collate(items, augment=True, rng=rng)  # type: ignore[call-arg]
        return pre.collate(items)

    def _set_train_mode(self) -> None:
        self.model.train()
        for m in self.model.modules():
            params = list(m.parameters(recurse=False))
            # Frozen BatchNorm keeps its pretrained statistics; frozen backbones run as in inference.
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and params and not params[0].requires_grad:
                m.eval()
        if self.method.frozen_backbone:
            self.model.eval()
            for m in self.model.head_modules():
                m.train()

    # -- features for frozen backbones ------------------------------------------------------------

    @torch.no_grad()
    def _features_for(self, split: str, items: list[Any]) -> torch.Tensor:
        if split in self._features:
            return self._features[split]
        self.model.eval()
        lengths = [self.bundle.preprocessor.length(x) for x in items]
        batches = _eval_batches(lengths, self.cfg.eval_batch_size)
        costs = batch_costs(lengths, batches)
        out: list[torch.Tensor | None] = [None] * len(items)
        done = cost = 0
        for b, c in zip(batches, costs, strict=True):
            self._check_cancel()
            with _autocast(self.device, self.precision):
                f = self.model.features(**_to(self._collate([items[i] for i in b]), self.device))
            for j, i in enumerate(b):
                out[i] = f[j].float()
            done, cost = done + len(b), cost + c
            self.state.phase_work = (cost, sum(costs))
            self._emit("on_phase", self.state, f"features:{split}", done, len(items))
        self._features[split] = torch.stack(out)  # type: ignore[arg-type]
        return self._features[split]

    # -- training -------------------------------------------------------------------------------

    def fit(self, data: LabeledData, checkpointer: Checkpointer | None = None,
            extra_state: Callable[[], dict[str, Any]] | None = None) -> FitResult:
        """Train; with a `checkpointer`, save resumable state every `checkpoint_every` steps and at
        each epoch end, and continue from its newest intact checkpoint if there is one."""
        cfg = self.cfg
        train, val = data.split("train"), data.split("validation")
        train_items = self._encode("train", train["input"].tolist())
        val_items = self._encode("validation", val["input"].tolist())
        y_train = torch.tensor(train["label_id"].to_numpy(), dtype=torch.long)
        lengths = [self.bundle.preprocessor.length(x) for x in train_items]
        group = self.bundle.task == "text"
        epochs = cfg.epochs_for(len(train_items))
        self.state.epochs = epochs
        batches_per_epoch = num_batches(len(train_items), cfg.batch_size)
        steps_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
        total = steps_per_epoch * epochs
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        self.state.total_steps = total
        self.state.split_sizes = data.sizes()
        self.state.steps_per_epoch = steps_per_epoch
        self.state.samples_per_step = cfg.batch_size * cfg.grad_accum
        self.state.feature_cache = self.use_feature_cache
        for split, items in (("train", train_items), ("validation", val_items)):
            lens = [self.bundle.preprocessor.length(x) for x in items]
            self.state.split_costs[split] = sum(batch_costs(lens, _eval_batches(lens, cfg.eval_batch_size)))
        params = _param_groups(self.model, cfg.weight_decay)
        opt_kwargs: dict[str, Any] = {"lr": self.lr}
        if self.device.type in ("cuda", "cpu"):
            opt_kwargs["fused"] = True  # one kernel per step instead of one per tensor
        optimizer = torch.optim.AdamW(params, **opt_kwargs)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_linear(total, int(round(total * cfg.warmup_ratio))))
        rng = random.Random(cfg.seed)
        p = _Progress()
        result = FitResult(device=str(self.device), precision=self.precision, epochs=epochs)
        best_state: dict[str, torch.Tensor] | None = None
        self._emit("on_start", self.state)

        resumed = checkpointer.load_latest() if checkpointer is not None else None
        if resumed is not None:
            tensors, opt_state, saved = resumed
            best_state = self._restore(tensors, optimizer, opt_state, scheduler, rng, p, result, saved)
            self._emit("on_log", {"type": "resume", "step": p.step, "epoch": p.epoch, **saved["extra"]})

        train_feats = None
        if self.use_feature_cache:
            t_feats = time.perf_counter()
            train_feats = self._features_for("train", train_items)
            # The backbone pass over the training set is the bulk of a linear probe's cost: count it
            # as training time so throughput compares fairly across methods.
            p.train_time += time.perf_counter() - t_feats
            self._features_for("validation", val_items)

        def save_checkpoint() -> None:
            if checkpointer is None:
                return
            snapshot = {f"model.{k}": v for k, v in self._snapshot().items()}
            if best_state is not None:
                snapshot.update({f"best.{k}": v for k, v in best_state.items()})
            snapshot["rng.torch"] = torch.get_rng_state()
            if self.device.type == "cuda":
                snapshot["rng.cuda"] = torch.cuda.get_rng_state(self.device)
            sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
            checkpointer.save(p.step, snapshot, optimizer.state_dict(), {
                "progress": p.__dict__, "rng_python": _jsonable(rng.getstate()), "scheduler": sched,
                "history": result.history, "best_epoch": result.best_epoch, "best_val": result.best_val,
                "best_metric": self.state.best_metric, "extra": extra_state() if extra_state else {},
            })

        t0 = time.perf_counter() - p.elapsed
        done = False
        while p.epoch < epochs and not done:
            epoch = p.epoch
            self._set_train_mode()
            self.state.phase = "train"
            if p.batch == 0:
                p.epoch_rng = _jsonable(rng.getstate())
            # The epoch's batch order is re-derived from the generator state at its start, so a
            # resumed epoch replays exactly the batches an uninterrupted one would have seen.
            live_state = rng.getstate()
            rng.setstate(_tuple_state(p.epoch_rng))
            batches = length_grouped_batches(lengths, cfg.batch_size, rng, group)
            if p.batch:
                rng.setstate(live_state)
            weights = accumulation_weights([len(b) for b in batches], cfg.grad_accum)
            t_epoch = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            for bi in range(p.batch, len(batches)):
                b = batches[bi]
                self._check_cancel()
                y = y_train[b].to(self.device)
                with _autocast(self.device, self.precision):
                    if train_feats is not None:
                        logits = self.model.head_forward(train_feats[b].to(self.device))
                    else:
                        batch = self._collate([train_items[i] for i in b], augment=cfg.augment, rng=rng)
                        logits = self.model(**_to(batch, self.device))
                    loss = nn.functional.cross_entropy(logits.float(), y)
                (loss * weights[bi]).backward()
                lv = float(loss.detach())
                p.epoch_loss += lv * len(b)
                p.epoch_n += len(b)
                p.window_loss += lv * len(b)
                p.window_n += len(b)
                p.samples += len(b)
                if (bi + 1) % cfg.grad_accum and bi + 1 != len(batches):
                    continue
                if cfg.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_([q for g in params for q in g["params"]], cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                p.step += 1
                p.batch = bi + 1
                elapsed = p.train_time + time.perf_counter() - t_epoch
                st = self.state
                st.step, st.epoch = p.step, epoch + (bi + 1) / len(batches)
                st.samples_seen, st.elapsed_s = p.samples, time.perf_counter() - t0
                st.samples_per_second = p.samples / elapsed if elapsed > 0 else 0.0
                st.lr = scheduler.get_last_lr()[0]
                st.loss = p.window_loss / max(1, p.window_n)
                self._emit("on_step", st)
                if p.step % cfg.log_every == 0 or p.step == total:
                    self._emit("on_log", {"type": "step", "step": p.step, "epoch": round(st.epoch, 4),
                                          "loss": st.loss, "lr": st.lr,
                                          "samples_per_second": st.samples_per_second,
                                          "elapsed_s": st.elapsed_s})
                    p.window_loss, p.window_n = 0.0, 0
                if cfg.max_steps is not None and p.step >= cfg.max_steps:
                    done = True
                    break
                if cfg.checkpoint_every and p.step % cfg.checkpoint_every == 0 and p.batch < len(batches):
                    p.train_time += time.perf_counter() - t_epoch
                    t_epoch = time.perf_counter()
                    p.elapsed = time.perf_counter() - t0
                    save_checkpoint()
            p.train_time += time.perf_counter() - t_epoch

            self.state.phase = "eval"
            val_report = self.evaluate("validation", val["input"].tolist(), val["label_id"].to_numpy(),
                                       data.labels)
            metric = self._selection_value(val_report)
            improved = self.state.best_metric is None or metric > self.state.best_metric
            row = {"type": "epoch", "epoch": epoch + 1, "step": p.step,
                   "train_loss": p.epoch_loss / max(1, p.epoch_n),
                   **{f"val_{k}": val_report[k] for k in ("loss", "accuracy", "macro_f1", "weighted_f1", "ece")},
                   "elapsed_s": time.perf_counter() - t0, "is_best": improved}
            result.history.append(row)
            self._emit("on_log", row)
            p.epoch, p.batch, p.epoch_loss, p.epoch_n = epoch + 1, 0, 0.0, 0
            if improved:
                self.state.best_metric, self.state.best_epoch = metric, epoch + 1
                result.best_epoch, result.best_val = epoch + 1, val_report
                best_state = self._snapshot()
                p.bad_epochs = 0
            else:
                p.bad_epochs += 1
                if cfg.patience is not None and p.bad_epochs >= cfg.patience:
                    result.stopped_early = True
                    done = True
            p.elapsed = time.perf_counter() - t0
            if not done and p.epoch < epochs:
                save_checkpoint()

        if best_state is not None:
            self.model.load_state_dict(best_state, strict=False)
        self.state.phase = "done"
        result.steps = p.step
        result.train_seconds = p.train_time
        result.samples_per_second = p.samples / p.train_time if p.train_time > 0 else 0.0
        if self.device.type == "cuda":
            result.peak_memory_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        self._emit("on_end", self.state)
        return result

    def _restore(self, tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                 opt_state: dict[str, Any], scheduler: Any, rng: random.Random, p: _Progress,
                 result: FitResult, saved: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        best = {k[5:]: v.to(self.device) for k, v in tensors.items() if k.startswith("best.")}
        self.model.load_state_dict(model_state, strict=False)
        optimizer.load_state_dict(opt_state)
        scheduler.load_state_dict({**saved["scheduler"], "lr_lambdas": [None] * len(optimizer.param_groups)})
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        rng.setstate(_tuple_state(saved["rng_python"]))
        for k, v in saved["progress"].items():
            setattr(p, k, v)
        result.history = saved["history"]
        result.best_epoch, result.best_val = saved["best_epoch"], saved["best_val"]
        self.state.best_metric = saved["best_metric"]
        self.state.best_epoch = saved["best_epoch"] or None
        self.state.step = p.step
        return best or None

    def _selection_value(self, report: dict[str, Any]) -> float:
        m = self.cfg.selection_metric
        return -report["loss"] if m == "loss" else report[m]

    def _snapshot(self) -> dict[str, torch.Tensor]:
        keep = {n for n, p in self.model.named_parameters() if p.requires_grad}
        keep |= {n for n, _ in self.model.named_buffers()}
        return {k: v.detach().clone() for k, v in self.model.state_dict().items() if k in keep}

    # -- inference ------------------------------------------------------------------------------

    @torch.no_grad()
    def predict_logits(self, inputs: Sequence[Any], split: str | None = None) -> np.ndarray:
        """Logits in input order. `split` names a cache key so a split is encoded only once."""
        self.model.eval()
        items = self._encode(split, inputs) if split else self.bundle.preprocessor.encode(list(inputs))
        if self.use_feature_cache and split:
            feats = self._features_for(split, items)
            chunks = [self.model.head_forward(feats[s:s + 4096].to(self.device)).float().cpu()
                      for s in range(0, len(items), 4096)]
            return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0))
        return predict_logits(self.bundle, items, self.cfg.eval_batch_size, self.device, self.precision,
                              on_progress=lambda *a: self._predict_progress(f"predict:{split}", *a))

    def _predict_progress(self, phase: str, done: int, total: int, work: tuple[int, int] | None = None) -> None:
        self._check_cancel()  # evaluation of a big split can take minutes; cancel must not wait
        self.state.phase_work = work
        self._emit("on_phase", self.state, phase, done, total)

    def evaluate(self, split: str, inputs: Sequence[Any], y: np.ndarray, labels: list[str]) -> dict[str, Any]:
        probs = softmax(self.predict_logits(inputs, split=split))
        return classification_report(probs, y, labels)


@torch.no_grad()
def predict_logits(bundle: ModelBundle, items: Sequence[Any], batch_size: int, device: torch.device,
                   precision: str = "fp32", on_progress: Any = None) -> np.ndarray:
    """Batched forward over already-encoded items, sorted by length for speed, returned in order;
    `on_progress(done, total, (cost done, cost in all))` after each batch (`batch_costs`)."""
    model = bundle.model
    model.eval()
    pre = bundle.preprocessor
    lengths = [pre.length(x) for x in items]
    out: np.ndarray | None = None
    batches = _eval_batches(lengths, batch_size)
    costs = batch_costs(lengths, batches)
    done = cost = 0
    for b, c in zip(batches, costs, strict=True):
        with _autocast(device, precision):
            logits = model(**_to(pre.collate([items[i] for i in b]), device)).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(items), logits.shape[1]), dtype=np.float32)
        out[b] = logits
        done, cost = done + len(b), cost + c
        if on_progress is not None:
            on_progress(done, len(items), (cost, sum(costs)))
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
