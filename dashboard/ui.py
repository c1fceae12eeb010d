"""Shared page furniture: error display, formatting, per-session state and the sidebar status.

Every page wraps its body in `guard(...)`, so a failure becomes a message with a next step and the
traceback goes to the server log, never to the browser.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from core.access import Actor
from core.accounts.sessions import SESSION_COOKIE
from core.errors import TunescopeError
from core.markup import escape_markdown as md
from core.runs import Run

log = logging.getLogger("tunescope.dashboard")

# Page files relative to dashboard/app.py; st.page_link/st.switch_page take these paths.
PAGES = {
    "home": "views/home.py", "data": "views/data.py", "train": "views/train.py", "runs": "views/runs.py",
    "compare": "views/compare.py", "predict": "views/predict.py", "explain": "views/explain.py",
    "instructor": "views/instructor.py",
}


def show_error(exc: BaseException, action: str) -> None:
    """A user-facing message: our own errors already say what went wrong and what to do."""
    if isinstance(exc, TunescopeError):
        st.error(md(exc))  # our messages quote file, model and label names: data, never markup
        return
    log.error("unexpected error while %s:\n%s", action, "".join(traceback.format_exception(exc)))
    st.error(f"Something unexpected went wrong while {action} ({type(exc).__name__}). Nothing you saved "
             "was changed. Try again; if it keeps happening, the server log has the details.")


@contextlib.contextmanager
def guard(action: str) -> Iterator[None]:
    """Run a block; turn any failure into `show_error` (Streamlit's own rerun/stop pass through)."""
    try:
        yield
    except ScriptControlException:
        raise
    except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
        show_error(exc, action)


BROWSER_COOKIE = "tunescope_browser"
BROWSER_DAYS = 30
_BROWSER_ID = re.compile(r"[0-9a-f]{16}")


def browser_id_from(cookie: str | None) -> str | None:
    """The browser id a cookie carries, or None when it is missing or not one we would have made
    (the id ends up in folder and file names, so nothing else may pass)."""
    return cookie if isinstance(cookie, str) and _BROWSER_ID.fullmatch(cookie) else None


def cookie_script(browser_id: str, days: int = BROWSER_DAYS) -> str:
    """A script that stores `browser_id` in this browser for `days` days (only this site sees it)."""
    if browser_id_from(browser_id) is None:
        raise ValueError("not a browser id")
    return (f"<script>document.cookie = '{BROWSER_COOKIE}={browser_id}; path=/; "
            f"max-age={days * 86400}; SameSite=Strict';</script>")


def session_id() -> str:
    """A random id for this browser (private upload staging, job ownership, the report draft).

    It lives in a cookie, so a reload, which starts a new Streamlit session, keeps the user's jobs
    "mine" and their report draft; `remember_browser` sets the cookie. Until there are accounts this
    is what "a user" means on a server without login."""
    if "_tunescope_sid" not in st.session_state:
        try:
            cookie = st.context.cookies.get(BROWSER_COOKIE)
        except Exception:  # noqa: BLE001 - no request context (tests, bare scripts): a fresh id
            cookie = None
        st.session_state["_tunescope_sid"] = browser_id_from(cookie) or secrets.token_hex(8)
    return st.session_state["_tunescope_sid"]


def remember_browser() -> None:
    """Store this session's id in the browser unless its request already carried it (every page, so
    the first page a user opens sets it). The script sits in the sidebar: nothing visible moves."""
    sid = session_id()
    try:
        known = browser_id_from(st.context.cookies.get(BROWSER_COOKIE)) == sid
    except Exception:  # noqa: BLE001 - no request context
        known = False
    if not known:
        st.sidebar.html(cookie_script(sid), unsafe_allow_javascript=True)


SIGNED_IN_RECHECK_S = 3.0
TOKEN_KEY = "_tunescope_token"  # session_state: a session token (tests; the cookie otherwise)


def login_mode() -> str:
    """"login", "open" or "local" (see core.accounts.auth_mode) for the address this server listens on."""
    from core.accounts import auth_mode

    try:
        host = st.get_option("server.address")
    except Exception:  # noqa: BLE001 - no server config (bare scripts): this machine only
        host = None
    return auth_mode(host)


def session_token() -> str | None:
    """The session token this browser sent (its HttpOnly cookie), or one a test put in the session."""
    token = st.session_state.get(TOKEN_KEY)
    if token:
        return token
    try:
        return st.context.cookies.get(SESSION_COOKIE)
    except Exception:  # noqa: BLE001 - no request context
        return None


def signed_in_user() -> Any:
    """The account this browser is signed in to, or None; checked against the database at most every
    SIGNED_IN_RECHECK_S, so a logout, reset or disabled account ends it within seconds."""
    from core.accounts import user_for

    token = session_token()
    held = st.session_state.get("_signed_in")
    now = time.monotonic()
    # One check per run is enough (pages ask many times); a logout or reset still counts within seconds.
    if held and held[0] == token and now - held[1] < SIGNED_IN_RECHECK_S:
        return held[2]
    user = user_for(token)
    if user is None and sso_configured():
        user = _sso_user()
    st.session_state["_signed_in"] = (token, now, user)
    return user


def sso_configured() -> bool:
    """Whether Streamlit's own OIDC login is set up (an [auth] section in .streamlit/secrets.toml)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def _sso_user() -> Any:
    """The account of the person the identity provider signed in (st.login), or None."""
    from core.accounts import account_for_sso, open_accounts

    try:
        info = st.user
        if not info.get("is_logged_in") or info.get("email_verified") is not True:
            return None  # an address the provider did not verify proves nothing
        email = info.get("email")
    except Exception:  # noqa: BLE001 - no user information in this context
        return None
    user = account_for_sso(email)
    if user is not None and st.session_state.get("_sso_logged") != user.name:
        st.session_state["_sso_logged"] = user.name
        open_accounts().audit(user.name, "login", "", "single sign-on", client_address())
    return user


def actor() -> Actor:
    """Who this page acts for. Without login (this machine only, or the no-auth option) each browser is
    its own local instructor, named after its browser id, so "my jobs" stay this browser's."""
    if login_mode() != "login":
        return Actor(f"ui-{session_id()}", "instructor", local=True)
    from core.accounts import actor_for

    user = signed_in_user()
    if user is None:  # the gate in app.py stops a page before it gets here; this is the second lock
        st.stop()
    return actor_for(user)


def owner() -> str:
    """The owner tag of this user's jobs and report draft (the same on every page and across reloads)."""
    return actor().name


def client_address() -> str:
    try:
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001 - no request context
        ip = None
    return ip if isinstance(ip, str) and ip else "localhost"  # Streamlit says None for localhost


def runs_dir() -> Path:
    from core.runs import default_runs_dir

    return default_runs_dir()


def find_run(run_id: str) -> Run | None:
    """The run `run_id` if it exists and this user may see it, else None (the two look the same)."""
    from core.workspace import find_run as find

    return find(actor(), run_id, runs_dir())


def visible_runs() -> list[dict[str, Any]]:
    """The runs this user may see (own, shared, or all for an instructor), newest first."""
    from core.workspace import list_runs

    return list_runs(actor(), runs_dir())


def predictable_runs() -> list[dict[str, Any]]:
    """Succeeded runs with a saved model, newest first (Predict and Explain offer these)."""
    return [r for r in visible_runs()
            if r["state"] == "succeeded" and (Path(r["path"]) / "model" / "tunescope_model.json").is_file()]


def pick_finished_run(key: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """The run selector of Predict and Explain: succeeded runs with a model, `?run=` honoured and
    kept in the address; stops the page with a pointer to Train when there is none."""
    runs = predictable_runs()
    if not runs:
        st.info("No finished run with a saved model yet. Train one first; it appears here when it finishes.")
        st.page_link(PAGES["train"], label="Go to Train")
        st.stop()
    ids = [r["run_id"] for r in runs]
    by_id = {r["run_id"]: r for r in runs}
    wanted = st.query_params.get("run")
    if wanted and wanted not in ids:
        st.error(f"Run {md(repr(wanted))} is not a finished run with a saved model here; pick one below.")
    run_id = st.selectbox("Run", ids, index=ids.index(wanted) if wanted in ids else 0, key=key,
                          format_func=lambda i: f"{i} · {by_id[i]['method']} · acc {fmt_metric(by_id[i]['accuracy'])}")
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id
    return run_id, by_id


def report_html(run_paths: list[Path], title: str = "", subtitle: str = "", author: str = "",
                draft: str | None = None) -> bytes:
    """The stakeholder report on these runs, with the explanations added to the report draft `draft`
    (default: this session's) on the Explain page."""
    from core.report import build_report
    from core.report_drafts import as_pairs, chosen

    return build_report(run_paths, title=title, subtitle=subtitle, author=author,
                        explanations=as_pairs(chosen(draft or owner()))).encode("utf-8")


def report_download(run_paths: list[Path], **fields: str) -> Callable[[], bytes]:
    """What a download button calls to build the report when clicked. The session's draft is read
    now: the server may run the callable outside this session's script run, where a session id read
    then would be a new one (and its draft empty)."""
    draft = owner()
    return lambda: report_html(run_paths, draft=draft, **fields)


def report_pdf_download(run_paths: list[Path], **fields: str) -> Callable[[], bytes] | None:
    """Like `report_download`, printed to PDF with the server's Chromium; None when it has none."""
    from core.report import find_chromium, pdf_bytes

    if find_chromium() is None:
        return None
    html = report_download(run_paths, **fields)
    return lambda: pdf_bytes(html().decode("utf-8"))


def report_fields(run_paths: list[Path], key: str) -> dict[str, str]:
    """Title, subtitle and author of the report, typed where it is downloaded (empty = the default)."""
    from core.report import default_title
    from core.runs import Run

    c1, c2, c3 = st.columns([3, 3, 2])
    fields = {"title": c1.text_input("Report title", key=f"{key}_title", placeholder=default_title(
                [Run(p) for p in run_paths]), help="Empty = the dataset and the methods compared."),
            "subtitle": c2.text_input("Subtitle", key=f"{key}_subtitle",
                                      placeholder="e.g. Which method should we ship?",
                                      help="A line under the title, e.g. the question these runs answer."),
            "author": c3.text_input("Prepared by", key=f"{key}_author", help="Printed with the date.")}
    _draft_caption(run_paths)
    return fields


def _draft_caption(run_paths: list[Path]) -> None:
    from core.report_drafts import chosen

    ids = {p.name for p in run_paths}
    picked = chosen(owner())
    here = sum(1 for i in picked if i["run"] in ids)
    if here:
        st.caption(f"Explanations in the report: {here} you added on the Explain page"
                   + (f" ({len(picked) - here} more are of other runs and stay out)" if len(picked) > here else "")
                   + ".")
    else:
        st.caption("Explanations in the report: none yet. On the Explain page, press “Add to report” next to an "
                   "explanation of one of these runs.")


def fmt_count(n: float | None) -> str:
    if n is None:
        return "–"
    n = float(n)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    s = float(s)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int((s % 3600) // 60):02d} min"


def fmt_metric(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def fmt_age(t: float | None) -> str:
    return "–" if not t else f"{fmt_seconds(max(0.0, time.time() - t))} ago"


@st.cache_data(ttl=30, show_spinner=False)
def device_summary() -> dict[str, Any]:
    from core.train.resources import device_summary as summary

    return summary()


def worker_state() -> dict[str, Any]:
    """Live workers (heartbeat within the stale window) and queue counts; one small SQLite read."""
    from core import jobs

    try:
        store = jobs.open_store()
        workers = jobs.live_workers(store)
        counts = store.counts()
    except Exception as exc:  # noqa: BLE001 - status must not break a page
        log.warning("job store unreadable: %s", exc)
        return {"ok": False, "workers": [], "counts": {}, "error": str(exc)}
    return {"ok": True, "workers": workers, "counts": counts, "error": None}


def sidebar_status() -> None:
    """Worker and device status at the bottom of the sidebar on every page."""
    state = worker_state()
    dev = device_summary()
    with st.sidebar:
        if state["workers"]:
            st.caption(f"Worker: running ({len(state['workers'])}) · {md(dev['label'])}")
        else:
            st.caption(f"Worker: not running — jobs wait in the queue. Start `tunescope ui` (or "
                       f"`tunescope worker`). · {md(dev['label'])}")
        st.session_state[_COUNTS_SLOT] = st.empty()
    show_counts(state["counts"])


_COUNTS_SLOT = "_sidebar_job_counts"  # session_state: the sidebar's placeholder for the job counts


def show_counts(counts: dict[str, int]) -> None:
    """Fill the sidebar's job counts; the job list calls this with the snapshot it shows, so the two
    agree on every refresh of the list (a fragment rerun does not redraw the sidebar by itself)."""
    from core.jobs.listing import counts_text

    slot = st.session_state.get(_COUNTS_SLOT)
    if slot is None:
        return
    text = counts_text(counts)
    if text:
        slot.caption(text)
    else:
        slot.empty()
