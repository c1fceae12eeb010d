"""The app shell: every page renders without an exception on an empty home."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = ["views/home.py", "views/data.py", "views/train.py", "views/runs.py", "views/compare.py",
         "views/predict.py", "views/explain.py"]


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_empty_home(home: Path, page: str) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} has no title"


def test_browsing_pages_never_loads_torch(home: Path) -> None:
    """Rendering every page except Predict's action must not import torch: page loads stay fast and
    the UI process stays small while the worker trains (checked in a fresh interpreter)."""
    import subprocess
    import sys

    code = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({APP!r}, default_timeout=60)
at.run()
for page in {PAGES!r}:
    at.switch_page(page).run()
    assert not at.exception, (page, [e.value for e in at.exception])
print("torch" in sys.modules, "transformers" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False False"
