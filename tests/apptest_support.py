"""Opening a dashboard page in Streamlit's AppTest the way a user arrives: the app first, then the
page, with optional query parameters (a shared link)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def open_app_page(page: str | None = None, timeout: float = 120, check: bool = True, **query: str) -> AppTest:
    """`page` is a file under dashboard/views (e.g. "runs"); None stays on Home."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    for key, value in query.items():
        at.query_params[key] = value
    if page is not None:
        at.switch_page(f"views/{page}.py").run()
    if check:
        assert not at.exception, [e.value for e in at.exception]
    return at


def plain(markdown: str) -> str:
    """What a reader sees of a message the page escaped for markdown (`core.markup.escape_markdown`)."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)
