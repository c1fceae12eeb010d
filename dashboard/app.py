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
from dashboard.signin import gate, is_instructor, needs_login  # noqa: E402

if is_instructor():  # the class page is in an instructor's menu only (and checks again itself)
    pages.append(st.Page(PAGES["instructor"], title="Class", url_path="class"))

# Before anyone signs in, the page list stays hidden: the login form is all there is.
page = st.navigation(pages, position="hidden" if needs_login() else "sidebar")
# A damaged job database: one clear message with the recovery step on every page instead of a
# traceback; pages that only read run folders still work, the Train page (the queue) stops here.
from core.jobs import store_problem  # noqa: E402
from core.markup import escape_markdown  # noqa: E402

problem = store_problem()
if problem:
    st.error(escape_markdown(problem))  # it names a path, which is the user's text
remember_browser()  # a reload keeps this browser's jobs and report draft (no login: its identity)
gate()  # with accounts: the login form (and nothing else) until someone signs in
sidebar_status()
if problem and page.title == "Train":
    st.stop()
page.run()
