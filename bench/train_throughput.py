"""tunescope's training engine vs Hugging Face `Trainer`: same model object, same data, same batch
size, sequence length, optimiser and trainable weights; prints samples/s of both and the ratio.

    python bench/train_throughput.py [--samples 1536] [--batch-size 32] [--max-length 64] [--threads 2]
                                     [--repeats 2] [--train-embeddings]

Each side trains one epoch over the same examples from the sentiment demo; the first batches are
timed too (both pay the same warm-up). The model is the default MiniLM classifier with mean pooling.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402


def build(num_labels: int, max_length: int, train_embeddings: bool):
    from core.config import TrainConfig
    from core.finetune import get_method
    from core.models import build_model
    from core.train.engine import seed_everything

    seed_everything(0)
    bundle = build_model("minilm", "text", num_labels, max_length=max_length)
    get_method("full").apply(bundle.model, TrainConfig(method="full", train_embeddings=train_embeddings))
    return bundle


def run_ours(data, args) -> float:
    from core.config import TrainConfig
    from core.finetune import get_method
    from core.train.engine import Engine

    bundle = build(data.num_labels, args.max_length, args.train_embeddings)
    cfg = TrainConfig(method="full", epochs=1, batch_size=args.batch_size, lr=5e-5, device="cpu",
                      train_embeddings=args.train_embeddings, eval_batch_size=128)
    engine = Engine(bundle, cfg, get_method("full"))
    result = engine.fit(data)
    return result.samples_per_second


class _WithLoss(nn.Module):
    """Trainer wants a model that returns the loss; wrap the very same classifier."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, labels=None, num_items_in_batch=None, **batch):
        logits = self.model(**batch)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return {"loss": loss, "logits": logits}


def run_trainer(data, args) -> float:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    bundle = build(data.num_labels, args.max_length, args.train_embeddings)
    train = data.split("train")
    tok = bundle.preprocessor.tokenizer
    enc = tok(train["input"].tolist(), truncation=True, max_length=args.max_length)
    rows = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
             "token_type_ids": enc["token_type_ids"][i], "labels": int(y)}
            for i, y in enumerate(train["label_id"])]
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, num_train_epochs=1,
            learning_rate=5e-5, warmup_steps=0.1, weight_decay=0.01, max_grad_norm=1.0,
            lr_scheduler_type="linear", train_sampling_strategy="group_by_length", use_cpu=True, report_to=[],
            save_strategy="no", eval_strategy="no", logging_steps=10_000, dataloader_num_workers=0,
            disable_tqdm=True, seed=0, remove_unused_columns=False,
        )
        trainer = Trainer(model=_WithLoss(bundle.model), args=targs, train_dataset=rows,
                          data_collator=DataCollatorWithPadding(tok))
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    return len(rows) / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1536)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="Rounds per side, alternating which goes first.")
    p.add_argument("--train-embeddings", action="store_true",
                   help="Train the token embedding table on both sides (off: frozen on both sides).")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from core.data import load_dataset

    data = load_dataset("demo:sentiment", max_samples=args.samples, val_fraction=0.05, test_fraction=0.05)
    n = len(data.split("train"))
    print(f"MiniLM full fine-tune, {n} train examples, batch {args.batch_size}, max_length {args.max_length}, "
          f"{args.threads} threads, train_embeddings={args.train_embeddings}")
    # ABBA order, so warm-up and drift of the machine fall on both sides alike.
    trainer, ours = [], []
    for rnd in range(args.repeats):
        first, second = (run_trainer, run_ours) if rnd % 2 == 0 else (run_ours, run_trainer)
        for fn in (first, second):
            sps = fn(data, args)
            (trainer if fn is run_trainer else ours).append(sps)
            print(f"  round {rnd + 1}: {'HF Trainer' if fn is run_trainer else 'tunescope':10s} {sps:7.1f} samples/s")
    t, o = statistics.median(trainer), statistics.median(ours)
    print(f"HF Trainer:        {t:7.1f} samples/s (median of {len(trainer)})")
    print(f"tunescope engine:  {o:7.1f} samples/s (median of {len(ours)})")
    print(f"ratio (tunescope / Trainer): {o / t:.2f}x")


if __name__ == "__main__":
    main()
