"""`tunescope export`: the model as a Hugging Face folder, and/or the test predictions as a table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import add_command, checked_run
from core.errors import ConfigError


def add_commands(sub: Any) -> None:
    p = add_command(sub, "export", cmd_export,
                    help="Export a finished run: the model as a Hugging Face folder (--out) and/or "
                         "its test predictions as CSV or Parquet (--predictions).")
    p.add_argument("--run", required=True, help="Run directory or run id.")
    p.add_argument("--out", help="New folder for the model (must not exist or be empty).")
    p.add_argument("--predictions", help="Write the test predictions here (.csv or .parquet; cells that a "
                                         "spreadsheet would run as formulas are neutralised).")
    p.add_argument("--runs-dir")


def cmd_export(a: argparse.Namespace) -> int:
    from core.runs import default_runs_dir, resolve_run

    if not a.out and not a.predictions:
        raise ConfigError("Say what to export: --out DIR for the model, --predictions FILE for the predictions.")
    run = resolve_run(checked_run(a.run, a.runs_dir), Path(a.runs_dir) if a.runs_dir else default_runs_dir())
    if a.predictions:
        from core.tables import write_table

        print(f"predictions: {write_table(run.predictions(), Path(a.predictions))}")
    if a.out:
        from core.model_export import export_run

        res = export_run(run, Path(a.out))
        print(f"model: {res['path']} ({res['format']})")
    return 0
