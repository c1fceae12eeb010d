"""`tunescope train`, `predict`, `eval`, `runs` and `demo-data`: one run at a time, in this process.

`train` prints the run directory as its last stdout line and its progress on stderr; `predict` and
`eval --json` print JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.common import add_command, add_train_args, checked_run, config_from_args, table


def add_commands(sub: Any) -> None:
    p = add_command(sub, "train", cmd_train, help="Fine-tune a model on a dataset and save the run.")
    add_train_args(p)
    p.add_argument("--quiet", action="store_true", help="No progress bar.")
    p.add_argument("--mlflow", metavar="URI", help="Also log the finished run to this MLflow tracking URI (needs "
                                                   "`pip install mlflow`; the worker reads $TUNESCOPE_MLFLOW_URI).")

    p = add_command(sub, "predict", cmd_predict, help="Predict with a trained run.")
    p.add_argument("--run", required=True, help="Run directory or run id.")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", action="append", help="Text to classify (repeatable).")
    g.add_argument("--image", action="append", help="Image file to classify (repeatable).")
    p.add_argument("--runs-dir")
    p.add_argument("--device", default="cpu")

    p = add_command(sub, "eval", cmd_eval, help="Evaluate a trained run on another labelled file.")
    p.add_argument("--run", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--text-column")
    p.add_argument("--label-column")
    p.add_argument("--runs-dir")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="Print the full report as JSON only.")

    p = add_command(sub, "runs", cmd_runs, help="List runs.")
    p.add_argument("--runs-dir")
    p.add_argument("--json", action="store_true")

    p = add_command(sub, "demo-data", cmd_demo_data, help="List the built-in datasets (use as --data demo:NAME).")
    p.add_argument("--json", action="store_true")


def _progress_callback(quiet: bool) -> list[Any]:
    if quiet:
        return []
    from tqdm import tqdm

    from core.train.engine import Callback

    class Bar(Callback):
        def __init__(self) -> None:
            self.bar: Any = None
            self.phase_bar: Any = None

        def on_phase(self, state: Any, phase: str, done: int, total: int) -> None:
            if self.phase_bar is None or self.phase_bar.desc != phase:
                if self.phase_bar is not None:
                    self.phase_bar.close()
                self.phase_bar = tqdm(total=total, desc=phase, unit="ex", leave=False, file=sys.stderr)
            self.phase_bar.n = done
            self.phase_bar.refresh()
            if done >= total:
                self.phase_bar.close()
                self.phase_bar = None

        def on_step(self, state: Any) -> None:
            if self.bar is None:
                self.bar = tqdm(total=state.total_steps, desc="train", unit="step", file=sys.stderr)
            self.bar.n = state.step
            self.bar.set_postfix(loss=f"{state.loss:.4f}", ep=f"{state.epoch:.2f}",
                                 sps=f"{state.samples_per_second:.1f}", refresh=False)
            self.bar.refresh()

        def on_log(self, row: dict[str, Any]) -> None:
            if row.get("type") == "epoch":
                msg = (f"epoch {row['epoch']}: train_loss {row['train_loss']:.4f}  val_loss "
                       f"{row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  "
                       f"val_macro_f1 {row['val_macro_f1']:.4f}{'  *best*' if row['is_best'] else ''}")
                (self.bar.write if self.bar else print)(msg, file=sys.stderr)

        def on_end(self, state: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    return [Bar()]


def cmd_train(a: argparse.Namespace) -> int:
    from core import api
    from core.metrics import format_report
    from core.tracking import maybe_log, tracking_uri

    cfg = config_from_args(a)
    if tracking_uri(a.mlflow):  # refuse before training, not after, when MLflow is missing
        import importlib.util

        if importlib.util.find_spec("mlflow") is None:
            from core.errors import ConfigError

            raise ConfigError("--mlflow needs MLflow: run `pip install mlflow` (or leave --mlflow out).")
    run_dir = api.train(cfg, runs_dir=a.runs_dir, callbacks=_progress_callback(a.quiet), run_id=a.run_id)
    maybe_log(run_dir, a.mlflow)
    summary = json.loads((run_dir / "summary.json").read_text())
    print(f"model {summary['model']}  method {summary['method']}  trainable "
          f"{summary['trainable_params']:,} / {summary['total_params']:,} params  device {summary['device']}")
    print(f"trained {summary['train_seconds']:.1f}s ({summary['train_samples_per_second']:.1f} samples/s), "
          f"best epoch {summary['best_epoch']}")
    print(f"test set ({summary['test']['n']} examples):")
    print(format_report(summary["test"]))
    print(str(run_dir))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from core import api

    kind = "text" if a.text else "image"
    inputs = a.text or [str(Path(x).expanduser().resolve()) for x in a.image]
    a.run = checked_run(a.run, a.runs_dir)
    results = api.predict(a.run, inputs, runs_dir=a.runs_dir or _default_runs(), device=a.device, kind=kind)
    out = results[0] if len(results) == 1 else results
    print(json.dumps(out, indent=2))
    return 0


def _default_runs() -> Path:
    from core.runs import default_runs_dir

    return default_runs_dir()


def cmd_eval(a: argparse.Namespace) -> int:
    from core import api
    from core.metrics import format_report

    a.run = checked_run(a.run, a.runs_dir)
    report = api.evaluate(a.run, a.data, runs_dir=a.runs_dir or _default_runs(), text_column=a.text_column,
                          label_column=a.label_column, device=a.device)
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def cmd_runs(a: argparse.Namespace) -> int:
    from core.accounts import cli_actor
    from core.workspace import list_runs

    rows = list_runs(cli_actor(), Path(a.runs_dir) if a.runs_dir else None)
    if a.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("No runs yet. Start one with: tunescope train --data demo:sentiment")
    else:
        print(table(rows, ["run_id", "state", "task", "dataset", "model", "method", "seed", "accuracy",
                            "macro_f1", "train_seconds"]))
        damaged = [r for r in rows if r.get("reason")]
        if damaged:
            print(f"\n{len(damaged)} damaged run(s):")
            for r in damaged:
                print(f"  {r['run_id']}: {r['reason']}")
    return 0


def cmd_demo_data(a: argparse.Namespace) -> int:
    from core.data.demos import list_demos

    demos = list_demos()
    if a.json:
        print(json.dumps([d.__dict__ for d in demos], indent=2))
        return 0
    rows = [{"name": f"demo:{d.name}", "task": d.task, "examples": d.num_examples, "classes": d.num_classes,
             "title": d.title, "licence": d.licence} for d in demos]
    print(table(rows, ["name", "task", "examples", "classes", "title", "licence"]))
    return 0
