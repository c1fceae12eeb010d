"""Real-browser test harness: a live `tunescope ui` (server + worker) on a private home, and
Playwright driving Debian's Chromium. Small helpers for Streamlit widgets live here so the journeys
read like what a user does."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("TUNESCOPE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("TUNESCOPE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
IDLE_JS = ("() => { const a = document.querySelector('[data-testid=stApp]');"
           " return a && a.getAttribute('data-test-script-state') === 'notRunning'; }")


def require_chromium() -> Path:
    """Chromium's path; in CI a missing browser fails the run, elsewhere the journeys skip and say why."""
    if CHROMIUM.exists() or shutil.which(str(CHROMIUM)):
        return CHROMIUM
    msg = (f"Chromium not found at {CHROMIUM}: real-browser journeys need Debian's chromium "
           "(`apt-get install -y chromium chromium-driver`; .ci/run installs it).")
    if os.environ.get("CI"):
        pytest.fail(msg + " CI must run them.")
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveApp:
    url: str
    home: Path
    proc: subprocess.Popen[str]
    log: Path


@contextlib.contextmanager
def live_app(home: Path, worker: bool = True, timeout: float = 120, args: Sequence[str] = (),
             env: dict[str, str] | None = None) -> Iterator[LiveApp]:
    """`tunescope ui` (plus `args`) on a free port with TUNESCOPE_HOME=`home` and `env`; stopped (with its
    worker) afterwards."""
    port = free_port()
    env = {**os.environ, "TUNESCOPE_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
    env.pop("TUNESCOPE_JOBS_DB", None)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "ui.log"
    cmd = [sys.executable, "-m", "core.cli", "ui", "--port", str(port), "--gpus", "cpu"]
    if not worker:
        cmd.append("--no-worker")
    cmd += list(args)
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout
        while "tunescope dashboard:" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"tunescope ui did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield LiveApp(url=f"http://127.0.0.1:{port}", home=home, proc=proc, log=log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def launch_browser(playwright, chromium: Path):  # noqa: ANN001, ANN201 - Playwright types are optional
    return playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)


@contextlib.contextmanager
def chromium_browser() -> Iterator:
    """Debian's Chromium under Playwright, closed afterwards (a module's `browser` fixture)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_browser(p, require_chromium())
        yield b
        b.close()


def wait_idle(page, timeout_ms: float = 60_000, settle_ms: int = 150) -> None:  # noqa: ANN001
    """Wait until the Streamlit script has finished its current run (after letting a rerun start)."""
    page.wait_for_timeout(settle_ms)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)


def open_page(page, url: str, title: str, timeout_ms: float = 60_000) -> None:  # noqa: ANN001
    page.goto(url)
    page.get_by_role("heading", name=title, exact=False).first.wait_for(timeout=timeout_ms)
    wait_idle(page, timeout_ms)


def widget(page, testid: str, label: str):  # noqa: ANN001, ANN201
    """The Streamlit widget container of kind `testid` (e.g. stSelectbox) whose label is `label`."""
    return page.locator(f"[data-testid={testid}]").filter(
        has=page.locator("[data-testid=stWidgetLabel]", has_text=re.compile(rf"^\s*{re.escape(label)}"))).first


def choose(page, label: str, option: str | re.Pattern[str]) -> None:  # noqa: ANN001
    """Pick `option` in the selectbox labelled `label`."""
    box = widget(page, "stSelectbox", label)
    box.click()
    opts = page.get_by_role("option", name=option)
    opts.first.click()
    wait_idle(page)


def choose_radio(page, label: str, option: str) -> None:  # noqa: ANN001
    """Pick `option` in the radio group labelled `label`."""
    group = widget(page, "stRadio", label)
    group.locator("label").filter(has_text=re.compile(rf"^\s*{re.escape(option)}\b")).first.click()
    wait_idle(page)


def fill_number(page, label: str, value: float, section: str | None = None) -> None:  # noqa: ANN001
    """Type into the number input labelled `label`, opening the expander `section` first if closed."""
    if section:
        exp = page.locator("[data-testid=stExpander]").filter(has_text=section).first
        if not exp.locator("[data-testid=stExpanderDetails]").is_visible():
            exp.locator("summary").click()
    box = widget(page, "stNumberInput", label).locator("input")
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def upload(page, label: str, path: Path) -> None:  # noqa: ANN001
    box = widget(page, "stFileUploader", label)
    box.locator("input[type=file]").set_input_files(str(path))
    wait_idle(page)


def click(page, name: str | re.Pattern[str]) -> None:  # noqa: ANN001
    page.get_by_role("button", name=name).first.click()
    wait_idle(page)


def screenshot(page, name: str) -> Path:  # noqa: ANN001
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.wait_for_timeout(1000)  # the script is done; give the frontend a moment to paint charts
    page.screenshot(path=str(path), full_page=True)
    return path


def no_tracebacks(page) -> None:  # noqa: ANN001
    """Streamlit renders uncaught exceptions as stException blocks; a journey must never show one."""
    assert page.locator("[data-testid=stException]").count() == 0, "the page shows a raw exception"
    assert "Traceback (most recent call last)" not in page.content()
