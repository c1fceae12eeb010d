"""Error analysis on a run's page: pick a confusion-matrix cell (click it, or choose it below) to list
its test examples, each one click from its explanation; calibration; confidence; error rates by
class, text length or image size. Reads the run's predictions file only (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import analysis
from core.markup import escape_markdown as md
from core.markup import escape_plot_text as esc
from core.runs import Run
from dashboard.charts import PALETTE, base_figure, confusion_heatmap
from dashboard.ui import PAGES

CELL_LINKS = 8  # examples of a cell with their own "Explain" link; the rest are in the table


def clickable_confusion(cm: list[list[int]], labels: list[str]) -> go.Figure:
    """The confusion heatmap plus an invisible marker per cell: heatmaps cannot be selected in
    Plotly, markers can, so a click on a cell selects that cell's marker."""
    fig = confusion_heatmap(cm, labels)
    shown = [esc(x) for x in labels]  # as the heatmap draws them; a click answers with these
    xs = [p for _ in shown for p in shown]
    ys = [t for t in shown for _ in shown]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", marker={"size": 36, "opacity": 0.01, "color": "#000"},
                             hoverinfo="skip", showlegend=False, name="cells"))
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig


def reliability_figure(cal: dict[str, Any]) -> go.Figure:
    used = [b for b in cal["bins"] if b["count"]]
    fig = base_figure(f"Reliability (ECE {cal['ece']:.3f})", xaxis_title="confidence", yaxis_title="accuracy",
               xaxis={"range": [0, 1]}, yaxis={"range": [0, 1]})
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line={"dash": "dot", "color": "#999"}))
    fig.add_trace(go.Scatter(x=[b["confidence"] for b in used], y=[b["accuracy"] for b in used],
                             mode="lines+markers", name="this run", line={"color": PALETTE[0]},
                             text=[f"{b['count']} examples" for b in used],
                             hovertemplate="confidence %{x:.2f}, accuracy %{y:.2f}, %{text}<extra></extra>"))
    return fig


def confidence_figure(hist: pd.DataFrame) -> go.Figure:
    fig = base_figure("Confidence of right and wrong predictions", xaxis_title="confidence", yaxis_title="examples",
               barmode="stack")
    mid = (hist["lo"] + hist["hi"]) / 2
    fig.add_trace(go.Bar(x=mid, y=hist["right"], name="right", marker_color=PALETTE[2], width=0.09))
    fig.add_trace(go.Bar(x=mid, y=hist["wrong"], name="wrong", marker_color=PALETTE[3], width=0.09))
    return fig


def breakdown_figure(frame: pd.DataFrame, by: str) -> go.Figure:
    fig = base_figure(f"Error rate by {by.replace('_', ' ')}", yaxis_title="error rate", yaxis={"range": [0, 1]})
    fig.add_trace(go.Bar(x=frame[by].map(esc), y=frame["error_rate"], marker_color=PALETTE[3],
                         text=[f"{e}/{n}" for e, n in zip(frame["errors"], frame["n"], strict=True)],
                         textposition="outside", hovertemplate="%{x}: %{y:.0%} (%{text})<extra></extra>"))
    return fig


@st.cache_data(show_spinner=False, max_entries=8)
def _image_sides(path: str, mtime: float) -> list[int]:
    return analysis.image_sides(pd.read_parquet(Path(path) / "predictions.parquet")["input"].astype(str).tolist())


def _default_cell(cm: np.ndarray) -> tuple[int, int]:
    off = cm.copy()
    np.fill_diagonal(off, -1)
    i, j = np.unravel_index(int(np.argmax(off)), off.shape)
    return (int(i), int(j)) if off[i, j] > 0 else (0, 0)


def error_analysis(run: Run, summary: dict[str, Any]) -> None:
    test = summary.get("test") or {}
    labels = [str(x) for x in summary.get("labels") or []]
    try:
        preds = run.predictions()
    except Exception:  # noqa: BLE001 - no or damaged predictions: the rest of the page still works
        st.caption("No readable test predictions: error analysis is not available for this run.")
        return
    cm = np.asarray(test.get("confusion_matrix") or [], dtype=int)
    if cm.size and labels:
        st.subheader("Confusion matrix")
        st.caption("Click a cell (or choose it below) to see its test examples.")
        event = st.plotly_chart(clickable_confusion(cm.tolist(), labels), width="stretch", key="runs_confusion",
                                on_select="rerun", selection_mode="points")
        points = (event or {}).get("selection", {}).get("points", []) if event else []
        raw = {esc(x): x for x in labels}
        clicked = (raw.get(str(points[0]["y"])), raw.get(str(points[0]["x"]))) if points else None
        if clicked and clicked != st.session_state.get("_runs_cell_clicked"):  # a new click, not a stale one
            st.session_state["_runs_cell_clicked"] = clicked
            st.session_state["runs_cell_true"], st.session_state["runs_cell_pred"] = clicked
        if st.session_state.get("runs_cell_true") not in labels or st.session_state.get("runs_cell_pred") not in labels:
            di, dj = _default_cell(cm)  # the largest off-diagonal cell: the most common confusion
            st.session_state["runs_cell_true"], st.session_state["runs_cell_pred"] = labels[di], labels[dj]
        a, b = st.columns(2)
        true = a.selectbox("True class", labels, key="runs_cell_true")
        pred = b.selectbox("Predicted as", labels, key="runs_cell_pred")
        cell = analysis.cell_examples(preds, true, pred)
        kind = "right" if true == pred else "wrong"
        st.markdown(f"**{len(cell)} test example{'s' if len(cell) != 1 else ''}** of class {md(true)} predicted as "
                    f"{md(pred)} ({kind}), most confident first.")
        if not cell.empty:
            show = cell.copy()
            if summary.get("task") == "image":
                show["input"] = show["input"].map(lambda s: Path(str(s)).name)
            st.dataframe(show, hide_index=True, width="stretch",
                         column_config={c: st.column_config.NumberColumn(format="%.3f")
                                        for c in show.columns if c.startswith("prob_") or c == "confidence"})
            cols = st.columns(4)
            for k, row in enumerate(cell.head(CELL_LINKS).itertuples()):
                query = {"run": run.id, "example": str(row.example), **({"wrong": "1"} if true != pred else {})}
                cols[k % 4].page_link(PAGES["explain"], label=f"Explain #{row.example}", query_params=query)
    st.subheader("Calibration and confidence")
    cal = analysis.calibration(preds)
    left, right = st.columns(2)
    left.plotly_chart(reliability_figure(cal), width="stretch", key="runs_reliability")
    right.plotly_chart(confidence_figure(analysis.confidence_histogram(preds)), width="stretch",
                       key="runs_confidence")
    st.caption(f"Mean confidence {cal['mean_confidence']:.1%} against accuracy {cal['accuracy']:.1%}: "
               + ("over-confident." if cal["mean_confidence"] > cal["accuracy"] + 0.02 else
                  "under-confident." if cal["mean_confidence"] < cal["accuracy"] - 0.02 else "about right."))
    st.subheader("Where the errors are")
    options = ["class", "length"] if summary.get("task") == "text" else ["class", "image_size"]
    by = st.radio("Break errors down by", options, horizontal=True, key="runs_breakdown",
                  format_func=lambda o: {"class": "true class", "length": "text length",
                                         "image_size": "image size"}[o])
    sizes = None
    if by == "image_size":
        p = run.path / "predictions.parquet"
        try:
            sizes = _image_sides(str(run.path), p.stat().st_mtime)
        except Exception:  # noqa: BLE001 - images moved or deleted since training
            st.caption("The test images are no longer readable, so their sizes are unknown.")
            return
    st.plotly_chart(breakdown_figure(analysis.error_breakdown(preds, by, image_sizes=sizes), by), width="stretch",
                    key="runs_breakdown_chart")
