"""Predict page: a real (tiny) trained run predicts from the browser form; every error path is a
message, never a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from apptest_support import open_app_page, plain
from streamlit.testing.v1 import AppTest


def _page(run: str | None = None) -> AppTest:
    return open_app_page("predict", check=False, **({"run": run} if run is not None else {}))


def test_no_runs_is_a_friendly_message(home: Path) -> None:
    at = _page()
    assert not at.exception
    assert "No finished run with a saved model yet" in at.info[0].value


def test_text_prediction_shows_probabilities(text_run: Path) -> None:
    at = _page()
    assert at.selectbox(key="predict_run").value == text_run.name
    at.text_area(key="predict_text").input("a brilliant and charming film").run()
    at.button(key="predict_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {"negative", "positive"}
    assert at.metric[0].label == "Predicted class" and at.metric[0].value in labels
    spec = at.get("plotly_chart")[0].proto.spec
    assert "Class probabilities" in spec and "positive" in spec
    assert at.session_state["explain_request"]["run_id"] == text_run.name
    at.text_area(key="predict_text").input("another text").run()  # a new input clears the old answer
    assert not at.get("plotly_chart")


def test_empty_text_warns_without_predicting(text_run: Path) -> None:
    at = _page()
    at.button(key="predict_go").click().run()
    assert "Type some text first." in at.warning[0].value
    assert not at.get("plotly_chart")


def test_query_param_preselects_and_bad_ids_are_refused(text_run: Path) -> None:
    assert _page(text_run.name).selectbox(key="predict_run").value == text_run.name
    for bad in ("../../etc", "no-such-run"):
        at = _page(bad)
        assert not at.exception
        assert bad in plain(at.error[0].value)


def test_damaged_model_is_an_error_not_a_traceback(text_run: Path) -> None:
    (text_run / "model" / "model.safetensors").write_bytes(b"not a safetensors file")
    at = _page()
    at.text_area(key="predict_text").input("good film").run()
    at.button(key="predict_go").click().run()
    assert not at.exception
    assert "could not be loaded" in at.error[0].value or "model" in at.error[0].value.lower()


def test_read_image_rejects_non_images() -> None:
    from PIL import Image

    from core.data import decode_upload as read_image
    from core.errors import DataError

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    assert read_image(buf.getvalue(), "ok.png").mode == "RGB"
    with pytest.raises(DataError, match="not a readable image"):
        read_image(b"hello", "notes.png")
