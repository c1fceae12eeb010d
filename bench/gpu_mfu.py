"""Training throughput and model FLOP utilisation of tunescope's engine on a CUDA GPU.

    python bench/gpu_mfu.py [--batch-size 64] [--seq-len 128] [--steps 60] [--peak-tflops 989]

A BERT-base-shaped encoder (12 layers, 768 hidden, 110M params; random init, so no hub is needed) is
fully fine-tuned with bf16 autocast on fixed-length sequences. FLOPs per sample follow the usual
estimate 6 * params * tokens plus attention (12 * layers * hidden * seq_len^2 per sample for the
forward and backward of QK^T and AV). The default peak is the H100 SXM dense bf16 figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_model_dir(root: Path, seq_len: int) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    d = root / "bert-base-random"
    d.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(30517)]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (d / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer", "do_lower_case": true}')
    AutoTokenizer.from_pretrained(d).save_pretrained(d)
    BertModel(BertConfig(max_position_embeddings=max(512, seq_len))).save_pretrained(d)
    return d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--peak-tflops", type=float, default=989.0)
    args = p.parse_args()

    import pandas as pd
    import torch

    if not torch.cuda.is_available():
        print("No CUDA GPU visible: this benchmark needs one (skipped).")
        return
    from core.config import TrainConfig
    from core.data.dataset import LabeledData
    from core.finetune import count_params, get_method
    from core.models import build_model
    from core.train.engine import Engine, seed_everything

    rng = torch.Generator().manual_seed(0)
    n = args.batch_size * args.steps
    words = torch.randint(0, 30517, (n, args.seq_len - 2), generator=rng)
    texts = [" ".join(f"w{int(i)}" for i in row) for row in words]
    labels = torch.randint(0, 2, (n,), generator=rng).tolist()
    df = pd.DataFrame({"input": texts, "label": [str(y) for y in labels], "label_id": labels})
    data = LabeledData("text", ["0", "1"], {"train": df, "validation": df[:256], "test": df[:256]}, "synthetic",
                       "synthetic")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_model_dir(Path(tmp), args.seq_len)
        seed_everything(0)
        bundle = build_model(str(model_dir), "text", 2, max_length=args.seq_len, pooling="cls")
        cfg = TrainConfig(method="full", epochs=1, batch_size=args.batch_size, lr=5e-5, device="cuda",
                          train_embeddings=True, checkpoint_every=0, log_every=10_000)
        get_method("full").apply(bundle.model, cfg)
        params = count_params(bundle.model)[1]
        engine = Engine(bundle, cfg, get_method("full"))
        t0 = time.perf_counter()
        result = engine.fit(data)
        wall = time.perf_counter() - t0
    layers, hidden = 12, 768
    flops_per_sample = 6 * params * args.seq_len + 12 * layers * hidden * args.seq_len**2
    achieved = result.samples_per_second * flops_per_sample / 1e12
    print(f"GPU: {torch.cuda.get_device_name()}  params: {params / 1e6:.1f}M  batch {args.batch_size}  "
          f"seq {args.seq_len}  precision {result.precision}")
    print(f"train samples/s: {result.samples_per_second:.1f}  ({result.train_seconds:.1f}s train, {wall:.1f}s wall)")
    print(f"achieved: {achieved:.1f} TFLOP/s  MFU: {100 * achieved / args.peak_tflops:.1f}% "
          f"of {args.peak_tflops:.0f} TFLOP/s  peak memory {result.peak_memory_mb:.0f} MB")


if __name__ == "__main__":
    main()
