"""Real-browser journeys of the classroom server (`tunescope ui --auth`): two students who see only
their own work, sharing and unsharing, the login rate limit, an instructor cancelling a student's
job (and the audit log showing it), and a reload that keeps the login."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from browser_support import ARTIFACTS, chromium_browser, live_app, require_chromium, wait_idle, widget
from run_factory import write_fake_run

from core.access import Access, write_access

pytestmark = pytest.mark.browser
PASSWORDS = {"teach": "teacher pass 1", "ann": "ann's pass 22", "bob": "bob's pass 333"}
ANN_RUN, BOB_RUN = "20260101-000001-ann-run", "20260101-000002-bob-run"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    require_chromium()
    home = tmp_path_factory.mktemp("classroom-home")
    env = {**os.environ, "TUNESCOPE_HOME": str(home)}
    for name, role in (("teach", "instructor"), ("ann", "student"), ("bob", "student")):
        subprocess.run([sys.executable, "-m", "core.cli", "users", "add", name, "--role", role, "--password-stdin"],
                       input=PASSWORDS[name] + "\n", text=True, env=env, check=True, capture_output=True)
    for run_id, owner in ((ANN_RUN, "ann"), (BOB_RUN, "bob")):
        write_access(write_fake_run(home / "runs", run_id), Access(owner=owner))
    # No worker: the journeys look at who sees which job, not at training. A short login pause.
    with live_app(home, worker=False, args=["--auth"], env={"TUNESCOPE_LOGIN_LOCK_S": "4"}) as live:
        yield live
    print(f"tunescope ui log: {live.log}")


@pytest.fixture(scope="module")
def browser(app) -> Iterator:  # noqa: ANN001
    with chromium_browser() as b:
        yield b


def new_page(browser):  # noqa: ANN001, ANN201 - a fresh browser context: no cookies, like another computer
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    return context.new_page()


def submit_login(page, name: str, password: str) -> None:  # noqa: ANN001
    widget(page, "stTextInput", "User name").locator("input").fill(name)
    widget(page, "stTextInput", "Password").locator("input").fill(password)
    page.get_by_role("button", name="Log in").click()


def log_in(page, url: str, name: str) -> None:  # noqa: ANN001
    page.goto(url)
    page.get_by_role("button", name="Log in").wait_for()
    submit_login(page, name, PASSWORDS[name])
    page.get_by_text(re.compile(rf"Signed in as {name}\b")).first.wait_for()
    wait_idle(page)


def open_run(page, url: str, run_id: str) -> str:  # noqa: ANN001
    """What the Runs page says for `?run=run_id`: its heading, or the error a missing run gets."""
    page.goto(f"{url}/runs?run={run_id}")
    page.get_by_role("heading", name="Runs").first.wait_for()
    wait_idle(page)
    err = page.locator("[data-testid=stAlertContentError]")
    return err.first.inner_text() if err.count() else page.locator("h2").first.inner_text()


def queue_demo(page, url: str) -> str:  # noqa: ANN001
    page.goto(url)
    page.get_by_role("button", name="Train the demo").click()
    page.wait_for_url(re.compile(r"job=j-"))
    wait_idle(page)
    return re.search(r"job=(j-[0-9a-f]+)", page.url).group(1)


def test_a_two_students_see_only_their_own_work(app, browser) -> None:  # noqa: ANN001
    ann, bob = new_page(browser), new_page(browser)
    log_in(ann, app.url, "ann")
    log_in(bob, app.url, "bob")
    ann_job, bob_job = queue_demo(ann, app.url), queue_demo(bob, app.url)
    for page, own, other in ((ann, ann_job, bob_job), (bob, bob_job, ann_job)):
        page.goto(f"{app.url}/train")
        page.get_by_text(own).first.wait_for()
        wait_idle(page)
        assert page.get_by_text(other).count() == 0
        assert page.get_by_text("Only jobs started in this browser").count() == 0  # not an instructor's toggle
    assert open_run(ann, app.url, ANN_RUN) == ANN_RUN
    pasted, missing = open_run(bob, app.url, ANN_RUN), open_run(bob, app.url, "20260101-000009-nothing")
    assert "among the saved runs" in pasted and pasted.replace(ANN_RUN, "X") == missing.replace(
        "20260101-000009-nothing", "X")
    bob.screenshot(path=str(ARTIFACTS / "classroom-a-not-found.png"))


def test_b_a_shared_run_is_visible_to_the_class_until_unshared(app, browser) -> None:  # noqa: ANN001
    ann, bob = new_page(browser), new_page(browser)
    log_in(ann, app.url, "ann")
    log_in(bob, app.url, "bob")
    assert open_run(ann, app.url, ANN_RUN) == ANN_RUN
    toggle = ann.get_by_text("Shared with the class").first
    toggle.click()
    wait_idle(ann)
    assert open_run(bob, app.url, ANN_RUN) == ANN_RUN
    bob.get_by_text("Owner: ann").first.wait_for()
    bob.screenshot(path=str(ARTIFACTS / "classroom-b-shared.png"))
    open_run(ann, app.url, ANN_RUN)
    ann.get_by_text("Shared with the class").first.click()
    wait_idle(ann)
    assert "among the saved runs" in open_run(bob, app.url, ANN_RUN)


def test_c_five_wrong_passwords_pause_logins_then_the_right_one_works(app, browser) -> None:  # noqa: ANN001
    page = new_page(browser)
    page.goto(app.url)
    page.get_by_role("button", name="Log in").wait_for()
    for _ in range(5):
        submit_login(page, "bob", "not it")
        wait_idle(page)
        page.get_by_text("Wrong user name or password.").first.wait_for()
    submit_login(page, "bob", PASSWORDS["bob"])
    wait_idle(page)
    paused = page.get_by_text(re.compile(r"Too many failed logins; try again in \d+ s")).first
    paused.wait_for()
    wait_s = int(re.search(r"in (\d+) s", paused.inner_text()).group(1))
    assert 1 <= wait_s <= 4
    page.screenshot(path=str(ARTIFACTS / "classroom-c-rate-limited.png"))
    page.wait_for_timeout((wait_s + 1) * 1000)
    submit_login(page, "bob", PASSWORDS["bob"])
    page.get_by_text(re.compile(r"Signed in as bob\b")).first.wait_for()


def test_d_the_instructor_cancels_a_students_job_and_the_audit_log_shows_it(app, browser) -> None:  # noqa: ANN001
    ann, teach = new_page(browser), new_page(browser)
    log_in(ann, app.url, "ann")
    job = queue_demo(ann, app.url)
    log_in(teach, app.url, "teach")
    teach.goto(f"{app.url}/class")  # in an instructor's menu only, so after signing in
    teach.get_by_role("heading", name="Class").first.wait_for()
    teach.get_by_role("tab", name="Jobs").click()
    card = teach.locator("[data-testid=stVerticalBlock]").filter(has_text=job).filter(
        has=teach.get_by_role("button", name="Cancel")).last
    card.get_by_role("button", name="Cancel").click()
    wait_idle(teach)
    teach.get_by_role("button", name="Yes, cancel it").first.click()
    wait_idle(teach)
    teach.goto(f"{app.url}/class")
    teach.get_by_role("heading", name="Class").first.wait_for()
    teach.get_by_role("tab", name="Audit log").click()
    wait_idle(teach)
    teach.screenshot(path=str(ARTIFACTS / "classroom-d-audit-log.png"))
    from core.accounts.store import SQLiteAccountStore
    from core.jobs.store import SQLiteJobStore

    db = SQLiteJobStore(app.home / "jobs.db")
    assert db.get(job).state == "cancelled"
    entries = SQLiteAccountStore(db).audit_log(action="cancel")
    assert [(e.actor, e.target, e.detail) for e in entries][:1] == [("teach", f"job:{job}", "owner ann")]


def test_e_a_reload_keeps_the_login_and_logout_ends_it(app, browser) -> None:  # noqa: ANN001
    page = new_page(browser)
    log_in(page, f"{app.url}/runs", "ann")
    page.reload()
    page.get_by_text(re.compile(r"Signed in as ann\b")).first.wait_for()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["tunescope_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("tunescope_session") == -1  # scripts cannot read it
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()
    page.reload()
    page.get_by_role("button", name="Log in").wait_for()
