"""Signing in on a server with accounts: the login form, the first-login password change, logout and
the /auth addresses (AppTest and Starlette's TestClient), and what a student's pages show."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from apptest_support import open_app_page, plain
from conftest import PASSWORD
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core import accounts
from dashboard.auth_routes import ROUTES
from dashboard.ui import TOKEN_KEY


@pytest.fixture
def login_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNESCOPE_AUTH", "login")  # AppTest listens nowhere: say it is a class server


def _ticket(at) -> str:  # noqa: ANN001
    scripts = [e.proto.body for e in at.get("html") if "/auth/session" in e.proto.body]
    assert scripts, "no sign-in redirect on the page"
    url = re.search(r'"(/auth/session[^"]+)"', scripts[-1]).group(1)
    return parse_qs(urlparse(url).query)["ticket"][0]


def sign_in(name: str, password: str = PASSWORD, page: str | None = None, **query: str):  # noqa: ANN201
    """An AppTest session signed in as `name` the way a browser is: form, ticket, session token."""
    at = open_app_page(None)
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    token, _ = accounts.redeem(_ticket(at), browser=at.session_state["_tunescope_sid"])
    at.session_state[TOKEN_KEY] = token
    at.run()  # the menu depends on who signed in
    for k, v in query.items():
        at.query_params[k] = v
    if page:
        at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_without_a_session_only_the_login_form_shows(classroom: dict, login_on: None) -> None:
    at = open_app_page(None)
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert [t.value for t in at.title] == ["tunescope"]
    assert not at.metric  # Home's figures did not render
    at = open_app_page("runs")  # a deep link does not get past the gate either
    assert not any(r in " ".join(m.value for m in at.markdown) for r in classroom)
    assert [t.label for t in at.text_input] == ["User name", "Password"]


def test_a_wrong_password_says_so_and_five_pause_logins(classroom: dict, login_on: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNESCOPE_LOGIN_LOCK_S", "60")
    at = open_app_page(None)
    for _ in range(5):
        at.text_input(key="login_name").input("ann")
        at.text_input(key="login_password").input("guess")
        at.button[0].click().run()
        assert [plain(e.value) for e in at.error] == ["Wrong user name or password."]
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert re.fullmatch(r"Too many failed logins; try again in \d+ s\.", plain(at.error[0].value))
    assert not at.get("html") or all("/auth/session" not in e.proto.body for e in at.get("html"))


def test_signed_in_pages_name_the_user_and_offer_logout(classroom: dict, login_on: None) -> None:
    at = sign_in("ann")
    side = " ".join(m.value for m in at.sidebar.caption)
    assert "Signed in as **ann** (student)" in side
    at.sidebar.button(key="signin_logout").click().run()
    assert any("/auth/logout" in e.proto.body for e in at.get("html"))


def test_a_one_time_password_must_be_replaced_first(classroom: dict, login_on: None) -> None:
    new = accounts.reset_password("bob", by="teach")
    at = sign_in("bob", new.password)
    assert "Choose your own password" in [s.value for s in at.subheader]
    assert not at.metric
    at.text_input(key="pw_current").input(new.password)
    at.text_input(key="pw_new").input("bob's own pass")
    at.text_input(key="pw_again").input("bob's own pass")
    at.button[0].click().run()
    assert "Choose your own password" not in [s.value for s in at.subheader]
    assert at.metric  # Home renders now
    assert not accounts.open_accounts().get_user("bob").must_change


def test_a_student_sees_own_and_shared_runs_only(classroom: dict, login_on: None) -> None:
    at = sign_in("bob", page="runs")
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "bob-private" in shown and "ann-shared" in shown and "ann-private" not in shown


@pytest.mark.parametrize("page,param", [("runs", "run"), ("explain", "run"), ("predict", "run"),
                                        ("compare", "runs")])
def test_another_students_run_by_url_reads_like_a_missing_one(classroom: dict, login_on: None, page: str,
                                                              param: str) -> None:
    def texts(run_id: str) -> list[str]:
        at = sign_in("bob", page=page, **{param: run_id})
        out = [plain(e.value) for e in (*at.error, *at.warning)]
        return [t.replace(run_id, "RUN") for t in out]

    hidden, missing = texts("20260101-000001-ann-private"), texts("20260101-000009-nobody-s")
    assert hidden == missing
    at = sign_in("bob", page=page, **{param: "20260101-000001-ann-private"})
    body = " ".join(m.value for m in at.markdown) + " ".join(str(s.value) for s in at.selectbox)
    assert "ann-private" not in body.replace("20260101-000001-ann-private'", "")  # never offered as a choice


def test_an_instructor_sees_everyone_and_a_viewer_cannot_save(classroom: dict, login_on: None) -> None:
    at = sign_in("teach", page="runs")
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert all(r in shown for r in ("ann-private", "ann-shared", "bob-private"))
    at = sign_in("vic", page="train")
    assert any("can look at shared work but not start training" in plain(i.value) for i in at.info)
    assert not at.get("form")  # no training form to fill in


def _client() -> TestClient:
    return TestClient(Starlette(routes=ROUTES), base_url="http://testserver")


def test_the_session_address_sets_a_safe_cookie_once(classroom: dict) -> None:
    client = _client()
    ticket = accounts.login("ann", PASSWORD).ticket
    r = client.get("/auth/session", params={"ticket": ticket, "next": "/train"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/train"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{accounts.SESSION_COOKIE}=") and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower() and "Max-Age=" in cookie and "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    assert accounts.user_for(token).name == "ann"
    again = client.get("/auth/session", params={"ticket": ticket}, follow_redirects=False)
    assert again.headers["location"] == "/?login=expired" and "set-cookie" not in again.headers


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/../etc", "javascript:alert(1)",
                                    "/train?x=<script>"])
def test_the_session_address_never_redirects_off_site(classroom: dict, target: str) -> None:
    r = _client().get("/auth/session", params={"ticket": accounts.login("ann", PASSWORD).ticket, "next": target},
                      follow_redirects=False)
    assert r.headers["location"] == "/"


def test_a_ticket_works_only_in_the_browser_that_logged_in(classroom: dict) -> None:
    ticket = accounts.login("ann", PASSWORD, browser="0123456789abcdef").ticket
    elsewhere = _client()
    elsewhere.cookies.set("tunescope_browser", "fedcba9876543210")  # the person a ticket link was sent to
    r = elsewhere.get("/auth/session", params={"ticket": ticket}, follow_redirects=False)
    assert r.headers["location"] == "/?login=expired" and "set-cookie" not in r.headers
    home = _client()
    home.cookies.set("tunescope_browser", "0123456789abcdef")
    r = home.get("/auth/session", params={"ticket": ticket}, follow_redirects=False)
    assert "set-cookie" not in r.headers  # the astray try used it up


def test_the_browser_cookie_name_is_the_dashboards(classroom: dict) -> None:
    from dashboard import auth_routes, ui

    assert auth_routes.BROWSER_COOKIE == ui.BROWSER_COOKIE


def test_over_https_the_cookie_is_secure(classroom: dict) -> None:
    client = TestClient(Starlette(routes=ROUTES), base_url="https://testserver")
    r = client.get("/auth/session", params={"ticket": accounts.login("ann", PASSWORD).ticket},
                   follow_redirects=False)
    assert "Secure" in r.headers["set-cookie"]


def test_logout_ends_the_session_and_clears_the_cookie(classroom: dict) -> None:
    token, _ = accounts.redeem(accounts.login("ann", PASSWORD).ticket)
    client = _client()
    client.cookies.set(accounts.SESSION_COOKIE, token)
    r = client.get("/auth/logout", follow_redirects=False)
    assert r.status_code == 303 and 'Max-Age=0' in r.headers["set-cookie"]
    assert accounts.user_for(token) is None
    assert [e.action for e in accounts.open_accounts().audit_log(limit=1)] == ["logout"]


def test_without_accounts_on_this_machine_nothing_asks_for_a_login(home: Path) -> None:
    at = open_app_page(None)
    assert "User name" not in [t.label for t in at.text_input] and at.metric


def test_a_no_auth_server_shows_its_banner(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import ui

    monkeypatch.setenv("TUNESCOPE_AUTH", "off")
    monkeypatch.setattr(ui, "login_mode", lambda: "open")
    import dashboard.signin as signin

    monkeypatch.setattr(signin, "login_mode", lambda: "open")
    at = open_app_page(None)
    assert any("without login" in w.value for w in at.warning)


def test_the_class_page_is_for_instructors(classroom: dict, login_on: None) -> None:
    from core.jobs import JobSpec, enqueue

    enqueue([JobSpec(config={"steps": 1})], kind="noop", owner="ann")
    at = sign_in("teach", page="instructor")
    assert [t.label for t in at.tabs] == ["Overview", "Jobs", "Users", "Limits", "Audit log"]
    frames = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "ann-private" in frames and "bob-private" in frames  # the class overview
    assert "login" in frames  # the audit log holds the sign-in
    name_box = next(t for t in at.text_input if t.label == "New user name")
    name_box.input("dora")
    next(b for b in at.button if b.label == "Add user").click().run()
    assert any("dora's one-time password" in plain(s.value) for s in at.success)
    assert accounts.open_accounts().get_user("dora").must_change
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in a student's menu
        sign_in("ann", page="instructor")


def test_a_student_sees_their_place_in_the_fair_queue_but_not_other_jobs(classroom: dict, login_on: None) -> None:
    from core.jobs import JobSpec, enqueue

    heavy = enqueue([JobSpec(config={"steps": 1}) for _ in range(3)], kind="noop", owner="bob")
    (light,) = enqueue([JobSpec(config={"steps": 1})], kind="noop", owner="ann")
    at = sign_in("ann", page="train")
    text = " ".join(m.value for m in at.markdown)
    # Fair share: ann has used nothing and bob has nothing running either, so FIFO puts bob's first job
    # first; ann's comes second, before bob's other two.
    assert "**2nd in queue**" in text and light in text
    assert not any(j in text for j in heavy)


def test_single_sign_on_maps_the_address_to_an_account(classroom: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNESCOPE_SSO_DOMAIN", raising=False)
    assert accounts.account_for_sso("ann@school.edu") is None  # no domain set: nobody signs in this way
    monkeypatch.setenv("TUNESCOPE_SSO_DOMAIN", "school.edu")
    assert accounts.account_for_sso("Ann@School.edu").name == "ann"
    for other in ("ann@elsewhere.org", "nobody@school.edu", "../ann@school.edu", "ann", None, "a@b@school.edu"):
        assert accounts.account_for_sso(other) is None
    accounts.set_disabled("ann", True, by="teach")
    assert accounts.account_for_sso("ann@school.edu") is None


def _sso_app(email: str | None):  # noqa: ANN202
    from apptest_support import APP
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "id", "client_secret": "s",
                          "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    if email:
        at.user = {"is_logged_in": True, "email": email, "email_verified": True}
    at.run()
    return at


def test_with_single_sign_on_set_up_the_login_page_offers_it(classroom: dict, login_on: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNESCOPE_SSO_DOMAIN", "school.edu")
    at = _sso_app(None)
    assert any(b.label == "Log in with your institution's account" for b in at.button)
    at = _sso_app("bob@school.edu")  # the provider signed bob in: his own pages, no form
    assert "User name" not in [t.label for t in at.text_input]
    assert "Signed in as **bob** (student)" in " ".join(c.value for c in at.sidebar.caption)
    at = _sso_app("stranger@school.edu")
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert any("no tunescope account with your user name" in w.value for w in at.warning)


def test_the_class_page_sets_a_users_own_limits(classroom: dict, login_on: None) -> None:
    at = sign_in("teach", page="instructor")
    at.selectbox(key="class_limits_who").select("ann").run()
    box = next(n for n in at.number_input if n.label.startswith("Running jobs per user"))
    box.set_value(3.0)
    next(b for b in at.button if b.label == "Save limits").click().run()
    assert any("Saved the limits for ann" in s.value for s in at.success)
    from core.jobs import open_store

    table = open_store().get_limits()
    assert table.for_owner("ann").max_running == 3 and table.for_owner("bob").max_running is None
    assert [e.action for e in accounts.open_accounts().audit_log(limit=1)] == ["limit"]


def test_a_students_job_list_refreshes_at_the_pace_of_their_own_jobs(classroom: dict, login_on: None) -> None:
    """Every refresh costs each open browser a re-render: a student whose own jobs are all finished
    must not redraw every 2 s because somebody else is training."""
    import os
    import socket

    from core import jobs
    from core.jobs import JobSpec, enqueue
    from dashboard.jobs_view import IDLE_REFRESH_S, WAITING_REFRESH_S, _interval

    enqueue([JobSpec(config={"steps": 1})], kind="noop", owner="bob")
    assert jobs.open_store().claim("w-test", socket.gethostname(), os.getpid(), "cpu").owner == "bob"
    at = sign_in("ann", page="train")
    assert at.session_state["_jobs_view_pace"]["train_jobs"] == "idle"
    (mine,) = enqueue([JobSpec(config={"steps": 1})], kind="noop", owner="ann")
    at.run()
    assert at.session_state["_jobs_view_pace"]["train_jobs"] == "waiting"
    assert mine in " ".join(m.value for m in at.markdown)
    teach = sign_in("teach", page="instructor")  # the class's list: bob's running job sets its pace
    assert teach.session_state["_jobs_view_pace"]["class_jobs"] == "running"
    assert (_interval("running", 2.0), _interval("waiting", 2.0), _interval("idle", 2.0)) == (
        2.0, WAITING_REFRESH_S, IDLE_REFRESH_S)
    assert 2.0 < WAITING_REFRESH_S < IDLE_REFRESH_S
