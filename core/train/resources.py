"""Device memory: a coarse estimate of what a training job needs, checked against what is free.

The estimate adds fp32 weights, gradients and AdamW moments of the trainable part, the activations
kept for the backward pass, and a fixed allowance for the CUDA context and allocator slack. Transformer
activations follow the per-layer count of Korthikanti et al. (2022), ``s·b·h·(34 + 5·a·s/h)`` bytes at
16 bit; convolutional networks use a per-image figure at their default resolution. It is meant to say
"this will clearly not fit" before minutes are spent loading and compiling, not to plan to the
megabyte: the job runner still halves the batch when CUDA really runs out of memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.finetune import Footprint, get_method

GIB = 1 << 30
CUDA_CONTEXT_BYTES = 600 << 20  # context, cuBLAS/cuDNN workspaces: outside PyTorch's allocator
SLACK = 1.2  # allocator fragmentation and temporaries

# name -> (total params, trainable activation MB per image at the default size, default size, head in)
_CNN = {
    "resnet18": (11.7e6, 35, 224, 512), "resnet34": (21.8e6, 50, 224, 512),
    "resnet50": (25.6e6, 100, 224, 2048), "efficientnet_b0": (5.3e6, 80, 224, 1280),
    "efficientnet_b1": (7.8e6, 115, 240, 1280), "mobilenet_v3_small": (2.5e6, 12, 224, 576),
    "mobilenet_v3_large": (5.5e6, 35, 224, 960), "efficientnet_lite0": (4.65e6, 55, 224, 1280),
}
_VIT = {  # torchvision ViTs as transformers: layers, hidden, heads, mlp, image, patch
    "vit_b_16": (12, 768, 12, 3072, 224, 16), "vit_b_32": (12, 768, 12, 3072, 224, 32),
}


@dataclass(frozen=True)
class MemoryEstimate:
    total_bytes: int
    params: int
    trainable: int
    breakdown: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def gib(self) -> float:
        return self.total_bytes / GIB

    def to_dict(self) -> dict[str, Any]:
        return {"total_gib": round(self.gib, 3), "params": self.params, "trainable": self.trainable,
                "breakdown_gib": {k: round(v / GIB, 3) for k, v in self.breakdown.items()}, "notes": self.notes}


@dataclass(frozen=True)
class MemoryCheck:
    fits: bool              # at the configured batch size, by the estimate
    fits_at_batch_1: bool   # at all
    estimate: MemoryEstimate | None
    free_bytes: int
    total_bytes: int
    device: str
    message: str
    suggested_batch_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"fits": self.fits, "fits_at_batch_1": self.fits_at_batch_1, "device": self.device,
                "free_gib": round(self.free_bytes / GIB, 3), "total_gib": round(self.total_bytes / GIB, 3),
                "estimate": self.estimate.to_dict() if self.estimate else None, "message": self.message,
                "suggested_batch_size": self.suggested_batch_size}


def _hf_config(name: str) -> dict[str, Any] | None:
    """config.json of a local folder, the bundled MiniLM, or a Hugging Face cache entry (no network)."""
    path: Path | None = None
    if name == "minilm":
        from core.models.catalog import minilm_dir

        path = minilm_dir() / "config.json"
    elif Path(name).expanduser().is_dir():
        path = Path(name).expanduser() / "config.json"
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(name, "config.json")
            path = Path(hit) if isinstance(hit, str) else None
        except Exception:  # noqa: BLE001 - any cache problem just means "no estimate"
            path = None
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _transformer_shape(c: dict[str, Any]) -> tuple[int, int, int, int, int] | None:
    """(layers, hidden, heads, mlp, vocab) from a transformers config, whatever the naming."""
    layers = c.get("num_hidden_layers") or c.get("n_layers") or c.get("num_layers")
    hidden = c.get("hidden_size") or c.get("dim") or c.get("d_model")
    heads = c.get("num_attention_heads") or c.get("n_heads")
    if not (layers and hidden and heads):
        return None
    mlp = c.get("intermediate_size") or c.get("hidden_dim") or 4 * hidden
    return int(layers), int(hidden), int(heads), int(mlp), int(c.get("vocab_size") or 0)


def _layer_params(h: int, mlp: int) -> int:
    return 4 * h * h + 2 * h * mlp + 9 * h + mlp


def _transformer_acts(layers_with_grad: int, seq: int, batch: int, h: int, heads: int,
                      bytes_per: float) -> int:
    per_layer = seq * batch * (17 * h + 2.5 * heads * seq) * bytes_per
    return int(layers_with_grad * per_layer)


def estimate_train_memory(model_name: str, task: str, *, method: str = "full", batch_size: int = 32,
                          max_length: int = 128, image_size: int | None = None, precision: str = "fp32",
                          topk_layers: int = 2, lora_r: int = 8, train_embeddings: bool = False,
                          eval_batch_size: int = 64, num_labels: int = 2) -> MemoryEstimate | None:
    """Peak device memory of fine-tuning `model_name`, or None when its size cannot be known offline."""
    bytes_per = 2.0 if precision in ("bf16", "fp16") else 4.0
    fine_tune = get_method(method)
    notes: list[str] = []
    name = model_name
    if task == "image" and name.startswith("torchvision:"):
        name = name.split(":", 1)[1]
    if task == "image" and name in _CNN:
        params_f, act_mb, default_size, feat = _CNN[name]
        params = int(params_f)
        scale = ((image_size or default_size) / default_size) ** 2
        head = feat * num_labels + num_labels
        blocks = params - head
        top = min(1.0, topk_layers / 8)
        fp = Footprint(params=params, head=head, frozen_embeddings=0, top_blocks=int(blocks * top),
                       adapters=int(0.02 * blocks),
                       activations=int(batch_size * act_mb * (1 << 20) * scale * bytes_per / 4),
                       top_activations=int(batch_size * act_mb * (1 << 20) * scale * top * bytes_per / 4))
        eval_acts = int(eval_batch_size * act_mb * (1 << 20) * scale * 0.25 * bytes_per / 4)
        notes.append("convolutional activations use a per-image figure measured at the default size")
    else:
        if task == "image" and name in _VIT:
            layers, h, heads, mlp, size, patch = _VIT[name]
            c, vocab = None, 0
            seq = ((image_size or size) // patch) ** 2 + 1
        else:
            c = _hf_config("minilm" if name == "minilm" else name)
            shape = _transformer_shape(c) if c else None
            if shape is None:
                return None
            layers, h, heads, mlp, vocab = shape
            if task == "image":
                size, patch = int(c.get("image_size", 224)), int(c.get("patch_size", 16))
                seq = ((image_size or size) // patch) ** 2 + 1
                vocab = 0
            else:
                seq = max_length
        positions = int((c or {}).get("max_position_embeddings", seq)) if task == "text" else seq
        embed = vocab * h + positions * h
        params = embed + layers * _layer_params(h, mlp) + h * num_labels + num_labels
        head = h * num_labels + num_labels
        layer_acts = _transformer_acts(1, seq, batch_size, h, heads, bytes_per)
        k = min(layers, topk_layers)
        frozen = 0 if (train_embeddings or task == "image") else embed
        fp = Footprint(params=params, head=head, frozen_embeddings=frozen,
                       top_blocks=k * _layer_params(h, mlp), adapters=layers * 2 * 2 * lora_r * h,
                       activations=layers * layer_acts, top_activations=k * layer_acts)
        eval_acts = int(seq * eval_batch_size * (mlp + heads * seq) * bytes_per)
    trainable, acts = fine_tune.memory(fp)
    weights = params * 4
    grads = trainable * 4
    optimizer = trainable * 8
    activations = max(acts, eval_acts)
    breakdown = {"weights": weights, "gradients": grads, "optimizer": optimizer,
                 "activations": int(activations * SLACK), "cuda_context": CUDA_CONTEXT_BYTES}
    return MemoryEstimate(total_bytes=int(sum(breakdown.values())), params=params, trainable=trainable,
                          breakdown=breakdown, notes=notes)


def estimate_for_config(cfg: Any, task: str, num_labels: int = 2, batch_size: int | None = None,
                        precision: str = "fp32") -> MemoryEstimate | None:
    from core.models import resolve_model_name

    t, m = cfg.train, cfg.model
    return estimate_train_memory(
        resolve_model_name(m.name, task), task, method=t.method,
        batch_size=batch_size if batch_size is not None else t.batch_size, max_length=m.max_length,
        image_size=m.image_size, precision=precision, topk_layers=t.topk_layers, lora_r=t.lora_r,
        train_embeddings=t.train_embeddings, eval_batch_size=t.eval_batch_size, num_labels=num_labels)


def cuda_memory(device: Any = None) -> tuple[int, int] | None:
    """(free, total) bytes of a CUDA device, or None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info(device)
    return int(free), int(total)


def check_memory(cfg: Any, task: str, num_labels: int = 2, device: Any = None, precision: str = "fp32",
                 free_total: tuple[int, int] | None = None) -> MemoryCheck | None:
    """Compare the estimate with the free memory of a CUDA `device`; None on CPU/MPS (no check)."""
    free_total = free_total or cuda_memory(device)
    if free_total is None:
        return None
    free, total = free_total
    dev = str(device if device is not None else "cuda")
    est = estimate_for_config(cfg, task, num_labels, precision=precision)
    if est is None:
        return MemoryCheck(True, True, None, free, total, dev,
                           f"No memory estimate for model {cfg.model.name!r}; starting without a check.")
    b = cfg.train.batch_size
    one = estimate_for_config(cfg, task, num_labels, batch_size=1, precision=precision)
    fits, fits1 = est.total_bytes <= free, one is not None and one.total_bytes <= free
    suggested = None
    if not fits and fits1:
        suggested = b
        while suggested > 1:
            suggested //= 2
            e = estimate_for_config(cfg, task, num_labels, batch_size=suggested, precision=precision)
            if e is not None and e.total_bytes <= free:
                break
    what = (f"{cfg.model.name or 'the default model'} ({cfg.train.method}, batch {b}, "
            f"{'max_length ' + str(cfg.model.max_length) if task == 'text' else 'images'})")
    have = f"{free / GIB:.1f} GiB free of {total / GIB:.1f} GiB on {dev}"
    if fits:
        msg = f"{what} needs about {est.gib:.1f} GiB; {have}."
    elif fits1:
        msg = (f"{what} needs about {est.gib:.1f} GiB but only {have}: it will not fit at batch {b}; "
               f"about batch {suggested} should (the runner halves the batch on out-of-memory).")
    else:
        msg = (f"{what} will not fit: even batch size 1 needs about {one.gib:.1f} GiB and only {have}. "  # type: ignore[union-attr]
               "Use a smaller model, a shorter max length, the method lora or head, or a freer GPU.")
    return MemoryCheck(fits, fits1, est, free, total, dev, msg, suggested)


# -- time ------------------------------------------------------------------------------------------

# Sustained training throughput in FLOP/s, measured on this project's reference machines (2-core CPU:
# MiniLM full fine-tune ~53 samples/s at ~30 tokens; EfficientNet-Lite0 at 128 px ~34 images/s).
# CNNs reach a smaller share of peak than transformer matmuls, hence a family factor.
_FLOPS = {"cpu": 1.0e11, "cuda": 1.5e14, "mps": 5e12}
_CNN_EFFICIENCY = 0.25
_CNN_GFLOPS_224 = {"efficientnet_lite0": 0.4, "efficientnet_b0": 0.39, "efficientnet_b1": 0.7,
                   "resnet18": 1.8, "resnet34": 3.6, "resnet50": 4.1, "mobilenet_v3_small": 0.06,
                   "mobilenet_v3_large": 0.22}


@dataclass(frozen=True)
class TimeEstimate:
    seconds: float
    samples: int  # training examples processed (train size x epochs)
    device: str
    basis: str  # how it was computed, for the tooltip

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "samples": self.samples, "device": self.device, "basis": self.basis}


def estimate_train_time(memory: MemoryEstimate | None, *, task: str, model_name: str, method: str,
                        n_train: int, n_eval: int, epochs: int, mean_tokens: float = 32.0,
                        image_size: int | None = None, device: str = "cpu", threads: int = 2
                        ) -> TimeEstimate | None:
    """Wall time of a training job from FLOPs: 2·P per token forward, 6·P for a trained pass, on the
    device's measured sustained rate. Right within a factor of ~2; meant to tell minutes from hours."""
    kind = device.split(":")[0]
    rate = _FLOPS.get(kind, _FLOPS["cpu"]) * (max(1, threads) / 2 if kind == "cpu" else 1)
    name = model_name.split(":", 1)[1] if model_name.startswith("torchvision:") else model_name
    if task == "image" and name in _CNN_GFLOPS_224:
        size = image_size or 224
        fwd = _CNN_GFLOPS_224[name] * 1e9 * 2 * (size / 224) ** 2  # multiply-adds -> FLOPs
        rate *= _CNN_EFFICIENCY
        basis = f"{fwd / 1e9:.2f} GFLOP per image forward at {size} px"
    elif memory is not None:
        params = memory.params - (0 if task == "image" else _embedding_share(memory))
        units = mean_tokens if task == "text" else ((image_size or 224) // 16) ** 2 + 1
        fwd = 2.0 * params * units
        basis = f"{params / 1e6:.1f}M non-embedding parameters x {units:.0f} tokens"
    else:
        return None
    passes = n_train * epochs
    fine_tune = get_method(method)
    if fine_tune.frozen_backbone:  # one frozen forward over every split, then seconds of head training
        flops = fwd * (n_train + n_eval)
    else:
        flops = passes * fwd * (3 - 2 * fine_tune.backward_skipped) + fwd * n_eval * epochs
    seconds = flops / rate + (8.0 if kind == "cpu" else 15.0)  # model load and evaluation overhead
    return TimeEstimate(seconds=round(seconds, 1), samples=passes, device=device,
                        basis=f"{basis}; {passes} training passes on {kind}")


def _embedding_share(memory: MemoryEstimate) -> int:
    # Token embeddings are a lookup, not a matmul: MiniLM's 11.7M-row table costs no FLOPs.
    return int(memory.params * 0.5) if memory.params < 40e6 else int(memory.params * 0.2)


def device_summary() -> dict[str, Any]:
    """What the server trains on, without importing torch: GPUs from nvidia-smi, else the CPU."""
    import os
    import shutil
    import subprocess

    gpus: list[dict[str, Any]] = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,memory.used",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
            for line in out.stdout.strip().splitlines():
                name, total, used = (x.strip() for x in line.split(","))
                gpus.append({"name": name, "memory_gib": round(float(total) / 1024, 1),
                             "used_gib": round(float(used) / 1024, 1)})
        except (OSError, ValueError, subprocess.SubprocessError):
            gpus = []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpu_names = ", ".join(f"{g['name']} ({g['memory_gib']:.0f} GiB)" for g in gpus)
    label = gpu_names or f"CPU ({cores} cores)"
    return {"kind": "cuda" if gpus else "cpu", "gpus": gpus, "cpu_cores": cores, "label": label}
