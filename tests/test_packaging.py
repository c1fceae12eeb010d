"""The project's promises about its own setup: the README's two commands, the CI script running
exactly the README's test command, the required layout and safe Streamlit defaults."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    install_and_run, install_and_test = readme_commands()[:2]
    assert install_and_run.startswith("pip install -e .") and "tunescope" in install_and_run
    assert "[dev]" in install_and_test and "pytest" in install_and_test
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert install_and_test in ci_lines


def test_ci_fails_when_no_tests_ran():
    script = (ROOT / ".ci" / "run").read_text()
    assert '"$rc" -eq 5' in script and "exit 1" in script


def test_required_layout_exists():
    for name in ("pyproject.toml", "README.md", "dashboard", "core", "tests", "assets", ".streamlit"):
        assert (ROOT / name).exists(), name


def test_console_script_and_extras_are_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["tunescope"] == "core.cli:main"
    dev = " ".join(meta["project"]["optional-dependencies"]["dev"])
    for tool in ("pytest", "ruff", "playwright"):
        assert tool in dev
    deps = " ".join(meta["project"]["dependencies"])
    for pkg in ("torch", "transformers", "streamlit", "captum", "plotly", "pandas", "torchvision", "peft"):
        assert pkg in deps


def test_streamlit_defaults_are_safe():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["client"]["showErrorDetails"] is False
    assert cfg["client"]["toolbarMode"] == "viewer"


def test_dashboard_never_imports_torch():
    offenders = [p for p in (ROOT / "dashboard").rglob("*.py")
                 if re.search(r"^\s*(import|from)\s+(torch|transformers|captum)\b", p.read_text(), flags=re.M)]
    assert not offenders


def test_code_is_ruff_clean():
    import shutil
    import subprocess

    ruff = shutil.which("ruff")
    assert ruff, "ruff is a dev dependency"
    proc = subprocess.run([ruff, "check", "core", "dashboard", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_every_subpackage_is_packaged():
    from setuptools import find_packages

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = meta["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(where=str(ROOT), include=include))
    expected = {".".join(p.parent.relative_to(ROOT).parts) for top in ("core", "dashboard")
                for p in (ROOT / top).rglob("__init__.py")}
    assert {"core.explain", "dashboard.views"} <= expected <= found
