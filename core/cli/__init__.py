"""`tunescope` command line. Each command is a thin shell over a `core.api` call.

Errors caused by input (`TunescopeError`) exit with code 2 and one line on stderr; `--debug` shows
the traceback. Progress goes to stderr so stdout stays parseable: `train` prints the run directory as
its last stdout line, `predict`/`eval` print JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.config import METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig
from core.errors import TunescopeError

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as for `yes | head`


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage; keep it to one line
        self.exit(EXIT_USAGE, f"tunescope: error: {message} (see --help)\n")


# Config fields whose flag is not simply --field-name.
FLAG_NAMES = {"source": "--data", "name": "--model"}
SECTIONS = (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))


def _flag_type(annotation: str) -> type | None:
    for name, kind in (("bool", None), ("int", int), ("float", float)):
        if name in annotation:
            return kind
    return str


def _add_train_args(p: argparse.ArgumentParser) -> None:
    """One flag per config field, with the field's own help; defaults stay in the dataclasses."""
    for section, kind in SECTIONS:
        for f in dataclasses.fields(kind):
            flag = FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
            dest = f"{section}.{f.name}"
            help_text = f.metadata.get("help", "")
            if f.name == "pretrained":
                p.add_argument("--random-init", dest=dest, action="store_false", default=None,
                               help="Start from random weights instead of pretrained ones (for tests).")
            elif _flag_type(str(f.type)) is None:
                p.add_argument(flag, dest=dest, action="store_true", default=None, help=help_text)
            else:
                extra: dict[str, Any] = {"choices": METHODS} if f.name == "method" else {}
                default = f.default if f.default is not dataclasses.MISSING else None
                shown = f" (default: {default})" if default not in (None, "") and f.name != "source" else ""
                p.add_argument(flag, dest=dest, type=_flag_type(str(f.type)), default=None, metavar=f.name.upper(),
                               required=f.name == "source", help=help_text + shown, **extra)
    p.add_argument("--runs-dir", help="Where runs are stored (default $TUNESCOPE_HOME/runs).")
    p.add_argument("--run-id", help="Name for the run directory (default: time-dataset-model-method).")


def config_from_args(a: argparse.Namespace) -> RunConfig:
    given = vars(a)
    parts = {}
    for section, kind in SECTIONS:
        values = {f.name: given[f"{section}.{f.name}"] for f in dataclasses.fields(kind)
                  if given.get(f"{section}.{f.name}") is not None}
        parts[section] = kind(**values)
    return RunConfig(**parts)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tunescope", description="Fine-tune, compare and explain classifiers.")
    parser.add_argument("--debug", action="store_true", help="Show full tracebacks on errors.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="Fine-tune a model on a dataset and save the run.")
    _add_train_args(p)
    p.add_argument("--quiet", action="store_true", help="No progress bar.")
    p.add_argument("--mlflow", metavar="URI", help="Also log the finished run to this MLflow tracking URI (needs "
                                                   "`pip install mlflow`; the worker reads $TUNESCOPE_MLFLOW_URI).")

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


# Modules that add commands: add_commands(sub) -> {name: handler}.
EXTENSIONS = ("core.cli.jobs", "core.cli.ui", "core.cli.explain", "core.cli.report",
              "core.cli.export")


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
    print(_table(rows, ["name", "task", "examples", "classes", "title", "licence"]))
    return 0


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "eval": cmd_eval, "runs": cmd_runs,
            "demo-data": cmd_demo_data}


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    args = build_parser().parse_args([x for x in argv if x != "--debug"])
    args.debug = debug
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that went away fails here, inside the handler, not at exit
        return code
    except BrokenPipeError:
        # `tunescope predict ... | head`: the reader has all it wanted. Point stdout at /dev/null so
        # the interpreter's final flush stays quiet, and exit the way a process killed by SIGPIPE does.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
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

