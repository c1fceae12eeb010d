"""tunescope's dashboard: `streamlit run dashboard/app.py` (or `tunescope ui`, which also starts the
worker). Pages live in `views/`; each is a thin script over `core`."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the project root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard.ui import PAGES, remember_browser, sidebar_status  # noqa: E402

st.set_page_config(page_title="tunescope", layout="wide")  # no emoji/material icons: offline fonts

pages = [
    st.Page(PAGES["home"], title="Home", default=True),
    st.Page(PAGES["data"], title="Data"),
    st.Page(PAGES["train"], title="Train"),
    st.Page(PAGES["runs"], title="Runs"),
    st.Page(PAGES["compare"], title="Compare"),
    st.Page(PAGES["predict"], title="Predict"),
    st.Page(PAGES["explain"], title="Explain"),
]
page = st.navigation(pages)
# A damaged job database: one clear message with the recovery step on every page instead of a
# traceback; pages that only read run folders still work, the Train page (the queue) stops here.
from core.jobs import store_problem  # noqa: E402
from core.markup import escape_markdown  # noqa: E402

problem = store_problem()
if problem:
    st.error(escape_markdown(problem))  # it names a path, which is the user's text
sidebar_status()
remember_browser()  # a reload keeps this browser's jobs and report draft
if problem and page.title == "Train":
    st.stop()
page.run()
