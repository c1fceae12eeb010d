"""What the command groups share: the parser with one-line errors, registering a command, the
config flags of `train`/`submit`, and plain-text tables.

Imports only `core.config` and the standard library at the top, so every group module can import it;
`checked_run` imports the access rule when called.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from core.config import METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig

EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage; keep it to one line
        self.exit(EXIT_USAGE, f"tunescope: error: {message} (see --help)\n")


def add_command(sub: Any, name: str, handler: Handler, **kwargs: Any) -> argparse.ArgumentParser:
    """Add sub-command `name`; `main()` calls `handler(args)` when it is chosen."""
    p = sub.add_parser(name, **kwargs)
    p.set_defaults(handler=handler)
    return p


# Config fields whose flag is not simply --field-name.
FLAG_NAMES = {"source": "--data", "name": "--model"}
SECTIONS = (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))


def _flag_type(annotation: str) -> type | None:
    for name, kind in (("bool", None), ("int", int), ("float", float)):
        if name in annotation:
            return kind
    return str


def add_train_args(p: argparse.ArgumentParser) -> None:
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
    """The `RunConfig` the flags of `add_train_args` describe; unset flags keep the dataclass defaults."""
    given = vars(a)
    parts = {}
    for section, kind in SECTIONS:
        values = {f.name: given[f"{section}.{f.name}"] for f in dataclasses.fields(kind)
                  if given.get(f"{section}.{f.name}") is not None}
        parts[section] = kind(**values)
    return RunConfig(**parts)


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """Left-aligned columns; floats to four places, None as blank."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def checked_run(run: str, runs_dir: str | None = None) -> str:
    """The folder of the run `run` names (id or folder) if the acting user (`core.accounts.cli_actor`)
    may read it; otherwise the same "not found" error as for a run that does not exist."""
    from pathlib import Path

    from core.accounts import cli_actor
    from core.workspace import open_run

    return str(open_run(cli_actor(), run, Path(runs_dir) if runs_dir else None).path)
