"""User text is data, never markup, wherever Streamlit renders markdown (trust fixes, item 7).

A model name like `[Session expired: log in again](https:evil.example)`, queued once, used to be
rendered as a link in every session's job list; the same went for dataset names, labels, run ids
from a link and error messages quoting any of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from apptest_support import open_app_page
from run_factory import write_fake_run

from core import inference
from core.config import ModelConfig
from core.errors import ConfigError
from core.markup import escape_markdown

LINK = "[Session expired: log in again](https:evil.example)"
PAYLOADS = [LINK, "**bold** _it_ `code`", "# heading", ":red[alarm] :material/home:", "$x^2$", "<b>html</b>",
            "www.evil.example", "a\n\n- list", "![img](https://evil.example/x.png)", "| a | b |"]
# Markup that only works when its punctuation is not escaped.
LIVE = re.compile(r"(?<!\\)\]\((https|<)|(?<!\\)\*\*(neg|bold)|(?<![\\\w])www\.|(?<!\\):red\[|(?<!\\)\$x"
                  r"|(?<!\\)!\[img")


@pytest.mark.parametrize("text", PAYLOADS)
def test_escaped_text_has_no_live_markup_and_reads_the_same(text: str) -> None:
    out = escape_markdown(text)
    assert not LIVE.search(out), out
    assert "\n" not in out
    assert re.sub(r"\\(.)", r"\1", out) == re.sub(r"\s+", " ", text)  # what a reader sees is the text itself


def test_a_model_name_that_is_no_model_is_refused() -> None:
    with pytest.raises(ConfigError, match="neither a known model"):
        ModelConfig(name=LINK)
    for ok in ("minilm", "prajjwal1/bert-tiny", "bert-base-uncased", "resnet18", "torchvision:resnet18"):
        assert ModelConfig(name=ok).name == ok
    with pytest.raises(ConfigError, match="not an existing folder"):
        ModelConfig(name="./no-such-folder")


def _rendered(at) -> list[str]:
    """Every markdown body the page produced (messages, captions, headers, markdown, table cells)."""
    out = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "success", "header", "subheader")
           for e in getattr(at, kind)]
    out += [str(m.value) for m in at.metric] + [str(m.label) for m in at.metric]
    for t in at.table:
        frame = t.value
        out += [str(x) for x in frame.index] + [str(x) for col in frame.columns for x in frame[col]]
    return out


def test_the_job_list_shows_a_hostile_model_name_as_text(home: Path) -> None:
    from core import jobs

    # A job queued before names were checked (or by another tool): its config is shown, not obeyed.
    jobs.submit({"data": {"source": "demo:sentiment"}, "model": {"name": LINK}, "train": {"method": "full"}},
                kind="noop", owner="someone-else")
    at = open_app_page("train")
    bodies = _rendered(at)
    assert any("Session expired" in b for b in bodies)
    assert not [b for b in bodies if LIVE.search(b)], [b for b in bodies if LIVE.search(b)]


def test_the_runs_page_shows_hostile_names_labels_and_ids_as_text(home: Path) -> None:
    write_fake_run(home / "runs", "hostile", dataset=LINK, labels=("**neg**", "[pos](https:evil.example)"))
    at = open_app_page("runs", run="hostile")
    bodies = _rendered(at)
    assert any("Session expired" in b for b in bodies) and any("neg" in b for b in bodies)
    assert not [b for b in bodies if LIVE.search(b)], [b for b in bodies if LIVE.search(b)]
    at = open_app_page("runs", run="[x](https:evil.example)")
    assert at.error and not LIVE.search(at.error[0].value)


def test_the_compare_page_escapes_dataset_names_in_verdicts(home: Path) -> None:
    write_fake_run(home / "runs", "a", dataset=LINK, accuracy=0.9, method="full", seed=1)
    write_fake_run(home / "runs", "b", dataset=LINK, accuracy=0.6, method="head", seed=2)
    at = open_app_page("compare", runs="a,b")
    bodies = _rendered(at)
    assert any("beats" in b or "No clear difference" in b for b in bodies)
    assert not [b for b in bodies if LIVE.search(b)], [b for b in bodies if LIVE.search(b)]


def test_plotly_labels_never_carry_live_html() -> None:
    # Plotly draws <a href>, <b>, <br> … in tick labels, legends, titles and hover text.
    import numpy as np

    from dashboard import charts, error_view, explain_charts

    evil = '<a href="https://evil.example">log in</a>'
    labels = [evil, "pos"]
    figs = [
        charts.per_class_bars({evil: {"precision": 1, "recall": 1, "f1": 1}, "pos": {"precision": 0, "recall": 0,
                                                                                       "f1": 0}}),
        charts.confusion_heatmap([[1, 0], [0, 1]], labels), error_view.clickable_confusion([[1, 0], [0, 1]], labels),
        charts.probability_bars({evil: 0.9, "pos": 0.1}),
        charts.curve_overlay({evil: [{"type": "step", "step": 1, "loss": 0.5}]}),
        explain_charts.word_bars([evil, "ok"], [0.5, -0.2], evil),
        explain_charts.head_view(np.eye(2), [evil, "ok"], "t"),
        explain_charts.rollout_bars(["[CLS]", evil], [0.5, 0.5]),
    ]
    for fig in figs:
        spec = fig.to_json()
        assert "<a href" not in spec and "\\u003ca href" not in spec, spec[:300]
        assert "&lt;a href" in spec or "\\u0026lt;a href" in spec


def test_predict_shows_a_hostile_class_name_as_text(home: Path, trained_text_run: Path) -> None:
    import shutil


    dest = home / "runs" / trained_text_run.name
    shutil.copytree(trained_text_run, dest, ignore=shutil.ignore_patterns("explanations"))
    inference._LOADED.clear()
    labels = dest / "model" / "tunescope_model.json"
    import json

    spec = json.loads(labels.read_text())
    assert "labels" in spec
    spec["labels"] = [LINK, "**neg**"]
    labels.write_text(json.dumps(spec))
    from core.runs import write_model_manifest

    write_model_manifest(dest / "model")  # the edit is ours: not a damaged model
    at = open_app_page("predict", run=dest.name)
    at.text_area(key="predict_text").input("a great film").run()
    at.button(key="predict_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    bodies = _rendered(at)
    assert at.metric and not [b for b in bodies if LIVE.search(b)], [b for b in bodies if LIVE.search(b)]
