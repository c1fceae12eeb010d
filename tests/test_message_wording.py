"""Messages a dashboard user can see never name command-line flags ("use --method head"): the
dashboard has no flags, and a student told to "pass --text-column" is stuck. Core messages name the
setting in words ("the text column", "the method head"), which reads right in the CLI too.

The scan covers every string literal in core/ and dashboard/ except docstrings, argv tokens handed
to other programs ("--headless=new") and the modules only the command line reaches."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
# Reached only from a terminal: the CLI itself, `tunescope ui`'s launcher, the worker's own command
# line, `tunescope db rebuild`, and the README written next to an exported model (it shows commands).
CLI_ONLY = ("core/cli/", "core/launcher.py", "core/jobs/worker.py", "core/jobs/rebuild.py", "core/model_export.py")


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def flags_in_messages(source: str) -> list[tuple[int, str]]:
    """(line, flag) for each flag named in a string literal that is not a docstring or an argv token."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docs:
            continue
        if node.value.startswith("--") and " " not in node.value:
            continue  # one argv token for a subprocess (chromium, nvidia-smi, the worker)
        found += [(node.lineno, m) for m in FLAG.findall(node.value)]
    return found


def test_the_scanner_finds_flags_in_messages_and_not_in_argv_or_docstrings() -> None:
    src = '"""Use --model in the CLI."""\nargv = ["--headless=new"]\nraise ValueError(f"use --method {m}.")\n'
    assert flags_in_messages(src) == [(3, "--method")]


def test_no_message_outside_the_cli_names_a_flag() -> None:
    offenders = []
    for path in sorted([*ROOT.glob("core/**/*.py"), *ROOT.glob("dashboard/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(CLI_ONLY):
            continue
        offenders += [f"{rel}:{line} {flag}" for line, flag in flags_in_messages(path.read_text())]
    assert not offenders, "messages that name CLI flags:\n" + "\n".join(offenders)
