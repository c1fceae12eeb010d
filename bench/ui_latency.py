"""Dashboard latency in a real browser (Playwright + Debian Chromium), with 50 runs in the store and a
training job running in the worker, against a bare Streamlit app measured in the same run.

    python bench/ui_latency.py            # N=10 first loads, 30 interactions, 10 concurrent sessions
    python bench/ui_latency.py --quick    # a smoke run
    python bench/ui_latency.py --login --sessions 20   # a class server: 20 students, each logged in

Definitions
- first load: from `page.goto` in a fresh browser context until the page's heading and its main
  element (the runs table; the bare app's chart) are visible and the script has finished its run.
- interaction: a click on the "Live curves of running jobs" choice, alternating between its two
  options (Train page, with the live job list refreshing itself every two seconds; bare app: the same
  control above a chart and a table) until
  Streamlit's script state first returns to `notRunning` after the click — timestamps taken inside
  the page (performance.now) by a MutationObserver on `data-test-script-state`, so Playwright's own
  round trips are not counted.
- concurrent: the same interaction loop in 10 browser contexts at once (`--sessions`). With `--login`
  tunescope runs as a class server (`tunescope ui --auth`) and every context first logs in as its own
  student; first loads are then those of a signed-in student (a new tab that carries the cookie).
Targets (issue 5, for a normal server): first load ≤ 2.5 s, interaction p95 ≤ 200 ms. On a 2-core
machine shared by the worker, the server and Chromium, the ratio to the bare app is the figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from browser_support import CHROMIUM, CHROMIUM_ARGS, free_port, live_app  # noqa: E402
from playwright.async_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from run_factory import write_fake_run  # noqa: E402

BARE_APP = '''
import numpy as np, pandas as pd, plotly.graph_objects as go, streamlit as st

def main():
    st.title("Bare")
    on = st.segmented_control("Live curves of running jobs", ["mine", "all"], default="mine", required=True)
    on = on == "all"
    n = st.slider("points", 10, 500, 200)
    y = np.cumsum(np.random.default_rng(int(on)).normal(size=n))
    st.plotly_chart(go.Figure(go.Scatter(y=y)), key="chart")
    st.dataframe(pd.DataFrame({"x": range(50), "y": np.arange(50) ** 2}))

def other():
    st.title("Other")

st.navigation([st.Page(main, title="Main", url_path="main", default=True), st.Page(other, title="Other")]).run()
'''

OBSERVE_JS = """() => {
  window.__ts = [];
  const a = document.querySelector('[data-testid=stApp]');
  new MutationObserver(() => window.__ts.push([performance.now(), a.getAttribute('data-test-script-state')]))
    .observe(a, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
# The first return to notRunning after the click ends the rerun it caused: a click during a running
# fragment refresh (the job list updates itself every second) is folded into that run by Streamlit.
DONE_JS = "(t0) => window.__ts.some(([t, s]) => t > t0 && s === 'notRunning')"
END_JS = "(t0) => window.__ts.find(([t, s]) => t > t0 && s === 'notRunning')[0] - t0"
IDLE_JS = ("() => { const a = document.querySelector('[data-testid=stApp]');"
           " return a && a.getAttribute('data-test-script-state') === 'notRunning'; }")


LOST = [0]
LOST_SESSIONS = [0]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


PASSWORD = "bench password 1"


async def log_in(ctx, base: str, user: str | None) -> None:  # noqa: ANN001
    """Sign this browser context in as `user` (no-op without one); the cookie then rides along."""
    if user is None:
        return
    page = await ctx.new_page()
    await page.goto(base, timeout=180_000)  # twenty browsers signing in at once share 2 cores
    await page.get_by_label("User name").first.fill(user, timeout=180_000)
    await page.get_by_label("Password").first.fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_text(f"Signed in as {user}").first.wait_for(timeout=180_000)
    await page.close()


async def first_load(browser, url: str, ready: str, n: int, user: str | None = None) -> list[float]:
    out = []
    for _ in range(n):
        ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
        await log_in(ctx, url.rsplit("/", 1)[0], user)
        page = await ctx.new_page()
        t0 = time.perf_counter()
        await page.goto(url)
        await page.locator(ready).first.wait_for(timeout=60_000)
        await page.wait_for_function(IDLE_JS, timeout=60_000)
        out.append(time.perf_counter() - t0)
        await ctx.close()
    return out


async def interactions(browser, url: str, options: tuple[str, str], n: int, user: str | None = None,
                       delay_s: float = 0.0) -> list[float]:
    await asyncio.sleep(delay_s)  # a class does not open the page in the same millisecond
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        await log_in(ctx, url.rsplit("/", 1)[0], user)
        page = await ctx.new_page()
        await page.goto(url, timeout=180_000)
        buttons = [page.get_by_role("radio", name=o, exact=True).first for o in options]  # a segmented control
        await buttons[1].wait_for(state="attached", timeout=180_000)  # many sessions opening at once share 2 cores
        await page.wait_for_function(IDLE_JS, timeout=180_000)
    except PlaywrightTimeout:  # a session that never got its page: counted, not timed
        LOST_SESSIONS[0] += 1
        await ctx.close()
        return []
    await page.evaluate(OBSERVE_JS)
    out = []
    for i in range(n):
        await page.wait_for_function(IDLE_JS, timeout=180_000)
        target = buttons[(i + 1) % 2]  # "all", then "mine", …: every click changes the choice
        try:
            t0 = await target.evaluate("(el) => { const t = performance.now(); el.click(); return t; }",
                                       timeout=120_000)
        except PlaywrightTimeout:  # the page could not even take the click in 2 min: lost, not timed
            LOST[0] += 1
            continue
        try:
            await page.wait_for_function(DONE_JS, arg=t0, timeout=15_000)
        except PlaywrightTimeout:  # the click was lost (element re-rendered under it); counted, not timed
            LOST[0] += 1
            continue
        out.append(await page.evaluate(END_JS, t0) / 1000)
        await page.wait_for_timeout(100)
    await ctx.close()
    return out


async def measure(url_first: str, ready: str, url_inter: str, options: tuple[str, str], n_load: int, n_inter: int,
                  sessions: int, users: list[str] | None = None) -> dict[str, list[float]]:
    """`users`: log each context in (the first one for the single-session figures, one per session)."""
    one = users[0] if users else None
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            loads = await first_load(browser, url_first, ready, n_load, one)
            single = await interactions(browser, url_inter, options, n_inter, one)
            many = await asyncio.gather(*[interactions(browser, url_inter, options, max(3, n_inter // 3),
                                                       users[i % len(users)] if users else None, delay_s=0.5 * i)
                                          for i in range(sessions)])
        finally:
            await browser.close()
    lost, LOST[0] = LOST[0], 0
    lost_sessions, LOST_SESSIONS[0] = LOST_SESSIONS[0], 0
    return {"first_load": loads, "interaction": single, "concurrent": [x for xs in many for x in xs],
            "lost_clicks": [lost], "lost_sessions": [lost_sessions]}


def start_bare(folder: Path) -> tuple[subprocess.Popen, str]:
    (folder / "bare.py").write_text(BARE_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(folder / "bare.py"), "--server.port",
                             str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
                             "--server.fileWatcherType", "none"], cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    import urllib.request

    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit("the bare Streamlit app did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions (smoke run)")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--login", action="store_true",
                    help="tunescope as a class server: each session logs in as its own student")
    ap.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    a = ap.parse_args()
    n_load, n_inter = (3, 8) if a.quick else (10, 30)
    sessions = 3 if a.quick else a.sessions

    with tempfile.TemporaryDirectory(prefix="ts-ui-bench-") as tmp:
        home = Path(tmp) / "home"
        for i in range(a.runs):
            write_fake_run(home / "runs", f"bench-{i:03d}", accuracy=0.6 + 0.3 * (i % 7) / 7,
                           method=("head", "full", "lora", "topk")[i % 4], seed=i % 3)
        if a.login:  # the class sees them all: the same table to draw as without login
            from core.access import Access, write_access

            for p in (home / "runs").iterdir():
                write_access(p, Access(owner="teacher", shared=True))
        os.environ["TUNESCOPE_HOME"] = str(home)
        os.environ.pop("TUNESCOPE_JOBS_DB", None)
        from core import jobs
        from core.config import DataConfig, RunConfig, TrainConfig
        from core.train.submit import submit_training

        users = None
        if a.login:
            from core import accounts

            accounts.add_user("teacher", "instructor", PASSWORD)
            users = [f"student{i:02d}" for i in range(1, sessions + 1)]
            for u in users:
                accounts.add_user(u, "student", PASSWORD)
        with live_app(home, args=["--auth"] if a.login else ()) as app:
            job = submit_training(RunConfig(data=DataConfig(source="demo:sentiment"),
                                          train=TrainConfig(method="full", epochs=3)), check_device=False,
                                  owner=users[0] if users else None)[0]
            deadline = time.monotonic() + 120
            while jobs.get(job).state != "running" and time.monotonic() < deadline:
                time.sleep(0.5)
            state = jobs.get(job).state
            bare_proc, bare_url = start_bare(Path(tmp))
            try:  # both measured while the same training job runs, so they share the load
                choice = ("mine", "all")
                ours = asyncio.run(measure(app.url + "/runs", "[data-testid=stDataFrame]", app.url + "/train",
                                           choice, n_load, n_inter, sessions, users))
                bare = asyncio.run(measure(bare_url + "/main", "[data-testid=stPlotlyChart]", bare_url + "/main",
                                           choice, n_load, n_inter, sessions))
                still = jobs.get(job).state
            finally:
                jobs.cancel(job, wait=False)
                bare_proc.terminate()
                bare_proc.wait(timeout=30)

    who = f"{sessions} students logged in (class server)" if a.login else "no login"
    print(f"tunescope: {who}; {a.runs} runs in the store; training job {job} was {state} at the start and {still} "
          f"at the end of both apps' measurements; {os.cpu_count()} CPU cores; Chromium {CHROMIUM}")
    print(f"{'measure':<28}{'tunescope median':>17}{'p95':>9}{'bare median':>13}{'p95':>9}{'ratio p95':>11}"
          f"{'target':>9}")
    for key, name, target in (("first_load", f"first load (n={n_load})", "2.5 s"),
                              ("interaction", f"interaction (n={n_inter})", "0.2 s"),
                              ("concurrent", f"interaction x{sessions} sessions", "0.2 s")):
        o, b = ours[key], bare[key]
        print(f"{name:<28}{statistics.median(o):>15.3f} s{pct(o, 0.95):>7.3f} s{statistics.median(b):>11.3f} s"
              f"{pct(b, 0.95):>7.3f} s{pct(o, 0.95) / pct(b, 0.95):>10.2f}x{target:>9}")
    gone = (ours["lost_sessions"][0], bare["lost_sessions"][0])
    if any(gone):
        print(f"note: sessions whose page never became usable within 3 min: tunescope {gone[0]}, bare {gone[1]}")
    lost = (ours["lost_clicks"][0], bare["lost_clicks"][0])
    if any(lost):
        print(f"note: clicks that produced no rerun within 15 s, left out: tunescope {lost[0]}, bare {lost[1]}")
    if a.json:
        print(json.dumps({"tunescope": ours, "bare": bare}))


if __name__ == "__main__":
    main()
