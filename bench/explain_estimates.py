"""Explain cost estimates against measured wall time: the figures behind tests/data/explain_timings.json.

    python bench/explain_estimates.py [--out tests/data/explain_timings.json] [--device cpu] [--threads 1]

For each tiny image run (a random-init ResNet-18 trained for one epoch on the test suite's shapes at
32 and 64 pixels) and each method (faithfulness on, cache off): one cold `explain()` call that loads
the model and records the timings; then the page's estimate (`estimate_methods` + `first_load`) for
a warm call and for a cold one (the model dropped from memory), each stored with the median wall
time of three such calls on other test images, next to the timing.json the first call left. The
unit test (tests/test_explain_timing.py) recomputes the estimates from those entries.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the suite's synthetic shapes data

FORM = {"baseline": "blur", "steps": 16, "samples": 50, "noise_tunnel": False}
METHODS = ("ig", "saliency", "gradcam", "occlusion")
REPEATS = 3


def train_runs(root: Path) -> list[Path]:
    from fixtures_data import shapes_entries, write_zip

    from core import api
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    data = write_zip(root / "shapes.zip", shapes_entries())
    runs = []
    for size in (32, 64):
        cfg = RunConfig(data=DataConfig(source=str(data)),
                        model=ModelConfig(name="resnet18", pretrained=False, image_size=size),
                        train=TrainConfig(method="full", epochs=1, batch_size=8, lr=5e-3, device="cpu"))
        runs.append(api.train(cfg, runs_dir=root / "runs", run_id=f"resnet18-{size}px"))
    return runs


def measure(run_dir: Path, device: str) -> list[dict[str, Any]]:
    from core import inference
    from core.explain import catalog
    from core.explain.explainer import explain
    from core.explain.timing import estimate_methods, first_load, image_size, read_timings
    from core.runs import Run

    run = Run(run_dir)
    summary, images = run.summary(), list(run.predictions()["input"].astype(str))
    rows = []
    for m in METHODS:
        (run_dir / "explanations" / "timing.json").unlink(missing_ok=True)
        inference._LOADED.clear()  # noqa: SLF001 - a cold start for each method

        def call(i: int, m: str = m) -> float:
            t0 = time.perf_counter()
            explain(run_dir, images[i], m, params=catalog.method_params(m, FORM), use_cache=False, device=device)
            return time.perf_counter() - t0

        first = call(0)
        timings = read_timings(run_dir)
        for i, loaded in ((1, True), (2, False)):
            est = estimate_methods(run_dir, summary, [m], FORM, images[i], "image")[0] + \
                first_load(run_dir, summary, loaded=loaded)[0]
            calls = []
            for k in range(REPEATS):  # the median call: the machine is shared, one call can be 2x off
                if not loaded:
                    inference._LOADED.clear()  # noqa: SLF001
                calls.append(call(i + 2 * k))
            actual = statistics.median(calls)
            rows.append({"run": run_dir.name, "method": m, "params": catalog.method_params(m, FORM),
                         "image_size": image_size(run_dir, summary), "total_params": summary.get("total_params"),
                         "device": device, "model_loaded": loaded, "timings": timings, "first_call_s": first,
                         "estimate_s": est, "actual_s": actual, "calls_s": calls, "ratio": est / actual})
            print(f"{run_dir.name:14} {m:10} loaded={loaded!s:5} estimate {est:.3f} s, actual {actual:.3f} s, "
                  f"ratio {est / actual:.2f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "data" / "explain_timings.json"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads; 1 keeps a shared 2-core box's other work from stalling every op")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure: say how much
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TUNESCOPE_HOME"] = tmp
        rows = [r for run in train_runs(Path(tmp)) for r in measure(run, args.device)]
    load = os.getloadavg()[0]
    out = {"command": f"python bench/explain_estimates.py --device {args.device} --threads {args.threads}",
           "machine": f"{os.cpu_count()} CPU cores, 1-min load average {load_before:.2f} before, {load:.2f} after",
           "form": FORM, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
