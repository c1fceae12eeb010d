"""Checkpoint overhead: the share of training time spent writing resumable checkpoints.

    python bench/checkpoint_overhead.py [--data demo:sentiment] [--model minilm] [--max-samples N]
                                        [--epochs 2] [--checkpoint-every 200] [--threads 2]

Trains the default text demo configuration once (full fine-tune, batch 32, default checkpoint
frequency) with `Checkpointer.save` timed, and prints the time spent saving as a percentage of the
training time (target < 5 %). Because the default frequency (every 200 steps, plus each epoch end
but the last) may save only once or twice on a small demo, it also prints the cost of one checkpoint
and of one training step, and what they imply for the default frequency on a dataset of any size:
overhead ≈ save_s / (200 × step_s). Percentages are of the optimisation time alone (the engine's
`train_seconds`, which excludes evaluation and the saves themselves), so they err on the high side.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="demo:sentiment")
    p.add_argument("--model", default=None, help="default: minilm")
    p.add_argument("--max-samples", type=int)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--checkpoint-every", type=int, default=None, help="default: TrainConfig's (200)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from core import api
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from core.train.checkpoint import Checkpointer

    torch.set_num_threads(a.threads)
    saves: list[tuple[float, int]] = []
    original = Checkpointer.save

    def timed_save(self, step, tensors, optimizer, state):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        path = original(self, step, tensors, optimizer, state)
        size = sum(f.stat().st_size for f in path.iterdir())
        saves.append((time.perf_counter() - t0, size))
        return path

    Checkpointer.save = timed_save  # type: ignore[method-assign]
    train_kw = {"epochs": a.epochs, "device": "cpu"}
    if a.checkpoint_every is not None:
        train_kw["checkpoint_every"] = a.checkpoint_every
    cfg = RunConfig(data=DataConfig(source=a.data, max_samples=a.max_samples), model=ModelConfig(name=a.model),
                    train=TrainConfig(**train_kw))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = api.train(cfg, runs_dir=tmp, run_id="bench")
        wall = time.perf_counter() - t0
        summary = json.loads((run / "summary.json").read_text())
    train_s = summary["train_seconds"]  # optimisation steps only: the engine excludes saves and evaluation
    save_s = sum(s for s, _ in saves)
    steps = summary["steps"]
    step_s = train_s / max(1, steps)
    per_save = save_s / len(saves) if saves else None
    out = {
        "data": a.data, "model": summary["model"], "train_examples": summary["dataset"]["sizes"]["train"],
        "epochs": a.epochs, "steps": steps, "checkpoint_every": cfg.train.checkpoint_every,
        "threads": a.threads, "checkpoints": len(saves),
        "checkpoint_mb": round(saves[-1][1] / 2**20, 1) if saves else None,
        "seconds_per_checkpoint": round(per_save, 3) if per_save else None,
        "seconds_per_step": round(step_s, 4), "save_seconds": round(save_s, 3),
        "train_seconds": round(train_s, 2), "wall_seconds": round(wall, 2),
        "overhead_percent": round(100 * save_s / train_s, 2),
        "implied_overhead_percent_at_200_steps": (round(100 * per_save / (200 * step_s), 2)
                                                  if per_save else None),
        "test_accuracy": summary["test"]["accuracy"],
    }
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:40s} {v}")
        print(f"\ncheckpoint overhead {out['overhead_percent']:.2f} % of training time (target < 5 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
