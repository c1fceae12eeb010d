"""Signing in on a server with accounts: the gate every page run passes (login form, first-login
password change, who is signed in, log out) and the banner of a server started without login.

The password check, the rate limit and the tickets are core.accounts'; the cookie is set by the
/auth/session address (dashboard.auth_routes), which the form sends the browser to with a one-time
ticket, because a Streamlit script cannot set an HttpOnly cookie itself.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlparse

import streamlit as st

from core.markup import escape_markdown as md
from dashboard.ui import client_address, login_mode, session_id, session_token, signed_in_user, sso_configured

OPEN_BANNER = ("This server runs **without login** (it was started with the no-auth option): anyone who can reach "
               "it can see, change and delete all work here.")


def is_instructor() -> bool:
    """A signed-in instructor on a server with accounts (who gets the Class page)."""
    if login_mode() != "login":
        return False
    user = signed_in_user()
    return user is not None and user.role == "instructor"


def needs_login() -> bool:
    return login_mode() == "login" and signed_in_user() is None


def gate() -> None:
    """Let the page run only for a signed-in user (or without accounts); otherwise show the login
    form, or the password change a one-time password asks for, and stop."""
    mode = login_mode()
    if mode == "open":
        st.warning(OPEN_BANNER)
    if mode != "login":
        return
    user = signed_in_user()
    if user is None:
        login_form()
        st.stop()
    with st.sidebar:
        st.caption(f"Signed in as **{md(user.name)}** ({md(user.role)})")
        # Not a link button: those open a new tab, and the session must end in this one.
        if st.button("Log out", key="signin_logout"):
            if sso_configured() and session_token() is None:
                st.logout()  # signed in by the identity provider: Streamlit's own cookie ends
            st.html("<script>window.location.replace('/auth/logout');</script>", unsafe_allow_javascript=True)
    if user.must_change:
        password_change(user.name, first=True)
        st.stop()


def _here() -> str:
    try:
        path = urlparse(st.context.url or "").path
    except Exception:  # noqa: BLE001 - no request context
        path = ""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def login_form() -> None:
    from core.accounts import LoginRefused, login

    st.title("tunescope")
    st.subheader("Log in")
    if st.query_params.get("login") == "expired":
        st.info("That sign-in link was used already or has expired; log in again.")
    with st.form("login_form"):
        name = st.text_input("User name", key="login_name", max_chars=32)
        password = st.text_input("Password", type="password", key="login_password", max_chars=256)
        go = st.form_submit_button("Log in", type="primary")
    st.caption("No account? Your instructor creates them (and hands out a one-time password).")
    if sso_configured():
        if st.button("Log in with your institution's account", key="signin_sso"):
            st.login()
        try:
            if st.user.get("is_logged_in"):  # the provider knows them, the roster does not
                st.warning("Your institution signed you in, but there is no tunescope account with your user name "
                           "(the part of your e-mail address before @); ask your instructor to add it.")
        except Exception:  # noqa: BLE001 - no user information in this context
            pass
    if not go:
        return
    try:
        result = login(name, password, client_address(), browser=session_id())
    except LoginRefused as exc:
        st.error(md(exc))
        return
    target = f"/auth/session?ticket={quote(result.ticket)}&next={quote(_here())}"
    st.success("Signing you in…")
    # The ticket is good once, for a minute; the address sets the cookie and comes back here.
    st.html(f"<script>window.location.replace({json.dumps(target)});</script>", unsafe_allow_javascript=True)
    st.markdown(f"If nothing happens, [continue]({target}).")


def password_change(name: str, first: bool = False) -> None:
    from core.accounts import change_password
    from core.accounts.passwords import MIN_LENGTH
    from core.errors import TunescopeError

    st.subheader("Choose your own password" if first else "Change your password")
    if first:
        st.caption("You signed in with a one-time password; pick one that only you know to go on.")
    with st.form("password_change_form"):
        current = st.text_input("Current password", type="password", key="pw_current")
        new = st.text_input(f"New password (at least {MIN_LENGTH} characters)", type="password", key="pw_new")
        again = st.text_input("New password again", type="password", key="pw_again")
        go = st.form_submit_button("Change password", type="primary")
    if not go:
        return
    if new != again:
        st.error("The two new passwords differ; type the same one twice.")
        return
    try:
        change_password(name, current, new, keep_token=session_token())
    except TunescopeError as exc:
        st.error(md(exc))
        return
    st.success("Password changed.")
    st.session_state.pop("_signed_in", None)  # the account changed: read it again
    st.rerun()
