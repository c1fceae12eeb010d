"""The main user journeys in a real browser (Playwright + Debian Chromium) against a live
`tunescope ui` with its worker. Screenshots of each journey's end go to test-artifacts/browser/.

Outside CI these skip, saying so, when Chromium is missing; in CI (CI=true) they fail instead."""

from __future__ import annotations

import io
import random
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import (
    choose,
    choose_radio,
    chromium_browser,
    click,
    fill_number,
    live_app,
    no_tracebacks,
    open_page,
    require_chromium,
    screenshot,
    upload,
    wait_idle,
    widget,
)
from run_factory import write_fake_run

pytestmark = pytest.mark.browser

TRAIN_TIMEOUT_MS = 240_000


def shapes_zip(path: Path, per_class: int = 10, size: int = 32) -> Path:
    """A two-class image ZIP (<label>/<file>.png): filled squares vs. circles on noise."""
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    with zipfile.ZipFile(path, "w") as z:
        for label in ("circle", "square"):
            for i in range(per_class):
                img = Image.new("RGB", (size, size), tuple(rng.randrange(0, 80) for _ in range(3)))
                d = ImageDraw.Draw(img)
                a, b = rng.randrange(2, 8), rng.randrange(size - 8, size - 2)
                (d.ellipse if label == "circle" else d.rectangle)([a, a, b, b], fill=(230, 230, 40))
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                z.writestr(f"{label}/{label}_{i}.png", buf.getvalue())
    return path


def train_head_twin(trained: Path, runs_dir: Path) -> Path:
    """The tiny text run's setup with method head: the same data and seed, so the same test examples
    (the team-lead journey compares the two and reports on them)."""
    import dataclasses

    from core import api
    from core.config import RunConfig

    cfg = RunConfig.from_json((trained / "config.json").read_text())
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, method="head", lr=1e-2))
    return api.train(cfg, runs_dir=runs_dir, run_id="tiny-text-head")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, trained_text_run: Path) -> Iterator:
    import shutil

    require_chromium()
    home = tmp_path_factory.mktemp("browser-home")
    train_head_twin(trained_text_run, home / "runs")
    # Two finished runs on the same test examples, for the compare journey.
    write_fake_run(home / "runs", "reviews-full-s1", accuracy=0.9, method="full", seed=1)
    write_fake_run(home / "runs", "reviews-head-s1", accuracy=0.6, method="head", seed=1)
    # A real (tiny) trained text model, for the predict → explain journey.
    shutil.copytree(trained_text_run, home / "runs" / "tiny-text", ignore=shutil.ignore_patterns("explanations"))
    with live_app(home) as live:
        yield live
    print(f"tunescope ui log: {live.log}")


@pytest.fixture(scope="module")
def browser(app) -> Iterator:  # noqa: ANN001
    with chromium_browser() as b:
        yield b


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator:  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    pg = context.new_page()
    yield pg
    try:  # where each journey ended (a failing one included), for whoever reads the CI artifacts
        screenshot(pg, f"last-{request.node.name}")
    finally:
        context.close()


def start_training(page) -> str:  # noqa: ANN001
    """Click Start training; return the queued job's id (from the confirmation)."""
    click(page, "Start training")
    note = page.locator("[data-testid=stAlertContentSuccess]").filter(has_text="Queued job").first
    note.wait_for()
    return re.search(r"Queued job (j-[0-9a-f]+)", note.inner_text()).group(1)


def run_link(page, home: Path, job_id: str):  # noqa: ANN001, ANN201
    """The job list's "Open run" link of one job (its run id is fixed when the job is queued)."""
    from core import jobs

    run_id = jobs.open_store(f"sqlite:///{home / 'jobs.db'}").get(job_id).run_id
    return page.locator(f"a[href*='run={run_id}']").filter(has_text="Open run")


def _progress_texts(page) -> list[str]:  # noqa: ANN001
    return [t.strip() for t in page.locator("[data-testid=stProgress]").all_inner_texts() if t.strip()]


def test_a_train_demo_head_only_watch_progress_open_confusion_matrix(app, page) -> None:  # noqa: ANN001
    open_page(page, app.url + "/train", "Train")
    choose(page, "Dataset", re.compile("sentiment", re.I))
    choose_radio(page, "Method", "head")
    fill_number(page, "Max examples", 300, section="Hyper-parameters")
    job = start_training(page)
    seen: list[str] = []
    link = run_link(page, app.home, job)
    deadline_polls = TRAIN_TIMEOUT_MS // 500
    for _ in range(deadline_polls):  # the job list refreshes itself; no reload, no clicks
        for text in _progress_texts(page):
            if text not in seen:
                seen.append(text)
        if link.count():
            break
        page.wait_for_timeout(500)
    assert link.count(), f"the run never finished; progress seen: {seen}\n{app.log.read_text()[-2000:]}"
    assert len(seen) >= 2, f"progress did not update live: {seen}"
    link.first.click()
    page.get_by_role("heading", name="Confusion matrix").wait_for()
    wait_idle(page)
    page.locator("[data-testid=stPlotlyChart]").nth(1).wait_for()  # Plotly's bundle loads after the script ends
    assert page.locator("[data-testid=stPlotlyChart]").count() >= 2
    assert "run=" in page.url  # the run has its own shareable address
    no_tracebacks(page)
    screenshot(page, "a-train-demo-confusion-matrix")


def test_b_bad_csv_row_named_and_nothing_stored(app, page, tmp_path: Path) -> None:  # noqa: ANN001
    bad = tmp_path / "reviews.csv"
    rows = ["text,label"] + [f"review number {i} was {'good' if i % 2 else 'bad'},{'pos' if i % 2 else 'neg'}"
                             for i in range(1, 30)]
    rows[7] = "the plot was fine,"  # no label, in row 8 as a spreadsheet numbers it
    bad.write_text("\n".join(rows) + "\n")
    before = sorted(p.name for p in (app.home / "datasets").glob("*")) if (app.home / "datasets").exists() else []
    open_page(page, app.url + "/data", "Data")
    upload(page, "Upload a dataset", bad)
    alert = page.locator("[data-testid=stAlertContentError]").first
    alert.wait_for()
    message = alert.inner_text()
    assert "reviews.csv" in message and re.search(r"\brow 8\b", message), message
    after = sorted(p.name for p in (app.home / "datasets").glob("*")) if (app.home / "datasets").exists() else []
    assert after == before
    no_tracebacks(page)
    screenshot(page, "b-bad-row-message")


def test_c_image_zip_train_then_predict_uploaded_image(app, page, tmp_path: Path) -> None:  # noqa: ANN001
    archive = shapes_zip(tmp_path / "shapes.zip")
    open_page(page, app.url + "/data", "Data")
    upload(page, "Upload a dataset", archive)
    page.get_by_text(re.compile("circle")).first.wait_for()
    name = widget(page, "stTextInput", "Dataset name").locator("input")
    name.fill("shapes")
    name.press("Enter")
    wait_idle(page)
    click(page, "Save dataset")
    page.get_by_text(re.compile("shapes")).first.wait_for()
    assert (app.home / "datasets" / "shapes").is_dir()

    open_page(page, app.url + "/train", "Train")
    choose(page, "Dataset", re.compile("shapes"))
    choose_radio(page, "Method", "head")
    job = start_training(page)
    link = run_link(page, app.home, job)
    link.first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    run_id = re.search(r"run=([^&]+)", link.first.get_attribute("href") or "").group(1)

    open_page(page, f"{app.url}/predict?run={run_id}", "Predict")
    img = tmp_path / "one.png"
    with zipfile.ZipFile(archive) as z:
        img.write_bytes(z.read("square/square_3.png"))
    upload(page, "Image to classify", img)
    click(page, "Predict")
    page.get_by_text("Class probabilities").first.wait_for()
    assert page.locator("[data-testid=stPlotlyChart]").count() >= 1
    no_tracebacks(page)
    screenshot(page, "c-image-predict")


def test_d_compare_two_runs(app, page) -> None:  # noqa: ANN001
    open_page(page, f"{app.url}/compare?runs=reviews-full-s1,reviews-head-s1", "Compare")
    verdict = page.get_by_text(re.compile(r"beats|No clear difference")).first
    verdict.wait_for()
    assert "beats" in verdict.inner_text()
    wait_idle(page)
    page.locator("[data-testid=stPlotlyChart]").nth(2).wait_for()  # per-class differences and two curve plots
    no_tracebacks(page)
    screenshot(page, "d-compare")


def test_e_predict_then_explain_heatmap_faithfulness_sanity_check(app, page) -> None:  # noqa: ANN001
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_page(page, f"{app.url}/predict?run=tiny-text", "Predict")
    box = widget(page, "stTextArea", "Text to classify").locator("textarea")
    box.fill("a great and lovely film <script>alert(1)</script>")
    box.press("Control+Enter")
    wait_idle(page)
    click(page, "Predict")
    page.get_by_text("Class probabilities").first.wait_for()
    page.get_by_role("link", name="Explain this prediction").click()
    page.get_by_role("heading", name="Explain").first.wait_for()
    wait_idle(page)
    assert widget(page, "stRadio", "Input").locator("input[type=radio]").first.is_checked()  # From Predict
    page.get_by_text(re.compile(r"Estimated cost: Integrated Gradients, 50 steps: ~")).first.wait_for()
    click(page, re.compile(r"^Explain$"))
    page.locator(".ts-w").first.wait_for()
    words = page.locator(".ts-w").all_inner_texts()
    assert "great" in words and "<" in words  # the markup is shown as words, not run
    assert page.locator("script", has_text="alert(1)").count() == 0
    page.get_by_text(re.compile(r"faithfulness: (better|barely|no better)")).first.wait_for()
    click(page, "Run the sanity check")
    page.get_by_text(re.compile(r"Sanity check (passed|failed)")).first.wait_for(timeout=120_000)
    wait_idle(page)
    assert page.locator("[data-testid=stPlotlyChart]").count() >= 2  # word scores and the sanity curve
    assert not dialogs, f"user text ran as script: {dialogs}"
    no_tracebacks(page)
    screenshot(page, "e-predict-explain-sanity")


def test_f_confusion_cell_to_explained_error_to_report(app, page, tmp_path: Path) -> None:  # noqa: ANN001
    import json

    import pandas as pd

    run_dir = app.home / "runs" / "tiny-text"
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    labels = json.loads((run_dir / "summary.json").read_text())["labels"]  # the matrix's order
    wrong = preds[~preds["correct"]]
    assert not wrong.empty, "the tiny run made no mistakes to explain"
    true, pred = wrong.iloc[0]["label"], wrong.iloc[0]["pred"]
    cell = preds[(preds["label"] == true) & (preds["pred"] == pred)]
    open_page(page, f"{app.url}/runs?run=tiny-text", "Runs")
    page.get_by_role("heading", name="Confusion matrix").wait_for()
    chart = page.locator("[data-testid=stPlotlyChart]").filter(has_text="Confusion matrix").first
    chart.scroll_into_view_if_needed()
    area = chart.locator(".nsewdrag").first
    area.wait_for()
    box = area.bounding_box()
    k = len(labels)  # click the centre of the cell (row: true class, top to bottom; column: prediction)
    page.mouse.click(box["x"] + box["width"] * (labels.index(pred) + 0.5) / k,
                     box["y"] + box["height"] * (labels.index(true) + 0.5) / k)
    shown = re.compile(rf"{len(cell)} test examples? of class {true} predicted as {pred}")
    page.get_by_text(shown).wait_for(timeout=30_000)
    wait_idle(page)
    link = page.get_by_role("link", name=re.compile(r"^Explain #\d+$")).first
    example = re.search(r"#(\d+)", link.inner_text()).group(1)
    link.click()
    page.get_by_role("heading", name="Explain").first.wait_for()
    wait_idle(page)
    picked = widget(page, "stSelectbox", "Test example")
    page.wait_for_function("([el, want]) => (el.innerText + ' ' + [...el.querySelectorAll('input')].map("
                           "i => i.value).join(' ')).includes(want)",
                           arg=[picked.element_handle(), f"#{example} · true {true} · predicted {pred}"])
    click(page, re.compile(r"^Explain$"))
    page.locator(".ts-w").first.wait_for()
    page.get_by_text(re.compile(r"faithfulness: (better|barely|no better)")).first.wait_for()
    no_tracebacks(page)
    screenshot(page, "f-confusion-cell-explained")
    click(page, "Add to report")  # the report shows only what its author added (this session's draft)
    page.get_by_text("In your report draft").first.wait_for(timeout=30_000)

    # In-app navigation keeps the session (and its draft); a fresh page load would start a new one.
    page.locator("[data-testid=stSidebarNav] a", has_text="Runs").first.click()
    page.get_by_role("heading", name="Runs").first.wait_for()
    wait_idle(page)
    choose(page, "Open a run", re.compile(r"^tiny-text(?!-)"))  # not tiny-text-head
    with page.expect_download() as dl:
        page.get_by_role("button", name="Report (HTML)").click()
    saved = tmp_path / "report.html"
    dl.value.save_as(saved)
    html = saved.read_text()
    assert "<h2>Summary" in html and "<h2>Confusion matrices" in html and "tiny-text" in html
    assert "<script" not in html and "Faithfulness:" in html  # the explanation just made is in the report


def _explain_and_add(page, check_sanity: bool) -> None:  # noqa: ANN001
    """Press Explain, wait for the word highlights, optionally run the sanity check, Add to report."""
    click(page, re.compile(r"^Explain$"))
    page.get_by_text(re.compile(r"faithfulness: (better|barely|no better)")).first.wait_for()
    if check_sanity:
        click(page, "Run the sanity check")
        page.get_by_text(re.compile(r"Sanity check (passed|failed|inconclusive)")).first.wait_for(timeout=120_000)
    click(page, "Add to report")
    page.get_by_text("In your report draft").first.wait_for(timeout=30_000)


def test_h_team_lead_picks_explanations_and_sends_a_report_whose_first_page_reads(  # noqa: ANN001
        app, page, tmp_path: Path) -> None:
    import subprocess
    import unicodedata

    from pypdf import PdfReader

    # Two explanations of the run under review, chosen by hand: a typed review (with its sanity
    # check) and a misclassified test example.
    open_page(page, f"{app.url}/explain?run=tiny-text", "Explain")
    choose_radio(page, "Input", "Type text")
    box = widget(page, "stTextArea", "Text to explain").locator("textarea")
    box.fill("a great and lovely film")
    box.press("Control+Enter")
    wait_idle(page)
    _explain_and_add(page, check_sanity=True)
    choose_radio(page, "Input", "From the test set")
    _explain_and_add(page, check_sanity=False)

    # A reload (a new Streamlit session) keeps this browser's draft: the Compare page counts both.
    open_page(page, f"{app.url}/compare?runs=tiny-text,tiny-text-head", "Compare")
    page.reload()
    page.get_by_role("heading", name="Compare").first.wait_for()
    wait_idle(page)
    page.get_by_text("Explanations in the report: 2 you added on the Explain page").first.wait_for()
    for label, value in (("Report title", "Sentiment model: ship full or head?"),
                         ("Subtitle", "Review for the product team"), ("Prepared by", "Team lead")):
        field = widget(page, "stTextInput", label).locator("input")
        field.fill(value)
        field.press("Enter")
        wait_idle(page)
    with page.expect_download(timeout=180_000) as dl:
        page.get_by_role("button", name="Report on these runs (PDF)").click()
    pdf = tmp_path / "report.pdf"
    dl.value.save_as(pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"

    def text(pdf_page) -> str:  # noqa: ANN001
        # NFKC undoes the typesetter's ligatures ("ﬁ" in "film"); split/join evens out the spacing.
        return " ".join(unicodedata.normalize("NFKC", pdf_page.extract_text()).split())

    pages = PdfReader(str(pdf)).pages
    first = text(pages[0])
    assert "Sentiment model: ship full or head?" in first and "Review for the product team" in first
    assert "Prepared by Team lead" in first
    assert "The question:" in first and "The answer:" in first
    for col in ("experiment", "seeds", "accuracy", "macro-F1", "trainable", "train time", "peak memory"):
        assert col in first, col
    assert re.search(r"(beats|No clear difference)", first), first  # the verdict, on page one
    rest = " ".join(text(p) for p in pages[1:])
    assert rest.count("Faithfulness:") >= 2 and "a great and lovely film" in rest  # exactly what was added
    assert "Sanity check" in rest
    # The first page as the manager sees it, kept for whoever reads the CI artefacts.
    from browser_support import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(ARTIFACTS / "h-report-first-page")], check=True, timeout=120)
    assert (ARTIFACTS / "h-report-first-page.png").stat().st_size > 10_000
    no_tracebacks(page)
    screenshot(page, "h-team-lead-compare-report")


def _choose_many(page, label: str, options: list[re.Pattern[str]]) -> None:  # noqa: ANN001
    """Pick each of `options` in the multiselect labelled `label`."""
    for option in options:
        widget(page, "stMultiSelect", label).click()
        page.get_by_role("option", name=option).first.click()
        wait_idle(page)
    page.keyboard.press("Escape")


def _queue(page) -> list[str]:  # noqa: ANN001
    """Click Start training for a seed group; return its job ids (from the confirmation)."""
    click(page, "Start training")
    note = page.locator("[data-testid=stAlertContentSuccess]").filter(has_text="Queued 2 jobs").first
    note.wait_for()
    return re.findall(r"j-[0-9a-f]+", note.inner_text())


def test_g_a_class_uploads_trains_two_seed_groups_reloads_and_shares_a_comparison(  # noqa: ANN001
        app, browser, page, tmp_path: Path) -> None:
    import csv

    from conftest import make_sentiment_rows

    # A student's export: headers no loader guesses, an id column in front.
    upload_file = tmp_path / "Class Reviews (week 3).csv"
    with open(upload_file, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["#", "What did you think? (free text)", "Thumbs"])
        w.writerows((i, text, label) for i, (text, label) in enumerate(make_sentiment_rows(160, seed=3)))
    open_page(page, app.url + "/data", "Data")
    upload(page, "Upload a dataset", upload_file)
    choose(page, "Text column", "What did you think? (free text)")
    choose(page, "Label column", "Thumbs")
    # The name box follows the upload (the file's name, made a valid dataset name) after the column
    # choices, which rerun the page and briefly hide the save form.
    name = widget(page, "stTextInput", "Dataset name").locator("input")
    wait_idle(page)
    page.wait_for_function("e => e.value === 'class-reviews-week-3'", arg=name.element_handle(), timeout=15_000)
    page.get_by_role("button", name="Save dataset").dblclick()  # a nervous double click
    wait_idle(page)
    page.get_by_text(re.compile(r"Saved as class-reviews-week-3")).first.wait_for()
    assert page.locator("[data-testid=stAlertContentError]").count() == 0
    page.get_by_text("Where you can use it:").first.wait_for()
    assert [p.name for p in (app.home / "datasets").iterdir() if not p.name.startswith(".")].count(
        "class-reviews-week-3") == 1

    # Two seed groups: full and head, two seeds each, kept small so the class is not kept waiting.
    open_page(page, app.url + "/train", "Train")
    choose(page, "Dataset", re.compile("class-reviews-week-3"))
    choose_radio(page, "Method", "full")
    fill_number(page, "Max length (tokens)", 32, section="Hyper-parameters")
    fill_number(page, "Epochs (0 = default)", 4, section="Hyper-parameters")
    fill_number(page, "Seeds", 2, section="Hyper-parameters")
    full_jobs = _queue(page)
    choose_radio(page, "Method", "head")
    head_jobs = _queue(page)
    assert len(full_jobs) == len(head_jobs) == 2
    widget(page, "stCheckbox", "Only jobs started in this browser").locator("label").first.click()
    wait_idle(page)
    page.locator("[data-testid=stProgress]").filter(has_text=re.compile(r"step \d+")).first.wait_for(
        timeout=TRAIN_TIMEOUT_MS)

    # A reload mid-training (a new Streamlit session): the form, the toggle and the jobs stay this
    # browser's, and the running job's live curve shows without asking.
    assert "train_seeds=2" in page.url and "train_only_mine=true" in page.url, page.url  # head: the default
    page.reload()
    page.get_by_role("heading", name="Train").first.wait_for()
    wait_idle(page)
    head = widget(page, "stRadio", "Method").locator("label").filter(has_text=re.compile(r"^\s*head\b")).first
    assert head.locator("input").is_checked()
    assert widget(page, "stCheckbox", "Only jobs started in this browser").locator("input").is_checked()
    page.get_by_text(re.compile(r"^2 seeds")).nth(1).wait_for()  # both groups are still listed as mine
    curve = page.locator("[data-testid=stPlotlyChart]").first
    curve.wait_for(timeout=TRAIN_TIMEOUT_MS)
    # The artefact shows the job cards with the curve (the chart itself is redrawn every refresh).
    page.get_by_role("heading", name="Jobs").first.scroll_into_view_if_needed()
    screenshot(page, "g-class-live-curve-after-reload")
    links = page.get_by_role("link", name="Open run")
    for _ in range(TRAIN_TIMEOUT_MS // 1000):
        if links.count() >= 4:
            break
        page.wait_for_timeout(1000)
    assert links.count() >= 4, f"the four jobs did not finish:\n{app.log.read_text()[-2000:]}"

    # Compare the two groups; the link, opened in a fresh browser, shows the same comparison.
    open_page(page, app.url + "/compare", "Compare")
    choose_radio(page, "Pick", "Seed groups")
    _choose_many(page, "Seed groups", [re.compile(r"full.*class-reviews|class-reviews.*full"),
                                       re.compile(r"head.*class-reviews|class-reviews.*head")])
    code = page.locator("[data-testid=stCode]").filter(has_text="groups=").first
    code.wait_for()
    link = code.inner_text().strip()
    assert link.startswith(app.url + "/compare?groups="), link
    verdict = page.get_by_text(re.compile(r"beats|No clear difference")).first.inner_text()
    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = fresh.new_page()
        other.set_default_timeout(60_000)
        open_page(other, link, "Compare")
        other.get_by_text(re.compile(r"beats|No clear difference")).first.wait_for()
        assert other.get_by_text(re.compile(r"beats|No clear difference")).first.inner_text() == verdict
        chosen = widget(other, "stMultiSelect", "Seed groups").inner_text()
        assert "full" in chosen and "head" in chosen, chosen
        no_tracebacks(other)
        screenshot(other, "g-class-shared-comparison")
    finally:
        fresh.close()
    no_tracebacks(page)
