"""The app shell: every page renders without an exception on an empty home."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = ["views/home.py", "views/data.py", "views/train.py", "views/runs.py", "views/compare.py",
         "views/predict.py"]


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_empty_home(home: Path, page: str) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} has no title"
