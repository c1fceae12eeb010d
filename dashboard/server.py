"""The server `tunescope ui` starts (`streamlit run dashboard/server.py`): the dashboard (app.py)
inside Streamlit's ASGI app, plus the sign-in addresses of `dashboard.auth_routes`, which must be
HTTP responses because only those can set or clear an HttpOnly cookie."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard.auth_routes import ROUTES  # noqa: E402

app = st.App(str(Path(__file__).with_name("app.py")), routes=ROUTES)
