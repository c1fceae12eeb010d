"""`tunescope` command line. Each command is a thin shell over a `core.api` call.

Errors caused by input (`TunescopeError`) exit with code 2 and one line on stderr; `--debug` shows
the traceback. Progress goes to stderr so stdout stays parseable: `train` prints the run directory as
its last stdout line, `predict`/`eval` print JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.config import METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig, field_help
from core.errors import TunescopeError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage; keep it to one line
        self.exit(EXIT_USAGE, f"tunescope: error: {message} (see --help)\n")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    dh, mh, th = field_help(DataConfig), field_help(ModelConfig), field_help(TrainConfig)
    p.add_argument("--data", required=True, help=dh["source"])
    p.add_argument("--text-column", help=dh["text_column"])
    p.add_argument("--label-column", help=dh["label_column"])
    p.add_argument("--split-column", help=dh["split_column"])
    p.add_argument("--max-samples", type=int, help=dh["max_samples"])
    p.add_argument("--val-fraction", type=float, default=0.1, help=dh["val_fraction"])
    p.add_argument("--test-fraction", type=float, default=0.2, help=dh["test_fraction"])
    p.add_argument("--model", help=mh["name"])
    p.add_argument("--random-init", action="store_true", help="Do not load pretrained weights.")
    p.add_argument("--max-length", type=int, default=128, help=mh["max_length"])
    p.add_argument("--image-size", type=int, help=mh["image_size"])
    p.add_argument("--pooling", default="auto", help=mh["pooling"])
    p.add_argument("--method", default="full", choices=METHODS, help=th["method"])
    p.add_argument("--epochs", type=int, help=th["epochs"])
    p.add_argument("--batch-size", type=int, default=32, help=th["batch_size"])
    p.add_argument("--lr", type=float, help=th["lr"])
    p.add_argument("--weight-decay", type=float, default=0.01, help=th["weight_decay"])
    p.add_argument("--warmup-ratio", type=float, default=0.1, help=th["warmup_ratio"])
    p.add_argument("--grad-accum", type=int, default=1, help=th["grad_accum"])
    p.add_argument("--max-grad-norm", type=float, default=1.0, help=th["max_grad_norm"])
    p.add_argument("--seed", type=int, default=0, help=th["seed"])
    p.add_argument("--patience", type=int, help=th["patience"])
    p.add_argument("--topk-layers", type=int, default=2, help=th["topk_layers"])
    p.add_argument("--lora-r", type=int, default=8, help=th["lora_r"])
    p.add_argument("--lora-alpha", type=int, default=16, help=th["lora_alpha"])
    p.add_argument("--train-embeddings", action="store_true", help=th["train_embeddings"])
    p.add_argument("--augment", action="store_true", help=th["augment"])
    p.add_argument("--device", default="auto", help=th["device"])
    p.add_argument("--precision", default="auto", help=th["precision"])
    p.add_argument("--max-steps", type=int, help=th["max_steps"])
    p.add_argument("--runs-dir", help="Where runs are stored (default $TUNESCOPE_HOME/runs).")
    p.add_argument("--run-id", help="Name for the run directory (default: time-dataset-model-method).")


def config_from_args(a: argparse.Namespace) -> RunConfig:
    return RunConfig(
        data=DataConfig(source=a.data, text_column=a.text_column, label_column=a.label_column,
                        split_column=a.split_column, val_fraction=a.val_fraction,
                        test_fraction=a.test_fraction, max_samples=a.max_samples),
        model=ModelConfig(name=a.model, pretrained=not a.random_init, max_length=a.max_length,
                          image_size=a.image_size, pooling=a.pooling),
        train=TrainConfig(method=a.method, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                          weight_decay=a.weight_decay, warmup_ratio=a.warmup_ratio,
                          grad_accum=a.grad_accum, max_grad_norm=a.max_grad_norm, seed=a.seed,
                          patience=a.patience, topk_layers=a.topk_layers, lora_r=a.lora_r,
                          lora_alpha=a.lora_alpha, train_embeddings=a.train_embeddings,
                          augment=a.augment, device=a.device, precision=a.precision,
                          max_steps=a.max_steps),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tunescope", description="Fine-tune, compare and explain classifiers.")
    parser.add_argument("--debug", action="store_true", help="Show full tracebacks on errors.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="Fine-tune a model on a dataset and save the run.")
    _add_train_args(p)
    p.add_argument("--quiet", action="store_true", help="No progress bar.")

    p = sub.add_parser("predict", help="Predict with a trained run.")
    p.add_argument("--run", required=True, help="Run directory or run id.")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", action="append", help="Text to classify (repeatable).")
    g.add_argument("--image", action="append", help="Image file to classify (repeatable).")
    p.add_argument("--runs-dir")
    p.add_argument("--device", default="cpu")

    p = sub.add_parser("eval", help="Evaluate a trained run on another labelled file.")
    p.add_argument("--run", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--text-column")
    p.add_argument("--label-column")
    p.add_argument("--runs-dir")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="Print the full report as JSON only.")

    p = sub.add_parser("runs", help="List runs.")
    p.add_argument("--runs-dir")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("demo-data", help="List the built-in datasets (use as --data demo:NAME).")
    p.add_argument("--json", action="store_true")
    _add_extension_commands(sub)
    return parser


EXTENSIONS = ("core.cli_jobs",)  # modules that add commands: add_commands(sub) -> {name: handler}


def _add_extension_commands(sub: Any) -> None:
    import importlib

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        COMMANDS.update(module.add_commands(sub, _add_train_args))


def _progress_callback(quiet: bool) -> list[Any]:
    if quiet:
        return []
    from tqdm import tqdm

    from core.engine import Callback

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


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def cmd_train(a: argparse.Namespace) -> int:
    from core import api
    from core.metrics import format_report

    cfg = config_from_args(a)
    run_dir = api.train(cfg, runs_dir=a.runs_dir, callbacks=_progress_callback(a.quiet), run_id=a.run_id)
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

    inputs = a.text if a.text else [_existing_file(p) for p in a.image]
    results = api.predict(a.run, inputs, runs_dir=a.runs_dir or _default_runs(), device=a.device)
    out = results[0] if len(results) == 1 else results
    print(json.dumps(out, indent=2))
    return 0


def _existing_file(path: str) -> str:
    from core.errors import DataError

    if not Path(path).is_file():
        raise DataError(f"Image file {path!r} does not exist.")
    return str(Path(path).resolve())


def _default_runs() -> Path:
    from core.runs import default_runs_dir

    return default_runs_dir()


def cmd_eval(a: argparse.Namespace) -> int:
    from core import api
    from core.metrics import format_report

    report = api.evaluate(a.run, a.data, runs_dir=a.runs_dir or _default_runs(), text_column=a.text_column,
                          label_column=a.label_column, device=a.device)
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def cmd_runs(a: argparse.Namespace) -> int:
    from core.runs import list_runs

    rows = list_runs(Path(a.runs_dir) if a.runs_dir else None)
    if a.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("No runs yet. Start one with: tunescope train --data demo:sentiment")
    else:
        print(_table(rows, ["run_id", "state", "task", "dataset", "model", "method", "seed", "accuracy",
                            "macro_f1", "train_seconds"]))
    return 0


def cmd_demo_data(a: argparse.Namespace) -> int:
    from core.demos import list_demos

    demos = list_demos()
    if a.json:
        print(json.dumps([d.__dict__ for d in demos], indent=2))
        return 0
    rows = [{"name": f"demo:{d.name}", "task": d.task, "examples": d.num_examples, "classes": d.num_classes,
             "title": d.title, "licence": d.licence} for d in demos]
    print(_table(rows, ["name", "task", "examples", "classes", "title", "licence"]))
    return 0


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "eval": cmd_eval, "runs": cmd_runs,
            "demo-data": cmd_demo_data}


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TunescopeError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"tunescope: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tunescope: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: say so briefly; --debug has the details
        if args.debug:
            raise
        print(f"tunescope: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
