"""The house rules of the code base, checked: the import-linter contracts in pyproject.toml, no import
cycles inside `core`, a docstring per package that says what lives there and what it may import, and
modules short enough to read (or a reason in their docstring)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
LONG_REASON = "Why this module is long:"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports")
    assert exe, "import-linter is a dev dependency"
    return subprocess.run([exe, "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def _copy_tree(tmp_path: Path) -> Path:
    dst = tmp_path / "tree"
    for top in ("core", "dashboard"):
        shutil.copytree(ROOT / top, dst / top, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def _import_cycles(root: Path) -> list[list[str]]:
    """Strongly connected groups of more than one module in `core` (Tarjan over grimp's edges, which
    include imports inside functions: a lazy import that closes a loop is still a loop). Imports under
    `if TYPE_CHECKING:` never run, so they are left out."""
    code = (
        "import json, grimp\n"
        "g = grimp.build_graph('core', cache_dir=None, exclude_type_checking_imports=True)\n"
        "print(json.dumps({m: sorted(g.find_modules_directly_imported_by(m)) for m in g.modules}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    edges: dict[str, list[str]] = json.loads(out.stdout)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for m in sorted(edges):
        if m not in index:
            visit(m)
    return sorted(comps)


def test_import_contracts_hold() -> None:
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " 0 broken" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("dashboard/views/home.py", "import torch", "dashboard never imports"),
    ("core/train/runner.py", "import core.jobs.worker", "Runners never import the worker"),
    ("core/jobs/queue.py", "import core.train", "The job queue never imports a feature"),
    ("core/data/dataset.py", "import core.explain", "Layers"),
])
def test_a_broken_rule_is_caught(tmp_path: Path, module: str, line: str, contract: str) -> None:
    tree = _copy_tree(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # planted by the test\n")
    proc = _lint(tree)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert contract.lower() in proc.stdout.lower(), proc.stdout[-3000:]


def test_core_has_no_import_cycles() -> None:
    assert _import_cycles(ROOT) == []


def test_a_planted_cycle_is_found(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    errors = tree / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _planted():\n    import core.runs  # noqa: F401\n")
    assert ["core.errors", "core.runs"] in _import_cycles(tree)


def _packages() -> list[Path]:
    return sorted(p for top in ("core", "dashboard") for p in (ROOT / top).rglob("__init__.py"))


@pytest.mark.parametrize("init", _packages(), ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_every_package_says_what_lives_there_and_what_it_may_import(init: Path) -> None:
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert len(doc.split()) >= 12, f"{init.relative_to(ROOT)} needs a docstring saying what lives there"
    assert "may import" in doc.lower(), f"{init.relative_to(ROOT)}'s docstring must say what it may import"


def test_modules_are_short_enough_to_read_or_say_why() -> None:
    long = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > MAX_LINES and LONG_REASON not in doc:
            long.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not long, f"over {MAX_LINES} lines with no '{LONG_REASON}' in the docstring: {long}"


def test_every_core_module_has_a_layer() -> None:
    """A module missing from the layers contract would be bound by no layer rule at all."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = next(c for c in meta["tool"]["importlinter"]["contracts"] if c["type"] == "layers")["layers"]
    named = {m.strip() for layer in layers for m in layer.replace("|", ":").split(":")}
    children = {f"core.{p.stem if p.is_file() else p.name}" for p in (ROOT / "core").iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert children - named == set(), f"add these to a layer in pyproject.toml: {sorted(children - named)}"
