"""Explain cost estimates against measured wall time: the figures behind tests/data/explain_timings.json.

    python bench/explain_estimates.py [--out tests/data/explain_timings.json] [--device cpu]

For each tiny image run (a random-init ResNet-18 trained for one epoch on the test suite's shapes at
32 and 64 pixels) and each method, three calls of `explain()` (faithfulness on, cache off), each on
another test image: a cold one that loads the model and records the timings, a warm one, and a cold
one again (the model dropped from memory). Before the second and third the page's estimate is
computed (`estimate_methods` + `first_load`) and stored with the call's wall time, next to the
timing.json the first call left: the unit test recomputes the estimates from those entries.
"""

from __future__ import annotations

import argparse
import json
import os
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
    from core.explain.timing import estimate_methods, first_load, read_timings
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
            if not loaded:
                inference._LOADED.clear()  # noqa: SLF001
            est = estimate_methods(run_dir, summary, [m], FORM, images[i], "image")[0] + \
                first_load(run_dir, summary, loaded=loaded)[0]
            actual = call(i)
            rows.append({"run": run_dir.name, "method": m, "params": catalog.method_params(m, FORM),
                         "image_size": summary.get("image_size"), "total_params": summary.get("total_params"),
                         "device": device, "model_loaded": loaded, "timings": timings, "first_call_s": first,
                         "estimate_s": est, "actual_s": actual, "ratio": est / actual})
            print(f"{run_dir.name:14} {m:10} loaded={loaded!s:5} estimate {est:.3f} s, actual {actual:.3f} s, "
                  f"ratio {est / actual:.2f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "data" / "explain_timings.json"))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TUNESCOPE_HOME"] = tmp
        rows = [r for run in train_runs(Path(tmp)) for r in measure(run, args.device)]
    load = os.getloadavg()[0]
    out = {"command": "python bench/explain_estimates.py" + (f" --device {args.device}" if args.device != "cpu"
                                                             else ""),
           "machine": f"{os.cpu_count()} CPU cores, 1-min load average {load:.2f} at the end",
           "form": FORM, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
