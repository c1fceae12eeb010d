"""Plotly figures built from plain data (lists, dicts, DataFrames); no Streamlit, no models, so each
one is unit-testable and reusable in the report. Every user string (class, split and run names) goes
through `escape_plot_text`: Plotly would draw HTML in it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.markup import escape_plot_text as t

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 320, "template": "plotly_white",
           "legend": {"orientation": "h", "y": -0.2}}


def base_figure(title: str, **layout: Any) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, **{**_LAYOUT, **layout})
    return fig


def training_curves(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Training loss per logged step and validation metrics per epoch, on one x-axis (step)."""
    fig = base_figure("Training", xaxis_title="step", yaxis_title="loss",
               yaxis2={"title": "validation", "overlaying": "y", "side": "right", "range": [0, 1],
                       "dtick": 0.2, "showgrid": False})
    steps = [r for r in rows if r.get("type") == "step"]
    epochs = [r for r in rows if r.get("type") == "epoch"]
    if steps:
        fig.add_trace(go.Scatter(x=[r["step"] for r in steps], y=[r["loss"] for r in steps], mode="lines",
                                 name="train loss", line={"color": PALETTE[0]}))
    if epochs:
        fig.add_trace(go.Scatter(x=[r["step"] for r in epochs], y=[r.get("val_loss") for r in epochs],
                                 mode="lines+markers", name="val loss", line={"color": PALETTE[1], "dash": "dot"}))
        for i, key in enumerate(("val_accuracy", "val_macro_f1")):
            fig.add_trace(go.Scatter(x=[r["step"] for r in epochs], y=[r.get(key) for r in epochs],
                                     mode="lines+markers", name=key.replace("val_", "val "), yaxis="y2",
                                     line={"color": PALETTE[2 + i]}))
    return fig


def confusion_heatmap(cm: Sequence[Sequence[int]], labels: Sequence[str], normalize: bool = True) -> go.Figure:
    """Rows are true classes, columns predictions; colour by row share, text shows counts."""
    m = np.asarray(cm, dtype=float)
    shares = m / np.maximum(m.sum(axis=1, keepdims=True), 1) if normalize else m
    text = [[f"{int(c)}" + (f"<br>{s:.0%}" if normalize else "") for c, s in zip(row, srow, strict=True)]
            for row, srow in zip(m, shares, strict=True)]
    size = max(320, 40 * len(labels) + 140)
    fig = base_figure("Confusion matrix (rows: true class)", height=size, xaxis_title="predicted", yaxis_title="true")
    shown = [t(x) for x in labels]
    fig.add_trace(go.Heatmap(z=shares, x=shown, y=shown, text=text, texttemplate="%{text}",
                             colorscale="Blues", zmin=0, zmax=1 if normalize else None, showscale=False,
                             hovertemplate="true %{y} → predicted %{x}<br>%{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def per_class_bars(per_class: Mapping[str, Mapping[str, float]]) -> go.Figure:
    labels = list(per_class)
    fig = base_figure("Per-class precision, recall and F1", yaxis={"range": [0, 1]}, barmode="group")
    for i, key in enumerate(("precision", "recall", "f1")):
        fig.add_trace(go.Bar(x=[t(c) for c in labels], y=[per_class[c][key] for c in labels], name=key,
                             marker_color=PALETTE[i]))
    fig.update_xaxes(type="category")
    return fig


def class_balance(counts: pd.DataFrame) -> go.Figure:
    """`counts`: columns label, split, n. Stacked bars per class, one colour per split."""
    fig = base_figure("Examples per class", barmode="stack", yaxis_title="examples")
    for i, (split, g) in enumerate(counts.groupby("split", sort=False)):
        fig.add_trace(go.Bar(x=g["label"].map(t), y=g["n"], name=t(split), marker_color=PALETTE[i]))
    fig.update_xaxes(type="category")
    return fig


def length_histogram(frame: pd.DataFrame, column: str = "words") -> go.Figure:
    """`frame`: columns label and `column` (text length in words); overlaid histograms per class."""
    fig = base_figure("Text length (words)", barmode="overlay", xaxis_title="words", yaxis_title="examples")
    for i, (label, g) in enumerate(frame.groupby("label", sort=True)):
        fig.add_trace(go.Histogram(x=g[column], name=t(label), opacity=0.6, nbinsx=40,
                                   marker_color=PALETTE[i % len(PALETTE)]))
    return fig


def probability_bars(probabilities: Mapping[str, float], top: int = 15) -> go.Figure:
    items = sorted(probabilities.items(), key=lambda kv: kv[1], reverse=True)[:top]
    items.reverse()  # largest at the top of a horizontal bar chart
    fig = base_figure("Class probabilities", height=max(220, 30 * len(items) + 90), xaxis={"range": [0, 1]})
    fig.add_trace(go.Bar(x=[p for _, p in items], y=[t(k) for k, _ in items], orientation="h",
                         text=[f"{p:.1%}" for _, p in items], textposition="auto",
                         marker_color=[PALETTE[0] if i == len(items) - 1 else "#9ecae1" for i in range(len(items))]))
    fig.update_yaxes(type="category")
    return fig


def curve_overlay(curves: Mapping[str, Sequence[Mapping[str, Any]]], metric: str = "loss",
                  kind: str = "step") -> go.Figure:
    """One line per run: `metric` of its `kind` rows (step loss, or epoch val_* metrics) against step."""
    fig = base_figure(f"{metric.replace('_', ' ')} by step", xaxis_title="step", yaxis_title=metric)
    for i, (name, rows) in enumerate(curves.items()):
        pts = [r for r in rows if r.get("type") == kind and r.get(metric) is not None]
        fig.add_trace(go.Scatter(x=[r["step"] for r in pts], y=[r[metric] for r in pts], name=t(name),
                                 mode="lines" if kind == "step" else "lines+markers",
                                 line={"color": PALETTE[i % len(PALETTE)]}))
    return fig


def diff_bars(frame: pd.DataFrame, name_a: str = "A", name_b: str = "B") -> go.Figure:
    """`frame`: columns class, diff (A − B). Green where A is better."""
    fig = base_figure(f"Per-class F1: {t(name_a)} − {t(name_b)}", xaxis_title="F1 difference",
               height=max(240, 26 * len(frame) + 100))
    fig.add_trace(go.Bar(x=frame["diff"], y=frame["class"].map(t), orientation="h",
                         marker_color=["#2ca02c" if d >= 0 else "#d62728" for d in frame["diff"].fillna(0)],
                         text=[f"{d:+.3f}" for d in frame["diff"].fillna(0)], textposition="auto"))
    fig.update_yaxes(type="category")
    return fig
