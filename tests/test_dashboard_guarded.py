"""The dashboard reaches runs, saved datasets and jobs only through core.workspace, which checks the
access rule: it imports none of the unguarded calls underneath."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"
UNGUARDED = {
    "core.runs": {"list_runs", "resolve_run"},
    "core.data.store": {"list_datasets", "get_dataset", "save_dataset", "delete_dataset"},
    "core.train.submit": {"submit_training"},
    "core.jobs.queue": {"cancel", "read_log", "list_jobs"},
}
UNGUARDED_ATTRS = {("jobs", "cancel"), ("jobs", "read_log"), ("jobs", "list_jobs"), ("submit", "submit_training")}


def offences() -> list[str]:
    found = []
    for path in sorted(DASHBOARD.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in UNGUARDED:
                bad = UNGUARDED[node.module] & {a.name for a in node.names}
                found += [f"{path.name}:{node.lineno} imports {node.module}.{n}" for n in sorted(bad)]
            if isinstance(node, ast.Import):
                found += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names
                          if a.name == "core.train.submit"]
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and (node.value.id, node.attr) in UNGUARDED_ATTRS:
                found.append(f"{path.name}:{node.lineno} calls {node.value.id}.{node.attr}")
    return found


def test_the_dashboard_uses_only_guarded_calls() -> None:
    assert offences() == []


def test_the_check_sees_an_offence(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    bad = tmp_path / "page.py"
    bad.write_text("from core.runs import list_runs\nfrom core import jobs\njobs.cancel('x')\n")
    monkeypatch.setattr(sys.modules[__name__], "DASHBOARD", tmp_path)
    assert offences() == ["page.py:1 imports core.runs.list_runs", "page.py:3 calls jobs.cancel"]
