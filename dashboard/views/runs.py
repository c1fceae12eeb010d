"""Runs: the table of runs with filters, and one run's results at `?run=<run id>` (so a reload or a
shared link shows the same run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import RunError
from core.markup import escape_markdown as md
from core.runs import Run
from dashboard import train_form as tf
from dashboard.charts import per_class_bars, training_curves
from dashboard.error_view import error_analysis
from dashboard.ui import (
    PAGES,
    actor,
    client_address,
    find_run,
    fmt_count,
    fmt_metric,
    fmt_seconds,
    guard,
    login_mode,
    report_download,
    runs_dir,
    visible_runs,
)

_FILTERS = (("dataset", "Dataset"), ("model", "Model"), ("method", "Method"), ("state", "State"))


def _open_run(run_id: str | None) -> None:
    if run_id:
        st.query_params["run"] = run_id
    else:
        st.query_params.pop("run", None)


def _on_pick() -> None:
    _open_run(st.session_state.get("runs_open"))
    st.session_state["runs_open"] = None


def run_table() -> None:
    rows = visible_runs()
    if not rows:
        st.info("No runs yet. Start one on the Train page; it appears here when it finishes.")
        st.page_link(PAGES["train"], label="Go to Train")
        return
    frame = pd.DataFrame(rows)
    cols = st.columns(len(_FILTERS))
    for col, (name, label) in zip(cols, _FILTERS, strict=True):
        values = sorted({str(v) for v in frame[name].dropna()})
        picked = col.multiselect(label, values, key=f"runs_filter_{name}", placeholder="all")
        if picked:
            frame = frame[frame[name].astype(str).isin(picked)]
    st.caption(f"{len(frame)} of {len(rows)} runs")
    damaged = [r for r in rows if r.get("reason")]
    if damaged:
        st.warning("Damaged runs (the others are fine): " + " · ".join(f"{md(r['run_id'])}: {md(r['reason'])}"
                                                                       for r in damaged))
    frame = frame.assign(open=[f"./runs?run={r}" for r in frame["run_id"]])
    st.dataframe(
        frame[["open", "run_id", "state", "task", "dataset", "model", "method", "seed", "accuracy", "macro_f1",
               "train_seconds"]],
        hide_index=True, width="stretch", key="runs_table",
        column_config={
            "open": st.column_config.LinkColumn("Open", display_text="open", width="small"),
            "run_id": st.column_config.TextColumn("Run"),
            "accuracy": st.column_config.NumberColumn("Test accuracy", format="%.3f"),
            "macro_f1": st.column_config.NumberColumn("Macro-F1", format="%.3f"),
            "train_seconds": st.column_config.NumberColumn("Train time (s)", format="%.0f"),
        })
    st.selectbox("Open a run", list(frame["run_id"]), index=None, placeholder="choose a run…", key="runs_open",
                 on_change=_on_pick)


def _back_button() -> None:
    st.button("← All runs", key="runs_back", on_click=_open_run, args=(None,))


def _read(label: str, read: Any, default: Any) -> Any:
    try:
        return read()
    except RunError as exc:
        st.warning(f"{label}: {md(exc)}")
        return default


def share_toggle(run_id: str) -> None:
    """Owner and class: who sees this run, and (for its owner or an instructor) a switch to share it."""
    from core import workspace as ws
    from core.errors import TunescopeError

    if login_mode() != "login":
        return
    me = actor()
    access = ws.run_access(me, run_id, runs_dir())
    if not ws.can_change_run(me, run_id, runs_dir()):
        st.caption(f"Owner: {md(access.owner)} · shared with the class")
        return
    on = st.toggle("Shared with the class", value=access.shared, key=f"runs_share_{run_id}",
                   help="Shared runs are visible to every student and viewer (Runs, Compare, Predict, Explain, "
                        "reports). Switch off to make it private again.")
    if on != access.shared:
        try:
            ws.share_run(me, run_id, on, runs_dir=runs_dir(), client=client_address())
        except TunescopeError as exc:
            st.error(md(exc))
        else:
            st.rerun()
    st.caption(f"Owner: {md(access.owner)}")


def run_detail(run_id: str) -> None:
    _back_button()
    run = find_run(run_id)
    if run is None:
        st.error(f"No run {md(repr(run_id))} among the saved runs. It may have been deleted, or the link is wrong; "
                 "pick a run from the list.")
        return
    status = _read("Status", run.status, {})
    config = _read("Configuration", run.config, {})
    summary = _read("Summary", run.summary, {})
    state = status.get("state", "unknown")
    model = summary.get("model") or config.get("model_name") or (config.get("model") or {}).get("name") or "?"
    method = summary.get("method") or (config.get("train") or {}).get("method") or "?"
    dataset = (summary.get("dataset") or {}).get("name") or config.get("dataset_name") \
        or tf.source_label((config.get("data") or {}).get("source"))
    st.header(md(run.id))
    st.caption(f"**{md(state)}** · dataset {md(dataset)} · model {md(model)} · method {md(method)}"
               + (f" · seed {summary.get('seed', (config.get('train') or {}).get('seed'))}"))
    share_toggle(run.id)
    message = status.get("message") or ""
    if state == "failed":
        st.error(f"This run failed. {md(message)}".strip())
    elif state == "cancelled":
        st.warning(f"This run was cancelled. {md(message)}".strip())
    elif state in ("running", "queued", "interrupted"):
        st.info(f"This run is {md(state)}; live progress is on the Train page. {md(message)}".strip())
        st.page_link(PAGES["train"], label="Go to Train")
    elif state != "succeeded":
        st.warning(f"This run's state is {md(state)}. {md(message)}".strip())

    test = summary.get("test") or {}
    if test:
        cols = st.columns(5)
        cols[0].metric("Test accuracy", fmt_metric(test.get("accuracy")))
        cols[1].metric("Macro-F1", fmt_metric(test.get("macro_f1")))
        cols[2].metric("ECE", fmt_metric(test.get("ece")), help="Expected calibration error: how far the "
                       "confidence is from the accuracy (0 = perfectly calibrated).")
        cols[3].metric("Train time", fmt_seconds(summary.get("train_seconds")),
                       help=f"{summary.get('train_samples_per_second') or 0:.0f} samples/s on "
                            f"{md(summary.get('device', '?'))}")
        total = summary.get("total_params")
        cols[4].metric("Trainable params", fmt_count(summary.get("trainable_params")),
                       help=f"of {fmt_count(total)} in total" if total else None)

    rows = _read("Metrics", lambda: run.metrics(0)[0], [])
    if rows:
        st.plotly_chart(training_curves(rows), width="stretch", key="runs_curves")
    else:
        st.caption("No training metrics logged yet.")

    labels = summary.get("labels") or list(test.get("per_class") or {})
    if test.get("per_class"):
        st.subheader("Classification report")
        report = pd.DataFrame.from_dict(test["per_class"], orient="index")
        report.index = [md(x) for x in report.index]  # st.table renders its cells as markdown
        report.index.name = "class"
        if len(report) <= 30:  # a static table reads (and prints, and screenshots) better than a grid
            st.table(report.style.format({k: "{:.3f}" for k in ("precision", "recall", "f1")}))
        else:
            st.dataframe(report, width="stretch",
                         column_config={k: st.column_config.NumberColumn(format="%.3f")
                                        for k in ("precision", "recall", "f1")})
    if test.get("per_class"):
        st.plotly_chart(per_class_bars(test["per_class"]), width="stretch", key="runs_per_class")
    if test.get("confusion_matrix") and labels and state == "succeeded":
        error_analysis(run, summary)

    with st.expander("Configuration"):
        st.json(config, expanded=False)
    downloads(run, state)


def hf_export_zip(run: Run) -> bytes:
    from core.model_export import export_zip  # imports torch: only when the button is clicked

    return export_zip(run)


def downloads(run: Run, state: str) -> None:
    pred_path = run.path / "predictions.parquet"
    model_dir = run.model_dir
    if not pred_path.is_file() and not model_dir.is_dir():
        return
    st.subheader("Downloads and next steps")
    cols = st.columns(3)
    if pred_path.is_file():
        try:
            data = tf.safe_csv(run.predictions())
        except Exception:  # noqa: BLE001 - a damaged file must not take the page down
            cols[0].caption("The predictions file is unreadable.")
        else:
            cols[0].download_button("Predictions (CSV)", data, file_name=f"{run.id}-predictions.csv",
                                    mime="text/csv", key="runs_dl_predictions", on_click="ignore")
    if model_dir.is_dir():
        folder = Path(model_dir)
        cols[1].download_button("Model folder (ZIP)", lambda: tf.zip_folder(folder, arcroot=run.id),
                                file_name=f"{run.id}-model.zip", mime="application/zip", key="runs_dl_model",
                                on_click="ignore", help="Built when you click; a few seconds for a large model.")
        if state == "succeeded":
            cols[1].download_button("Hugging Face export (ZIP)", lambda: hf_export_zip(run),
                                    file_name=f"{run.id}-hf.zip", mime="application/zip", key="runs_dl_hf",
                                    on_click="ignore", help="Loads with transformers alone and predicts the same "
                                                            "(see its README); same as `tunescope export`.")
    if state == "succeeded" and pred_path.is_file():
        cols[0].download_button("Report (HTML)", report_download([run.path]), file_name=f"{run.id}-report.html",
                                mime="text/html", key="runs_dl_report", on_click="ignore",
                                help="One self-contained page for people who will not open tunescope.")
    if model_dir.is_dir() and state == "succeeded":
        cols[2].page_link(PAGES["predict"], label="Predict with this run", query_params={"run": run.id})
        cols[2].page_link(PAGES["explain"], label="Explain its misclassified examples",
                          query_params={"run": run.id, "wrong": "1"})


st.title("Runs")
with guard("showing the runs"):
    wanted = st.query_params.get("run")
    if wanted:
        run_detail(str(wanted))
    else:
        run_table()
