"""Explain page: a real tiny run explained from typed text, from Predict, from a misclassified test
example and from an uploaded image; sanity check, agreement, attention, run comparison and the
dataset-view job. Markup in the input stays text."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from apptest_support import open_app_page
from streamlit.testing.v1 import AppTest


def _page(**query: str) -> AppTest:
    return open_app_page("explain", check=False, **query)


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _html(at: AppTest) -> str:
    # The main area only: the sidebar carries the browser-identity cookie script.
    return "".join(h.proto.body for h in at.main.get("html"))


def test_no_runs_is_a_friendly_message(home: Path) -> None:
    at = _page()
    assert not at.exception
    assert "No finished run with a saved model yet" in at.info[0].value


def test_typed_text_is_explained_with_faithfulness_and_sanity_check(text_run: Path, monkeypatch) -> None:
    # Inline, however slow this machine is: on a busy 2-core box IG took 2.8 s, and 8 stages of
    # that counts as long enough for the worker, which this test does not run.
    monkeypatch.setenv("TUNESCOPE_EXPLAIN_INLINE_S", "1000")
    at = _page()
    _ok(at)
    at.text_area(key="ex_text").input("a <script>alert(1)</script> great and lovely film").run()
    assert any("Estimated cost: Integrated Gradients, 50 steps: ~" in c.value for c in at.caption)
    at.button(key="ex_go").click().run()
    _ok(at)
    html = _html(at)
    assert "ts-w" in html and "<script" not in html and "&lt;" in html
    assert any("faithfulness:" in m.value for m in at.markdown)
    # Plain words for IG's completeness check, with the jargon explained in the tooltip.
    (line,) = [m for m in at.markdown if "scores add up to the score change within" in m.value]
    assert "complete" in line.help and "completeness delta" not in line.value
    at.button(key="ex_rec_0_sanity").click().run()
    _ok(at)
    assert at.success and "Sanity check passed" in at.success[0].value
    assert (text_run / "explanations").is_dir()


def test_two_methods_show_the_agreement_matrix(text_run: Path) -> None:
    at = _page()
    at.text_area(key="ex_text").input("great and lovely").run()
    at.multiselect(key="ex_methods_text").set_value(["saliency", "occlusion"]).run()
    at.button(key="ex_go").click().run()
    _ok(at)
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Method agreement" in s for s in specs)
    assert sum("Word scores" in s for s in specs) == 2


def test_the_prediction_from_predict_is_offered(text_run: Path) -> None:
    at = _page()
    at.session_state["explain_request"] = {"run_id": text_run.name, "kind": "text", "input": "a dull film",
                                           "probabilities": {}, "image": None}
    at.run()
    assert at.radio(key=f"ex_source_{text_run.name}").value == "From Predict"
    at.button(key="ex_go").click().run()
    _ok(at)
    assert "dull" in _html(at)


def _one_wrong(run: Path) -> list[int]:
    """Mark some test predictions wrong (the tiny run may get all right); the wrong rows' indices."""
    import pandas as pd

    preds = pd.read_parquet(run / "predictions.parquet")
    preds["correct"] = True
    preds.loc[preds.index[[0, 2]], "correct"] = False
    preds.to_parquet(run / "predictions.parquet")
    return [int(i) for i in preds.index[[0, 2]]]


def test_a_misclassified_test_example_can_be_explained(text_run: Path) -> None:
    wrong = _one_wrong(text_run)
    # The link the Runs page builds from a confusion-matrix cell opens the test set, wrong ones only.
    at = _page(run=text_run.name, wrong="1")
    _ok(at)
    assert at.radio(key=f"ex_source_{text_run.name}").value == "From the test set"
    assert at.toggle(key="ex_wrong").value
    options = at.selectbox(key=f"ex_example_{text_run.name}_True").options
    assert sorted(int(o.split(" ")[0][1:]) for o in options) == sorted(wrong)
    assert not at.button(key="ex_go").disabled
    at.button(key="ex_go").click().run()
    _ok(at)
    assert "ts-w" in _html(at)


def test_attention_tab_shows_head_view_rollout_and_grid(text_run: Path) -> None:
    at = _page()
    at.text_area(key="ex_text").input("great and lovely").run()
    at.button(key="ex_attention_go").click().run()
    _ok(at)
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "who attends to whom" in specs and "Attention rollout" in specs and "layers × heads" in specs


def _compare_with_a_copy(text_run: Path) -> AppTest:
    """The Compare tab on a typed input, against a copy of the run, after pressing its button."""
    shutil.copytree(text_run, text_run.parent / "tiny-text-copy")
    at = _page(run=text_run.name)
    at.text_area(key="ex_text").input("great and lovely").run()
    at.selectbox(key="ex_other").set_value("tiny-text-copy").run()
    at.button(key="ex_cmp_go").click().run()
    _ok(at)
    return at


def test_two_runs_are_compared_on_the_same_input(text_run: Path) -> None:
    at = _compare_with_a_copy(text_run)
    assert any("Rank correlation of the two explanations: **+1.00**" in m.value for m in at.markdown)


def test_a_long_two_run_comparison_goes_to_the_worker(text_run: Path, monkeypatch) -> None:
    # Review finding: "Explain under both runs" always ran inline, whatever its cost.
    from core import jobs

    monkeypatch.setenv("TUNESCOPE_EXPLAIN_INLINE_S", "0")
    at = _compare_with_a_copy(text_run)
    (job,) = jobs.list_jobs(state="queued")
    assert job.config["op"] == "compare" and job.config["other"].endswith("tiny-text-copy")
    assert not any("Rank correlation" in m.value for m in at.markdown)
    assert _run_queued_jobs()[0]["op"] == "compare"
    at.run()
    _ok(at)
    assert any("Rank correlation of the two explanations: **+1.00**" in m.value for m in at.markdown)


def test_dataset_view_job_is_queued_and_its_result_shown(text_run: Path) -> None:
    from core import jobs
    from core.explain.jobs import run_explain_job

    at = _page()
    at.number_input(key="ex_dataset_n").set_value(10).run()
    at.button(key="ex_dataset_go").click().run()
    _ok(at)
    (job,) = jobs.list_jobs()
    assert job.kind == "explain" and job.config["op"] == "dataset" and job.config["n"] == 10

    class Ctx:
        def __init__(self, job):
            self.job = job

        def should_stop(self):
            return False

        def update(self, **kw):
            pass

    run_explain_job(Ctx(job))  # what the worker would do
    at = _page()
    _ok(at)
    assert any("over 10 test examples" in c.value for c in at.caption)
    assert at.dataframe


def test_an_uploaded_image_is_explained_with_an_overlay(home: Path, trained_image_runs: dict, shapes_zip: Path
                                                        ) -> None:
    dest = home / "runs" / trained_image_runs["resnet"].name
    shutil.copytree(trained_image_runs["resnet"], dest, ignore=shutil.ignore_patterns("explanations"))
    png = zipfile.ZipFile(shapes_zip).read("square/1.png")
    at = _page()
    _ok(at)
    assert at.multiselect(key="ex_methods_image").value == ["gradcam"]
    # AppTest cannot upload files; the Predict hand-over carries the uploaded bytes the same way.
    at.session_state["explain_request"] = {"run_id": dest.name, "kind": "image", "input": "x",
                                           "probabilities": {}, "image": ("square.png", png)}
    at.run()
    at.button(key="ex_go").click().run()
    _ok(at)
    assert any("Attribution (orange: how much each part mattered, not which way)" in c.proto.spec
               for c in at.get("plotly_chart"))  # GradCAM: unsigned
    assert any("This is a convolutional model" in i.value for i in at.info)


def _run_queued_jobs() -> list:
    from core import jobs
    from core.explain.jobs import run_explain_job

    done = []
    for job in jobs.list_jobs(state="queued"):
        ctx = type("Ctx", (), {"job": job, "should_stop": lambda self: False, "update": lambda self, **kw: None})()
        done.append(run_explain_job(ctx))
        jobs.open_store().update(job.id, state="succeeded", finished=1.0)
    return done


def test_long_work_runs_as_a_background_job_and_shows_when_done(text_run: Path, monkeypatch) -> None:
    monkeypatch.setenv("TUNESCOPE_EXPLAIN_INLINE_S", "0")  # everything counts as long
    at = _page()
    at.text_area(key="ex_text").input("the film was great and lovely with a charming story").run()
    at.button(key="ex_go").click().run()
    _ok(at)
    assert any("Background job" in c.value and "queued" in c.value for c in at.caption)
    assert not _html(at)
    assert _run_queued_jobs()[0]["methods"] == ["ig"]
    at.run()
    _ok(at)
    assert "ts-w" in _html(at)  # the job's cached result, shown without another click
    at.button(key="ex_rec_0_sanity").click().run()
    _ok(at)
    assert any("Background job" in c.value for c in at.caption) and not at.success
    assert "passed" in _run_queued_jobs()[0]
    at.run()
    _ok(at)
    assert at.success and "Sanity check passed" in at.success[0].value


def test_a_link_to_one_test_example_opens_it(text_run: Path) -> None:
    import pandas as pd

    preds = pd.read_parquet(text_run / "predictions.parquet")
    idx = int(preds.index[3])
    at = _page(run=text_run.name, example=str(idx))
    _ok(at)
    assert at.radio(key=f"ex_source_{text_run.name}").value == "From the test set"
    assert at.selectbox(key=f"ex_example_{text_run.name}_False").value == idx


def test_an_image_test_example_is_shown_and_explained(home: Path, trained_image_runs: dict) -> None:
    dest = home / "runs" / trained_image_runs["vit"].name
    shutil.copytree(trained_image_runs["vit"], dest, ignore=shutil.ignore_patterns("explanations"))
    at = _page(run=dest.name)
    at.radio(key=f"ex_source_{dest.name}").set_value("From the test set").run()
    _ok(at)
    assert at.get("image")  # the test image itself, before any explanation
    assert at.multiselect(key="ex_methods_image").value == ["saliency"]  # a ViT: no GradCAM by default
    at.button(key="ex_go").click().run()
    _ok(at)
    assert any("Attribution (orange: how much each part mattered, not which way)" in c.proto.spec
               for c in at.get("plotly_chart"))  # GradCAM: unsigned


def test_a_sanity_result_is_not_shown_for_a_new_input(text_run: Path) -> None:
    at = _page()
    # Enough words for a rank correlation to mean something (three words tie at rho = 1 by chance 1 in 6).
    at.text_area(key="ex_text").input("the film was great and lovely with a charming story").run()
    at.button(key="ex_go").click().run()
    at.button(key="ex_rec_0_sanity").click().run()
    assert at.success and "Sanity check passed" in at.success[0].value
    at.text_area(key="ex_text").input("dull and boring").run()
    at.button(key="ex_go").click().run()
    _ok(at)
    assert not at.success and at.button(key="ex_rec_0_sanity")  # the old verdict is gone; the button is back


def test_a_long_explanation_of_an_uploaded_image_goes_to_the_worker(home: Path, trained_image_runs: dict,
                                                                     shapes_zip: Path, monkeypatch) -> None:
    # Trust fixes, item 8: uploaded images always ran inline, holding the UI process for every session.
    from core import jobs
    from core.explain.jobs import inputs_dir

    monkeypatch.setenv("TUNESCOPE_EXPLAIN_INLINE_S", "0")
    dest = home / "runs" / trained_image_runs["resnet"].name
    shutil.copytree(trained_image_runs["resnet"], dest, ignore=shutil.ignore_patterns("explanations"))
    png = zipfile.ZipFile(shapes_zip).read("square/1.png")
    at = _page()
    at.session_state["explain_request"] = {"run_id": dest.name, "kind": "image", "input": "x",
                                           "probabilities": {}, "image": ("square.png", png)}
    at.run()
    at.button(key="ex_go").click().run()
    _ok(at)
    (job,) = jobs.list_jobs(state="queued")
    staged = Path(job.config["value"])
    assert job.kind == "explain" and staged.read_bytes() == png
    assert staged.parent.parent == inputs_dir()  # private to this browser session's folder
    assert job.owner.startswith("ui-")  # the same owner tag as Home and Train
    assert not any("Attribution" in c.proto.spec for c in at.get("plotly_chart"))
    assert _run_queued_jobs()[0]["methods"] == ["gradcam"]
    at.run()
    _ok(at)
    assert any("Attribution (orange: how much each part mattered, not which way)" in c.proto.spec
               for c in at.get("plotly_chart"))  # GradCAM: unsigned


def test_an_explain_job_reads_only_staged_uploads_and_test_examples(home: Path, trained_image_runs: dict,
                                                                    tmp_path: Path) -> None:
    from core.errors import DataError
    from core.explain.jobs import check_value, stage_image
    from core.runs import Run

    run = trained_image_runs["resnet"]
    check_value(run, str(Run(run).predictions()["input"].iloc[0]))
    check_value(run, str(stage_image("abc123", b"\x89PNG fake", "x.png")))
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    for value in (str(outside), "/etc/passwd", str(home / "explain-inputs" / ".." / "secret.png")):
        with pytest.raises(DataError, match="neither an uploaded image"):
            check_value(run, value)


def test_add_to_report_puts_this_explanation_in_the_sessions_draft_and_the_report(
        text_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dashboard.ui as ui
    from core import report_drafts

    at = _page()
    at.text_area(key="ex_text").input("a great and lovely film").run()
    at.multiselect(key="ex_methods_text").set_value(["saliency", "occlusion"]).run()
    at.button(key="ex_go").click().run()
    _ok(at)
    owner = f"ui-{at.session_state['_tunescope_sid']}"
    assert report_drafts.chosen(owner) == []
    at.button(key="ex_rec_1_report").click().run()  # only the second one: occlusion
    _ok(at)
    (item,) = report_drafts.chosen(owner)
    assert item["run"] == text_run.name and item["label"].startswith("Occlusion")
    assert at.button(key="ex_rec_1_unreport") and at.button(key="ex_rec_0_report")  # the first is not in it
    assert any("In your report draft" in c.value for c in at.caption)
    monkeypatch.setattr(ui, "owner", lambda: owner)  # the download builds it for this session's owner
    page = ui.report_html([text_run]).decode()
    assert page.count("<h2>Occlusion") == 1 and "<h2>Saliency" not in page
    at.button(key="ex_rec_1_unreport").click().run()
    assert report_drafts.chosen(owner) == []


def test_the_users_own_input_choice_stands_after_a_wrong_only_link(text_run: Path) -> None:
    _one_wrong(text_run)
    at = _page(run=text_run.name, wrong="1")
    at.radio(key=f"ex_source_{text_run.name}").set_value("Type text").run()
    _ok(at)
    # The URL still says wrong=1, but the link was followed once; the typed-text mode stays.
    assert at.radio(key=f"ex_source_{text_run.name}").value == "Type text"
    assert "ex_wrong" not in [t.key for t in at.get("toggle")]
    at.run()  # a rerun (any widget change) does not follow the link again
    assert at.radio(key=f"ex_source_{text_run.name}").value == "Type text"


def test_the_explain_button_is_always_there_and_says_what_is_missing(text_run: Path) -> None:
    import pandas as pd

    preds = pd.read_parquet(text_run / "predictions.parquet")
    preds["correct"] = True  # no misclassified example to choose, below
    preds.to_parquet(text_run / "predictions.parquet")
    at = _page()
    _ok(at)
    go = at.button(key="ex_go")
    assert go.disabled and "Type or paste some text" in go.help
    assert any(c.value == "Type or paste some text above to enable Explain." for c in at.caption)
    assert not any("Estimated cost" in c.value for c in at.caption)
    at.text_area(key="ex_text").input("a great film").run()
    assert not at.button(key="ex_go").disabled
    assert any("Estimated cost" in c.value for c in at.caption)
    at.multiselect(key="ex_methods_text").set_value([]).run()
    go = at.button(key="ex_go")
    assert go.disabled and "at least one method" in go.help
    at.multiselect(key="ex_methods_text").set_value(["saliency"]).run()
    at.radio(key=f"ex_source_{text_run.name}").set_value("From the test set").run()
    assert not at.button(key="ex_go").disabled  # the first test example is chosen for the user
    at.toggle(key="ex_wrong").set_value(True).run()  # only the wrong ones, of which there are none
    _ok(at)
    assert any("No misclassified" in i.value for i in at.info)
    go = at.button(key="ex_go")
    assert go.disabled and "Choose a test example" in go.help


def test_the_explain_button_waits_for_an_image_upload(home: Path, trained_image_runs: dict) -> None:
    dest = home / "runs" / trained_image_runs["vit"].name
    shutil.copytree(trained_image_runs["vit"], dest, ignore=shutil.ignore_patterns("explanations"))
    at = _page(run=dest.name)
    _ok(at)
    assert at.radio(key=f"ex_source_{dest.name}").value == "Upload an image"
    go = at.button(key="ex_go")
    assert go.disabled and go.help == "Upload an image above to enable Explain."


def test_the_estimate_counts_the_model_load_until_the_model_is_in_memory(text_run: Path) -> None:
    from core.explain import timing

    timing.record_load_time(text_run, "cpu", 3.0)  # as a first explanation in another process measured it
    at = _page()
    at.text_area(key="ex_text").input("great and lovely").run()
    _ok(at)
    (cost,) = [c.value for c in at.caption if c.value.startswith("Estimated cost")]
    assert "in all, including ~3.0 s to load the model" in cost
    at.button(key="ex_go").click().run()
    _ok(at)
    assert 0 < timing.load_seconds(text_run, "cpu") < 3.0  # the load this explanation made, measured
    at.run()  # the caption of the click's own run was drawn before the model was loaded
    (cost,) = [c.value for c in at.caption if c.value.startswith("Estimated cost")]
    assert "to load the model" not in cost  # the page's process holds it now
