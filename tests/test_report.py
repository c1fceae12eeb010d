"""The stakeholder report: sections a non-specialist needs, every user string escaped, no scripts,
explanations with their trust scores, and a PDF printed by headless Chromium."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from browser_support import require_chromium
from run_factory import write_fake_run

from core import report
from core.errors import ConfigError, RunError

HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def hostile_runs(tmp_path: Path) -> list[Path]:
    labels = ("<b>neg</b>", "pos&<script>")
    return [write_fake_run(tmp_path, name, accuracy=acc, method=method, seed=seed, dataset=HOSTILE, labels=labels)
            for name, acc, method, seed in (("full-1", 0.9, "full", 1), ("head-1", 0.6, "head", 2))]


def test_report_has_every_section_and_escapes_user_text(hostile_runs: list[Path]) -> None:
    page = report.build_report(hostile_runs)
    for heading in ("Summary", "Dataset card", "Model cards", "Metrics", "Significance", "Training curves",
                    "Confusion matrices", "Calibration", "explanations"):
        assert f"<h2>{heading}" in page or f"<h2>Why the models decide: {heading}" in page, heading
    assert "<script" not in page and "<img" not in page and "onerror=\"" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "&lt;b&gt;neg&lt;/b&gt;" in page and "pos&amp;&lt;script&gt;" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from outside
    assert "full-1" in page and "exact McNemar" in page and "beats" in page
    assert page.count("<td>exact McNemar</td>") == 1  # listed once, not once per verdict
    assert page.count("<svg") == 3  # loss, validation F1, reliability


def test_unfinished_runs_and_no_runs_are_refused(tmp_path: Path) -> None:
    running = write_fake_run(tmp_path, "busy", state="running")
    with pytest.raises(RunError, match="has not finished"):
        report.build_report([running])
    with pytest.raises(ConfigError, match="at least one run"):
        report.build_report([])


def test_report_shows_explanations_with_faithfulness_and_sanity(trained_text_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "tiny-text"
    shutil.copytree(trained_text_run, run, ignore=shutil.ignore_patterns("explanations"))
    page = report.build_report([run], compute_explanations=True)
    assert page.count("<h2>Integrated Gradients</h2>") == 2  # the most confident right and wrong examples
    assert "Faithfulness:" in page and re.search(r"Sanity check (passed|failed)", page)
    # Chosen afterwards by their cache keys (as a report draft names them): served from the cache.
    from core.explain.record import Explanation

    keys = [p.stem for p in sorted((run / "explanations").glob("*.npz")) if Explanation.load(p).faithfulness]
    assert len(keys) == 2
    again = report.build_report([run], explanations=[(run.name, k) for k in keys])
    assert again.count("<h2>Integrated Gradients</h2>") == 2
    assert len(re.findall(r"Sanity check (passed|failed)", again)) == 2  # each with its own check
    assert "No explanations were chosen" in report.build_report([run])  # nothing picked by itself


def test_cli_writes_html_and_a_pdf_with_the_report_text(hostile_runs: list[Path], tmp_path: Path) -> None:
    require_chromium()
    from pypdf import PdfReader

    from core.cli import main

    out = tmp_path / "out" / "report.html"
    assert main(["report", "--runs", *map(str, hostile_runs), "--out", str(out), "--pdf"]) == 0
    assert out.is_file() and out.with_suffix(".pdf").is_file()
    pdf = PdfReader(str(out.with_suffix(".pdf")))
    assert 2 <= len(pdf.pages) <= 12
    text = " ".join(p.extract_text() for p in pdf.pages)
    assert "Summary" in text and "Dataset card" in text and "full-1" in text and "Calibration" in text
    assert "<img src=x" in text  # the hostile dataset name is printed as text


def test_a_failed_pdf_print_never_passes_off_an_old_pdf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "chromium"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(report, "find_chromium", lambda: str(fake))
    old = tmp_path / "report.pdf"
    old.write_bytes(b"%PDF old")
    with pytest.raises(ConfigError, match="could not print"):
        report.html_to_pdf("<html></html>", old)
    assert old.read_bytes() == b"%PDF old"  # untouched, and not returned as the new one


def test_out_named_pdf_keeps_the_html_beside_it(hostile_runs: list[Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "html_to_pdf", lambda text, out: Path(out).write_bytes(b"%PDF") and Path(out))
    written = report.write_report(hostile_runs, tmp_path / "r.pdf", pdf=True)
    assert [p.name for p in written] == ["r.html", "r.pdf"]
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")


def test_single_run_groups_show_a_dash_not_nan(tmp_path: Path) -> None:
    runs = [write_fake_run(tmp_path, f"g{i}", accuracy=0.8, method="full", seed=i) for i in range(2)]
    runs.append(write_fake_run(tmp_path, "solo", accuracy=0.7, method="head", seed=5))
    page = report.build_report(runs)
    assert ">nan<" not in page and "nan ±" not in page
    # the sd column is gone (the interval says it); a one-seed row says why it has no interval instead
    assert "<td>one run: no interval; train more seeds to see the spread</td>" in page


def test_report_never_shows_what_someone_typed_on_the_explain_page(trained_text_run: Path, tmp_path: Path) -> None:
    # Trust fixes, item 6: the report embedded the newest cached explanations whoever made them.
    from core.explain.explainer import explain
    from core.runs import Run

    run = tmp_path / "tiny-text"
    shutil.copytree(trained_text_run, run, ignore=shutil.ignore_patterns("explanations"))
    test_text = str(Run(run).predictions()["input"].iloc[0])
    mine = explain(run, test_text, "saliency")
    explain(run, "my private note about great plans", "saliency")  # typed by another user, made last
    page = report.build_report([run])  # nothing chosen: nothing shown, not "whatever was computed last"
    assert "<h2>Saliency (gradient)</h2>" not in page and "private" not in page
    assert "No explanations were chosen for this report." in page and "--explain" not in page
    page = report.build_report([run], explanations=[(run.name, mine.extra["cache_key"])])
    assert page.count("<h2>Saliency (gradient)</h2>") == 1
    assert "private" not in page and "plans" not in page
    first_word = test_text.split()[0]
    assert first_word in page


def test_a_sanity_result_from_the_older_weaker_check_is_not_reported(trained_text_run: Path, tmp_path: Path) -> None:
    # The v2 cascade left text position embeddings (and CNN stems) trained; its "passed" must not reappear.
    import json

    from core.explain.explainer import explain
    from core.explain.sanity import sanity_check
    from core.runs import Run

    run = tmp_path / "tiny-text"
    shutil.copytree(trained_text_run, run, ignore=shutil.ignore_patterns("explanations"))
    text = str(Run(run).predictions()["input"].iloc[0])
    chosen = [(run.name, explain(run, text, "saliency").extra["cache_key"])]
    sanity_check(run, text, "saliency")
    (done,) = (run / "explanations").glob("sanity-*.json")
    from core.explain.record import SANITY_VERSION

    assert json.loads(done.read_text())["version"] == SANITY_VERSION
    assert re.search(r"Sanity check (passed|failed)", report.build_report([run], explanations=chosen))
    old = json.loads(done.read_text())
    del old["version"]
    done.write_text(json.dumps(old))
    assert "Sanity check: not run for this explanation." in report.build_report([run], explanations=chosen)


def test_default_title_names_the_dataset_and_methods_never_run_ids(tmp_path: Path) -> None:
    runs = [write_fake_run(tmp_path, f"2026-run-{m}-{s}", method=m, seed=s) for m in ("head", "full") for s in (1, 2)]
    page = report.build_report(runs)
    title = re.search(r"<h1>(.*?)</h1>", page).group(1)
    assert title == "reviews: Head only (linear probe) vs Full fine-tuning"
    assert "2026-run" not in title and f"<title>{title}</title>" in page
    assert "Prepared by" not in page and "made with tunescope from 4 finished runs" in page


def test_title_subtitle_and_author_are_the_authors_and_escaped(hostile_runs: list[Path], tmp_path: Path) -> None:
    page = report.build_report(hostile_runs, title="Q3 <review>", subtitle="Ship full?", author=HOSTILE)
    assert "<h1>Q3 &lt;review&gt;</h1>" in page and "<p class='subtitle'>Ship full?</p>" in page
    assert "Prepared by &lt;img src=x" in page and "<img" not in page
    from core.cli import main

    out = tmp_path / "cli.html"
    assert main(["report", "--runs", *map(str, hostile_runs), "--out", str(out), "--title", "Which method?",
                 "--subtitle", "Review of Q3", "--author", "Ada"]) == 0
    text = out.read_text()
    assert "<h1>Which method?</h1>" in text and "Review of Q3" in text and "Prepared by Ada · " in text


def test_compare_page_has_the_report_title_fields(home: Path) -> None:
    from apptest_support import open_app_page

    for name, method in (("r-head", "head"), ("r-full", "full")):
        write_fake_run(home / "runs", name, method=method)
    at = open_app_page("compare")
    at.multiselect(key="compare_runs").set_value(["r-full", "r-head"]).run()
    assert not at.exception, [e.value for e in at.exception]
    field = at.text_input(key="compare_report_title")
    assert field.placeholder == "reviews: Full fine-tuning vs Head only (linear probe)"
    assert at.text_input(key="compare_report_subtitle") and at.text_input(key="compare_report_author")
    from dashboard.ui import report_html

    page = report_html([home / "runs" / "r-full"], title="Mine", author="Bo").decode()
    assert "<h1>Mine</h1>" in page and "Prepared by Bo" in page


def _first_page(page: str) -> str:
    start = page.index("<div class='first-page'>")
    return page[start:page.index("</div>", page.index("<h2>Verdicts</h2>"))]


def test_first_page_has_question_answer_metrics_with_cost_and_verdicts_from_group_means(tmp_path: Path) -> None:
    runs = [write_fake_run(tmp_path, f"r-{m}-{s}", method=m, seed=s, accuracy=acc)
            for m, acc in (("head", 0.6), ("full", 0.9)) for s in (1, 2, 3)]
    # one lucky head seed beats every full seed: "the best" must still be the better group, not that run
    runs.append(write_fake_run(tmp_path, "r-head-lucky", method="head", seed=4, accuracy=0.99))
    page = report.build_report(runs)
    first = _first_page(page)
    assert "The question:" in first and "The answer:" in first
    answer = re.search(r"The answer:</b>(.*?)</p>", first).group(1)
    assert re.search(r"<b>(.*?)</b>", answer).group(1) == "reviews · minilm · full"  # the better group mean
    assert "mean ± 95 % interval over 3 seeds" in answer and "0.99" not in answer
    assert "r-head-lucky" not in first  # no run ids on the first page, no "best run"
    header = re.search(r"<table class='metrics'><tr>(.*?)</tr>", first).group(1)
    for col in ("experiment", "seeds", "test examples", "accuracy", "macro-F1", "trainable parameters",
                "train time", "peak memory"):
        assert f"<th>{col}</th>" in header
    rows = re.findall(r"<tr><td>(reviews · minilm · \w+)</td><td>(\d+)</td><td>60</td><td>([^<]+)</td>", first)
    assert [(r[0], r[1]) for r in rows] == [("reviews · minilm · full", "3"), ("reviews · minilm · head", "4")]
    assert all("±" in r[2] for r in rows)
    assert "<td>10.0 M</td>" in first and "<td>770</td>" in first and "<td>900 MB</td>" in first
    assert "A − B with A = reviews · minilm · full" in first
    verdicts = re.findall(r"<p>([^<]*reviews · minilm · full − reviews · minilm · head = \+[^<]+)</p>", first)
    assert len(verdicts) == 2  # macro-F1 and accuracy, both A − B with A the better group


def test_model_cards_are_one_per_experiment_in_the_appendix_with_seeds_listed(tmp_path: Path) -> None:
    runs = [write_fake_run(tmp_path, f"r-{m}-{s}", method=m, seed=s) for m in ("head", "full") for s in (1, 2, 3)]
    page = report.build_report(runs)
    appendix = page[page.index("<div class='appendix'>"):]
    assert "<h2>Model cards</h2>" in appendix and "<h2>Model cards</h2>" not in page[:page.index("appendix")]
    assert appendix.count("<div class='card'>") == 2
    assert "seed 1 (r-head-1), seed 2 (r-head-2), seed 3 (r-head-3)" in appendix
    assert "Head only (linear probe)" in appendix


def test_one_experiment_gets_no_verdict_between_its_own_seeds(tmp_path: Path) -> None:
    runs = [write_fake_run(tmp_path, f"s{i}", method="full", seed=i, accuracy=0.5 + 0.2 * i) for i in range(3)]
    first = _first_page(report.build_report(runs))
    assert "One experiment only: nothing to test it against" in first and "beats" not in first
    assert "How well does <b>reviews · minilm · full</b>" in first


def test_a_report_draft_is_confined_idempotent_and_survives_a_bad_file(home: Path) -> None:
    from core import report_drafts as drafts

    key = "ab" * 12
    assert drafts.chosen("ui-1") == []
    drafts.add("ui-1", "run-a", key, "IG · run-a · great film")
    drafts.add("ui-1", "run-a", key)  # a second click changes nothing
    drafts.add("ui-1", "run-b", "cd" * 12)
    assert drafts.as_pairs(drafts.chosen("ui-1")) == [("run-a", key), ("run-b", "cd" * 12)]
    assert drafts.chosen("ui-2") == []  # per owner
    assert drafts.draft_path("ui-1").parent == (home / "report_drafts").resolve()
    drafts.remove("ui-1", "run-a", key)
    assert drafts.as_pairs(drafts.chosen("ui-1")) == [("run-b", "cd" * 12)]
    for owner in ("../etc/passwd", "a/b", "", ".."):
        with pytest.raises(ConfigError, match="not allowed"):
            drafts.draft_path(owner)
    with pytest.raises(ConfigError, match="not an explanation cache key"):
        drafts.add("ui-1", "run-a", "../../secret")
    with pytest.raises(ConfigError, match="not allowed"):
        drafts.add("ui-1", "../run", key)
    drafts.draft_path("ui-1").write_text('{"explanations": [{"run": "../x", "key": "00000000"}, 5]}')
    assert drafts.chosen("ui-1") == []
    drafts.draft_path("ui-1").write_text("not json")
    assert drafts.chosen("ui-1") == []


def test_chosen_explanations_that_are_gone_or_of_other_runs_are_said_not_invented(tmp_path: Path) -> None:
    run = write_fake_run(tmp_path, "solo")
    page = report.build_report([run], explanations=[("solo", "ab" * 12), ("elsewhere", "cd" * 12)])
    assert "No explanations were chosen" in page
    assert "1 chosen explanation is no longer stored" in page
    assert "1 chosen explanation belongs to runs not in this report and was left out." in page


def test_cli_draft_embeds_the_drafts_explanations(trained_text_run: Path, tmp_path: Path, home: Path) -> None:
    from core import report_drafts as drafts
    from core.cli import main
    from core.explain.explainer import explain
    from core.runs import Run

    run = tmp_path / "tiny-text"
    shutil.copytree(trained_text_run, run, ignore=shutil.ignore_patterns("explanations"))
    rec = explain(run, str(Run(run).predictions()["input"].iloc[0]), "saliency")
    drafts.add("team-review", run.name, rec.extra["cache_key"])
    out = tmp_path / "r.html"
    assert main(["report", "--runs", str(run), "--out", str(out), "--draft", "team-review"]) == 0
    assert out.read_text().count("<h2>Saliency (gradient)</h2>") == 1
    assert main(["report", "--runs", str(run), "--out", str(out)]) == 0
    assert "No explanations were chosen" in out.read_text()


def _require_pdftoppm() -> str:
    """pdftoppm's path; in CI a missing tool fails the run (like Chromium), elsewhere the check skips."""
    import os

    path = shutil.which("pdftoppm")
    if path:
        return path
    msg = "pdftoppm not found: the report's visual check needs poppler-utils (`apt-get install -y poppler-utils`)."
    if os.environ.get("CI"):
        pytest.fail(msg + " CI must run it (.ci/run installs it).")
    pytest.skip(msg)


def test_the_printed_report_pages_render_and_page_one_holds_the_summary(tmp_path: Path) -> None:
    import os
    import subprocess

    from PIL import Image
    from pypdf import PdfReader

    require_chromium()
    pdftoppm = _require_pdftoppm()
    runs = [write_fake_run(tmp_path, f"r-{m}-{s}", method=m, seed=s, accuracy=acc)
            for m, acc in (("head", 0.6), ("full", 0.9)) for s in (1, 2, 3)]
    html_text = report.build_report(runs, title="Which method should we ship?", subtitle="Q3 review",
                                    author="Team lead")
    pdf = report.html_to_pdf(html_text, tmp_path / "report.pdf")
    pages = PdfReader(str(pdf)).pages
    assert 3 <= len(pages) <= 12  # first page, the charts and the appendix each start a page
    first = " ".join(pages[0].extract_text().split())
    assert "Which method should we ship?" in first and "Q3 review" in first and "Prepared by Team lead" in first
    assert "The question:" in first and "The answer:" in first
    for col in ("experiment", "seeds", "accuracy", "macro-F1", "trainable", "train time", "peak memory"):
        assert col in first, col
    assert "reviews · minilm · full beats reviews · minilm · head on macro-F1" in first  # the verdict
    assert "Dataset card" not in first and "Model cards" not in first  # they come later
    out = Path(os.environ.get("TUNESCOPE_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
    out = out / "report"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("page-*.png"):
        old.unlink()
    subprocess.run([pdftoppm, "-png", "-r", "60", str(pdf), str(out / "page")], check=True, timeout=120)
    pngs = sorted(out.glob("page-*.png"))
    assert len(pngs) == len(pages)
    with Image.open(pngs[0]) as img:
        grey = img.convert("L")
        assert grey.size[0] > 300 and grey.getextrema()[0] < 100  # page 1 carries dark text, not a blank page


def test_charts_use_short_labels_one_colour_per_experiment_and_round_ticks(tmp_path: Path) -> None:
    from core.report_svg import nice_ticks, tick_text

    runs = [write_fake_run(tmp_path, f"2026-long-run-id-{m}-{s}", method=m, seed=s) for m in ("head", "full")
            for s in (1, 2)]
    labels, styles = report.series_styles([report.Run(r) for r in runs])
    assert sorted(labels.values()) == ["full · s1", "full · s2", "head · s1", "head · s2"]
    assert styles["head · s1"][0] == styles["head · s2"][0] != styles["full · s1"][0]  # colour by experiment
    assert styles["head · s1"][1] != styles["head · s2"][1]  # seeds told apart by line style
    page = report.build_report(runs)
    curves = page[page.index("<h2>Training curves"):page.index("<h2>Confusion")]
    assert ">head · s1</text>" in curves and "2026-long-run-id" not in curves
    assert [tick_text(t, nice_ticks(5, 100)) for t in nice_ticks(5, 100)] == ["0", "25", "50", "75", "100"]
    assert [tick_text(t, nice_ticks(0, 1)) for t in nice_ticks(0, 1)] == ["0.00", "0.25", "0.50", "0.75", "1.00"]
    assert ">28.8<" not in curves and ">0.97<" not in page  # no odd ticks like 28.8
    confusion = page[page.index("<h2>Confusion"):page.index("<h2>Calibration")]
    assert confusion.count("<table class=\"cm\">") == 2 and "2 seeds added up" in confusion


def test_the_dataset_card_shows_every_test_split_the_runs_used(tmp_path: Path) -> None:
    same = [write_fake_run(tmp_path, f"a{s}", method="head", seed=s) for s in (1, 2)]
    page = report.build_report(same)
    assert page.count("<h2>Dataset card</h2>") == 1 and "different test splits" not in page
    other = write_fake_run(tmp_path, "b1", method="full", seed=1, data_seed=7, n_test=50)
    page = report.build_report([*same, other])
    assert page.count("<h2>Dataset card</h2>") == 2
    assert "tested on 2 different test splits" in page
    assert "Test split of: head · s1, head · s2" in page and "Test split of: full · s1" in page
    assert "beats" not in page and "No set-up is clearly better" not in page and "cannot be weighed" in page
