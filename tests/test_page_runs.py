"""The Runs page (AppTest) and its download helpers."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from apptest_support import open_app_page, plain
from run_factory import write_fake_run
from streamlit.testing.v1 import AppTest

from dashboard import train_form as tf


def open_runs(run: str | None = None) -> AppTest:
    return open_app_page("runs", **({"run": run} if run is not None else {}))


def test_table_lists_runs_and_filters(fake_runs: Path) -> None:
    at = open_runs()
    table = at.dataframe[0].value
    assert sorted(table["run_id"]) == ["reviews-full-s1", "reviews-full-s2", "reviews-head-s1", "reviews-head-s2"]
    acc = json.loads((fake_runs / "reviews-full-s1" / "summary.json").read_text())["test"]["accuracy"]
    assert table.set_index("run_id").loc["reviews-full-s1", "accuracy"] == pytest.approx(acc)
    assert table.set_index("run_id").loc["reviews-full-s1", "open"] == "./runs?run=reviews-full-s1"
    at.multiselect(key="runs_filter_method").set_value(["head"]).run()
    assert sorted(at.dataframe[0].value["run_id"]) == ["reviews-head-s1", "reviews-head-s2"]
    assert any(c.value == "2 of 4 runs" for c in at.caption)


def test_empty_runs_dir_says_what_to_do(home: Path) -> None:
    at = open_runs()
    assert any("No runs yet" in i.value for i in at.info)


def test_open_a_run_from_the_list_sets_the_url(fake_runs: Path) -> None:
    at = open_runs()
    at.selectbox(key="runs_open").set_value("reviews-head-s2").run()
    assert not at.exception
    assert at.query_params.get("run") == "reviews-head-s2"
    assert plain(at.header[0].value) == "reviews-head-s2"
    at.button(key="runs_back").click().run()
    assert "run" not in at.query_params and at.dataframe


def test_run_detail(fake_runs: Path) -> None:
    at = open_runs("reviews-full-s1")
    summary = json.loads((fake_runs / "reviews-full-s1" / "summary.json").read_text())
    assert plain(at.header[0].value) == "reviews-full-s1"
    assert any("**succeeded**" in c.value and "method full" in c.value for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{summary['test']['accuracy']:.3f}"
    assert metrics["Macro-F1"] == f"{summary['test']['macro_f1']:.3f}"
    assert metrics["Trainable params"] == "10.0M" and metrics["Train time"] == "12 s"
    assert "Confusion matrix" in [s.value for s in at.subheader]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    heatmaps = [s for s in specs if s["data"] and s["data"][0]["type"] == "heatmap"]
    assert len(heatmaps) == 1
    assert heatmaps[0]["data"][0]["x"] == ["neg", "pos"]
    cm = summary["test"]["confusion_matrix"]
    assert heatmaps[0]["data"][0]["text"][0][0].startswith(str(cm[0][0]))
    assert any(s["data"][0]["name"] == "train loss" for s in specs)  # training curves
    report = [d.value for d in at.table if "precision" in d.value.columns]
    assert report and list(report[0].index) == ["neg", "pos"]
    assert [b.proto.label for b in at.get("download_button")] == ["Predictions (CSV)", "Report (HTML)"]  # no model
    assert at.json


def test_model_zip_and_predict_link_when_the_model_exists(fake_runs: Path) -> None:
    model = fake_runs / "reviews-head-s1" / "model"
    model.mkdir()
    (model / "tunescope_model.json").write_text("{}")
    at = open_runs("reviews-head-s1")
    assert [b.proto.label for b in at.get("download_button")] == ["Predictions (CSV)", "Report (HTML)",
                                                                  "Model folder (ZIP)", "Hugging Face export (ZIP)"]
    links = [p for p in at.get("page_link") if p.proto.label == "Predict with this run"]
    assert len(links) == 1 and links[0].proto.query_string == "run=reviews-head-s1"
    explain = [p for p in at.get("page_link") if p.proto.label == "Explain its misclassified examples"]
    assert len(explain) == 1 and explain[0].proto.query_string == "run=reviews-head-s1&wrong=1"


@pytest.mark.parametrize("bad", ["no-such-run", "../etc", "/etc", "dashboard"])
def test_unknown_run_is_an_error_naming_it(fake_runs: Path, bad: str) -> None:
    at = open_runs(bad)
    errors = [plain(e.value) for e in at.error]
    assert len(errors) == 1 and repr(bad) in errors[0]
    assert at.button(key="runs_back").label == "← All runs"


@pytest.mark.parametrize("state", ["failed", "cancelled", "running"])
def test_unfinished_runs_render_their_state(home: Path, state: str) -> None:
    path = write_fake_run(home / "runs", f"broken-{state}", state=state)
    status = json.loads((path / "status.json").read_text())
    status["message"] = "Out of patience."
    (path / "status.json").write_text(json.dumps(status))
    at = open_runs(f"broken-{state}")
    assert any(f"**{state}**" in c.value for c in at.caption)
    shown = [plain(m.value) for m in [*at.error, *at.warning, *at.info]]
    assert any("Out of patience." in s for s in shown), shown
    assert "Confusion matrix" not in [s.value for s in at.subheader]
    assert len(at.get("plotly_chart")) == 1  # the curves logged so far
    assert not at.metric and not at.get("download_button")


def test_run_with_damaged_files_does_not_crash(home: Path) -> None:
    path = write_fake_run(home / "runs", "damaged")
    (path / "summary.json").write_text("{not json")
    (path / "metrics.jsonl").unlink()
    at = open_runs("damaged")
    assert any("Summary" in w.value for w in at.warning)
    assert any("No training metrics" in c.value for c in at.caption)


def test_safe_csv_neutralises_formulas() -> None:
    frame = pd.DataFrame({"input": ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "fine -1"],
                          "label": ["a", "b", "a", "b", "a", "b"], "confidence": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5],
                          "=evil": [1, 2, 3, 4, 5, 6]})
    back = pd.read_csv(io.BytesIO(tf.safe_csv(frame)), keep_default_na=False)
    assert list(back["input"]) == ["'=HYPERLINK(\"http://x\")", "'+1+1", "'-2+3", "'@SUM(A1)", "'\tTAB", "fine -1"]
    assert list(back["confidence"]) == [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5]  # numbers stay numbers
    assert "'=evil" in back.columns
    assert tf.neutralise_cell(3) == 3 and tf.neutralise_cell("ok") == "ok"


def test_safe_csv_of_fake_run_predictions(fake_runs: Path) -> None:
    from core.runs import Run

    frame = Run(fake_runs / "reviews-full-s1").predictions()
    frame.loc[0, "input"] = "=1+2"
    text = tf.safe_csv(frame).decode()
    assert "\n'=1+2," in text and len(text.splitlines()) == len(frame) + 1


def test_zip_folder_skips_links(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 100)
    (folder / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not ship")
    os.symlink(secret, folder / "leak.txt")
    os.symlink(tmp_path, folder / "up")
    with zipfile.ZipFile(io.BytesIO(tf.zip_folder(folder, arcroot="run1"))) as zf:
        assert sorted(zf.namelist()) == ["run1/model.safetensors", "run1/tokenizer/vocab.txt"]
        assert zf.read("run1/tokenizer/vocab.txt") == b"a\nb\n"


def test_confusion_cell_lists_its_examples_with_explain_links(fake_runs: Path) -> None:
    import pandas as pd

    at = open_runs("reviews-full-s1")
    assert not at.exception, [e.value for e in at.exception]
    preds = pd.read_parquet(fake_runs / "reviews-full-s1" / "predictions.parquet")
    # Defaults to the most common confusion; choose "true neg, predicted pos" explicitly.
    at.selectbox(key="runs_cell_true").set_value("neg").run()
    at.selectbox(key="runs_cell_pred").set_value("pos").run()
    assert not at.exception
    wrong = preds[(preds["label"] == "neg") & (preds["pred"] == "pos")]
    assert any(f"**{len(wrong)} test example" in m.value and "(wrong)" in m.value for m in at.markdown)
    table = next(d.value for d in at.dataframe if "example" in d.value.columns)
    assert sorted(table["example"].tolist()) == sorted(wrong.index.tolist())
    links = [p for p in at.get("page_link") if p.proto.label.startswith("Explain #")]
    assert links and "wrong=1" in links[0].proto.query_string and "example=" in links[0].proto.query_string
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "Reliability (ECE" in specs and "Confidence of right and wrong" in specs and "Error rate by class" in specs
    at.radio(key="runs_breakdown").set_value("length").run()
    assert not at.exception and "Error rate by length" in " ".join(c.proto.spec for c in at.get("plotly_chart"))
