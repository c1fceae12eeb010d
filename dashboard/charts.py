"""Plotly figures built from plain data (lists, dicts, DataFrames); no Streamlit, no models, so each
one is unit-testable and reusable in the report. Every user string (class, split and run names) goes
through `escape_plot_text`: Plotly would draw HTML in it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.markup import escape_plot_text as t

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
# A horizontal legend hung from just below the plot (its top at the anchor), so it never covers lines.
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0, "xanchor": "left"}
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 320, "template": "plotly_white",
           "legend": LEGEND_BELOW}
FEW_POINTS = 20  # a line with this many points or fewer gets markers: a short run's curve stays visible
SCORES = ("accuracy", "macro_f1", "weighted_f1")  # metrics between 0 and 1, drawn on a fixed 0–1 axis
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def base_figure(title: str, **layout: Any) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, **{**_LAYOUT, **layout})
    return fig


def _mode(n: int) -> str:
    return "lines+markers" if n <= FEW_POINTS else "lines"


def has_curve(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether `training_curves` has anything to draw: a logged step or a finished epoch."""
    return any(r.get("type") in ("step", "epoch") for r in rows)


def training_curves(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Two panels on one step axis, no twin axes: loss above (train loss per logged step, or per
    epoch when the run logged fewer than two steps, and validation loss per epoch), validation
    accuracy and macro-F1 below on a fixed 0–1 axis. Lines of few points get markers."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=("Loss", "Validation scores"))
    fig.update_layout(**{**_LAYOUT, "title": "Training", "height": 520, "margin": {**_LAYOUT["margin"], "t": 60}})
    steps = [r for r in rows if r.get("type") == "step" and r.get("loss") is not None]
    epochs = [r for r in rows if r.get("type") == "epoch"]
    train = [(r["step"], r["loss"]) for r in steps]
    if len(train) < 2:  # too short to log twice: the epochs' mean train loss still draws a line
        per_epoch = [(r["step"], r["train_loss"]) for r in epochs if r.get("train_loss") is not None]
        train = per_epoch if len(per_epoch) > len(train) else train
    if train:
        fig.add_trace(go.Scatter(x=[x for x, _ in train], y=[y for _, y in train], mode=_mode(len(train)),
                                 name="train loss", line={"color": PALETTE[0]}), row=1, col=1)
    val = [r for r in epochs if r.get("val_loss") is not None]
    if val:
        fig.add_trace(go.Scatter(x=[r["step"] for r in val], y=[r["val_loss"] for r in val], mode=_mode(len(val)),
                                 name="val loss", line={"color": PALETTE[1], "dash": "dot"}), row=1, col=1)
    for i, key in enumerate(("val_accuracy", "val_macro_f1")):
        pts = [r for r in epochs if r.get(key) is not None]
        if pts:
            fig.add_trace(go.Scatter(x=[r["step"] for r in pts], y=[r[key] for r in pts], mode=_mode(len(pts)),
                                     name=key.replace("val_", "val ").replace("macro_f1", "macro-F1"),
                                     line={"color": PALETTE[2 + i]}, cliponaxis=False), row=2, col=1)
    fig.update_yaxes(title_text="loss", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="score", range=[0, 1], dtick=0.2, row=2, col=1)
    fig.update_xaxes(rangemode="tozero")  # from step 0: one epoch's point does not get a 99.5–100.5 axis
    fig.update_xaxes(title_text="step", row=2, col=1)
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
                  kind: str = "step", names: Mapping[str, str] | None = None,
                  groups: Mapping[str, int] | None = None) -> go.Figure:
    """One line per run: `metric` of its `kind` rows (step loss, or epoch val_* metrics) against step.
    `names` gives each run its legend label (a short one such as "head · s1"; the run id otherwise),
    `groups` its experiment's index: one colour per experiment, one dash per run within it. Scores
    sit on a fixed 0–1 axis; lines of few points get markers; the legend hangs below the plot."""
    title = metric.replace("val_", "validation ").replace("macro_f1", "macro-F1").replace("_", " ")
    fig = base_figure(f"{title} by step", xaxis_title="step", yaxis_title=title,
                      height=360, margin={**_LAYOUT["margin"], "b": 20})
    if metric.removeprefix("val_") in SCORES:
        fig.update_yaxes(range=[0, 1], dtick=0.2)
    fig.update_xaxes(rangemode="tozero")
    seen: dict[int, int] = {}
    for i, (run_id, rows) in enumerate(curves.items()):
        pts = [r for r in rows if r.get("type") == kind and r.get(metric) is not None]
        group = groups.get(run_id, i) if groups is not None else i
        dash = DASHES[seen.get(group, 0) % len(DASHES)]
        seen[group] = seen.get(group, 0) + 1
        fig.add_trace(go.Scatter(x=[r["step"] for r in pts], y=[r[metric] for r in pts],
                                 name=t((names or {}).get(run_id, run_id)), mode=_mode(len(pts)),
                                 line={"color": PALETTE[group % len(PALETTE)], "dash": dash},
                                 legendgroup=str(group), cliponaxis=False))
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
