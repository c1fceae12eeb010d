"""Predict: pick a finished run, type a text or upload an image, see the class probabilities."""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from core.data import decode_upload as read_image
from core.errors import RunError, TunescopeError
from core.markup import escape_markdown as md
from core.runs import Run
from dashboard.charts import probability_bars
from dashboard.ui import PAGES, find_run, fmt_metric, guard, pick_finished_run, runs_dir

_RESULT = "_predict_result"


def offer_explanation(run_id: str, input_kind: str, payload: str, probabilities: dict[str, float],
                      image: tuple[str, bytes] | None = None) -> None:
    """Hand the prediction to the Explain page through session state: the text, or the uploaded
    image's name and bytes (`payload` is then its fingerprint)."""
    st.session_state["explain_request"] = {"run_id": run_id, "kind": input_kind, "input": payload,
                                           "probabilities": probabilities, "image": image}
    st.page_link(PAGES["explain"], label="Explain this prediction", query_params={"run": run_id})


def _predict(run: Run, task: str, value: Any) -> dict[str, Any]:
    from core import api  # imports torch: only when the user asks for a prediction

    with st.spinner("Loading the model (first time only) and predicting..."):
        try:
            return api.predict(run.path, [value], runs_dir=runs_dir(), kind=task)[0]
        except TunescopeError:
            raise
        except Exception as exc:  # noqa: BLE001 - damaged files surface as library errors
            raise RunError(f"The saved model of run {run.id} could not be loaded ({type(exc).__name__}); its "
                           "folder may be damaged. Pick another run or train this one again.") from exc


def _show(result: dict[str, Any]) -> None:
    a, b = st.columns(2)
    a.metric("Predicted class", md(result["label"]))  # a metric's value renders as markdown too
    b.metric("Confidence", f"{result['confidence']:.1%}")
    st.plotly_chart(probability_bars(result["probabilities"]), width="stretch", key="predict_probs")


st.title("Predict")

with guard("predicting"):
    run_id, by_id = pick_finished_run("predict_run")
    run = find_run(run_id)
    summary = run.summary() if run else {}
    task = summary.get("task") or by_id[run_id]["task"] or "text"
    labels = summary.get("labels") or []
    st.caption(f"{md(task)} model · {len(labels)} classes ({md(', '.join(map(str, labels[:10])))}"
               f"{', …' if len(labels) > 10 else ''}) · test accuracy {fmt_metric(by_id[run_id]['accuracy'])}")

    upload = None
    if task == "text":
        text = st.text_area("Text to classify", key="predict_text", height=120,
                            placeholder="Type or paste a sentence, e.g. a movie review")
        value, kind, fingerprint = text, "text", hashlib.sha256(text.encode()).hexdigest()
    else:
        up = st.file_uploader("Image to classify", type=["png", "jpg", "jpeg", "webp", "bmp"], key="predict_image")
        value, fingerprint = None, ""
        if up is not None:
            data = up.getvalue()
            upload = (up.name, data)
            fingerprint = hashlib.sha256(data).hexdigest()
            value = read_image(data, up.name)
            st.image(value, caption=md(up.name), width=224)
        kind = "image"

    current = (run_id, fingerprint)
    if st.session_state.get(_RESULT, {}).get("key") != current:
        st.session_state.pop(_RESULT, None)  # a different run or input: the old answer no longer applies

    if st.button("Predict", type="primary", key="predict_go"):
        if kind == "text" and not (value or "").strip():
            st.warning("Type some text first.")
        elif kind == "image" and value is None:
            st.warning("Upload an image first.")
        elif run is None:
            st.error(f"Run {md(repr(run_id))} disappeared from the runs folder; reload the page.")
        else:
            result = _predict(run, task, value)
            st.session_state[_RESULT] = {"key": current, "result": result}

    saved = st.session_state.get(_RESULT)
    if saved:
        _show(saved["result"])
        offer_explanation(run_id, kind, value if kind == "text" else fingerprint, saved["result"]["probabilities"],
                          image=upload if kind == "image" else None)
