"""`tunescope report`: a self-contained HTML (and optionally PDF) report on finished runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import add_command, checked_run


def add_commands(sub: Any) -> None:
    p = add_command(sub, "report", cmd_report,
                    help="Write a stakeholder report (one self-contained HTML file, optionally a PDF) "
                         "on finished runs.")
    p.add_argument("--runs", nargs="+", required=True, help="Run directories or run ids.")
    p.add_argument("--out", default="report.html", help="HTML file to write (default report.html).")
    p.add_argument("--pdf", action="store_true", help="Also print it to a PDF next to the HTML (needs Chromium).")
    p.add_argument("--explain", action="store_true",
                   help="Also explain two test examples per run (the most confident right and wrong one), with "
                        "faithfulness and the sanity check.")
    p.add_argument("--title", help="The report's title (default '<dataset>: <methods compared>').")
    p.add_argument("--subtitle", help="A line under the title, e.g. the question the runs answer.")
    p.add_argument("--author", help="Who prepared it (printed with the date under the title).")
    p.add_argument("--draft", help="Embed the explanations chosen in this report draft (see `report_drafts` "
                                    "under TUNESCOPE_HOME; the dashboard keeps one per session).")
    p.add_argument("--runs-dir")


def cmd_report(a: argparse.Namespace) -> int:
    from core.report import write_report
    from core.report_drafts import as_pairs, chosen

    picked = as_pairs(chosen(a.draft)) if a.draft else []
    a.runs = [checked_run(r, a.runs_dir) for r in a.runs]
    for path in write_report(a.runs, Path(a.out), Path(a.runs_dir) if a.runs_dir else None, pdf=a.pdf,
                             compute_explanations=a.explain, title=a.title, subtitle=a.subtitle,
                             author=a.author, explanations=picked):
        print(path)
    return 0
