"""Record what a running train job reports, to check its ETA against the time it really took.

    python bench/record_train_timings.py [--out tests/data/train_timings.json] [--threads 1]

Runs a few tiny text training jobs (full and head methods, on random-initialised BERTs built from
configs as in tests/conftest.py) through the real job runner and `JobContext`, with a store that keeps
every progress report instead of writing it to a database. For each job it saves when it started and
ended and, per report, the progress fields the ETA rule (core.jobs.listing.eta_seconds) reads plus the
ETA it gave. tests/test_eta.py replays these traces through the current ETA rule.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

POS = ["good", "great", "fun", "lovely", "superb", "moving", "brilliant", "charming"]
NEG = ["bad", "dull", "awful", "boring", "weak", "tedious", "poor", "messy"]
FILLER = ["the", "film", "movie", "was", "a", "story", "plot", "and", "really", "quite", "acting", "very"]

# What the replay needs of a report; the rest (memory, loss, last epoch …) only makes the file big.
# The job's plan (`eta_plan`) is the same in every report: it is kept once per job.
KEEP = ("phase", "step", "total_steps", "eta_s", "phase_done", "phase_total", "phase_done0", "phase_started",
        "updated", "eta_work", "eta_phase_work")

# (name, method, rows, epochs, batch size, max length, hidden size, layers, words per text); a range
# of text lengths shows the caching pace slowing down, as its batches come sorted by length
JOBS = [
    ("full-6ep", "full", 2500, 6, 16, 32, 64, 2, (7, 7)),
    ("full-2ep-wide", "full", 3200, 2, 8, 48, 128, 2, (7, 7)),
    ("head-3ep", "head", 12000, 3, 16, 64, 128, 4, (7, 7)),
    ("head-20ep", "head", 2000, 20, 8, 32, 64, 2, (7, 7)),
    ("head-varied-lengths", "head", 5000, 2, 16, 64, 128, 4, (2, 60)),
    ("full-varied-lengths", "full", 1500, 2, 16, 64, 64, 2, (2, 60)),
]


def sentiment_rows(n: int, words: tuple[int, int] = (7, 7), seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        fill = [rng.choice(FILLER) for _ in range(rng.randint(*words) - 1)]
        words_ = fill + [rng.choice(POS if label == "positive" else NEG)]
        rng.shuffle(words_)
        rows.append((" ".join(words_), label))
    return rows


def tiny_bert(d: Path, hidden: int, layers: int) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    d.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POS, *NEG, *FILLER,
             *"abcdefghijklmnopqrstuvwxyz", "<", ">", "/", "(", ")", "!", ".", ","]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (d / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer", "do_lower_case": true}')
    AutoTokenizer.from_pretrained(d).save_pretrained(d)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(d)
    return d


class RecordingStore:
    """The one store call a running JobContext makes, kept in memory."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    def report_progress(self, job_id: str, attempt: int, progress: dict[str, Any]) -> str:
        self.reports.append(dict(progress))
        return "ok"


def slim(progress: dict[str, Any], t0: float) -> dict[str, Any]:
    """The fields the ETA rule reads; wall-clock times counted from the job's start (the rule only
    takes their differences) and rounded to the millisecond."""
    out = {k: v for k, v in progress.items() if k in KEEP}
    for k in ("updated", "phase_started"):
        if out.get(k) is not None:
            out[k] = out[k] - t0
    for k, v in out.items():
        if isinstance(v, float):
            out[k] = round(v, 3)
    out["elapsed"] = out["updated"]
    return out


def run_job(name: str, config: dict[str, Any], root: Path, min_interval: float = 0.5) -> dict[str, Any]:
    """Run one train job through the real runner and JobContext; its start, end and reports."""
    from core.jobs.context import JobContext
    from core.jobs.listing import eta_seconds
    from core.jobs.store import Job
    from core.train.runner import run_train

    store = RecordingStore()
    job = Job(id=name, state="running", attempts=1, config=config, runs_dir=str(root / "runs"), run_id=name)
    t0 = time.time()
    ctx = JobContext(store, job, min_interval=min_interval)  # type: ignore[arg-type]
    ctx.start()
    try:
        run_train(ctx)
        ctx.finishing = True
    finally:
        ctx.close()
    t1 = time.time()
    reports = []
    for p in store.reports:
        r = slim(p, t0)
        r["eta_shown"] = eta_seconds(p)
        reports.append(r)
    plan = next((p["eta_plan"] for p in store.reports if p.get("eta_plan")), None)
    return {"name": name, "method": config["train"]["method"], "final_elapsed": round(t1 - t0, 3),
            "eta_plan": plan, "reports": reports}


def job_config(source: Path, model: Path, method: str, epochs: int, batch: int, max_length: int) -> dict[str, Any]:
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    return RunConfig(data=DataConfig(source=str(source)),
                     model=ModelConfig(name=str(model), max_length=max_length, pooling="mean"),
                     train=TrainConfig(method=method, epochs=epochs, batch_size=batch, device="cpu",
                                       eval_batch_size=32)).to_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/data/train_timings.json")
    # one thread: on a shared machine a two-thread op waits for its slower thread, which makes the
    # step time swing far more than the ETA of a job on a machine of its own would see
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="names of the jobs to run (default: all)")
    args = ap.parse_args()
    os.environ["TUNESCOPE_JOB_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    jobs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["TUNESCOPE_HOME"] = str(root / "home")
        for name, method, rows, epochs, batch, max_length, hidden, layers, words in JOBS:
            if args.only and name not in args.only:
                continue
            src = root / f"{name}.csv"
            with open(src, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["text", "label"])
                w.writerows(sentiment_rows(rows, words))
            model = tiny_bert(root / f"bert-{hidden}-{layers}", hidden, layers)
            rec = run_job(name, job_config(src, model, method, epochs, batch, max_length), root)
            rec.update(rows=rows, epochs=epochs, batch_size=batch)
            shown = [r["eta_shown"] for r in rec["reports"]]
            print(f"{name}: {rec['final_elapsed']:.1f} s, {len(shown)} reports", flush=True)
            jobs.append(rec)
    out = {"recorded": time.strftime("%Y-%m-%d"), "host": platform.machine(), "threads": args.threads,
           "torch": torch.__version__, "jobs": jobs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
